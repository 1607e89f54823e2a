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

import torch
from torch import Tensor

from pclkit.losses._checks import autocast_off, check_matrix, standardised_columns

__all__ = ["cross_fitted_predictability"]


def cross_fitted_predictability(face: Tensor, pose: Tensor, ridge: float = 1.0, fold: Tensor | None = None,
                                eps: float = 1e-6) -> Tensor:
    """L_pred of F_f (B, D) against F_p (B, k): the mean held-out squared correlation, in [0, 1].

    Args:
        face: F_f (B, D); gradients flow into it.
        pose: F_p (B, k); standardised and detached.
        ridge: λ of the ridge regression (on the kernel X Xᵀ / D of standardised columns, whose
            trace is about the fold's size).
        fold: (B,) bool, True for the rows of the first fold; None: alternate rows (0, 2, 4, ...).
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
    with autocast_off(face):
        x = standardised_columns(face.float(), eps)
        z = standardised_columns(pose.detach().float(), eps)
        total = x.new_zeros(())
        for fit, held in ((first, second), (second, first)):
            x_fit, x_held = x.index_select(0, fit), x.index_select(0, held)
            kernel = x_fit @ x_fit.T / x.shape[1]  # (n, n)
            cross = x_held @ x_fit.T / x.shape[1]  # (m, n)
            eye = torch.eye(len(fit), dtype=x.dtype, device=x.device)
            predicted = cross @ torch.linalg.solve(kernel + ridge * eye, z.index_select(0, fit))  # (m, k)
            truth = z.index_select(0, held)
            predicted, truth = predicted - predicted.mean(0), truth - truth.mean(0)
            corr = (predicted * truth).sum(0) / (predicted.norm(dim=0) * truth.norm(dim=0) + eps)  # (k,)
            total = total + corr.square().mean()
        return total / 2
