"""Face verification by cosine similarity with k-fold threshold selection (LFW View 2, Huang et al. 2007;
CPLFW, Zheng & Deng 2018), and identity-disjoint pairs to run it on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pclkit.probes.containers import ProbeResult, as_features


@dataclass(frozen=True)
class Pairs:
    """Verification pairs ``(left[i], right[i])`` with ``same[i]`` and their cross-validation ``fold[i]``."""

    left: Tensor
    right: Tensor
    same: Tensor
    fold: Tensor

    def __len__(self) -> int:
        return self.left.shape[0]


def identity_pairs(
    identity: Tensor,
    n_pairs: int,
    generator: torch.Generator,
    n_folds: int = 10,
    yaw: Tensor | None = None,
    min_abs_delta_yaw: float | None = None,
) -> Pairs:
    """Balanced same/different-identity pairs in identity-disjoint folds, as LFW View 2.

    Identities are shuffled into ``n_folds`` groups; fold ``k`` holds up to
    ``n_pairs / (2 n_folds)`` positive and as many negative pairs drawn among
    its own identities, so no identity appears in two folds and the threshold
    chosen on nine folds is tested on unseen people. With ``yaw (N,)`` and
    ``min_abs_delta_yaw``, only pairs whose yaw differs by more than that are
    used (the CPLFW cross-pose setting). Positives and negatives are kept equal
    per fold (the smaller count wins) so chance is 50%.
    """
    identity = torch.as_tensor(identity).long()
    ids = torch.unique(identity)
    if len(ids) < 2 * n_folds:
        raise ValueError(
            f"{len(ids)} identities cannot form {n_folds} identity-disjoint folds with negatives (need >= {2 * n_folds})"
        )
    per_fold = max(1, n_pairs // (2 * n_folds))
    groups = ids[torch.randperm(len(ids), generator=generator)].chunk(n_folds)
    left, right, same, fold = [], [], [], []
    for k, group in enumerate(groups):
        members = torch.nonzero(torch.isin(identity, group)).flatten()
        i, j = torch.triu_indices(len(members), len(members), offset=1)
        a, b = members[i], members[j]
        if yaw is not None and min_abs_delta_yaw is not None:
            keep = (yaw[a] - yaw[b]).abs() > min_abs_delta_yaw
            a, b = a[keep], b[keep]
        is_same = identity[a] == identity[b]
        pos = torch.nonzero(is_same).flatten()
        neg = torch.nonzero(~is_same).flatten()
        m = min(per_fold, len(pos), len(neg))
        pos = pos[torch.randperm(len(pos), generator=generator)[:m]]
        neg = neg[torch.randperm(len(neg), generator=generator)[:m]]
        chosen = torch.cat([pos, neg])
        left.append(a[chosen])
        right.append(b[chosen])
        same.append(torch.cat([torch.ones(m, dtype=torch.bool), torch.zeros(m, dtype=torch.bool)]))
        fold.append(torch.full((2 * m,), k))
    pairs = Pairs(torch.cat(left), torch.cat(right), torch.cat(same), torch.cat(fold))
    if len(pairs) == 0:
        raise ValueError("no verification pairs satisfy the constraints")
    return pairs


def best_accuracy_threshold(scores: Tensor, same: Tensor) -> float:
    """Threshold on ``scores (M,)`` maximising accuracy of ``score > threshold`` == ``same``.

    Candidate cuts lie between distinct sorted scores (and below/above all);
    the midpoint of the first best cut is returned.
    """
    order = torch.argsort(scores)
    s, t = scores[order].double(), same[order].bool()
    m = len(s)
    # cut after position c (0..m): the first c are predicted "different"
    neg_below = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum((~t).double(), 0)])
    pos_above = t.sum() - torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(t.double(), 0)])
    correct = neg_below + pos_above
    valid = torch.ones(m + 1, dtype=torch.bool)
    valid[1:m] = s[:-1] < s[1:]
    correct = torch.where(valid, correct, torch.full_like(correct, -1.0))
    c = int(torch.argmax(correct))
    if c == 0:
        return s[0].item() - 1.0
    if c == m:
        return s[-1].item() + 1.0
    return (s[c - 1].item() + s[c].item()) / 2


def verification_accuracy(scores: Tensor, same: Tensor, fold: Tensor) -> ProbeResult:
    """k-fold verification accuracy (LFW protocol): each fold is scored with the threshold best on the others.

    ``scores (M,)`` similarity (higher = same), ``same (M,)`` bool, ``fold (M,)``
    int. Metrics: ``accuracy`` (mean over folds), ``accuracy_fold_std``,
    ``n_pairs``; ``selected`` holds the mean threshold.
    """
    scores, same, fold = scores.double(), same.bool(), fold.long()
    accs, thresholds = [], []
    for k in torch.unique(fold):
        held = fold == k
        threshold = best_accuracy_threshold(scores[~held], same[~held])
        accs.append(((scores[held] > threshold) == same[held]).double().mean().item())
        thresholds.append(threshold)
    metrics = {"accuracy": float(np.mean(accs)), "accuracy_fold_std": float(np.std(accs)), "n_pairs": float(len(scores))}
    return ProbeResult(metrics, {"threshold_mean": float(np.mean(thresholds))})


def verification_probe(features: Tensor, pairs: Pairs) -> ProbeResult:
    """Cosine-similarity face verification of ``features (N, D)`` on ``pairs`` (10-fold, LFW protocol)."""
    x = F.normalize(as_features(features), dim=1)
    scores = (x[pairs.left] * x[pairs.right]).sum(1)
    return verification_accuracy(scores, pairs.same, pairs.fold)
