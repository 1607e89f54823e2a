"""L_pred: how well a ridge regression on F_f, fitted afresh on every batch, predicts F_p.

This project's option (not in PCL, Liu et al., CVPR 2023). L_orth (Eq. 3) scores each pair of
columns of F_f and F_p on its own; a linear probe reads pose from a *combination* of F_f's
columns. A learned adversary (:func:`pclkit.losses.pose_adversary`) lags behind the encoder, which
then hides the pose where the adversary does not look. Here the adversary is a ridge regression
solved in closed form on each batch, so there is nothing to outrun: the batch is split into two
folds, the regression of F_p on F_f is fitted on one and scored on the other (and the other way
round), and F_f is trained to make that held-out prediction uncorrelated with F_p.

With X the columns of F_f standardised over the batch, Z those of F_p (detached: the pose branch
is not asked to become unpredictable), folds a and b, and the dual (kernel) form of ridge regression
with the linear kernel K = X Xᵀ / D,

    Ẑ_b = K_ba (K_aa + λ I)⁻¹ Z_a        (= X_b (X_aᵀ X_a + λ D I)⁻¹ X_aᵀ Z_a)
    L_pred = 1/(2k) sum_{(a,b) in {(1,2),(2,1)}} sum_j corr(Ẑ_b[:, j], Z_b[:, j])²

The squared correlation is >= 0 and blind to sign, so F_f cannot lower it by predicting F_p
*wrongly* (which a probe reads as well as right; lever 24 of docs/results/recipe_search.md).

A batch of 2 x 128 rows fits a ridge regression on 1024 columns poorly: by the end of a run the
held-out correlation is ~0.01 while a probe fitted on 3,000 faces still reads pose from F_f.
``memory`` (a :class:`PredictabilityMemory` of past batches, ``loss.predictability_memory``) adds
the standardised, detached rows of the last batches to each fold's fit rows, so the regression is
fitted on more faces than one batch holds; the held-out rows stay the current batch's.

Example:
    >>> import torch
    >>> pose = torch.randn(64, 2)
    >>> face = torch.cat([pose, torch.randn(64, 30)], 1)  # F_f that holds F_p
    >>> bool(cross_fitted_predictability(face, pose) > 0.5)
    True
    >>> bool(cross_fitted_predictability(torch.randn(64, 32), pose) < 0.2)
    True
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from pclkit.losses._checks import autocast_off, check_matrix, standardised_columns

__all__ = ["PredictabilityMemory", "cross_fitted_predictability"]


class PredictabilityMemory:
    """The last ``batches`` batches' F_f (B, D) and F_p (B, k) rows, each standardised over its own
    batch, detached and in float32: a first-in first-out store of extra fit rows for L_pred.

    It lives for one run in memory only: a resumed run starts with it empty and refills it in
    ``batches`` steps.

    Example:
        >>> memory = PredictabilityMemory(batches=2)
        >>> for _ in range(3):
        ...     memory.push(torch.randn(8, 5), torch.randn(8, 2))
        >>> [tuple(t.shape) for t in memory.rows()]
        [(16, 5), (16, 2)]
    """

    def __init__(self, batches: int, eps: float = 1e-6) -> None:
        if batches < 1:
            raise ValueError(f"batches must be >= 1, got {batches}")
        self.eps = eps
        self._store: deque[tuple[Tensor, Tensor]] = deque(maxlen=batches)

    def __len__(self) -> int:
        return sum(len(face) for face, _ in self._store)

    def push(self, face: Tensor, pose: Tensor) -> None:
        with torch.no_grad():
            self._store.append((standardised_columns(face.detach().float(), self.eps),
                                standardised_columns(pose.detach().float(), self.eps)))

    def rows(self) -> tuple[Tensor, Tensor] | None:
        """(Q, D) and (Q, k) past rows, oldest first; None while empty."""
        if not self._store:
            return None
        return torch.cat([face for face, _ in self._store]), torch.cat([pose for _, pose in self._store])


def cross_fitted_predictability(face: Tensor, pose: Tensor, ridge: float = 1.0, fold: Tensor | None = None,
                                eps: float = 1e-6, memory: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """L_pred of F_f (B, D) against F_p (B, k): the mean held-out squared correlation, in [0, 1].

    Args:
        face: F_f (B, D); gradients flow into it.
        pose: F_p (B, k); standardised and detached.
        ridge: λ of the ridge regression (on the kernel X Xᵀ / D of standardised columns, whose
            trace is about the fold's size).
        fold: (B,) bool, True for the rows of the first fold; None: alternate rows (0, 2, 4, ...).
        memory: past rows (Q, D) and (Q, k), standardised and detached
            (:meth:`PredictabilityMemory.rows`), added to each fold's fit rows; None: the batch alone.
    """
    check_matrix("face", face)
    check_matrix("pose", pose)
    if face.shape[0] != pose.shape[0]:
        raise ValueError(f"face and pose need the same rows, got {tuple(face.shape)} and {tuple(pose.shape)}")
    if ridge <= 0:
        raise ValueError(f"ridge must be > 0, got {ridge}")
    rows = face.shape[0]
    if fold is None:
        fold = torch.arange(rows, device=face.device) % 2 == 0
    if fold.shape != (rows,) or fold.dtype != torch.bool:
        raise ValueError(f"fold must be a ({rows},) bool tensor, got {tuple(fold.shape)} {fold.dtype}")
    first, second = fold.nonzero().squeeze(1), (~fold).nonzero().squeeze(1)
    if min(len(first), len(second)) < 3:
        raise ValueError(f"each fold needs >= 3 rows, got {len(first)} and {len(second)}")
    if memory is not None and (memory[0].shape[1:] != face.shape[1:] or memory[1].shape[1:] != pose.shape[1:]
                               or len(memory[0]) != len(memory[1])):
        raise ValueError(f"memory rows must be (Q, {face.shape[1]}) and (Q, {pose.shape[1]}), "
                         f"got {tuple(memory[0].shape)} and {tuple(memory[1].shape)}")
    with autocast_off(face):
        x = standardised_columns(face.float(), eps)
        z = standardised_columns(pose.detach().float(), eps)
        total = x.new_zeros(())
        for fit, held in ((first, second), (second, first)):
            x_fit, x_held, z_fit = x.index_select(0, fit), x.index_select(0, held), z.index_select(0, fit)
            if memory is not None:  # past batches' rows join the fit: (n + Q, D), (n + Q, k)
                x_fit, z_fit = torch.cat([x_fit, memory[0].to(x)]), torch.cat([z_fit, memory[1].to(z)])
            kernel = x_fit @ x_fit.T / x.shape[1]  # (n, n)
            cross = x_held @ x_fit.T / x.shape[1]  # (m, n)
            eye = torch.eye(len(x_fit), dtype=x.dtype, device=x.device)
            predicted = cross @ torch.linalg.solve(kernel + ridge * eye, z_fit)  # (m, k)
            truth = z.index_select(0, held)
            predicted, truth = predicted - predicted.mean(0), truth - truth.mean(0)
            corr = (predicted * truth).sum(0) / (predicted.norm(dim=0) * truth.norm(dim=0) + eps)  # (k,)
            total = total + corr.square().mean()
        return total / 2
