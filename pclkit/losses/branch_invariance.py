"""L_inv: keep a branch's feature the same across a pose change (this project's option, not in PCL).

PCL's face loss (Liu et al., CVPR 2023, Eq. 1) makes the face *projection*
g_f(F_f) agree across views; F_f itself, which the decoder and the linear
probes read, may keep the pose. L_inv asks F_f of an image and of its
pose-changed view (same face, another head pose) to point the same way once
the batch mean is removed:

    L_inv = (1/B) sum_i ( 1 - cos(f_i - mu, f̂_i - mu) ),   mu = mean of the 2B rows f, f̂,

the invariance term of VICReg (Bardes et al., ICLR 2022) in cosine form.
Centring keeps the shared offset of post-ReLU features (every pair would
otherwise look alike) out of the score, and a collapsed feature
(all rows equal) gets no reward: its centred rows vanish and the loss is 1.
"""

from __future__ import annotations

from torch import Tensor

from pclkit.losses._checks import autocast_off, check_matrix, check_same_shape


def branch_invariance(feat: Tensor, feat_changed: Tensor, eps: float = 1e-6) -> Tensor:
    """L_inv between a batch of features and the features of its pose-changed views.

    Args:
        feat: (B, D) features of the images (e.g. F_f of s).
        feat_changed: (B, D) features of the same images after the pose change (F_f of ŝ).
        eps: added to the row norms.

    Returns:
        float32 scalar in [0, 2]; 0 when every pair is equal.

    Example:
        >>> import torch
        >>> f = torch.randn(8, 16)
        >>> float(branch_invariance(f, f)) < 1e-6
        True
    """
    check_matrix("feat", feat)
    check_same_shape("feat", feat, "feat_changed", feat_changed)
    with autocast_off(feat):
        a, b = feat.float(), feat_changed.float()
        mean = 0.5 * (a.mean(dim=0, keepdim=True) + b.mean(dim=0, keepdim=True))  # (1, D)
        a, b = a - mean, b - mean
        cosine = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)  # (B,)
        return (1.0 - cosine).mean()
