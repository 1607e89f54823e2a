"""L_flip: F_p of a mirrored face is F_p of the face with its first ``odd`` columns negated.

This project's option (not in PCL, Liu et al., CVPR 2023). L_pose (Eq. 4-5) only asks F_p to tell
an image from its *own* pose changes, so each face may lay its poses out in F_p its own way, and
nothing in training swaps F_p across faces. A horizontal flip is a pose change whose effect is
known without labels: yaw and roll change sign, pitch does not. Asking the pose code to follow it
with one fixed sign pattern J, shared by every face,

    F_p(flip(s)) = J F_p(s),        J = diag(-1, ..., -1, +1, ..., +1)   (``odd`` minus signs),

puts every face's frontal view (its own mirror) at zero in the odd columns and gives all faces
one axis along which the head turns left or right. (Equivariance to a known transformation as a
training signal: Lenc & Vedaldi, CVPR 2015; Dangovski et al., ICLR 2022, "Equivariant
contrastive learning".)

With F_p of the B images and of their mirrors standardised column by column with the statistics of
both together (so shrinking F_p cannot lower the loss),

    L_flip = 1/(2k) sum_j mean_i (Z'_ij - J_jj Z_ij)²        Z = F_p(s), Z' = F_p(flip(s)),

which is, per column, 1 - J_jj corr(Z'_j, Z_j): 0 for a perfectly equivariant code, 1 where F_p of
the mirror is unrelated to F_p of the face, 2 for an odd column that keeps its sign.

Example:
    >>> import torch
    >>> pose = torch.randn(64, 4)
    >>> mirror = pose * torch.tensor([-1.0, -1.0, 1.0, 1.0])
    >>> float(flip_equivariance(pose, mirror, odd=2)) < 1e-6
    True
    >>> bool(flip_equivariance(pose, pose, odd=2) > 0.9)    # odd columns that keep their sign
    True
"""

from __future__ import annotations

import torch
from torch import Tensor

from pclkit.losses._checks import autocast_off, check_matrix, check_same_shape

__all__ = ["flip_equivariance", "flip_signs"]


def flip_signs(dim: int, odd: int, device: torch.device | None = None) -> Tensor:
    """J's diagonal (dim,): -1 for the first ``odd`` columns, +1 for the rest."""
    if not 0 < odd <= dim:
        raise ValueError(f"odd columns must be in 1..{dim}, got {odd}")
    signs = torch.ones(dim, device=device)
    signs[:odd] = -1.0
    return signs


def flip_equivariance(pose_feat: Tensor, pose_feat_flip: Tensor, odd: int | None = None, eps: float = 1e-5) -> Tensor:
    """L_flip of F_p (B, k) of the images and F_p (B, k) of their horizontal mirrors; scalar.

    ``odd`` (default k // 2, at least 1) columns are asked to change sign under the flip, the rest
    to stay. Computed in float32 under autocast.
    """
    check_matrix("pose_feat", pose_feat)
    check_matrix("pose_feat_flip", pose_feat_flip)
    check_same_shape("pose_feat", pose_feat, "pose_feat_flip", pose_feat_flip)
    if pose_feat.shape[0] < 2:
        raise ValueError(f"L_flip standardises over the batch: it needs at least 2 rows, got {pose_feat.shape[0]}")
    dim = pose_feat.shape[1]
    signs = flip_signs(dim, max(dim // 2, 1) if odd is None else odd, pose_feat.device)
    with autocast_off(pose_feat):
        both = torch.cat([pose_feat, pose_feat_flip]).float()  # (2B, k)
        both = (both - both.mean(0)) / (both.var(0, unbiased=False) + eps).sqrt()
        plain, mirror = both.chunk(2)
        return (mirror - plain * signs).square().mean() / 2
