"""Prototype-based matching loss of ProS (Di, Zheng, Liu & Cheng, "Prototype-based
Self-Distillation for unsupervised face representation learning", WACV 2024,
arXiv 2311.01929), read as DINO's self-distillation objective (Caron et al.,
"Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021, Eq. 1-3).

Reconstruction: the ProS paper has no public code and its abstract only says the
loss "aligns the similarity distributions of teacher and student features
against a set of learnable prototypes". Chosen here (DINO's form): for each view
v of an image, a model gives scores ``s_v in R^K`` against K prototypes (cosine
similarities of an L2-normalised embedding with L2-normalised prototypes,
:class:`pclkit.models.vit.PrototypeHead`);

    teacher target  P_t(v) = softmax((s^t_v - c) / tau_t)          (centred, sharpened; no gradient)
    student         P_s(w) = softmax(s^s_w / tau_s)
    L_proto = mean over pairs (v in teacher views, w in student views, w != v) of
              mean over the batch of  H(P_t(v), P_s(w)) = -sum_k P_t(v)_k log P_s(w)_k

with ``c`` an exponential moving average of the teacher's batch-mean scores
(:func:`updated_center`). Alternatives: a symmetric KL / JS divergence between
the two distributions; SwAV-style Sinkhorn-balanced teacher targets instead of
centring (Caron et al., NeurIPS 2020); only the two global views as student
views (no local-to-global term).

Everything is computed in float32 even under autocast: tau_t = 0.02-0.04 makes
logits up to 25-50 and bf16 loses too much precision in the softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pclkit.losses._checks import autocast_off, check_temperature

__all__ = ["prototype_matching", "teacher_targets", "updated_center"]


def _check_scores(name: str, scores: Tensor) -> None:
    if not isinstance(scores, Tensor) or scores.dim() != 3 or 0 in scores.shape:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"{name} must be a non-empty (V, B, K) tensor of prototype scores, got shape {shape}")


def teacher_targets(teacher_scores: Tensor, center: Tensor, temperature: float) -> Tensor:
    """P_t = softmax((s^t - c) / tau_t) over the K prototypes, float32, no gradient.

    Args:
        teacher_scores: (..., K) teacher scores against the prototypes.
        center: (K,) the centre c (an EMA of the teacher's batch-mean scores).
        temperature: tau_t (DINO: 0.04, lower than the student's: sharpening).

    Returns:
        (..., K) probabilities, detached.
    """
    check_temperature(temperature)
    if center.shape != teacher_scores.shape[-1:]:
        raise ValueError(f"center must have shape ({teacher_scores.shape[-1]},), got {tuple(center.shape)}")
    with autocast_off(teacher_scores):
        return torch.softmax((teacher_scores.detach().float() - center.detach().float()) / temperature, dim=-1)


def prototype_matching(
    student_scores: Tensor,
    teacher_scores: Tensor,
    center: Tensor,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
) -> Tensor:
    """L_proto: cross-entropy of the teacher's targets and the student's assignments over view pairs.

    Args:
        student_scores: (V_s, B, K) student scores; views ``0 .. V_t-1`` are the
            same crops the teacher saw (the global views), the rest are local crops.
        teacher_scores: (V_t, B, K) teacher scores of the global views (V_t <= V_s;
            gradients are never taken through them).
        center: (K,) the teacher centre c.
        student_temperature, teacher_temperature: tau_s, tau_t.

    Returns:
        scalar float32: the mean over the ``V_t * V_s - V_t`` pairs (v, w) with
        w != v of the batch mean of ``H(P_t(v), P_s(w))``. A uniform student
        (equal scores) gives ``log K`` whatever the targets.
    """
    _check_scores("student_scores", student_scores)
    _check_scores("teacher_scores", teacher_scores)
    check_temperature(student_temperature)
    n_teacher, batch, k = teacher_scores.shape
    n_student = student_scores.shape[0]
    if student_scores.shape[1:] != (batch, k) or n_student < n_teacher:
        raise ValueError(f"student_scores {tuple(student_scores.shape)} must be (V_s >= {n_teacher}, {batch}, {k}) "
                         f"to match teacher_scores {tuple(teacher_scores.shape)}")
    if n_teacher * n_student - n_teacher == 0:
        raise ValueError("prototype matching needs at least one pair of different views")
    targets = teacher_targets(teacher_scores, center, teacher_temperature)  # (V_t, B, K)
    with autocast_off(student_scores):
        log_probs = torch.log_softmax(student_scores.float() / student_temperature, dim=-1)  # (V_s, B, K)
        # cross[v, w] = mean_b H(P_t(v)_b, P_s(w)_b): every pair in one contraction
        cross = -torch.einsum("vbk,wbk->vw", targets, log_probs) / batch  # (V_t, V_s)
        same_view = torch.eye(n_teacher, n_student, dtype=torch.bool, device=cross.device)
        return cross.masked_fill(same_view, 0.0).sum() / (n_teacher * n_student - n_teacher)


def updated_center(center: Tensor, batch_mean: Tensor, momentum: float) -> Tensor:
    """c <- m c + (1 - m) mean_batch(s^t) (DINO, Caron et al., ICCV 2021, Eq. 4).

    Args:
        center: (K,) the current centre.
        batch_mean: (K,) the teacher's scores averaged over all its views of the
            batch (over all ranks under DDP).
        momentum: m in [0, 1] (DINO: 0.9).

    Returns:
        (K,) float32, detached.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"center momentum must be in [0, 1], got {momentum}")
    if center.shape != batch_mean.shape:
        raise ValueError(f"center {tuple(center.shape)} and batch_mean {tuple(batch_mean.shape)} must match")
    return momentum * center.detach().float() + (1.0 - momentum) * batch_mean.detach().float()
