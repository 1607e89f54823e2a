"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
#: the real CMU Face Images live beside the checkout, never inside it
CMU_ROOT = Path(os.environ.get("PCLKIT_CMU", REPO.parent / "shared" / "data" / "cmu_faces"))


@pytest.fixture(scope="session")
def cmu_root() -> Path:
    if not CMU_ROOT.is_dir():
        pytest.skip(f"CMU faces not found at {CMU_ROOT} (set PCLKIT_CMU or place ../shared/data/cmu_faces)")
    return CMU_ROOT


@pytest.fixture
def one_torch_thread():
    """Small renders are overhead-bound; on a shared 2-core box, 2 threads mostly wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
