"""Expression datasets: ``RAFDB`` (RAF-DB basic) and ``FER2013`` (the FER-2013 CSV)."""

from __future__ import annotations

import csv
import os
import re

import numpy as np
import torch

from pclkit.data.imageio import square_tensor
from pclkit.data.itemlist import ImageFiles, ItemList, require_choice, require_dir, require_file
from pclkit.data.real._common import _int_or_none, _lines

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
