"""L_adv: an adversary that reads the pose code F_p from F_f, trained against the face branch.

This project's option (not in PCL, Liu et al., CVPR 2023). L_orth (Eq. 3) only asks that each
column of F_f be uncorrelated with each column of F_p over the batch; a combination of many F_f
columns, or a non-linear one, can still carry the pose F_p holds. Here a small MLP ``a`` learns to
predict the standardised F_p from F_f, and a gradient reversal layer (Ganin & Lempitsky, ICML 2015)
hands the encoder the opposite of that gradient, so F_f is trained to make the prediction fail.
The method's own pose code stands in for pose labels, which self-supervised pretraining does not
have.

With ẑ_p the columns of F_p standardised over the batch (and detached: the pose branch is not
asked to become unpredictable),

    L_adv = (1 / (B k)) sum_i || a(R(F_f,i)) - ẑ_p,i ||²,

where R is the identity in the forward pass and multiplies the gradient by -1 in the backward
pass. ``a`` minimises L_adv; the face branch maximises it. L_adv ~ 1 - R² of the adversary: 1 when
F_f says nothing about F_p, 0 when it predicts it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> adversary = nn.Linear(8, 2)
    >>> face, pose = torch.randn(16, 8, requires_grad=True), torch.randn(16, 2)
    >>> loss = pose_adversary(adversary, face, pose)
    >>> loss.backward()  # the adversary's weights descend L_adv; face.grad ascends it
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pclkit.losses._checks import autocast_off, check_matrix

__all__ = ["grad_reverse", "pose_adversary"]


class _GradReverse(torch.autograd.Function):
    """Identity forward; the backward pass returns minus the incoming gradient."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


def grad_reverse(x: Tensor) -> Tensor:
    """``x`` unchanged; gradients flowing back through it change sign (Ganin & Lempitsky, ICML 2015)."""
    return _GradReverse.apply(x)


def pose_adversary(adversary: nn.Module, face: Tensor, pose: Tensor, eps: float = 1e-6) -> Tensor:
    """L_adv: mean squared error of ``adversary(grad_reverse(face))`` against the standardised, detached ``pose``.

    Args:
        adversary: maps (B, D_f) to (B, k).
        face: F_f (B, D_f).
        pose: F_p (B, k); standardised per column over the batch and detached.

    Returns:
        A scalar, ~1 where F_f predicts nothing of F_p and 0 where it predicts it exactly.
    """
    check_matrix("face", face)
    check_matrix("pose", pose)
    if face.shape[0] != pose.shape[0] or face.shape[0] < 2:
        raise ValueError(f"face and pose need the same batch of >= 2 rows, got {tuple(face.shape)} and {tuple(pose.shape)}")
    target = pose.detach().float()
    target = (target - target.mean(0)) / (target.std(0) + eps)  # (B, k)
    prediction = adversary(grad_reverse(face))  # (B, k)
    with autocast_off(face):
        return (prediction.float() - target).square().mean()
