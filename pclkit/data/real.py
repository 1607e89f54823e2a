"""Loaders for real face data: a folder of crops, CMU faces, RAF-DB, FER-2013,
LFW/CPLFW pair lists, FSA-Net pose ``.npz`` files and DISFA.

Every loader returns ``(image, labels)`` like SynthFaces (docs/architecture.md):
``image`` float32 ``(3, S, S)`` in [0, 1] RGB, ``labels`` a dict with ``index``;
``PairList`` alone returns ``(image_a, image_b, labels)`` because its items are
pairs. Images are centre-square-cropped then resized to ``size`` (default 64;
``None`` keeps the cropped square at native resolution), see
``pclkit.data.imageio``.

Everything is indexed and verified at construction time. Unusable input (corrupt,
truncated, empty or non-image files, wrong sizes, malformed or out-of-range
label lines, label lines without an image) is skipped, listed in
``dataset.skipped`` as ``(source, reason)`` and announced by one
``SkippedItemsWarning``. A missing root or list file, an unknown split and a
dataset with no usable item raise an error naming the path instead. File
loaders take ``check="decode"`` (decode every file once: catches truncation) or
``check="header"`` (fast, for very large folders; a truncated file then raises
``ImageDecodeError`` naming it when read).
"""

from __future__ import annotations

import csv
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from pclkit.data.imageio import ImageDecodeError, check_mode, is_image_name, load_image, probe_image, square_tensor
from pclkit.data.itemlist import (
    ImageFiles,
    ItemList,
    SkippedItemsWarning,
    require_choice,
    require_dir,
    require_file,
)

__all__ = [
    "CMUFaces",
    "DISFA",
    "FER2013",
    "FaceFolder",
    "ImageDecodeError",
    "PairList",
    "PoseNPZ",
    "RAFDB",
    "SkippedItemsWarning",
]


def _visible(name: str) -> bool:
    # dot-files are editor/OS litter (".DS_Store", macOS "._x.jpg"), never data
    return not name.startswith(".")


def _subfolders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and _visible(entry.name))


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    """``("<path>:<line number>", stripped text)`` for every non-blank line."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if text:
                yield f"{path}:{number}", text


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- folder of crops


class FaceFolder(ImageFiles):
    """Every image below ``root`` (recursive; e.g. VoxCeleb-style frame folders).

    Files ending in .jpg .jpeg .png .pgm .bmp (any case) are images; other files
    and dot-files/dot-folders are ignored; symlinked folders are not followed.
    Items are sorted by relative path (compared folder by folder). Labels:
    ``index``, plus ``identity`` (the first-level sub-folder, classes sorted by
    name) when ``labels_from_subfolders``; images directly in ``root`` are then
    skipped. With ``size=None`` images keep their own (square-cropped) sizes,
    so they only batch if they all share one.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int | None = 64,
        labels_from_subfolders: bool = False,
        *,
        check: str = "decode",
    ) -> None:
        super().__init__(size, check)
        self.root = require_dir(root, "face folder")
        self.labels_from_subfolders = labels_from_subfolders
        files = sorted(self._image_files(), key=lambda rel: rel.parts)
        identity_of: dict[str, int] = {}
        if labels_from_subfolders:
            names = sorted({rel.parts[0] for rel in files if len(rel.parts) > 1})
            self.class_names = {"identity": names}
            identity_of = {name: i for i, name in enumerate(names)}
        for rel in files:
            labels: dict[str, Any] = {}
            if labels_from_subfolders:
                if len(rel.parts) == 1:
                    self._skip(self.root / rel, "not inside an identity sub-folder")
                    continue
                labels["identity"] = identity_of[rel.parts[0]]
            self._admit(self.root / rel, labels)
        self._finish(str(self.root))

    def _image_files(self) -> Iterator[Path]:
        """Image paths relative to ``root``."""

        def unreadable(error: OSError) -> None:
            self._skip(error.filename, f"cannot list folder: {error.strerror}")

        for folder, subfolders, files in os.walk(self.root, onerror=unreadable):
            subfolders[:] = sorted(name for name in subfolders if _visible(name))
            for name in sorted(files):
                if _visible(name) and is_image_name(name):
                    yield Path(folder, name).relative_to(self.root)


# --------------------------------------------------------------------------- CMU faces

CMU_POSES = ("straight", "left", "right", "up")
CMU_EXPRESSIONS = ("neutral", "happy", "sad", "angry")
CMU_EYES = ("open", "sunglasses")
#: native (width, height) of each CMU scale
CMU_SIZES = {1: (128, 120), 2: (64, 60), 4: (32, 30)}
_CMU_NAME = re.compile(
    r"^(?P<user>[^_]+)_(?P<pose>[^_]+)_(?P<expression>[^_]+)_(?P<eyes>[^_.]+)(?:_(?P<scale>\d+))?\.(?P<ext>pgm|bad)$"
)


class CMUFaces(ImageFiles):
    """CMU Face Images (UCI; T. Mitchell): ``<root>/<user>/<user>_<pose>_<expression>_<eyes>[_<scale>].pgm``.

    ``scale`` 1 (128x120, no suffix), 2 (64x60) or 4 (32x30). Labels:
    ``identity`` (user, sorted: 20 classes), ``pose`` (int: straight, left,
    right, up), ``expression`` (int: neutral, happy, sad, angry),
    ``sunglasses`` (0 open eyes, 1 sunglasses), ``index``.

    Images are made square by cropping the centre (64x60 -> 60x60, losing 2
    background columns each side), then resized to ``size`` (default 64).
    ``*.bad`` files of the requested scale (corrupt in the original
    distribution) are skipped and reported; files of other scales are ignored.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        scale: int = 2,
        size: int | None = 64,
        *,
        check: str = "decode",
    ) -> None:
        super().__init__(size, check)
        self.root = require_dir(root, "CMU faces folder")
        self.scale = require_choice(scale, tuple(CMU_SIZES), "CMU scale")
        parsed = self._parse_names()
        users = sorted({labels["user"] for _, labels in parsed})
        self.class_names = {
            "identity": users,
            "pose": list(CMU_POSES),
            "expression": list(CMU_EXPRESSIONS),
            "sunglasses": list(CMU_EYES),
        }
        for path, fields in parsed:
            if int(fields["scale"] or 1) != self.scale:
                continue
            if fields["ext"] == "bad":
                self._skip(path, "marked corrupt in the original distribution (.bad)")
                continue
            labels = {
                "identity": users.index(fields["user"]),
                "pose": CMU_POSES.index(fields["pose"]),
                "expression": CMU_EXPRESSIONS.index(fields["expression"]),
                "sunglasses": CMU_EYES.index(fields["eyes"]),
            }
            self._admit(path, labels, expected_size=CMU_SIZES[self.scale])
        self._finish(f"{self.root} at scale {self.scale}")

    def _parse_names(self) -> list[tuple[Path, dict[str, str]]]:
        """``(path, name fields)`` of every well-formed file in the user folders (all scales)."""
        parsed = []
        for folder in _subfolders(self.root):
            for name in sorted(os.listdir(self.root / folder)):
                path = self.root / folder / name
                if not _visible(name) or not path.is_file():
                    continue
                fields, problem = _parse_cmu_name(name, folder)
                if problem:
                    self._skip(path, problem)
                else:
                    parsed.append((path, fields))
        return parsed


def _parse_cmu_name(name: str, folder: str) -> tuple[dict[str, str], str]:
    """Return ``(fields, "")`` for a well-formed CMU file name, else ``({}, problem)``."""
    match = _CMU_NAME.match(name)
    if match is None:
        return {}, "not a CMU face file name (<user>_<pose>_<expression>_<eyes>[_<scale>].pgm)"
    fields = match.groupdict()
    for key, allowed in (("pose", CMU_POSES), ("expression", CMU_EXPRESSIONS), ("eyes", CMU_EYES)):
        if fields[key] not in allowed:
            return {}, f"unknown {key} {fields[key]!r}; expected one of {allowed}"
    if fields["scale"] is not None and int(fields["scale"]) not in (2, 4):
        return {}, f"unknown scale suffix _{fields['scale']}; expected none, _2 or _4"
    if fields["user"] != folder:
        return {}, f"user {fields['user']!r} in the file name differs from its folder {folder!r}"
    return fields, ""


# --------------------------------------------------------------------------- RAF-DB

RAF_EXPRESSIONS = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
RAF_SPLITS = ("train", "test")
_RAF_NAME = re.compile(r"^(train|test)_\d+\.(?:jpg|jpeg|png)$")


class RAFDB(ImageFiles):
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/<name>_aligned.jpg``.

    List lines are ``train_00001.jpg 5`` with labels 1..7 (surprise, fear,
    disgust, happiness, sadness, anger, neutral); ``expression`` is the 0-based
    label with ``class_names`` in that RAF order (not the SynthFaces order).
    ``aligned=False`` reads ``Image/original/<name>`` instead.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: int | None = 64,
        *,
        aligned: bool = True,
        check: str = "decode",
    ) -> None:
        super().__init__(size, check)
        self.root = require_dir(root, "RAF-DB folder")
        self.split = require_choice(split, RAF_SPLITS, "RAF-DB split")
        list_file = require_file(self.root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label list")
        image_dir = require_dir(self.root / "Image" / ("aligned" if aligned else "original"), "RAF-DB image folder")
        self.class_names = {"expression": list(RAF_EXPRESSIONS)}
        seen: set[str] = set()
        for source, text in _lines(list_file):
            fields = text.split()
            name_match = _RAF_NAME.match(fields[0]) if len(fields) == 2 else None
            if name_match is None:
                self._skip(source, f"malformed line {text!r}; expected '<train|test>_<number>.jpg <label 1..7>'")
                continue
            if name_match.group(1) != self.split:
                continue
            name, label = fields
            stem, extension = os.path.splitext(name)
            number = _int_or_none(label)
            if number is None or not 1 <= number <= len(RAF_EXPRESSIONS):
                self._skip(source, f"label {label!r} is not an integer in 1..7")
                continue
            if name in seen:
                self._skip(source, f"duplicate entry for {name}")
                continue
            seen.add(name)
            path = image_dir / (f"{stem}_aligned{extension}" if aligned else name)
            if not path.is_file():
                self._skip(source, f"missing image {path}")
                continue
            self._admit(path, {"expression": number - 1})
        self._finish(f"{list_file} ({self.split} split)")


# --------------------------------------------------------------------------- FER-2013

FER_EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_USAGES = ("Training", "PublicTest", "PrivateTest")
FER_SIDE = 48


class FER2013(ItemList):
    """FER-2013 CSV (header ``emotion,pixels,Usage``): 48x48 grayscale, 2304 space-separated ints.

    ``expression`` is ``emotion`` (0..6: angry, disgust, fear, happy, sad,
    surprise, neutral). ``usage`` selects rows (``Training``, ``PublicTest``,
    ``PrivateTest``); ``usage=None`` takes every row and does not need a
    ``Usage`` column (e.g. the challenge's ``train.csv``). Pixels are parsed
    and checked at construction and held in memory (uint8, 2.3 KB per image).
    """

    def __init__(self, csv_path: str | os.PathLike, usage: str | None = "Training", size: int | None = 64) -> None:
        super().__init__(size)
        self.csv_path = require_file(csv_path, "FER-2013 CSV")
        self.usage = usage if usage is None else require_choice(usage, FER_USAGES, "FER-2013 usage")
        self.class_names = {"expression": list(FER_EXPRESSIONS)}
        faces: list[np.ndarray] = []
        with open(self.csv_path, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.reader(handle)
            columns = self._columns(next(reader, None))
            for row in reader:
                source = f"{self.csv_path}:{reader.line_num}"
                if not any(cell.strip() for cell in row):
                    continue
                parsed = self._parse_row(row, columns, source)
                if parsed is not None:
                    faces.append(parsed[0])
                    self._labels.append({"expression": parsed[1]})
        self._pixels = np.stack(faces) if faces else np.zeros((0, FER_SIDE, FER_SIDE), np.uint8)
        self._finish(f"{self.csv_path} (usage {self.usage or 'all'})")

    def _columns(self, header: list[str] | None) -> dict[str, int]:
        """Column positions of ``emotion``, ``pixels`` (and ``Usage``), from the header row."""
        if header is None:
            raise ValueError(f"FER-2013 CSV is empty: {self.csv_path}")
        position = {name.strip(): i for i, name in enumerate(header)}
        needed = ["emotion", "pixels"] + (["Usage"] if self.usage is not None else [])
        missing = [name for name in needed if name not in position]
        if missing:
            raise ValueError(f"FER-2013 CSV {self.csv_path} lacks column(s) {missing}; header is {header}")
        return {"n": len(header), **{name: position[name] for name in needed}}

    def _parse_row(self, row: list[str], columns: dict[str, int], source: str) -> tuple[np.ndarray, int] | None:
        """``(pixels uint8 (48, 48), expression)`` of a row of the wanted usage; None otherwise."""
        if len(row) != columns["n"]:
            self._skip(source, f"{len(row)} fields, expected {columns['n']}")
            return None
        if self.usage is not None:
            usage = row[columns["Usage"]].strip()
            if usage not in FER_USAGES:
                self._skip(source, f"unknown Usage {usage!r}; expected one of {FER_USAGES}")
                return None
            if usage != self.usage:
                return None
        emotion = _int_or_none(row[columns["emotion"]].strip())
        if emotion is None or not 0 <= emotion < len(FER_EXPRESSIONS):
            self._skip(source, f"emotion {row[columns['emotion']]!r} is not an integer in 0..6")
            return None
        try:
            values = np.array(row[columns["pixels"]].split(), dtype=np.int64)
        except ValueError:
            self._skip(source, "pixels are not all integers")
            return None
        if values.size != FER_SIDE * FER_SIDE:
            self._skip(source, f"{values.size} pixels, expected {FER_SIDE * FER_SIDE} (48x48)")
            return None
        if values.min() < 0 or values.max() > 255:
            self._skip(source, "pixel values outside 0..255")
            return None
        return values.astype(np.uint8).reshape(FER_SIDE, FER_SIDE), emotion

    def _image(self, i: int) -> torch.Tensor:
        return square_tensor(self._pixels[i], self.size)


# --------------------------------------------------------------------------- LFW / CPLFW pairs

PAIR_FORMATS = ("lfw", "cplfw")
CPLFW_FOLDS = 10


class PairList(ItemList):
    """Verification pairs: LFW ``pairs.txt`` or a CPLFW ``pairs_CPLFW.txt`` list.

    Items are ``(image_a, image_b, labels)`` (not ``(image, labels)``: a pair
    has two images) with labels ``same`` (bool), ``fold`` (int) and ``index``;
    ``pairs[i]`` holds the two file paths. ``as_tensors`` does not apply.

    * ``fmt="lfw"``: first line ``<folds> <n>`` (pairs.txt: ``10 300``) or just
      ``<n>`` (pairsDevTrain/DevTest: one fold); then per fold ``n``
      same-person lines ``name idx1 idx2`` and ``n`` different-person lines
      ``name1 idx1 name2 idx2``; images ``root/<name>/<name>_<idx:04d>.jpg``.
      ``fold`` is the block the line sits in. A line count that contradicts the
      header is an error (folds would be wrong).
    * ``fmt="cplfw"``: no header; each pair is two consecutive lines
      ``<image path relative to root> <label>`` with the same label on both, 1
      same / 0 different; images ``root/<path>`` (the public ``images/``
      folder is flat). ``fold`` splits the pairs, in file order, into 10
      consecutive equal blocks (600 pairs each in the public list). An odd
      number of lines is an error (pairs would be misaligned).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        pairs_file: str | os.PathLike,
        fmt: str = "lfw",
        size: int | None = 64,
        *,
        check: str = "decode",
    ) -> None:
        super().__init__(size)
        self.root = require_dir(root, "pair image folder")
        self.pairs_file = require_file(pairs_file, "pair list")
        self.fmt = require_choice(fmt, PAIR_FORMATS, "pair list format")
        self.check = check_mode(check)
        self.class_names = {"same": ["different", "same"]}
        self.pairs: list[tuple[str, str]] = []
        candidates = self._parse_lfw() if fmt == "lfw" else self._parse_cplfw()
        problems: dict[Path, str] = {}  # each image is verified once, however many pairs use it
        for source, path_a, path_b, same, fold in candidates:
            problem = self._image_problem(path_a, problems) or self._image_problem(path_b, problems)
            if problem:
                self._skip(source, problem)
                continue
            self.pairs.append((str(path_a), str(path_b)))
            self._labels.append({"same": same, "fold": fold})
        self._finish(str(self.pairs_file))

    def _image_problem(self, path: Path, problems: dict[Path, str]) -> str:
        """Empty string for a usable image, else why not (cached in ``problems``)."""
        if path not in problems:
            problems[path] = ""
            if not path.is_file():
                problems[path] = f"missing image {path}"
            else:
                try:
                    probe_image(path, self.check)
                except ImageDecodeError as error:
                    problems[path] = str(error)
        return problems[path]

    def _parse_lfw(self) -> list[tuple[str, Path, Path, bool, int]]:
        lines = list(_lines(self.pairs_file))
        if not lines:
            raise ValueError(f"LFW pair list is empty: {self.pairs_file}")
        header = [_int_or_none(token) for token in lines[0][1].split()]
        if len(header) not in (1, 2) or None in header or min(header) < 1:
            raise ValueError(
                f"{lines[0][0]}: LFW header must be '<folds> <pairs per class>' or '<pairs>', got {lines[0][1]!r}"
            )
        folds, per_class = header if len(header) == 2 else (1, header[0])
        body = lines[1:]
        if len(body) != folds * 2 * per_class:
            raise ValueError(
                f"{self.pairs_file}: header says {folds} fold(s) x {2 * per_class} pairs = "
                f"{folds * 2 * per_class} lines, found {len(body)}"
            )
        candidates = []
        for position, (source, text) in enumerate(body):
            fields = text.split()
            if len(fields) == 3:
                names, numbers = (fields[0], fields[0]), (fields[1], fields[2])
            elif len(fields) == 4:
                names, numbers = (fields[0], fields[2]), (fields[1], fields[3])
            else:
                self._skip(source, f"malformed line {text!r}; expected 'name i j' or 'name1 i name2 j'")
                continue
            indices = [_int_or_none(number) for number in numbers]
            if None in indices or min(indices) < 1:
                self._skip(source, f"image numbers {numbers} are not positive integers")
                continue
            path_a, path_b = (self.root / name / f"{name}_{index:04d}.jpg" for name, index in zip(names, indices))
            candidates.append((source, path_a, path_b, len(fields) == 3, position // (2 * per_class)))
        return candidates

    def _parse_cplfw(self) -> list[tuple[str, Path, Path, bool, int]]:
        lines = list(_lines(self.pairs_file))
        if not lines or len(lines) % 2:
            raise ValueError(
                f"{self.pairs_file}: CPLFW pair list needs an even, non-zero number of lines, found {len(lines)}"
            )
        n_pairs = len(lines) // 2
        candidates = []
        for pair in range(n_pairs):
            (source, first), (_, second) = lines[2 * pair], lines[2 * pair + 1]
            fields_a, fields_b = first.split(), second.split()
            if len(fields_a) != 2 or len(fields_b) != 2:
                self._skip(source, f"malformed pair {first!r} / {second!r}; expected '<image> <0|1>' on each line")
                continue
            if fields_a[1] != fields_b[1] or fields_a[1] not in ("0", "1"):
                self._skip(source, f"pair labels {fields_a[1]!r} / {fields_b[1]!r} must be equal and 0 or 1")
                continue
            fold = pair * CPLFW_FOLDS // n_pairs
            candidates.append((source, self.root / fields_a[0], self.root / fields_b[0], fields_a[1] == "1", fold))
        return candidates

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``(image_a, image_b, labels)``; images float32 ``(3, S, S)`` in [0, 1]."""
        i = self._position(index)
        path_a, path_b = self.pairs[i]
        return load_image(path_a, self.size), load_image(path_b, self.size), self.item_labels(i)


# --------------------------------------------------------------------------- FSA-Net pose npz


class PoseNPZ(ItemList):
    """300W-LP / AFLW2000 in FSA-Net's ``.npz`` layout.

    Arrays: ``image`` uint8 ``(N, H, W, 3)`` in **BGR** order (written by
    cv2; converted to RGB here) and ``pose`` ``(N, 3)`` = yaw, pitch, roll in
    degrees. Label ``pose`` is a float32 tensor ``(3,)`` (yaw, pitch, roll).
    By default samples with any angle outside ±99° are dropped, as FSA-Net's
    evaluation does (AFLW2000: 2000 -> 1969); ``max_angle=None`` keeps all.
    Dropped rows are listed in ``outside_range`` (not a warning: it is the
    protocol); rows with non-finite angles are skipped and warned about.
    ``rows[i]`` is the npz row of item ``i``. Arrays are held in memory.
    """

    def __init__(self, npz_path: str | os.PathLike, size: int | None = 64, max_angle: float | None = 99.0) -> None:
        super().__init__(size)
        self.npz_path = require_file(npz_path, "pose .npz")
        if max_angle is not None and not max_angle > 0:
            raise ValueError(f"max_angle must be positive or None, got {max_angle!r}")
        self.max_angle = max_angle
        self._images, poses = self._read_arrays()
        self.rows: list[int] = []
        self.outside_range: list[int] = []
        for row, angles in enumerate(poses):
            if not np.isfinite(angles).all():
                self._skip(f"{self.npz_path}[{row}]", f"non-finite pose {angles.tolist()}")
            elif max_angle is not None and np.abs(angles).max() > max_angle:
                self.outside_range.append(row)
            else:
                self.rows.append(row)
                self._labels.append({"pose": torch.tensor(angles, dtype=torch.float32)})
        self._finish(f"{self.npz_path} (max_angle {max_angle})")

    def _read_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``image`` uint8 (N, H, W, 3) BGR and ``pose`` float64 (N, 3), validated."""
        try:
            archive = np.load(self.npz_path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"cannot read pose .npz {self.npz_path}: {error}") from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{self.npz_path} holds a single array, not an .npz archive with 'image' and 'pose'")
        with archive:
            missing = [key for key in ("image", "pose") if key not in archive.files]
            if missing:
                raise ValueError(f"pose .npz {self.npz_path} lacks array(s) {missing}; it has {archive.files}")
            try:
                images, poses = archive["image"], archive["pose"]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
                raise ValueError(f"cannot read arrays of pose .npz {self.npz_path}: {error}") from error
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(f"{self.npz_path}: 'image' must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if poses.ndim != 2 or poses.shape[1] != 3 or not np.issubdtype(poses.dtype, np.number):
            raise ValueError(
                f"{self.npz_path}: 'pose' must be numeric (N, 3) yaw/pitch/roll, got {poses.dtype} {poses.shape}"
            )
        if len(images) != len(poses):
            raise ValueError(f"{self.npz_path}: {len(images)} images but {len(poses)} poses")
        return images, poses.astype(np.float64)

    def _image(self, i: int) -> torch.Tensor:
        return square_tensor(self._images[self.rows[i]][..., ::-1], self.size)  # BGR -> RGB


# --------------------------------------------------------------------------- DISFA

DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)
DISFA_MAX_INTENSITY = 5
_FRAME_NUMBER = re.compile(r"(\d+)$")


class DISFA(ImageFiles):
    """DISFA action-unit intensities over extracted video frames.

    Expected layout (``labels_dir`` and ``frames_dir`` are arguments)::

        root/ActionUnit_Labels/SN001/SN001_au1.txt    lines "<frame>,<intensity 0..5>"
        root/ActionUnit_Labels/SN001/SN001_au2.txt    ... one file per AU 1 2 4 6 9 12 25 26
        root/frames/SN001/<frame>.jpg|png             e.g. 00001.jpg or frame_1.png

    A frame file's number is the trailing integer of its name and must equal
    the label files' frame number (DISFA counts from 1). Labels: ``aus`` float
    ``(8,)`` = intensity / 5 in [0, 1] (order AU1 AU2 AU4 AU6 AU9 AU12 AU25
    AU26), ``aus_raw`` int64 ``(8,)`` intensities 0..5, ``identity`` (subject,
    sorted), ``index``. Frames lacking any of the 8 labels, label lines without
    a frame image, malformed, out-of-range or contradictory label lines are
    skipped and counted.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int | None = 64,
        *,
        labels_dir: str = "ActionUnit_Labels",
        frames_dir: str = "frames",
        check: str = "decode",
    ) -> None:
        super().__init__(size, check)
        self.root = require_dir(root, "DISFA folder")
        labels_root = require_dir(self.root / labels_dir, "DISFA label folder")
        frames_root = require_dir(self.root / frames_dir, "DISFA frames folder")
        subjects = _subfolders(labels_root)
        if not subjects:
            raise ValueError(f"DISFA label folder has no subject folders: {labels_root}")
        self.class_names = {"identity": subjects}
        for folder in sorted(set(_subfolders(frames_root)) - set(subjects)):
            self._skip(frames_root / folder, "frames of a subject without an AU label folder")
        for identity, subject in enumerate(subjects):
            if not (frames_root / subject).is_dir():
                self._skip(frames_root / subject, "no frames folder for this labelled subject")
                continue
            intensities = self._read_subject_labels(labels_root / subject, subject)
            frames = self._index_frames(frames_root / subject)
            self._add_subject(labels_root / subject, identity, intensities, frames)
        self._finish(str(self.root))

    def _add_subject(
        self, label_folder: Path, identity: int, intensities: dict[int, np.ndarray], frames: dict[int, Path]
    ) -> None:
        for frame in sorted(set(intensities) | set(frames)):
            path = frames.get(frame)
            if path is None:
                self._skip(f"{label_folder} frame {frame}", "AU labels but no frame image")
                continue
            raw = intensities.get(frame, np.full(len(DISFA_AUS), -1, dtype=np.int64))
            missing = [f"AU{au}" for au, value in zip(DISFA_AUS, raw) if value < 0]
            if missing:
                self._skip(path, f"no valid label for {' '.join(missing)}")
                continue
            labels = {
                "aus": torch.tensor(raw / DISFA_MAX_INTENSITY, dtype=torch.float32),
                "aus_raw": torch.tensor(raw, dtype=torch.int64),
                "identity": identity,
            }
            self._admit(path, labels)

    def _read_subject_labels(self, folder: Path, subject: str) -> dict[int, np.ndarray]:
        """frame -> int64 (8,) intensities; -1 where that AU has no valid label."""
        table: dict[int, np.ndarray] = {}
        for column, au in enumerate(DISFA_AUS):
            path = folder / f"{subject}_au{au}.txt"
            if not path.is_file():
                self._skip(path, f"missing AU{au} label file")
                continue
            for frame, value in self._read_au_file(path).items():
                table.setdefault(frame, np.full(len(DISFA_AUS), -1, dtype=np.int64))[column] = value
        return table

    def _read_au_file(self, path: Path) -> dict[int, int]:
        """frame -> intensity of one AU file; -1 for a frame whose lines contradict each other."""
        values: dict[int, int] = {}
        for source, text in _lines(path):
            fields = [field.strip() for field in text.split(",")]
            numbers = [_int_or_none(field) for field in fields]
            if len(fields) != 2 or None in numbers:
                self._skip(source, f"malformed line {text!r}; expected '<frame>,<intensity>'")
                continue
            frame, value = numbers
            if frame < 0 or not 0 <= value <= DISFA_MAX_INTENSITY:
                self._skip(source, f"frame {frame} or intensity {value} out of range (intensity 0..5)")
                continue
            if frame in values and values[frame] != value:
                self._skip(source, f"frame {frame} labelled twice with different intensities")
                values[frame] = -1  # never guess which line is right
                continue
            values[frame] = value
        return values

    def _index_frames(self, folder: Path) -> dict[int, Path]:
        """frame number -> image file of one subject; ambiguous numbers are skipped."""
        by_number: dict[int, list[Path]] = {}
        for name in sorted(os.listdir(folder)):
            path = folder / name
            if not (_visible(name) and is_image_name(name) and path.is_file()):
                continue
            match = _FRAME_NUMBER.search(path.stem)
            if match is None:
                self._skip(path, "no frame number at the end of the file name")
                continue
            by_number.setdefault(int(match.group(1)), []).append(path)
        frames = {}
        for number, paths in by_number.items():
            if len(paths) > 1:
                for path in paths:
                    self._skip(path, f"several files for frame {number}")
            else:
                frames[number] = paths[0]
        return frames
