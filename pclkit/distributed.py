"""Data-parallel helpers: process-group set-up from ``torchrun`` and a gather
that keeps gradients.

Contrastive losses (SimCLR's NT-Xent, Chen et al. 2020, Eq. 1) draw their
negatives from the whole batch, so under DistributedDataParallel every rank
needs the projections of every other rank. ``torch.distributed.all_gather``
returns tensors detached from the graph; :func:`all_gather_with_grad` wraps it
in an autograd function whose backward sums each rank's gradient for a row and
hands it to the rank that owns the row.

Why the sum: every rank evaluates its loss on the gathered tensor, so row ``r``
of the gathered batch influences the loss of every rank. DDP then *averages*
parameter gradients over ranks; sum-then-average makes one step of a W-rank run
on B/W images per rank equal to one step of a 1-rank run on B images when the
loss is a batch mean (tested in tests/test_ddp.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when the torchrun environment variables describe a multi-process job."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes (RANK, WORLD_SIZE, ...).

    Uses NCCL for CUDA and gloo otherwise. A single process (no torchrun)
    gets ``DistInfo()`` and no process group.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return current()


def current() -> DistInfo:
    """The running job's rank and size (``DistInfo()`` outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
    )


def shutdown() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward returns this rank's summed gradient."""

    @staticmethod
    def forward(ctx, local: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        ctx.rank = dist.get_rank()
        ctx.rows = local.shape[0]
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad_gathered: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # Every rank's loss saw every row: add the gradients of all ranks,
        # then keep the rows this rank contributed.
        grad = grad_gathered.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows]


def all_gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """Concatenate ``local`` (B, ...) of every rank into (world*B, ...), rank order.

    Gradients flow back to each rank's own rows. Outside a process group (or
    with one rank) this returns ``local`` unchanged. All ranks must pass the
    same shape.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    return _GatherWithGrad.apply(local)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a (detached) tensor over ranks, for logging; identity on one rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def broadcast_object(obj: object, src: int = 0) -> object:
    """Send a picklable object from ``src`` to all ranks (identity on one rank)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for all ranks (no-op on one rank)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
