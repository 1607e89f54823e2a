"""``PoseNPZ``: 300W-LP / AFLW2000 head pose in FSA-Net's ``.npz`` layout."""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np
import torch

from pclkit.data.imageio import square_tensor
from pclkit.data.itemlist import ItemList, require_file


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
