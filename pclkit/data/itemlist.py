"""Shared machinery of the real-data loaders: indexed items, skip bookkeeping, one warning.

A loader indexes and validates everything at construction time, so nothing
fails in the middle of an epoch. Items it cannot use are recorded in
``dataset.skipped`` as ``(source, reason)`` pairs (``source`` is a file path
or ``"<file>:<line>"``) and announced by a single ``SkippedItemsWarning``.
"""

from __future__ import annotations

import operator
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pclkit.data.imageio import ImageDecodeError, check_mode, check_size, load_image, probe_image

#: how many skipped items a warning names before summarising the rest
WARN_NAMES = 10


class SkippedItemsWarning(UserWarning):
    """Some input was unusable and was skipped; ``dataset.skipped`` lists all of it."""


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming it."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found (expected a directory): {path}")
    return path


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found (expected a file): {path}")
    return path


def require_choice(value: Any, choices: tuple, name: str) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ValueError."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")
    return value


def summarise(skipped: list[tuple[str, str]], limit: int = WARN_NAMES) -> str:
    """``"src (reason); src (reason); ... and N more"`` for a warning or an error."""
    shown = "; ".join(f"{source} ({reason})" for source, reason in skipped[:limit])
    more = len(skipped) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


class ItemList(Dataset):
    """Base of the real-data loaders: per-item labels, ``class_names``, ``skipped``.

    Subclasses append to ``_labels`` (one dict per item, without ``index``),
    call ``_skip`` for unusable input, call ``_finish`` at the end of
    ``__init__`` and implement ``_image(i) -> (3, S, S)`` float tensor.
    """

    def __init__(self, size: int | None) -> None:
        self.size = check_size(size)
        self.class_names: dict[str, list[str]] = {}
        self.skipped: list[tuple[str, str]] = []
        self._labels: list[dict[str, Any]] = []

    def _skip(self, source: str | os.PathLike, reason: str) -> None:
        self.skipped.append((str(source), reason))

    def _finish(self, described_source: str) -> None:
        """Warn once about skipped input; refuse to be empty."""
        name = type(self).__name__
        if not self._labels:
            detail = f"; skipped {len(self.skipped)}: {summarise(self.skipped)}" if self.skipped else ""
            raise ValueError(f"{name}: no usable items in {described_source}{detail}")
        if self.skipped:
            warnings.warn(
                f"{name}: skipped {len(self.skipped)} unusable item(s) in {described_source}, "
                f"kept {len(self._labels)}: {summarise(self.skipped)} (all listed in .skipped)",
                SkippedItemsWarning,
                stacklevel=3,
            )

    def __len__(self) -> int:
        return len(self._labels)

    def _position(self, index: int) -> int:
        i = operator.index(index)
        n = len(self._labels)
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range for {n} items")
        return i % n

    def item_labels(self, i: int) -> dict[str, Any]:
        """Labels of item ``i`` (with ``index``) without decoding its image."""
        i = self._position(i)
        # copies, so a caller editing a label tensor cannot change the dataset
        labels = {
            key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in self._labels[i].items()
        }
        labels["index"] = i
        return labels

    def _image(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(image float32 (3, S, S) in [0, 1] RGB, labels dict with 'index')``."""
        i = self._position(index)
        return self._image(i), self.item_labels(i)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(items={len(self)}, size={self.size}, skipped={len(self.skipped)})"


class ImageFiles(ItemList):
    """An ``ItemList`` whose items are image files, each verified when indexed.

    ``paths[i]`` is the file of item ``i``. ``check`` is how files are verified
    at construction time (see ``pclkit.data.imageio.probe_image``).
    """

    def __init__(self, size: int | None, check: str) -> None:
        super().__init__(size)
        self.check = check_mode(check)
        self.paths: list[str] = []

    def _admit(self, path: Path, labels: dict[str, Any], expected_size: tuple[int, int] | None = None) -> bool:
        """Verify ``path`` and add it as an item; record a skip and return False if unusable."""
        try:
            width, height = probe_image(path, self.check)
        except ImageDecodeError as error:
            self._skip(path, error.reason)
            return False
        if expected_size is not None and (width, height) != expected_size:
            self._skip(path, f"image is {width}x{height}, expected {expected_size[0]}x{expected_size[1]}")
            return False
        self.paths.append(str(path))
        self._labels.append(labels)
        return True

    def _image(self, i: int) -> torch.Tensor:
        # a file that passed indexing but fails now raises ImageDecodeError naming it
        return load_image(self.paths[i], self.size)
