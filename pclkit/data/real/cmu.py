"""``CMUFaces``: the CMU Face Images set (UCI; T. Mitchell), labels parsed from file names."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pclkit.data.itemlist import ImageFiles, require_choice, require_dir
from pclkit.data.real._common import _subfolders, _visible

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
