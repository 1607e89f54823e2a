"""Calibrated contrastive losses: false negatives turned into weighted extra positives.

Liu et al., "Sample-Cohesive Pose-Aware Contrastive Facial Representation
Learning" (IJCV 2025, doi 10.1007/s11263-025-02348-z) add to PCL a false-negative
pair calibration: pairs found to be false negatives of the face branch (other
images of the same person) and of the pose branch (other images at a similar
head pose) are identified separately and learnt from as positives by two
"calibrated contrastive losses". The formulas are not public.

Reconstruction (this module): a weighted multi-positive InfoNCE in the form of
SupCon's L_out (Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
Eq. 2) with per-pair weights: for query row i with candidate logits l_ic
(c over its candidates, invalid ones masked out) and positive weights w_ic >= 0
(1 for the row's own positive, the calibration weight for a false negative,
0 for a negative)

    L_i = - sum_c w_ic * ( l_ic - log sum_{c' in D_i} exp(l_ic') ) / sum_c w_ic,

with D_i all valid candidates (calibrated positives stay in the denominator,
as in SupCon) or, with ``positives_in_denominator=False``, only the valid
candidates of weight 0 (the PCL paper's printed pose loss has only negatives
there). Chosen: the weighted average keeps the loss on the scale of the plain
loss whatever the number of calibrated pairs; alternatives are the unnormalised
sum (more calibrated pairs = a larger loss), SupCon's L_in (average inside the
log), or only *removing* false negatives from the denominator (false-negative
elimination, Huynh et al., WACV 2022) without attracting them.

With no calibrated pair (all weights 0 but the own positive):

* :func:`calibrated_nt_xent` is exactly :func:`pclkit.losses.nt_xent` (L_face);
* :func:`calibrated_pose_contrastive` is PCL's L_pose (:func:`pclkit.losses.pose_contrastive`)
  *plus the other images of the batch as negatives* -- without batch negatives a
  pose branch has no pose false negatives to calibrate (reconstruction, see there).

Computed in float32 even under autocast, like the other contrastive losses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pclkit.losses._checks import (
    autocast_off,
    check_matrix,
    check_pose_inputs,
    check_same_shape,
    check_temperature,
    unit_rows_fp32,
)

__all__ = ["calibrated_nt_xent", "calibrated_pose_contrastive", "multi_positive_info_nce"]


def multi_positive_info_nce(
    logits: Tensor,
    positive_weight: Tensor,
    valid: Tensor | None = None,
    positives_in_denominator: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Weighted multi-positive InfoNCE over candidate logits (the equation of the module docstring).

    Args:
        logits: (N, C) float, query row i against its C candidates (already divided by tau).
        positive_weight: (N, C) float >= 0; each row needs a positive total weight.
        valid: (N, C) bool, candidates that exist (e.g. not the query itself); all by default.
            A positive weight on an invalid candidate is an error.
        positives_in_denominator: SupCon (True) or only weight-0 candidates in the denominator.
        reduction: ``"mean"`` (over rows) or ``"none"`` ((N,) per row).

    Returns:
        float32 scalar, or (N,) with ``reduction="none"``.
    """
    check_matrix("logits", logits)
    check_same_shape("logits", logits, "positive_weight", positive_weight)
    if valid is None:
        valid = torch.ones_like(logits, dtype=torch.bool)
    check_same_shape("logits", logits, "valid", valid)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    weight = positive_weight.detach().float()
    if bool((weight < 0).any()) or not bool(torch.isfinite(weight).all()):
        raise ValueError("positive_weight must be finite and >= 0")
    if bool(((weight > 0) & ~valid).any()):
        raise ValueError("a positive weight sits on an invalid candidate")
    total = weight.sum(dim=1)  # (N,)
    if bool((total <= 0).any()):
        raise ValueError("every query row needs at least one positive (a row's weights sum to 0)")
    in_denominator = valid if positives_in_denominator else valid & (weight == 0)
    if not bool(in_denominator.any(dim=1).all()):
        raise ValueError("a query row has no candidate left in the denominator")
    with autocast_off(logits):
        logits = logits.float()
        log_denominator = torch.logsumexp(logits.masked_fill(~in_denominator, float("-inf")), dim=1)  # (N,)
        # w * logit only where w > 0: masked logits may be -inf, and 0 * -inf is NaN
        positive_logits = torch.where(weight > 0, logits, torch.zeros_like(logits))
        per_row = log_denominator - (weight * positive_logits).sum(dim=1) / total  # (N,)
    return per_row.mean() if reduction == "mean" else per_row


def _check_pair_weight(pair_weight: Tensor, batch: int) -> Tensor:
    if pair_weight.shape != (batch, batch):
        raise ValueError(f"pair_weight must be (B, B) = ({batch}, {batch}), got {tuple(pair_weight.shape)}")
    # an image is never its own calibrated positive (a copy: the caller's tensor is left alone)
    return pair_weight.detach().float().clone().fill_diagonal_(0.0)


def calibrated_nt_xent(z_a: Tensor, z_b: Tensor, pair_weight: Tensor, temperature: float = 0.07) -> Tensor:
    """Face-branch calibrated contrastive loss: NT-Xent over the 2B views with weighted extra positives.

    Reconstruction of PCFRL's calibrated face-aware loss (see the module
    docstring). Rows ``z = [z_a; z_b]`` (2B, unit-normalised); row k (view v of
    image i) has the candidates m != k with logits sim(z_k, z_m) / tau. Its own
    other view has weight 1 (SimCLR's positive); both views of image j != i have
    weight ``pair_weight[i, j]`` (0: a negative, as in NT-Xent). Loss = the
    weighted multi-positive InfoNCE averaged over the 2B rows.

    Args:
        z_a, z_b: (B, D) projections of the two face views; row i of each is image i.
        pair_weight: (B, B) float >= 0, calibration weight of image j for image i
            (detached; its diagonal is ignored). Zero everywhere gives :func:`nt_xent`.
        temperature: tau.

    Returns:
        float32 scalar.
    """
    check_matrix("z_a", z_a)
    check_matrix("z_b", z_b)
    check_same_shape("z_a", z_a, "z_b", z_b)
    check_temperature(temperature)
    batch = z_a.shape[0]
    omega = _check_pair_weight(pair_weight, batch).to(z_a.device)
    with autocast_off(z_a):
        z = unit_rows_fp32(torch.cat([z_a, z_b], dim=0))  # (2B, D)
        logits = z @ z.T / temperature  # (2B, 2B)
        rows = torch.arange(2 * batch, device=z.device)
        valid = rows[:, None] != rows[None, :]  # a row is never its own candidate
        weight = omega.repeat(2, 2)  # (2B, 2B): view-pair (k, m) of images (k mod B, m mod B)
        weight[rows, (rows + batch) % (2 * batch)] = 1.0  # the own other view
        return multi_positive_info_nce(logits, weight, valid)


def calibrated_pose_contrastive(
    anchor: Tensor,
    positive: Tensor,
    negatives: Tensor,
    pair_weight: Tensor,
    temperature: float = 0.07,
    positive_in_denominator: bool = True,
    reduction: str = "mean",
    batch_negatives: bool = True,
) -> Tensor:
    """Pose-branch calibrated contrastive loss: PCL's L_pose with batch negatives and weighted extra positives.

    Reconstruction of PCFRL's calibrated pose-aware loss. PCL's L_pose (Liu et
    al., CVPR 2023, Eq. 4-5) contrasts an image only with its own M pose-changed
    views, so no other image is ever its negative and there is nothing to
    calibrate. Chosen reading: the query p_i (one appearance view of image i)
    has the candidates

        [ q_j for every image j of the batch (j = i: its own positive) ;  p̂_{i,1..M} (its own negatives) ],

    where q is the other appearance view; weights are 1 for q_i, ``pair_weight[i, j]``
    for q_j (j != i, 0 = a batch negative) and 0 for the own negatives:

        L_pose(i) = l(p_i -> q) + l(q_i -> p),     L = mean_i L_pose(i),

    each l a weighted multi-positive InfoNCE (module docstring). Alternatives:
    batch negatives from the pose-changed views of other images as well (more
    negatives, but those show *other* poses and are rarely false), or other
    images only in a separate NT-Xent-like term. With B = 1 (no other image)
    this is exactly :func:`pclkit.losses.pose_contrastive`.

    With ``batch_negatives=False`` the other images are candidates only where they are
    calibrated (weight > 0): PCL's L_pose (own negatives only) plus the detected pairs as
    extra positives; with no detected pair this is exactly PCL's L_pose for any B.

    Args:
        anchor, positive: (B, D) pose projections of the two appearance views (p and q).
        negatives: (B, M, D), the own pose-changed views of each image.
        pair_weight: (B, B) float >= 0 (detached; diagonal ignored).
        temperature: tau.
        positive_in_denominator: as in :func:`pclkit.losses.pose_contrastive`; False keeps
            every positive (own and calibrated) out of the denominator.
        reduction: ``"mean"`` or ``"none"`` ((B,) per image).
        batch_negatives: the other images' views are negatives (True) or only calibrated positives.

    Returns:
        float32 scalar (or (B,)).
    """
    check_pose_inputs(anchor, positive, negatives, reduction, temperature)
    batch = anchor.shape[0]
    omega = _check_pair_weight(pair_weight, batch).to(anchor.device)
    with autocast_off(anchor):
        p, q = unit_rows_fp32(anchor), unit_rows_fp32(positive)  # (B, D) each
        negatives_n = unit_rows_fp32(negatives)  # (B, M, D)
        num_neg = negatives.shape[1]
        eye = torch.eye(batch, device=p.device)
        weight = torch.cat([omega + eye, torch.zeros(batch, num_neg, device=p.device)], dim=1)  # (B, B + M)
        valid = None if batch_negatives else weight > 0
        if valid is not None:
            valid[:, batch:] = True  # the own negatives always count

        def one_direction(query: Tensor, keys: Tensor) -> Tensor:  # (B,)
            batch_logits = query @ keys.T  # (B, B): query i against every image's key view
            own_logits = torch.einsum("bd,bmd->bm", query, negatives_n)  # (B, M): only image i's negatives
            logits = torch.cat([batch_logits, own_logits], dim=1) / temperature
            return multi_positive_info_nce(logits, weight, valid, positives_in_denominator=positive_in_denominator,
                                           reduction="none")

        per_image = one_direction(p, q) + one_direction(q, p)
    return per_image.mean() if reduction == "mean" else per_image
