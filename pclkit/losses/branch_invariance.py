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

A cosine weighs each direction by its variance, so pose can survive in the
low-variance directions that a linear probe on *standardised* features reads
just as well. ``form="correlation"`` scores every feature dimension alike:

    L_inv = (1/D) sum_d ( 1 - (1/B) sum_i z_id ẑ_id ),   z = (f - mu_d) / sigma_d,

mu_d and sigma_d the mean and standard deviation of dimension d over the 2B
rows f, f̂ -- the diagonal of Barlow Twins' cross-correlation (Zbontar et al.,
ICML 2021) on the branch feature itself. It is 0 when every dimension is the
same in each pair, 1 for independent rows or a constant dimension, 2 at worst.
"""

from __future__ import annotations

from torch import Tensor

from pclkit.losses._checks import autocast_off, check_matrix, check_same_shape

#: the two forms of L_inv
INVARIANCE_FORMS = ("cosine", "correlation")


def branch_invariance(feat: Tensor, feat_changed: Tensor, eps: float = 1e-6, form: str = "cosine") -> Tensor:
    """L_inv between a batch of features and the features of its pose-changed views.

    Args:
        feat: (B, D) features of the images (e.g. F_f of s).
        feat_changed: (B, D) features of the same images after the pose change (F_f of ŝ).
        eps: added to the row norms (cosine) or the standard deviations (correlation).
        form: ``cosine`` (per image, centred rows) or ``correlation`` (per dimension, standardised columns).

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
    if form not in INVARIANCE_FORMS:
        raise ValueError(f"L_inv form must be one of {INVARIANCE_FORMS}, got {form!r}")
    with autocast_off(feat):
        a, b = feat.float(), feat_changed.float()
        mean = 0.5 * (a.mean(dim=0, keepdim=True) + b.mean(dim=0, keepdim=True))  # (1, D)
        a, b = a - mean, b - mean
        if form == "correlation":
            std = (0.5 * (a.pow(2).mean(dim=0) + b.pow(2).mean(dim=0))).sqrt() + eps  # (D,), over the 2B rows
            correlation = (a * b).mean(dim=0) / std.pow(2)  # (D,)
            return (1.0 - correlation).mean()
        cosine = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)  # (B,)
        return (1.0 - cosine).mean()
