"""One data-parallel step that saves what the DDP tests compare (imported by tests/test_ddp.py and
tests/test_pcfrl.py; not a test module)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.distributed as dist


def save_ddp_step(objective: torch.nn.Module, model: torch.nn.Module, views, weights: Mapping[str, float],
                  rank: int, world: int, out_dir: str | Path) -> None:
    """Run ``objective`` under DDP on rank ``rank``'s shard of ``views``, backpropagate the loss and save
    ``{"terms": terms averaged over ranks, "grads": model gradients}`` to ``out_dir/step_<rank>.pt``."""
    ddp = torch.nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
    terms = ddp(views.shard(rank, world), weights, None)
    terms["loss"].backward()
    averaged = {}
    for name, value in terms.items():
        value = value.detach().clone()
        dist.all_reduce(value)
        averaged[name] = value / world
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    torch.save({"terms": averaged, "grads": grads}, Path(out_dir) / f"step_{rank}.pt")
