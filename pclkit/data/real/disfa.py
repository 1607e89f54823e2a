"""``DISFA``: action-unit intensities over extracted video frames."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from pclkit.data.imageio import is_image_name
from pclkit.data.itemlist import ImageFiles, require_dir
from pclkit.data.real._common import _int_or_none, _lines, _subfolders, _visible

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
