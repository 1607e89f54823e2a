"""Training batches for pretraining: in-memory tensors or a frames folder.

Both sources cut the same per-epoch permutation of the dataset (a function of
the run seed and the epoch only, so a resumed run sees the same batches) into
global batches and give rank ``r`` of ``W`` rows ``[r*B/W, (r+1)*B/W)`` of each
— per-rank index sharding, the in-memory equivalent of DistributedSampler.
The last incomplete global batch of an epoch is dropped.

* :class:`MemoryBatches` keeps uint8 images (e.g. ``SynthFaces.tensors()``) in
  memory, on the training device when that is a GPU, and indexes them: no
  DataLoader and no per-sample Python in the hot path.
* :class:`FolderBatches` reads a dataset (``pclkit.data.FaceFolder``) through
  a DataLoader with workers, over the rank's slice of the permutation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from pclkit.distributed import DistInfo


@dataclass
class Batch:
    """One rank's batch: images (B, 3, S, S) float in [0, 1] on the device, optional pose (B, 3),
    SynthFaces factors and pre-rendered pose changes (a :class:`~pclkit.data.synthfaces.PoseBank`
    of the batch's faces, (B, K, ...))."""

    images: Tensor
    pose: Tensor | None = None
    factors: Any = None
    pose_bank: Any = None


def epoch_order(num_items: int, seed: int, epoch: int, stream: int = 0) -> Tensor:
    """Permutation of ``range(num_items)`` for one epoch (CPU LongTensor), identical on all ranks."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 101 + stream)
    return torch.randperm(num_items, generator=generator)


class _Sharding:
    """Global batch -> this rank's rows."""

    def __init__(self, num_items: int, global_batch: int, dist: DistInfo, seed: int) -> None:
        if global_batch % dist.world_size:
            raise ValueError(f"batch size {global_batch} does not split evenly over {dist.world_size} ranks")
        if num_items < global_batch:
            raise ValueError(
                f"the dataset has {num_items} images, fewer than one batch of {global_batch}: "
                "lower optim.batch_size or use more data"
            )
        self.num_items, self.global_batch, self.dist, self.seed = num_items, global_batch, dist, seed
        self.per_rank = global_batch // dist.world_size
        self.steps_per_epoch = num_items // global_batch

    def rank_indices(self, epoch: int, stream: int, start_step: int) -> Tensor:
        """This rank's indices for steps ``start_step..`` of the epoch, step-major, (steps * B_rank,)."""
        order = epoch_order(self.num_items, self.seed, epoch, stream)
        order = order[: self.steps_per_epoch * self.global_batch].view(self.steps_per_epoch, self.dist.world_size, -1)
        return order[start_step:, self.dist.rank].reshape(-1)


class MemoryBatches:
    """Batches from in-memory uint8 images (N, 3, S, S); optional pose labels (N, 3), SynthFaces factors
    and a pose bank (K pre-rendered pose changes per image)."""

    def __init__(
        self,
        images_u8: Tensor,
        global_batch: int,
        dist: DistInfo,
        seed: int,
        device: torch.device,
        pose: Tensor | None = None,
        factors: Any = None,
        pose_bank: Any = None,
    ) -> None:
        if images_u8.dtype != torch.uint8 or images_u8.dim() != 4 or images_u8.shape[1] != 3:
            raise ValueError(f"expected uint8 images (N, 3, S, S), got {images_u8.dtype} {tuple(images_u8.shape)}")
        self.sharding = _Sharding(images_u8.shape[0], global_batch, dist, seed)
        self.device = device
        # on a GPU the whole uint8 set lives there: batches are then pure device indexing
        self.images = images_u8.to(device) if device.type == "cuda" else images_u8
        self.pose = pose
        self.factors = factors
        if pose_bank is not None and len(pose_bank) != images_u8.shape[0]:
            raise ValueError(f"the pose bank holds {len(pose_bank)} faces, the images {images_u8.shape[0]}")
        self.pose_bank = pose_bank.to(device) if pose_bank is not None and device.type == "cuda" else pose_bank

    @property
    def steps_per_epoch(self) -> int:
        return self.sharding.steps_per_epoch

    def get(self, indices: Tensor) -> Batch:
        """The batch of these dataset indices."""
        images = self.images[indices.to(self.images.device)].to(self.device, non_blocking=True)
        pose = self.pose[indices].to(self.device) if self.pose is not None else None
        factors = self.factors[indices].to(self.device) if self.factors is not None else None
        bank = self.pose_bank.rows(indices).to(self.device) if self.pose_bank is not None else None
        return Batch(images.float().div_(255.0), pose, factors, bank)

    def epoch(self, epoch: int, start_step: int = 0, streams: int = 1) -> Iterator[tuple[Batch, ...]]:
        """Yield ``streams`` batches per step (independent permutations) from ``start_step`` on."""
        per_rank = self.sharding.per_rank
        orders = [self.sharding.rank_indices(epoch, s, start_step).view(-1, per_rank) for s in range(streams)]
        for rows in zip(*orders):
            yield tuple(self.get(r) for r in rows)


def _images_only(items: list[tuple[Tensor, dict]]) -> Tensor:
    return torch.stack([image for image, _ in items])


class FolderBatches:
    """Batches from a map-style dataset of ``(image (3, S, S) float, labels)`` through a DataLoader."""

    def __init__(
        self,
        dataset: Dataset,
        global_batch: int,
        dist: DistInfo,
        seed: int,
        device: torch.device,
        workers: int = 4,
    ) -> None:
        self.dataset = dataset
        self.sharding = _Sharding(len(dataset), global_batch, dist, seed)  # type: ignore[arg-type]
        self.device = device
        self.workers = workers

    @property
    def steps_per_epoch(self) -> int:
        return self.sharding.steps_per_epoch

    def _loader(self, indices: Tensor) -> DataLoader:
        return DataLoader(
            Subset(self.dataset, indices.tolist()),
            batch_size=self.sharding.per_rank,
            shuffle=False,  # the order is already this epoch's permutation
            drop_last=True,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            collate_fn=_images_only,
            persistent_workers=False,
        )

    def epoch(self, epoch: int, start_step: int = 0, streams: int = 1) -> Iterator[tuple[Batch, ...]]:
        loaders = [self._loader(self.sharding.rank_indices(epoch, s, start_step)) for s in range(streams)]
        for images in zip(*loaders):
            yield tuple(Batch(x.to(self.device, non_blocking=True).float()) for x in images)
