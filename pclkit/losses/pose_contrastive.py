"""L_pose: the pose-related contrastive loss of PCL (Liu et al., CVPR 2023, Eq. 4-5),
and the reference code's optional Beta mixing of pose negatives.

Computed in float32 even under autocast: bf16 has an 8-bit mantissa, and
logits divided by tau = 0.07 lose too much precision in log-sum-exp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from pclkit.losses._checks import (
    autocast_off,
    check_pose_inputs,
    unit_rows_fp32,
)


def pose_contrastive(
    anchor: Tensor,
    positive: Tensor,
    negatives: Tensor,
    temperature: float = 0.07,
    positive_in_denominator: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Pose-related contrastive loss L_pose of PCL (Liu et al., CVPR 2023, Eq. 4-5).

    For sample i with anchor p_i, positive p_j (another appearance-only view of
    the same image, same pose) and its OWN negatives p̂_{i,1..M} (pose-changed
    views of the same image i):

        l_p(i, j) = -log( exp(s(p_i, p_j)/tau)
                          / (exp(s(p_i, p_j)/tau) + sum_m exp(s(p_i, p̂_{i,m})/tau)) ),
        L_pose(i) = l_p(i, j) + l_p(j, i),

    where ``s`` is cosine similarity and l_p(j, i) uses the positive as anchor
    against the same negatives. The positive is in the denominator as in the
    public reference code (standard InfoNCE); the paper's printed formula has
    only the negatives there -- ``positive_in_denominator=False`` gives that
    form. Unlike the reference code, which groups negatives across the wrong
    samples, each anchor only ever sees the negatives of its own image.

    Args:
        anchor, positive: (B, D) projected pose features of the two positive views.
        negatives: (B, M, D); ``negatives[i]`` are the M pose-changed views of image i.
        temperature: tau.
        positive_in_denominator: True = reference code / InfoNCE, False = paper formula.
        reduction: ``"mean"`` (batch mean, scalar) or ``"none"`` ((B,) per-sample L_pose(i)).

    Returns:
        float32 scalar (or (B,) for ``reduction="none"``).
    """
    check_pose_inputs(anchor, positive, negatives, reduction, temperature)

    with autocast_off(anchor):
        return _pose_contrastive_fp32(anchor, positive, negatives, temperature, positive_in_denominator, reduction)


def _pose_contrastive_fp32(anchor: Tensor, positive: Tensor, negatives: Tensor, temperature: float,
                           positive_in_denominator: bool, reduction: str) -> Tensor:
    anchor_n = unit_rows_fp32(anchor)  # (B, D)
    positive_n = unit_rows_fp32(positive)  # (B, D)
    negatives_n = unit_rows_fp32(negatives)  # (B, M, D)

    def one_direction(query: Tensor, key: Tensor) -> Tensor:  # (B,) l_p(query -> key)
        pos_logit = (query * key).sum(-1, keepdim=True) / temperature  # (B, 1)
        # batched per-sample product: query i only meets negatives[i]
        neg_logits = torch.einsum("bd,bmd->bm", query, negatives_n) / temperature  # (B, M)
        if positive_in_denominator:
            denominator = torch.logsumexp(torch.cat([pos_logit, neg_logits], dim=1), dim=1)
        else:
            denominator = torch.logsumexp(neg_logits, dim=1)
        return denominator - pos_logit.squeeze(1)

    per_sample = one_direction(anchor_n, positive_n) + one_direction(positive_n, anchor_n)
    return per_sample.mean() if reduction == "mean" else per_sample


def sample_beta(shape: Sequence[int], alpha: float, beta: float, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> Tensor:
    """Beta(alpha, beta) samples drawn from ``generator`` (reproducible).

    ``torch.distributions.Beta`` cannot take a generator, so this draws
    X ~ Gamma(alpha), Y ~ Gamma(beta) with Marsaglia & Tsang's method
    (ACM TOMS 2000) from the generator's normals/uniforms and returns X/(X+Y).
    """
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be > 0, got ({alpha}, {beta})")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    x = _sample_gamma(tuple(shape), alpha, generator, device)
    y = _sample_gamma(tuple(shape), beta, generator, device)
    return x / (x + y)


def _sample_gamma(shape: tuple[int, ...], concentration: float, generator: torch.Generator | None,
                  device: torch.device | str) -> Tensor:
    """Gamma(concentration, 1) by Marsaglia-Tsang rejection, vectorised."""
    boost = concentration < 1.0
    # for k < 1 sample Gamma(k + 1) and scale by U^(1/k) (Marsaglia & Tsang, Sec. 6)
    shape_param = concentration + 1.0 if boost else concentration
    d = shape_param - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    numel = math.prod(shape)
    out = torch.empty(numel, device=device)
    todo = torch.arange(numel, device=device)
    while todo.numel() > 0:
        n = todo.numel()
        x = torch.randn(n, generator=generator, device=device)
        u = torch.rand(n, generator=generator, device=device)
        v = (1.0 + c * x) ** 3
        ok = v > 0
        log_v = torch.log(v.clamp_min(1e-30))
        accept = ok & (torch.log(u.clamp_min(1e-30)) < 0.5 * x * x + d - d * v + d * log_v)
        out[todo[accept]] = d * v[accept]
        todo = todo[~accept]
    if boost:
        u = torch.rand(numel, generator=generator, device=device)
        out = out * u.clamp_min(1e-30) ** (1.0 / concentration)
    return out.reshape(shape)


def mix_negatives(negatives: Tensor, generator: torch.Generator | None = None, alpha: float = 1.6) -> Tensor:
    """Mix each pose negative with another negative of the SAME sample (reference-code detail).

    ``mixed[i, m] = lam * negatives[i, m] + (1 - lam) * negatives[i, m']`` with
    lam ~ Beta(alpha, alpha) per negative and m' != m drawn uniformly among the
    sample's other negatives. Not in the paper; off by default in the trainer.

    Args:
        negatives: (B, M, D), M >= 2.
        generator: torch.Generator for lam and m' (its device is used).
        alpha: Beta concentration (1.6 in the reference).

    Returns:
        (B, M, D) tensor, same dtype/device.
    """
    if negatives.dim() != 3:
        raise ValueError(f"negatives must be (B, M, D), got shape {tuple(negatives.shape)}")
    batch, num_neg, _ = negatives.shape
    if num_neg < 2:
        raise ValueError(f"mixing needs at least 2 negatives per sample, got M = {num_neg}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    lam = sample_beta((batch, num_neg, 1), alpha, alpha, generator, gen_device)
    # an offset in [1, M-1] guarantees a partner different from the negative itself
    offset = torch.randint(1, num_neg, (batch, num_neg), generator=generator, device=gen_device)
    partner = (torch.arange(num_neg, device=gen_device) + offset) % num_neg  # (B, M)
    lam = lam.to(device=negatives.device, dtype=negatives.dtype)
    partner = partner.to(negatives.device)
    partner_feats = torch.gather(negatives, 1, partner.unsqueeze(-1).expand_as(negatives))
    return lam * negatives + (1.0 - lam) * partner_feats
