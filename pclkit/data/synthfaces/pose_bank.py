"""Pre-rendered pose changes: every training face re-rendered at K other head poses, once.

The ``render3d`` pose change (:class:`pclkit.augment.pose.Render3D`) re-renders each image of a
batch at a new head pose in every step, which is most of a SimCLR step's time on a 2-core CPU.
A :class:`PoseBank` renders K new poses per face once, in large batches (cached on disk like the
dataset, and shared by every run and seed on the same faces), and a step picks one of the K per
image with its own generator.

The K poses are drawn by ``Render3D.sample_pose`` from the face's own pose, so each pair
(current pose, new pose) follows the live rule (the yaw turns by at least ``min_yaw_change``);
what changes is that a face offers K new poses over a run instead of a fresh one each time it
is drawn. This is this project's speed option (``views.render3d_bank``), not part of the paper,
whose pose change is a flip.

Example::

    bank = render_pose_bank(dataset, Render3D(yaw_range=(-60, 60)), k=8)
    rows = bank.rows(indices)                       # the batch's faces, (B, K, ...)
    images_hat, pose_hat = rows.pick(generator)     # (B, 3, S, S) float in [0, 1], (B, 3) degrees
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pclkit.data.synthfaces.dataset import SynthFaces, load_cache, save_cache, tensor_matches
from pclkit.data.synthfaces.renderer import render

if TYPE_CHECKING:
    from pclkit.augment.pose import Render3D

__all__ = ["PoseBank", "render_pose_bank"]


@dataclass(frozen=True)
class PoseBank:
    """K re-renders per face: ``images`` (N, K, 3, S, S) uint8 and their head ``poses`` (N, K, 3) degrees.

    ``negatives_from``: in a bank that joins two rules (``views.negative_change_axes``), the first
    column of the second rule's re-renders (the pose negatives after ŝ); None for a one-rule bank.
    """

    images: Tensor
    poses: Tensor
    negatives_from: int | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 5 or self.images.shape[2] != 3:
            raise ValueError(f"PoseBank.images must be uint8 (N, K, 3, S, S), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if tuple(self.poses.shape) != (*self.images.shape[:2], 3):
            raise ValueError(f"PoseBank.poses must be (N, K, 3) = {(*self.images.shape[:2], 3)}, "
                             f"got {tuple(self.poses.shape)}")
        if self.negatives_from is not None and not 0 < self.negatives_from < self.k:
            raise ValueError(f"PoseBank.negatives_from must be None or in 1..{self.k - 1}, got {self.negatives_from}")

    @property
    def hat_columns(self) -> tuple[int, int]:
        """(first, end) columns ŝ is drawn from: all of them, or the first rule's in a joined bank."""
        return (0, self.k if self.negatives_from is None else self.negatives_from)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def k(self) -> int:
        """New poses per face."""
        return self.images.shape[1]

    def rows(self, indices: Tensor) -> "PoseBank":
        """The bank of the faces ``indices`` (B,), in that order."""
        indices = indices.to(self.images.device)
        return PoseBank(self.images[indices], self.poses[indices.to(self.poses.device)], self.negatives_from)

    def to(self, device: torch.device | str) -> "PoseBank":
        return PoseBank(self.images.to(device, non_blocking=True), self.poses.to(device), self.negatives_from)

    def pick(self, generator: torch.Generator, count: int | None = None,
             columns: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
        """Re-renders drawn uniformly per face, without replacement: one per face, images (B, 3, S, S)
        float in [0, 1] and poses (B, 3); with ``count``, ``count`` different ones, (B, count, 3, S, S)
        and (B, count, 3). ``columns`` = (first, end) draws only among the bank's re-renders
        first..end-1 of each face (a bank that joins two rules, ``views.negative_change_axes``)."""
        first, end = (0, self.k) if columns is None else columns
        if not 0 <= first < end <= self.k:
            raise ValueError(f"columns must be (first, end) with 0 <= first < end <= {self.k}, got {columns}")
        draws = 1 if count is None else count
        if not 1 <= draws <= end - first:
            raise ValueError(f"can pick 1..{end - first} of the bank's {end - first} poses per face, asked for {count}")
        batch = self.images.shape[0]
        scores = torch.rand(batch, end - first, generator=generator, device=generator.device)
        choice = (scores.argsort(dim=1)[:, :draws] + first).to(self.images.device)  # (B, draws), distinct per row
        rows = torch.arange(batch, device=self.images.device)[:, None]
        images = self.images[rows, choice].float().div_(255.0)
        poses = self.poses[rows.to(self.poses.device), choice.to(self.poses.device)]
        return (images[:, 0], poses[:, 0]) if count is None else (images, poses)


def render_pose_bank(dataset: SynthFaces, pose_change: Render3D, k: int, seed: int = 0, progress: bool = False,
                     batch: int = 512) -> PoseBank:
    """Render ``k`` new head poses of every face of ``dataset`` (a :class:`Render3D` draws them).

    The poses come from one generator seeded with ``seed`` (a property of the data, like the
    dataset's own seed: every run on these faces sees the same bank). With the dataset's
    ``cache_dir`` the bank is stored next to the dataset's cache, keyed by the dataset's key,
    the pose change, ``k`` and ``seed``.
    """
    if k < 1:
        raise ValueError(f"a pose bank needs k >= 1 poses per face, got {k}")
    spec = repr((dataset.cache_key(), pose_change, k, seed))
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    path = None
    if dataset.cache_dir is not None:
        path = dataset.cache_dir / f"posebank_{dataset.split}_{dataset.n}_{dataset.size}px_k{k}_{key}.pt"
        shape = (dataset.n, k, 3, dataset.size, dataset.size)
        cached = load_cache(path, lambda content: (
            isinstance(content, dict) and tensor_matches(content.get("images"), torch.uint8, shape)
            and tensor_matches(content.get("poses"), torch.float32, shape[:2] + (3,))))
        if cached is not None:
            return PoseBank(cached["images"], cached["poses"])
    bank = _render(dataset, pose_change, k, seed, progress, batch)
    if path is not None:
        save_cache(path, {"images": bank.images, "poses": bank.poses})
    return bank


def _render(dataset: SynthFaces, pose_change: Render3D, k: int, seed: int, progress: bool, batch: int) -> PoseBank:
    from tqdm.auto import tqdm

    factors = dataset.factors
    generator = torch.Generator().manual_seed(seed)
    current = factors.pose.float()
    poses = torch.stack([pose_change.sample_pose(current, generator) for _ in range(k)], dim=1)  # (N, K, 3)
    flat_poses = poses.reshape(-1, 3)
    total = dataset.n * k
    images = torch.empty(total, 3, dataset.size, dataset.size, dtype=torch.uint8)
    for start in tqdm(range(0, total, batch), desc=f"rendering {k} pose changes per face", disable=not progress):
        rows = torch.arange(start, min(start + batch, total))
        part = factors[rows // k].with_pose(flat_poses[rows])
        rgb = render(part, dataset.size, supersample=dataset.supersample)
        images[start : start + len(rows)] = (rgb * 255).round().to(torch.uint8)
    return PoseBank(images.view(dataset.n, k, 3, dataset.size, dataset.size), poses)
