"""Locating a real benchmark's files: what ``--root`` (and ``--train-root``, ``--pairs``) must hold.

:func:`locate_inputs` checks the root and the list files in a second, before
any model is loaded; whatever makes a benchmark impossible raises
:class:`DataInputError` with a message naming the path and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REAL_DATASETS: tuple[str, ...] = ("rafdb", "fer2013", "lfw", "cplfw", "disfa", "aflw2000", "folder")
#: FSA-Net's 300W-LP training files (data/type1/): the four subsets and their mirrored copies
FSANET_300WLP_FILES: tuple[str, ...] = ("AFW", "AFW_Flip", "HELEN", "HELEN_Flip", "IBUG", "IBUG_Flip", "LFPW", "LFPW_Flip")


class DataInputError(ValueError):
    """A real benchmark cannot run on this input (bad root, missing list file, nothing usable); says why."""


@dataclass(frozen=True)
class Inputs:
    """The files and folders one benchmark reads, checked to exist: ``paths[role] -> Path`` (or several)."""

    data: str
    paths: dict[str, Path | tuple[Path, ...]]


def _need_dir(path: Path, what: str, hint: str = "") -> Path:
    if not path.is_dir():
        raise DataInputError(f"{what} not found (expected a folder): {path}" + (f"; {hint}" if hint else ""))
    return path


def _need_file(path: Path, what: str, hint: str = "") -> Path:
    if not path.is_file():
        raise DataInputError(f"{what} not found (expected a file): {path}" + (f"; {hint}" if hint else ""))
    return path


def _first_existing(candidates: Sequence[Path], what: str, hint: str) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise DataInputError(f"{what} not found; looked for {looked}; {hint}")


def _one_npz(folder: Path, matches: Callable[[str], bool], what: str, hint: str) -> Path:
    """The single ``.npz`` in ``folder`` whose lower-cased name ``matches``."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".npz" and matches(p.name.lower()))
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise DataInputError(f"need exactly one {what} .npz in {folder}, found {listed}; {hint}")
    return found[0]


def _is_aflw(name: str) -> bool:
    return "aflw2000" in name


def _is_300wlp(name: str) -> bool:
    return "300w" in name and "lp" in name


def locate_inputs(data: str, root: str | os.PathLike | None, train_root: str | os.PathLike | None = None,
                  pairs: str | os.PathLike | None = None) -> Inputs:
    """Find and check what benchmark ``data`` reads under ``root`` (fast: no image is opened).

    Layouts (``data/README.md``):

    * ``rafdb``: ``root/EmoLabel/list_patition_label.txt`` + ``root/Image/aligned/``.
    * ``fer2013``: ``root`` is ``fer2013.csv`` or a folder holding it.
    * ``lfw``: ``root`` holds ``<name>/<name>_<idx:04d>.jpg`` (or one sub-folder
      that does); pair list ``pairs`` or ``root/pairs.txt`` or ``root/../pairs.txt``.
    * ``cplfw``: ``root`` holds the images (or ``root/images`` does); pair list
      ``pairs`` or ``root/pairs_CPLFW.txt`` or ``root/../pairs_CPLFW.txt``.
    * ``disfa``: ``root/ActionUnit_Labels/<subject>/`` + ``root/frames/<subject>/``.
    * ``aflw2000``: ``root`` is the AFLW2000 ``.npz`` or a folder holding it
      (name containing ``aflw2000``); 300W-LP is ``train_root`` (a file or a
      folder) or sits next to the AFLW2000 file: one ``.npz`` whose name
      contains ``300w`` and ``lp``, or FSA-Net's eight subset files
      ``AFW.npz`` ... ``LFPW_Flip.npz`` (``data/type1/``).
    * ``folder``: ``root/<class>/**/<image>``.
    """
    if data not in REAL_DATASETS:
        raise DataInputError(f"unknown real benchmark {data!r}; choose one of {REAL_DATASETS}")
    if not root:
        raise DataInputError(f"--data {data} needs --root PATH (see data/README.md for the expected layout)")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataInputError(f"{data} root does not exist: {root}")
    locate = {"rafdb": _locate_rafdb, "fer2013": _locate_fer, "lfw": _locate_lfw, "cplfw": _locate_cplfw,
              "disfa": _locate_disfa, "aflw2000": _locate_aflw, "folder": _locate_folder}[data]
    return Inputs(data, locate(root, train_root=train_root, pairs=pairs))


def _locate_rafdb(root: Path, **_: Any) -> dict[str, Path]:
    _need_dir(root, "RAF-DB folder")
    _need_file(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label list",
               "--root must be the RAF-DB 'basic' folder holding EmoLabel/ and Image/")
    _need_dir(root / "Image" / "aligned", "RAF-DB aligned images", "unpack Image/aligned.zip there")
    return {"root": root}


def _locate_fer(root: Path, **_: Any) -> dict[str, Path]:
    if root.is_file():
        return {"csv": root}
    csv_path = _first_existing([root / "fer2013.csv", root / "fer2013" / "fer2013.csv"], "FER-2013 CSV",
                               "--root must be fer2013.csv (columns emotion,pixels,Usage) or its folder")
    return {"csv": csv_path}


def _first_lfw_image(pairs_file: Path) -> str | None:
    """Relative path of the first image named by an LFW ``pairs.txt`` (None when unparsable)."""
    with open(pairs_file, encoding="utf-8", errors="replace") as handle:
        lines = [line.split() for line in handle if line.strip()][:2]
    if len(lines) < 2 or len(lines[1]) not in (3, 4) or not lines[1][1].isdigit():
        return None
    name, index = lines[1][0], int(lines[1][1])
    return f"{name}/{name}_{index:04d}.jpg"


def _first_cplfw_image(pairs_file: Path) -> str | None:
    with open(pairs_file, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return line.split()[0]
    return None


def _image_root(root: Path, first_image: str | None) -> Path:
    """``root``, or the one sub-folder of ``root`` that holds ``first_image`` when ``root`` does not."""
    if first_image is None or (root / first_image).is_file():
        return root
    holders = [sub for sub in sorted(root.iterdir()) if sub.is_dir() and (sub / first_image).is_file()]
    return holders[0] if len(holders) == 1 else root


def _locate_pairs(root: Path, pairs: str | os.PathLike | None, default_name: str, what: str,
                  first_image: Callable[[Path], str | None]) -> dict[str, Path]:
    _need_dir(root, f"{what} image folder")
    hint = "pass the pair list with --pairs FILE"
    if pairs:
        pairs_file = _need_file(Path(pairs).expanduser(), f"{what} pair list", hint)
    else:
        pairs_file = _first_existing([root / default_name, root.parent / default_name], f"{what} pair list", hint)
    return {"images": _image_root(root, first_image(pairs_file)), "pairs": pairs_file}


def _locate_lfw(root: Path, pairs: str | os.PathLike | None = None, **_: Any) -> dict[str, Path]:
    return _locate_pairs(root, pairs, "pairs.txt", "LFW", _first_lfw_image)


def _locate_cplfw(root: Path, pairs: str | os.PathLike | None = None, **_: Any) -> dict[str, Path]:
    return _locate_pairs(root, pairs, "pairs_CPLFW.txt", "CPLFW", _first_cplfw_image)


def _locate_disfa(root: Path, **_: Any) -> dict[str, Path]:
    _need_dir(root, "DISFA folder")
    _need_dir(root / "ActionUnit_Labels", "DISFA AU label folder", "expected ActionUnit_Labels/<subject>/<subject>_au<N>.txt")
    _need_dir(root / "frames", "DISFA frames folder", "expected frames/<subject>/<frame number>.jpg (aligned face crops)")
    return {"root": root}


def _training_npz(path: Path, hint: str) -> tuple[Path, ...]:
    """300W-LP as one ``.npz`` (the file ``path``, or the one ``*300w*lp*.npz`` in folder ``path``) or as
    FSA-Net's eight subset files (:data:`FSANET_300WLP_FILES`, all of them) in folder ``path``."""
    if path.is_file():
        return (path,)
    npz = {p.stem.lower(): p for p in sorted(path.iterdir()) if p.suffix.lower() == ".npz"}
    whole = [p for stem, p in npz.items() if _is_300wlp(stem)]
    if len(whole) > 1:
        raise DataInputError(f"several 300W-LP .npz in {path}: {', '.join(p.name for p in whole)}; {hint}")
    if whole:
        return (whole[0],)
    subsets = [npz.get(name.lower()) for name in FSANET_300WLP_FILES]
    missing = [f"{name}.npz" for name, p in zip(FSANET_300WLP_FILES, subsets) if p is None]
    if len(missing) == len(FSANET_300WLP_FILES):
        raise DataInputError(f"no 300W-LP .npz in {path} (expected 300W_LP.npz, or FSA-Net's "
                             f"{', '.join(n + '.npz' for n in FSANET_300WLP_FILES)}); {hint}")
    if missing:
        raise DataInputError(f"300W-LP in {path} is incomplete: FSA-Net's subset file(s) {', '.join(missing)} missing; {hint}")
    return tuple(subsets)  # type: ignore[arg-type]


def _locate_aflw(root: Path, train_root: str | os.PathLike | None = None, **_: Any) -> dict[str, Path | tuple[Path, ...]]:
    hint = "--root is the AFLW2000 .npz (or its folder); --train-root the 300W-LP .npz (or its folder)"
    test = root if root.is_file() else _one_npz(root, _is_aflw, "AFLW2000", hint)
    if train_root:
        train_path = Path(train_root).expanduser()
        if not train_path.exists():
            raise DataInputError(f"300W-LP training data does not exist: {train_path}; {hint}")
    else:
        train_path = test.parent
    return {"train": _training_npz(train_path, hint), "test": test}


def _locate_folder(root: Path, **_: Any) -> dict[str, Path]:
    return {"root": _need_dir(root, "class folder", "expected <root>/<class name>/<image files>")}
