"""``FaceFolder``: every image below a folder, optionally labelled by identity sub-folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pclkit.data.imageio import is_image_name
from pclkit.data.itemlist import ImageFiles, require_dir
from pclkit.data.real._common import _visible


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
