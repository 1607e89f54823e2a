"""What a probe takes and gives: feature/label splits, results, and the protocol settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray


def as_features(x: ArrayLike, name: str = "features") -> Tensor:
    """Return ``x`` as a float32 CPU tensor ``(N, D)``; reject other shapes and non-finite values."""
    t = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return t


@dataclass(frozen=True)
class Split:
    """Features ``x (N, D)`` and labels ``y (N,)`` or ``(N, K)`` of one data split."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", as_features(self.x))
        y = torch.as_tensor(self.y).detach().cpu()
        if y.shape[0] != self.x.shape[0]:
            raise ValueError(f"features have {self.x.shape[0]} rows but labels have {y.shape[0]}")
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, index: Tensor) -> Split:
        return Split(self.x[index], self.y[index])


@dataclass
class ProbeResult:
    """Test ``metrics`` of a protocol and the hyperparameters it ``selected`` on validation."""

    metrics: dict[str, float]
    selected: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeConfig:
    """Hyperparameter grids and protocol constants.

    ``l2_grid`` is the weight-decay grid of the logistic probes on standardised
    features (loss = mean NLL + l2/2 |W|^2); ``ridge_grid`` the ridge grid
    (loss = mean squared error + lam |W|^2). Both are searched on validation.
    """

    l2_grid: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
    ridge_grid: tuple[float, ...] = (1e2, 1e1, 1.0, 1e-1, 1e-2, 1e-3)
    max_iter: int = 50
    #: AU present when intensity >= this (DISFA convention: level >= 2 of 0..5)
    au_intensity_threshold: float = 0.4
    #: "val" (F1-optimal threshold on validation) or a fixed probability such as 0.5
    au_decision: str | float = "val"
    knn_k: int = 20
    knn_temperature: float = 0.07
    verification_folds: int = 10
    #: intra-op threads of the L-BFGS solver (None: torch's setting). One thread is the
    #: default because a full-batch probe is hundreds of small ops, and OpenMP threads
    #: that spin-wait make them several times slower on a shared or busy CPU
    solver_threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.l2_grid or not self.ridge_grid:
            raise ValueError("l2_grid and ridge_grid must not be empty")
        if any(v < 0 for v in (*self.l2_grid, *self.ridge_grid)):
            raise ValueError("regularisation strengths must be >= 0")
        if self.au_decision != "val" and not (0.0 < float(self.au_decision) < 1.0):
            raise ValueError(f"au_decision must be 'val' or a probability in (0, 1), got {self.au_decision!r}")
