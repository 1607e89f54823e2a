"""Helpers shared by the real-data loaders: folder listing and label-file lines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


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
