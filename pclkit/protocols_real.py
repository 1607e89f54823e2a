"""Linear evaluation on the PCL paper's real benchmarks (``evaluate --data NAME --root PATH``).

Liu et al. (CVPR 2023) evaluate PCL with frozen features and linear probes on
expression recognition, face verification, AU detection and head pose. This
module runs those protocols on the real data, one function per benchmark
(:func:`evaluate_rafdb`, :func:`evaluate_fer2013`, :func:`evaluate_lfw`,
:func:`evaluate_cplfw`, :func:`evaluate_disfa`, :func:`evaluate_aflw2000`,
:func:`evaluate_folder`); each builds its :class:`~pclkit.features.DataPart`s
from a loader of :mod:`pclkit.data.real` and runs the probes of
:mod:`pclkit.probes`, returning tidy rows ``{data, method, feature, task,
metric, seed, value}`` (fractions for accuracy/F1/AUC, degrees for MAE).

Protocols (hyper-parameters are always chosen on a validation split, never on test):

* **RAF-DB** basic (Li, Deng & Du, CVPR 2017): 7 classes; probes train on the
  train list minus a stratified ``val_fraction`` held out per seed for
  validation, and are scored on the test list. Accuracy, mean class accuracy,
  accuracy per class; weighted kNN (Wu et al., CVPR 2018).
* **FER-2013** (Goodfellow et al., ICONIP 2013): ``Training`` -> train,
  ``PublicTest`` -> validation, ``PrivateTest`` -> test; same metrics.
* **LFW** ``pairs.txt`` (Huang et al., 2007) and **CPLFW** (Zheng & Deng, 2018):
  cosine similarity; the standard 10-fold protocol (each fold is scored with
  the threshold that is best on the other nine); accuracy, its std over folds,
  ROC-AUC and TAR at FAR = 1e-3 (``sklearn.metrics.roc_curve`` on all pairs).
* **DISFA** (Mavadati et al., IEEE TAC 2013): AU1, 2, 4, 6, 9, 12, 25, 26
  present at intensity >= 2; subject-exclusive 3-fold cross-validation with the
  partition of JAA-Net (Shao et al., ECCV 2018) and ME-GraphAU (Luo et al.,
  IJCAI 2022); validation subjects are carved from the two training folds per
  seed. F1 per AU (mean over folds) and their mean.
* **300W-LP -> AFLW2000** (Zhu et al., CVPR 2016) in FSA-Net's ``.npz`` layout
  (Yang et al., CVPR 2019; 300W-LP as one file or as FSA-Net's eight subset
  files): ridge regression of yaw, pitch, roll trained on
  300W-LP (``val_fraction`` held out per seed), tested on AFLW2000; samples
  with any angle outside ±99° are dropped from both (Ruiz et al., CVPRW 2018; FSA-Net)
  and counted. MAE per angle and mean.
* **folder** of class sub-folders: stratified train/val/test split per seed;
  linear probe and kNN; accuracy, mean class accuracy, per class.

A benchmark whose splits are fixed (FER-2013, LFW, CPLFW) has nothing a seed
could change -- the solvers are deterministic -- so it is run once (seed 0);
the others draw their validation (and, for ``folder``, train/test) split per
seed and report mean ± std over seeds.

Bad input never fails half way: :func:`locate_inputs` checks the root and list
files before any model is loaded, the loaders index and verify everything
before any feature is computed (unusable items are skipped, counted, reported
in one warning and in the ``dataset info`` rows), and whatever makes a
benchmark impossible raises :class:`DataInputError` with a message naming the
path and what was expected.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from pclkit.features import DataPart
from pclkit.probes import (
    Pairs,
    ProbeConfig,
    ProbeResult,
    Split,
    au_detection_probe,
    binary_f1,
    class_accuracies,
    knn_probe,
    pose_regression_probe,
    select_classifier,
    verification_accuracy,
)
from pclkit.tables import Column, TableSpec
from pclkit.threads import torch_threads

if TYPE_CHECKING:  # pclkit.evaluate imports this module
    from pclkit.evaluate import EvalConfig

REAL_DATASETS: tuple[str, ...] = ("rafdb", "fer2013", "lfw", "cplfw", "disfa", "aflw2000", "folder")
#: method label of the rows that describe the data (counts of images, skips, drops)
DATA_INFO = "dataset info"
#: method label of the label-only reference rows (as in pclkit.evaluate)
CHANCE = "chance"
#: the pixel baseline's PCA is fitted on at most this many (seeded) training images
PIXEL_FIT_MAX = 5000
#: AFLW2000 / 300W-LP samples with any |angle| above this are dropped (FSA-Net, Hopenet)
MAX_ANGLE = 99.0
#: false-accept rates at which the true-accept rate is reported
TAR_FARS: tuple[float, ...] = (1e-3,)
#: FSA-Net's 300W-LP training files (data/type1/): the four subsets and their mirrored copies
FSANET_300WLP_FILES: tuple[str, ...] = ("AFW", "AFW_Flip", "HELEN", "HELEN_Flip", "IBUG", "IBUG_Flip", "LFPW", "LFPW_Flip")
#: DISFA's subject-exclusive 3-fold partition (JAA-Net, ME-GraphAU)
DISFA_STANDARD_FOLDS: tuple[tuple[str, ...], ...] = (
    ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
)
#: bump when a protocol's image preparation changes, so cached features are not reused
PROTOCOL_VERSION = 1


class DataInputError(ValueError):
    """A real benchmark cannot run on this input (bad root, missing list file, nothing usable); says why."""


# --------------------------------------------------------------------------- locating the input files


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


# --------------------------------------------------------------------------- data parts from loaders


@dataclass
class Prepared:
    """A benchmark ready to probe: its data parts and what the protocol needs besides images.

    ``parts[name]`` holds labels (tensors ``(N, ...)``) and images on demand;
    ``class_names`` names the classes of classification benchmarks; ``info``
    counts images, skips and drops (reported as ``dataset info`` rows);
    ``extra`` holds protocol data (verification pairs, DISFA folds).
    """

    data: str
    parts: dict[str, DataPart]
    class_names: list[str] = field(default_factory=list)
    info: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _open(data: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Construct a loader; turn its 'missing file' / 'nothing usable' errors into :class:`DataInputError`."""
    try:
        return factory(*args, **kwargs)
    except (FileNotFoundError, ValueError) as error:
        raise DataInputError(f"{data}: {error}") from error


def stat_digest(paths: Iterable[str | os.PathLike]) -> str:
    """Short hash of each file's path, size and modification time (cache keys change when data changes)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_uint8(n: int, get: Callable[[int], Tensor], progress: bool = False, desc: str = "images", chunk: int = 256) -> Tensor:
    """Images ``get(i)`` (float ``(3, S, S)`` in [0, 1]) for ``i < n`` -> uint8 ``(n, 3, S, S)``, converted per chunk."""
    out: Tensor | None = None
    for start in tqdm(range(0, n, chunk), desc=desc, disable=not progress, leave=False):
        batch = torch.stack([get(i) for i in range(start, min(n, start + chunk))])
        batch = (batch.clamp_(0, 1) * 255).round_().to(torch.uint8)
        if out is None:
            out = torch.empty((n, *batch.shape[1:]), dtype=torch.uint8)
        out[start:start + len(batch)] = batch
    if out is None:
        raise DataInputError(f"{desc}: no images to load")
    return out


def labels_of(dataset: Any, keys: Sequence[str]) -> dict[str, Tensor]:
    """Label tensors ``{key: (N, ...)}`` (+ ``index``) of all a loader's items, without decoding images."""
    items = [dataset.item_labels(i) for i in range(len(dataset))]
    out = {}
    for key in keys:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if values and isinstance(values[0], Tensor) else torch.tensor(values)
    out["index"] = torch.arange(len(items))
    return out


def image_part(name: str, identity: dict[str, Any], labels: dict[str, Tensor], get: Callable[[int], Tensor],
               progress: bool) -> DataPart:
    """A :class:`DataPart` whose images ``get(i)`` are decoded only if some features are not cached."""
    n = int(labels["index"].shape[0])
    return DataPart(name, labels, {**identity, "part": name, "n": n, "protocol": PROTOCOL_VERSION},
                    lambda: load_uint8(n, get, progress, desc=f"{identity['data']} {name}"))


def _identity(data: str, size: int, files: Iterable[str | os.PathLike]) -> dict[str, Any]:
    return {"data": data, "size": size, "content": stat_digest(files)}


def _skipped(*datasets: Any) -> float:
    return float(len({item for dataset in datasets for item in dataset.skipped}))


def prepare_rafdb(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """RAF-DB basic: parts ``train`` (train list) and ``test`` (test list), label ``expression`` (RAF order)."""
    from pclkit.data.real import RAF_EXPRESSIONS, RAFDB

    root = inputs.paths["root"]
    splits = {split: _open("rafdb", RAFDB, root, split=split, size=size) for split in ("train", "test")}
    list_file = root / "EmoLabel" / "list_patition_label.txt"
    parts = {}
    for split, dataset in splits.items():
        identity = _identity("rafdb", size, [list_file, *dataset.paths])
        parts[split] = image_part(split, identity, labels_of(dataset, ["expression"]), lambda i, d=dataset: d[i][0], progress)
    info = {"n_train": len(splits["train"]), "n_test": len(splits["test"]), "n_skipped": _skipped(*splits.values())}
    return Prepared("rafdb", parts, list(RAF_EXPRESSIONS), info)


def prepare_fer2013(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """FER-2013: parts ``train`` (Training), ``val`` (PublicTest), ``test`` (PrivateTest)."""
    from pclkit.data.real import FER_EXPRESSIONS, FER2013

    csv_path = inputs.paths["csv"]
    usages = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    splits = {part: _open("fer2013", FER2013, csv_path, usage=usage, size=size) for part, usage in usages.items()}
    parts = {part: image_part(part, {**_identity("fer2013", size, [csv_path]), "usage": usages[part]},
                              labels_of(dataset, ["expression"]), lambda i, d=dataset: d[i][0], progress)
             for part, dataset in splits.items()}
    info = {f"n_{part}": len(dataset) for part, dataset in splits.items()}
    info["n_skipped"] = _skipped(*splits.values())
    return Prepared("fer2013", parts, list(FER_EXPRESSIONS), info)


def prepare_pairs(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """LFW / CPLFW: one part ``pairs`` of the distinct images of the pair list, and the :class:`Pairs`."""
    from pclkit.data.imageio import load_image
    from pclkit.data.real import PairList

    data = inputs.data
    pair_list = _open(data, PairList, inputs.paths["images"], inputs.paths["pairs"], fmt=data, size=size)
    paths = sorted({path for pair in pair_list.pairs for path in pair})
    position = {path: i for i, path in enumerate(paths)}
    labels = labels_of(pair_list, ["same", "fold"])
    pairs = Pairs(torch.tensor([position[a] for a, _ in pair_list.pairs]), torch.tensor([position[b] for _, b in pair_list.pairs]),
                  labels["same"].bool(), labels["fold"].long())
    check_pairs(data, pairs, inputs.paths["pairs"])
    identity = _identity(data, size, [inputs.paths["pairs"], *paths])
    part = image_part("pairs", identity, {"index": torch.arange(len(paths))}, lambda i: load_image(paths[i], size), progress)
    info = {"n_pairs": len(pairs), "n_same": float(pairs.same.sum()), "n_images": len(paths),
            "n_folds": float(len(torch.unique(pairs.fold))), "n_skipped": _skipped(pair_list)}
    return Prepared(data, {"pairs": part}, [], info, {"pairs": pairs})


def check_pairs(data: str, pairs: Pairs, pairs_file: Path) -> None:
    """Refuse pair lists the 10-fold protocol cannot score (one fold, or only one kind of pair)."""
    folds = len(torch.unique(pairs.fold))
    if folds < 2:
        raise DataInputError(f"{data}: {pairs_file} has {folds} fold of usable pairs; the k-fold protocol needs >= 2 "
                             f"(use the View 2 list: LFW pairs.txt, CPLFW pairs_CPLFW.txt)")
    if bool(pairs.same.all()) or not bool(pairs.same.any()):
        raise DataInputError(f"{data}: {pairs_file} has only {'same' if pairs.same.all() else 'different'}-person pairs usable")


def disfa_folds(subjects: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Subject-exclusive 3-fold partition of ``subjects``.

    The standard partition (:data:`DISFA_STANDARD_FOLDS`) when every subject is
    named in it and each of its folds keeps a subject; otherwise the sorted
    subjects dealt round-robin into 3 folds (e.g. renamed or subset data).
    """
    present = set(subjects)
    standard = tuple(tuple(s for s in fold if s in present) for fold in DISFA_STANDARD_FOLDS)
    if present <= {s for fold in DISFA_STANDARD_FOLDS for s in fold} and all(standard):
        return standard
    ordered = sorted(present)
    return tuple(tuple(ordered[k::3]) for k in range(3))


def prepare_disfa(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """DISFA: one part ``all`` with ``aus_raw`` (intensities 0..5) and ``identity``; ``extra["folds"]`` subject folds."""
    from pclkit.data.real import DISFA

    dataset = _open("disfa", DISFA, inputs.paths["root"], size=size)
    labels = labels_of(dataset, ["aus_raw", "identity"])
    names = dataset.class_names["identity"]
    subjects = [names[i] for i in torch.unique(labels["identity"]).tolist()]
    folds = disfa_folds(subjects)
    if sum(1 for fold in folds if fold) < 3 or len(subjects) < 3:
        raise DataInputError(f"disfa: subject-exclusive 3-fold evaluation needs >= 3 subjects with frames, "
                             f"found {len(subjects)} ({', '.join(subjects)}) in {inputs.paths['root']}")
    label_files = sorted(str(p) for p in (inputs.paths["root"] / "ActionUnit_Labels").rglob("*.txt"))
    part = image_part("all", _identity("disfa", size, [*label_files, *dataset.paths]), labels,
                      lambda i: dataset[i][0], progress)
    standard = tuple(tuple(s for s in fold if s in set(subjects)) for fold in DISFA_STANDARD_FOLDS)
    info = {"n_frames": len(dataset), "n_subjects": len(subjects), "n_skipped": _skipped(dataset),
            "standard_folds": float(folds == standard)}
    fold_ids = tuple(torch.tensor([names.index(s) for s in fold]) for fold in folds)
    return Prepared("disfa", {"all": part}, [], info, {"folds": fold_ids, "fold_names": folds})


def prepare_aflw2000(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """300W-LP (part ``train``) and AFLW2000 (part ``test``) with ``pose`` = (yaw, pitch, roll) degrees, ±99° filter."""
    from pclkit.data.real import PoseNPZ

    parts, info, loaded = {}, {}, []
    for part, files in (("train", inputs.paths["train"]), ("test", (inputs.paths["test"],))):
        datasets = [_open("aflw2000", PoseNPZ, path, size=size, max_angle=MAX_ANGLE) for path in files]
        loaded += datasets
        identity = {**_identity("aflw2000", size, files), "max_angle": MAX_ANGLE}
        parts[part] = image_part(part, identity, concat_labels([labels_of(d, ["pose"]) for d in datasets]),
                                 concat_getter(datasets), progress)
        info[f"n_{part}"] = sum(len(d) for d in datasets)
        info[f"n_{part}_dropped"] = sum(len(d.outside_range) for d in datasets)
    info["n_skipped"] = _skipped(*loaded)
    return Prepared("aflw2000", parts, [], info)


def concat_labels(labels: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Label dicts of several loaders, one after the other (``index`` renumbered)."""
    out = {key: torch.cat([item[key] for item in labels]) for key in labels[0] if key != "index"}
    out["index"] = torch.arange(sum(len(item["index"]) for item in labels))
    return out


def concat_getter(datasets: Sequence[Any]) -> Callable[[int], Tensor]:
    """``get(i)``: image ``i`` of the datasets laid end to end."""
    starts = np.cumsum([0] + [len(d) for d in datasets])

    def get(i: int) -> Tensor:
        k = int(np.searchsorted(starts, i, side="right")) - 1
        return datasets[k][i - int(starts[k])][0]

    return get


def prepare_folder(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """A folder of class sub-folders: one part ``all`` with label ``label``; classes with < 3 images are dropped."""
    from pclkit.data.real import FaceFolder

    dataset = _open("folder", FaceFolder, inputs.paths["root"], size=size, labels_from_subfolders=True)
    classes = labels_of(dataset, ["identity"])["identity"]
    counts = torch.bincount(classes, minlength=len(dataset.class_names["identity"]))
    kept = torch.nonzero(counts >= 3).flatten()
    if len(kept) < 2:
        raise DataInputError(f"folder: a stratified train/val/test split needs >= 2 classes with >= 3 images; "
                             f"{inputs.paths['root']} has {int((counts >= 3).sum())}")
    rows = torch.nonzero(torch.isin(classes, kept)).flatten().tolist()
    remap = torch.full((len(counts),), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    labels = {"label": remap[classes[rows]], "index": torch.arange(len(rows))}
    part = image_part("all", _identity("folder", size, [dataset.paths[i] for i in rows]), labels,
                      lambda i: dataset[rows[i]][0], progress)
    names = [dataset.class_names["identity"][c] for c in kept.tolist()]
    info = {"n_images": len(rows), "n_classes": len(kept), "n_classes_dropped": float(len(counts) - len(kept)),
            "n_images_dropped": float(len(dataset) - len(rows)), "n_skipped": _skipped(dataset)}
    return Prepared("folder", {"all": part}, names, info)


# --------------------------------------------------------------------------- splits


def seeded_generator(seed: int, salt: str) -> torch.Generator:
    """A generator per (seed, purpose) (the recipe of :mod:`pclkit.evaluate`): one protocol's draws never shift another's."""
    return torch.Generator().manual_seed(int(hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()[:12], 16))


def _holdout_count(n: int, fraction: float) -> int:
    """How many of ``n`` rows to hold out: ``round(n * fraction)``, at least 1 and leaving at least 1 (0 when n < 2)."""
    return 0 if n < 2 else min(n - 1, max(1, int(round(n * fraction))))


def stratified_holdout(labels: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(kept, held)`` sorted row indices: a random ``fraction`` of each class held out (classes of 1 stay kept)."""
    kept, held = [], []
    for c in torch.unique(labels):
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        k = _holdout_count(len(rows), fraction)
        held.append(rows[:k])
        kept.append(rows[k:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


def random_holdout(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(kept, held)`` sorted indices of ``range(n)`` with a random ``fraction`` held out."""
    order = torch.randperm(n, generator=generator)
    k = _holdout_count(n, fraction)
    return order[k:].sort().values, order[:k].sort().values


def stratified_split(labels: Tensor, fractions: tuple[float, float], generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Per class ``fractions`` = (train, val) of the rows, the rest test; every class of >= 3 rows is in all three."""
    train, val, test = [], [], []
    test_fraction = 1.0 - fractions[0] - fractions[1]
    for c in torch.unique(labels):
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        n_test = _holdout_count(len(rows), test_fraction)
        n_val = _holdout_count(len(rows) - n_test, fractions[1] / max(fractions[0] + fractions[1], 1e-12))
        test.append(rows[:n_test])
        val.append(rows[n_test:n_test + n_val])
        train.append(rows[n_test + n_val:])
    return tuple(torch.cat(s).sort().values for s in (train, val, test))  # type: ignore[return-value]


@dataclass(frozen=True)
class Plan:
    """Which rows of which part a seed trains, validates and tests on.

    ``fit`` are the rows an unsupervised baseline (the pixel PCA) may be fitted
    on: training images only, never test images.
    """

    train: tuple[str, Tensor]
    val: tuple[str, Tensor]
    test: tuple[str, Tensor]
    fit: dict[str, Tensor]


def _capped(fit: Mapping[str, Tensor], salt: str) -> dict[str, Tensor]:
    """At most :data:`PIXEL_FIT_MAX` rows per part (a fixed seeded subset, so the PCA is refitted only when rows change)."""
    out = {}
    for part, rows in fit.items():
        if len(rows) > PIXEL_FIT_MAX:
            rows = rows[torch.randperm(len(rows), generator=seeded_generator(0, f"pixel-fit:{salt}"))[:PIXEL_FIT_MAX]].sort().values
        out[part] = rows
    return out


def _require_rows(data: str, plan: Plan) -> Plan:
    for role in ("train", "val", "test"):
        if len(getattr(plan, role)[1]) == 0:
            raise DataInputError(f"{data}: the {role} split is empty: too few usable images for this protocol")
    return plan


def rafdb_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """RAF-DB: a stratified ``cfg.val_fraction`` of the train list held out for validation (per seed); test list."""
    y = prepared.parts["train"].labels["expression"]
    train, val = stratified_holdout(y, cfg.val_fraction, seeded_generator(seed, "rafdb-val"))
    test = torch.arange(len(prepared.parts["test"]))
    return _require_rows("rafdb", Plan(("train", train), ("train", val), ("test", test), _capped({"train": torch.arange(len(y))}, "rafdb")))


def fer2013_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """FER-2013: the official Training / PublicTest / PrivateTest (the same for every seed)."""
    rows = {part: torch.arange(len(prepared.parts[part])) for part in ("train", "val", "test")}
    return Plan(("train", rows["train"]), ("val", rows["val"]), ("test", rows["test"]), _capped({"train": rows["train"]}, "fer2013"))


def folder_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """A class folder: stratified ``cfg.folder_split`` train / val fractions, the rest test (per seed)."""
    y = prepared.parts["all"].labels["label"]
    train, val, test = stratified_split(y, tuple(cfg.folder_split), seeded_generator(seed, "folder-split"))
    return _require_rows("folder", Plan(("all", train), ("all", val), ("all", test), _capped({"all": train}, f"folder:{seed}")))


def aflw2000_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """300W-LP minus a random ``cfg.val_fraction`` (validation, per seed) -> AFLW2000."""
    n = len(prepared.parts["train"])
    if n < 2:
        raise DataInputError("aflw2000: 300W-LP needs >= 2 usable samples to hold out a validation split")
    train, val = random_holdout(n, cfg.val_fraction, seeded_generator(seed, "300wlp-val"))
    test = torch.arange(len(prepared.parts["test"]))
    return Plan(("train", train), ("train", val), ("test", test), _capped({"train": torch.arange(n)}, "300wlp"))


def disfa_plan(prepared: Prepared, fold: int, seed: int, cfg: EvalConfig) -> Plan:
    """DISFA fold ``fold``: its subjects are the test set; validation subjects are drawn from the other two folds per seed."""
    identity = prepared.parts["all"].labels["identity"]
    folds = prepared.extra["folds"]
    training = torch.cat([f for k, f in enumerate(folds) if k != fold])
    order = training[torch.randperm(len(training), generator=seeded_generator(seed, f"disfa-val:{fold}"))]
    n_val = _holdout_count(len(order), cfg.val_fraction)
    val_subjects, train_subjects = order[:n_val], order[n_val:]
    rows = {name: torch.nonzero(torch.isin(identity, subjects)).flatten()
            for name, subjects in (("train", train_subjects), ("val", val_subjects), ("test", folds[fold]))}
    fit = _capped({"all": torch.nonzero(torch.isin(identity, training)).flatten()}, f"disfa:{fold}")
    return _require_rows("disfa", Plan(("all", rows["train"]), ("all", rows["val"]), ("all", rows["test"]), fit))


# --------------------------------------------------------------------------- protocol results


def tidy_rows(data: str, method: str, feature: str, task: str, seed: int, result: ProbeResult) -> list[dict[str, Any]]:
    """Tidy rows of one result (selected hyper-parameters get the metric prefix ``selected_``)."""
    rows = [dict(data=data, method=method, feature=feature, task=task, metric=m, seed=seed, value=float(v)) for m, v in result.metrics.items()]
    rows += [dict(data=data, method=method, feature=feature, task=task, metric=f"selected_{m}", seed=seed, value=float(v))
             for m, v in result.selected.items()]
    return rows


def per_class_accuracies(pred: Tensor, target: Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """``accuracy``, ``mean_class_accuracy`` and ``acc_<class>`` per class (NaN for a class absent from ``target``)."""
    metrics = class_accuracies(pred, target, len(class_names))
    correct = (pred == target).float()
    for c, name in enumerate(class_names):
        metrics[f"acc_{name}"] = correct[target == c].mean().item() if bool((target == c).any()) else float("nan")
    return metrics


def per_class_probe(train: Split, val: Split, test: Split, class_names: Sequence[str], config: ProbeConfig) -> ProbeResult:
    """Softmax probe on standardised features, L2 chosen on ``val`` (:func:`pclkit.probes.select_classifier`); per-class accuracy on ``test``."""
    chosen = select_classifier(train, val, len(class_names), config)
    metrics = per_class_accuracies(chosen.predict(test.x), test.y.long(), class_names)
    return ProbeResult(metrics, {"l2": chosen.l2, "val_accuracy": chosen.val_accuracy})


def _splits(x: Mapping[str, Tensor], y: Mapping[str, Tensor], plan: Plan) -> tuple[Split, Split, Split]:
    return tuple(Split(x[part][rows], y[part][rows]) for part, rows in (plan.train, plan.val, plan.test))  # type: ignore[return-value]


def classification_results(x: Mapping[str, Tensor], y: Mapping[str, Tensor], plan: Plan, class_names: Sequence[str],
                           task: str, config: ProbeConfig) -> list[tuple[str, ProbeResult]]:
    """``task``: linear probe (per-class accuracy); ``task_knn``: weighted kNN from the training rows (k, T of ``config``)."""
    train, val, test = _splits(x, y, plan)
    return [(task, per_class_probe(train, val, test, class_names, config)),
            (f"{task}_knn", knn_probe(train, test, len(class_names), config))]


def _far_name(far: float) -> str:
    mantissa, exponent = f"{far:.0e}".split("e")
    return f"tar_far_{mantissa}e{int(exponent)}"


def roc_metrics(scores: Tensor, same: Tensor, fars: Sequence[float] = TAR_FARS) -> dict[str, float]:
    """``auc`` (ROC-AUC) and ``tar_far_<far>``: the highest true-accept rate at a false-accept rate <= ``far``.

    ``scores (M,)`` similarities (higher = same), ``same (M,)`` bool; the ROC
    is ``sklearn.metrics.roc_curve`` over all pairs (threshold-free, so no fold
    split is needed).
    """
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, _ = roc_curve(same.numpy().astype(np.int64), scores.double().numpy(), drop_intermediate=False)
    metrics = {"auc": float(auc(fpr, tpr))}
    for far in fars:
        metrics[_far_name(far)] = float(tpr[fpr <= far].max())
    return metrics


def verification_results(x: Tensor, pairs: Pairs) -> ProbeResult:
    """Cosine-similarity verification: k-fold accuracy (threshold from the other folds), fold std, ROC-AUC, TAR@FAR.

    ``x (N, D)`` features of the distinct images; ``pairs`` index into them.
    ``accuracy_fold_std`` is the population std over folds (ddof = 0, as LFW
    evaluation code usually reports it).
    """
    z = F.normalize(x.float(), dim=1)
    scores = (z[pairs.left] * z[pairs.right]).sum(1)
    result = verification_accuracy(scores, pairs.same, pairs.fold)
    result.metrics.update(roc_metrics(scores, pairs.same))
    result.metrics["n_folds"] = float(len(torch.unique(pairs.fold)))
    return result


def _fold_mean(results: Sequence[ProbeResult], au_names: Sequence[str]) -> ProbeResult:
    """Per-AU F1 averaged over folds (NaN-aware); ``f1_mean`` = mean of those; selections kept per fold."""
    metrics = {}
    for name in au_names:
        values = np.array([r.metrics[f"f1_{name}"] for r in results], dtype=np.float64)
        metrics[f"f1_{name}"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    scored = [v for v in metrics.values() if np.isfinite(v)]
    metrics["f1_mean"] = float(np.mean(scored)) if scored else float("nan")
    metrics["n_aus_scored"] = float(len(scored))
    selected = {f"fold{k}_{key}": v for k, r in enumerate(results) for key, v in r.selected.items()}
    return ProbeResult(metrics, selected)


def disfa_probe_config(config: ProbeConfig) -> ProbeConfig:
    """``config`` with the AU threshold moved to raw DISFA intensities (0..5): 0.4 of the [0, 1] scale = level 2."""
    from dataclasses import replace

    from pclkit.data.real import DISFA_MAX_INTENSITY

    return replace(config, au_intensity_threshold=round(config.au_intensity_threshold * DISFA_MAX_INTENSITY, 6))


# --------------------------------------------------------------------------- per-benchmark evaluation


def _classification_rows(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig, seeds: Sequence[int],
                         plan_of: Callable[[Prepared, int, EvalConfig], Plan], label: str, task: str) -> list[dict[str, Any]]:
    """Linear probe + kNN of every source's features for each seed's :class:`Plan` -> rows."""
    rows: list[dict[str, Any]] = []
    y = {name: part.labels[label] for name, part in prepared.parts.items()}
    for source in _progress(sources, prepared.data, cfg):
        for seed in seeds:
            plan = plan_of(prepared, seed, cfg)
            feats = source.features(prepared.parts, fit_rows=plan.fit)
            with torch_threads(cfg.probe.solver_threads):
                for name, x in feats.items():
                    for task_name, result in classification_results(x, y, plan, prepared.class_names, task, cfg.probe):
                        rows += tidy_rows(prepared.data, source.method, name, task_name, seed, result)
    return rows


def _classification_chance(prepared: Prepared, cfg: EvalConfig, seeds: Sequence[int],
                           plan_of: Callable[[Prepared, int, EvalConfig], Plan], label: str, task: str) -> list[dict[str, Any]]:
    """Majority class of each seed's training rows, scored on its test rows."""
    rows = []
    for seed in seeds:
        plan = plan_of(prepared, seed, cfg)
        train_y = prepared.parts[plan.train[0]].labels[label][plan.train[1]]
        test_y = prepared.parts[plan.test[0]].labels[label][plan.test[1]]
        guess = torch.full_like(test_y, int(torch.bincount(train_y, minlength=len(prepared.class_names)).argmax()))
        rows += tidy_rows(prepared.data, CHANCE, CHANCE, task, seed, ProbeResult(per_class_accuracies(guess, test_y, prepared.class_names)))
    return rows


def _progress(sources: Sequence[Any], data: str, cfg: EvalConfig) -> Iterable[Any]:
    return tqdm(sources, desc=f"evaluate on {data}", disable=not cfg.progress)


def evaluate_rafdb(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """RAF-DB: 7-class expression (``expression``, ``expression_knn``) per seed; validation carved from the train list."""
    seeds = range(cfg.seeds)
    rows = _classification_rows(sources, prepared, cfg, seeds, rafdb_plan, "expression", "expression")
    return rows + (_classification_chance(prepared, cfg, seeds, rafdb_plan, "expression", "expression") if cfg.baselines else [])


def evaluate_fer2013(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """FER-2013: Training -> PublicTest (validation) -> PrivateTest; fixed splits, so one run (seed 0)."""
    rows = _classification_rows(sources, prepared, cfg, [0], fer2013_plan, "expression", "expression")
    return rows + (_classification_chance(prepared, cfg, [0], fer2013_plan, "expression", "expression") if cfg.baselines else [])


def evaluate_folder(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """Class folder: ``classification`` (linear) and ``classification_knn`` on a stratified split drawn per seed."""
    seeds = range(cfg.seeds)
    rows = _classification_rows(sources, prepared, cfg, seeds, folder_plan, "label", "classification")
    return rows + (_classification_chance(prepared, cfg, seeds, folder_plan, "label", "classification") if cfg.baselines else [])


def evaluate_pairs(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """LFW / CPLFW ``verification``: 10-fold accuracy ± fold std, ROC-AUC, TAR@FAR (deterministic: seed 0).

    The pixel baseline's PCA is fitted on (up to :data:`PIXEL_FIT_MAX` of) the
    pair images themselves: it uses no labels, and the list has no other images.
    """
    pairs: Pairs = prepared.extra["pairs"]
    fit = _capped({"pairs": torch.arange(len(prepared.parts["pairs"]))}, prepared.data)
    rows: list[dict[str, Any]] = []
    for source in _progress(sources, prepared.data, cfg):
        for name, x in source.features(prepared.parts, fit_rows=fit).items():
            rows += tidy_rows(prepared.data, source.method, name, "verification", 0, verification_results(x["pairs"], pairs))
    if cfg.baselines:
        p_same = float(pairs.same.float().mean())
        chance = {"accuracy": max(p_same, 1 - p_same), "auc": 0.5, **{_far_name(f): f for f in TAR_FARS}}
        rows += tidy_rows(prepared.data, CHANCE, CHANCE, "verification", 0, ProbeResult(chance))
    return rows


evaluate_lfw = evaluate_pairs
evaluate_cplfw = evaluate_pairs


def evaluate_disfa(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """DISFA ``au``: 8 AUs at intensity >= 2, subject-exclusive 3-fold, F1 per AU and mean, per seed."""
    from pclkit.data.real import DISFA_AUS

    names = tuple(f"AU{au}" for au in DISFA_AUS)
    probe = disfa_probe_config(cfg.probe)
    y = prepared.parts["all"].labels["aus_raw"].float()
    n_folds = len(prepared.extra["folds"])
    plans = {(fold, seed): disfa_plan(prepared, fold, seed, cfg) for fold in range(n_folds) for seed in range(cfg.seeds)}
    rows: list[dict[str, Any]] = []
    for source in _progress(sources, prepared.data, cfg):
        fold_results: dict[tuple[str, int], list[ProbeResult]] = {}
        for fold in range(n_folds):  # folds outermost: a fitted baseline (pixel PCA) is refitted once per fold
            feats = source.features(prepared.parts, fit_rows=plans[(fold, 0)].fit)
            with torch_threads(cfg.probe.solver_threads):
                for name, x in feats.items():
                    for seed in range(cfg.seeds):
                        plan = plans[(fold, seed)]
                        result = au_detection_probe(*_splits({"all": x["all"]}, {"all": y}, plan), names, probe)
                        fold_results.setdefault((name, seed), []).append(result)
        for (name, seed), results in fold_results.items():
            rows += tidy_rows("disfa", source.method, name, "au", seed, _fold_mean(results, names))
    if cfg.baselines:
        for seed in range(cfg.seeds):
            results = []
            for fold in range(n_folds):
                present = y[plans[(fold, seed)].test[1]] >= probe.au_intensity_threshold
                f1 = {f"f1_{n}": binary_f1(torch.ones(len(present), dtype=torch.bool), present[:, a]) for a, n in enumerate(names)}
                results.append(ProbeResult(f1))
            rows += tidy_rows("disfa", CHANCE, CHANCE, "au", seed, _fold_mean(results, names))
    return rows


def evaluate_aflw2000(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """300W-LP -> AFLW2000 ``head_pose``: ridge regression, lambda chosen on held-out 300W-LP; MAE yaw/pitch/roll, per seed."""
    y = {part: prepared.parts[part].labels["pose"].float() for part in ("train", "test")}
    rows: list[dict[str, Any]] = []
    for source in _progress(sources, prepared.data, cfg):
        for seed in range(cfg.seeds):
            plan = aflw2000_plan(prepared, seed, cfg)
            feats = source.features(prepared.parts, fit_rows=plan.fit)
            with torch_threads(cfg.probe.solver_threads):
                for name, x in feats.items():
                    result = pose_regression_probe(*_splits(x, y, plan), config=cfg.probe)
                    rows += tidy_rows("aflw2000", source.method, name, "head_pose", seed, result)
    if cfg.baselines:
        for seed in range(cfg.seeds):
            plan = aflw2000_plan(prepared, seed, cfg)
            guess = y["train"][plan.train[1]].mean(0)
            mae = (y["test"] - guess).abs().mean(0)
            metrics = {f"mae_{n}": v.item() for n, v in zip(("yaw", "pitch", "roll"), mae)} | {"mae_mean": mae.mean().item()}
            rows += tidy_rows("aflw2000", CHANCE, CHANCE, "head_pose", seed, ProbeResult(metrics))
    return rows


#: benchmark -> (prepare, evaluate)
BENCHMARKS: dict[str, tuple[Callable[..., Prepared], Callable[..., list[dict[str, Any]]]]] = {
    "rafdb": (prepare_rafdb, evaluate_rafdb),
    "fer2013": (prepare_fer2013, evaluate_fer2013),
    "lfw": (prepare_pairs, evaluate_lfw),
    "cplfw": (prepare_pairs, evaluate_cplfw),
    "disfa": (prepare_disfa, evaluate_disfa),
    "aflw2000": (prepare_aflw2000, evaluate_aflw2000),
    "folder": (prepare_folder, evaluate_folder),
}


def prepare(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """Index and verify benchmark ``inputs.data`` at ``size`` px (labels now, images on demand)."""
    return BENCHMARKS[inputs.data][0](inputs, size, progress)


def info_rows(prepared: Prepared) -> list[dict[str, Any]]:
    """The data description (counts) as rows of method :data:`DATA_INFO`, seed 0."""
    return [dict(data=prepared.data, method=DATA_INFO, feature="-", task="dataset", metric=k, seed=0, value=float(v))
            for k, v in prepared.info.items()]


def evaluate_real(sources: Sequence[Any], cfg: EvalConfig, size: int, inputs: Inputs | None = None) -> list[dict[str, Any]]:
    """Run benchmark ``cfg.data`` for every feature source -> tidy rows (plus ``dataset info`` rows).

    ``sources`` are :class:`pclkit.features.EncoderSource` / ``PixelSource``
    objects (anything with ``method`` and ``features(parts, fit_rows)``).
    """
    inputs = inputs or locate_inputs(cfg.data, cfg.root, cfg.train_root, cfg.pairs)
    prepared = prepare(inputs, size, cfg.progress)
    check_plans(prepared, cfg)
    print(f"{cfg.data}: {describe_info(prepared.data, prepared.info)}")
    return info_rows(prepared) + BENCHMARKS[cfg.data][1](sources, prepared, cfg)


def check_plans(prepared: Prepared, cfg: EvalConfig) -> None:
    """Draw every seed's (and fold's) splits once, so an impossible one fails before any feature is computed."""
    seeds = range(cfg.seeds)
    if prepared.data == "disfa":
        for fold in range(len(prepared.extra["folds"])):
            for seed in seeds:
                disfa_plan(prepared, fold, seed, cfg)
        return
    planner = {"rafdb": rafdb_plan, "fer2013": fer2013_plan, "folder": folder_plan, "aflw2000": aflw2000_plan}.get(prepared.data)
    if planner is not None:
        for seed in seeds:
            planner(prepared, seed, cfg)


# --------------------------------------------------------------------------- tables


def _percent(task: str, metric: str, header: str, higher_is_better: bool | None = True) -> Column:
    return Column(task, metric, header, scale=100.0, digits=1, higher_is_better=higher_is_better)


def _degrees(task: str, metric: str, header: str) -> Column:
    return Column(task, metric, header, scale=1.0, digits=2, higher_is_better=False)


_EXPRESSION = (_percent("expression", "accuracy", "Acc ↑"), _percent("expression", "mean_class_accuracy", "Mean class acc ↑"),
               _percent("expression_knn", "accuracy", "kNN acc ↑"))
_VERIFICATION = (_percent("verification", "accuracy", "Acc ↑"),
                 _percent("verification", "accuracy_fold_std", "± over folds", higher_is_better=None),
                 _percent("verification", "auc", "ROC-AUC ↑"), _percent("verification", _far_name(TAR_FARS[0]), "TAR@FAR=1e-3 ↑"))
#: the main columns of each benchmark's tables
REAL_COLUMNS: dict[str, tuple[Column, ...]] = {
    "rafdb": _EXPRESSION,
    "fer2013": _EXPRESSION,
    "lfw": _VERIFICATION,
    "cplfw": _VERIFICATION,
    "disfa": tuple(_percent("au", f"f1_AU{au}", f"AU{au}") for au in (1, 2, 4, 6, 9, 12, 25, 26)) + (_percent("au", "f1_mean", "Mean F1 ↑"),),
    "aflw2000": (_degrees("head_pose", "mae_yaw", "Yaw ↓"), _degrees("head_pose", "mae_pitch", "Pitch ↓"),
                 _degrees("head_pose", "mae_roll", "Roll ↓"), _degrees("head_pose", "mae_mean", "MAE ↓")),
    "folder": (_percent("classification", "accuracy", "Acc ↑"), _percent("classification", "mean_class_accuracy", "Mean class acc ↑"),
               _percent("classification_knn", "accuracy", "kNN acc ↑")),
}
_TITLES = {"rafdb": "RAF-DB expression, 7 classes, test list", "fer2013": "FER-2013 expression, 7 classes, PrivateTest",
           "lfw": "LFW verification, 10-fold", "cplfw": "CPLFW verification, 10-fold",
           "disfa": "DISFA AU detection F1, subject-exclusive 3-fold", "aflw2000": "300W-LP -> AFLW2000 head-pose MAE (°)",
           "folder": "classification of a class folder"}
_INFO_TEXT = {
    "n_train": "{:.0f} train", "n_val": "{:.0f} validation", "n_test": "{:.0f} test", "n_pairs": "{:.0f} pairs",
    "n_same": "{:.0f} same-person", "n_images": "{:.0f} images", "n_folds": "{:.0f} folds", "n_frames": "{:.0f} frames",
    "n_subjects": "{:.0f} subjects", "n_classes": "{:.0f} classes",
    "n_train_dropped": "{:.0f} 300W-LP samples dropped (an angle outside ±99°)",
    "n_test_dropped": "{:.0f} AFLW2000 samples dropped (an angle outside ±99°)",
    "n_classes_dropped": "{:.0f} classes with < 3 images left out", "n_images_dropped": "{:.0f} images of those classes",
    "n_skipped": "{:.0f} unusable items skipped",
}


def describe_info(data: str, info: Mapping[str, float]) -> str:
    """One line of counts, e.g. ``"12271 train, 3068 test, 0 unusable items skipped"``."""
    parts = [_INFO_TEXT[k].format(v) for k, v in info.items() if k in _INFO_TEXT]
    if data == "disfa":
        parts.append("standard 3-fold partition" if info.get("standard_folds") else "subjects dealt round-robin into 3 folds")
    return ", ".join(parts)


def real_note(rows: Sequence[Mapping[str, Any]], data: str, seeds_note: str) -> str:
    """Table footer: what ± means for this benchmark, and the data counts."""
    info = {r["metric"]: r["value"] for r in rows if r["method"] == DATA_INFO and r["data"] == data}
    if data in ("lfw", "cplfw"):
        spread = "Deterministic (cosine similarity, fixed pair list): one run; '± over folds' is the std over the folds."
    elif data == "fer2013":
        spread = "Official splits and deterministic probes: one run (seed 0)."
    else:
        spread = seeds_note
    return f"{spread} Data: {describe_info(data, info)}." if info else spread


def _class_columns(rows: Sequence[Mapping[str, Any]], data: str, task: str) -> tuple[Column, ...]:
    metrics = dict.fromkeys(r["metric"] for r in rows if r["data"] == data and r["task"] == task and str(r["metric"]).startswith("acc_"))
    return tuple(_percent(task, m, m[4:]) for m in metrics)


def real_table_specs(rows: Sequence[Mapping[str, Any]], data: str, main_lines: tuple[tuple[str, str], ...],
                     feature_lines: tuple[tuple[str, str], ...], seeds_note: str) -> dict[str, TableSpec]:
    """``main`` (methods on the main feature and baselines), ``features`` (per feature), ``per_class`` (classification)."""
    columns = REAL_COLUMNS[data]
    note = real_note(rows, data, seeds_note)
    title = _TITLES[data]
    specs = {"main": TableSpec(f"{data}: linear evaluation, {title}", columns, main_lines, "method", note),
             "features": TableSpec(f"{data}: feature comparison", columns, feature_lines, "both", note)}
    task = {"rafdb": "expression", "fer2013": "expression", "folder": "classification"}.get(data)
    if task:
        lines = tuple(line for line in dict.fromkeys(main_lines + feature_lines) if line[0] != CHANCE)  # a constant guess: 100 % on one class
        specs["per_class"] = TableSpec(f"{data}: accuracy per class (linear probe)", _class_columns(rows, data, task),
                                       lines, "both", note)
    return specs
