"""L_adv: an adversary that reads the pose code F_p from F_f, and a face branch trained against it.

This project's option (not in PCL, Liu et al., CVPR 2023). L_orth (Eq. 3) only asks that each
column of F_f be uncorrelated with each column of F_p over the batch; a combination of many F_f
columns, or a non-linear one, can still carry the pose F_p holds. Here a small MLP ``a`` learns to
predict the standardised F_p from F_f, and the encoder is trained so that it cannot. The method's
own pose code stands in for pose labels, which self-supervised pretraining does not have.

With ẑ_p the columns of F_p standardised over the batch (detached: the pose branch is not asked to
become unpredictable), the adversary's fit is

    L_fit = (1 / (B k)) sum_i || a(F_f,i) - ẑ_p,i ||²       (~ 1 - R² of the adversary)

and two forms train the encoder against it:

* ``confusion`` (default; "domain confusion", Tzeng et al., ICCV 2015; Alvi et al., ECCV-W 2018):
  ``a`` minimises L_fit on detached F_f, and F_f minimises (1 / (B k)) sum_i || a(F_f,i) ||² through
  a frozen copy of ``a``: the adversary is pushed to predict the batch mean, i.e. R² -> 0.
* ``reversal`` (gradient reversal, Ganin & Lempitsky, ICML 2015): one term, L_fit, with the
  gradient into F_f negated, so the encoder *maximises* the adversary's error. Measured here
  (docs/results/recipe_search.md, lever 24) it does the opposite of removing the pose: the encoder
  maximises the error by making F_f predict F_p *wrongly*, which a probe reads as well as right.

Example:
    >>> import torch
    >>> from torch import nn
    >>> adversary = nn.Linear(8, 2)
    >>> face, pose = torch.randn(16, 8, requires_grad=True), torch.randn(16, 2)
    >>> result = pose_adversary(adversary, face, pose)
    >>> result.total.backward()  # the adversary's weights fit F_p; face.grad pushes its prediction to 0
    >>> 0.0 <= float(result.fit)
    True
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from pclkit.losses._checks import autocast_off, check_matrix, standardised_columns

__all__ = ["ADVERSARY_FORMS", "AdversaryLoss", "grad_reverse", "pose_adversary"]

#: accepted ``form`` values of :func:`pose_adversary`
ADVERSARY_FORMS: tuple[str, ...] = ("confusion", "reversal")


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


class AdversaryLoss(NamedTuple):
    """``total``: the scalar to optimise; ``fit``: the adversary's L_fit (detached, ~ 1 - its R²)."""

    total: Tensor
    fit: Tensor


def pose_adversary(adversary: nn.Module, face: Tensor, pose: Tensor, form: str = "confusion",
                   eps: float = 1e-6) -> AdversaryLoss:
    """L_adv of F_f (B, D_f) against F_p (B, k); ``adversary`` maps (B, D_f) to (B, k).

    ``pose`` is standardised per column over the batch and detached. See the module docstring for
    the two ``form`` values.
    """
    check_matrix("face", face)
    check_matrix("pose", pose)
    if face.shape[0] != pose.shape[0] or face.shape[0] < 2:
        raise ValueError(f"face and pose need the same batch of >= 2 rows, got {tuple(face.shape)} and {tuple(pose.shape)}")
    if form not in ADVERSARY_FORMS:
        raise ValueError(f"form must be one of {', '.join(ADVERSARY_FORMS)}, got {form!r}")
    target = standardised_columns(pose.detach().float(), eps)  # (B, k)
    with autocast_off(face):
        if form == "reversal":
            fit = (adversary(grad_reverse(face)).float() - target).square().mean()
            return AdversaryLoss(fit, fit.detach())
        fit = (adversary(face.detach()).float() - target).square().mean()  # trains the adversary only
        frozen = {name: param.detach() for name, param in adversary.named_parameters()}
        confusion = functional_call(adversary, frozen, (face,)).float().square().mean()  # trains F_f only
        return AdversaryLoss(fit + confusion, fit.detach())
