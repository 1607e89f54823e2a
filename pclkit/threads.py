"""Scoped torch intra-op thread count.

On small shared CPUs, torch's default of one thread per core can be several
times slower than one thread when other processes compete (idle OpenMP threads
spin); hot loops that are known to be small set the count for their block only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``threads`` intra-op threads and restore the previous setting (None: unchanged)."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
