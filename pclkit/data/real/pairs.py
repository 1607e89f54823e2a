"""``PairList``: LFW ``pairs.txt`` and CPLFW verification pair lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pclkit.data.imageio import ImageDecodeError, check_mode, load_image, probe_image
from pclkit.data.itemlist import ItemList, require_choice, require_dir, require_file
from pclkit.data.real._common import _int_or_none, _lines

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
