"""Metrics of the probes: accuracy per class, F1 and its best threshold, R^2."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def class_accuracies(pred: Tensor, target: Tensor, n_classes: int) -> dict[str, float]:
    """Accuracy and mean per-class accuracy (classes absent from ``target`` are skipped)."""
    correct = (pred == target).float()
    per_class = [correct[target == c].mean().item() for c in range(n_classes) if (target == c).any()]
    return {"accuracy": correct.mean().item(), "mean_class_accuracy": float(np.mean(per_class))}


def binary_f1(pred: Tensor, target: Tensor) -> float:
    """F1 = 2TP / (2TP + FP + FN) of boolean ``pred (N,)`` vs ``target (N,)``; NaN if ``target`` has no positives."""
    pred, target = pred.bool(), target.bool()
    if not target.any():
        return float("nan")
    tp = (pred & target).sum().item()
    fp = (pred & ~target).sum().item()
    fn = (~pred & target).sum().item()
    return 2 * tp / (2 * tp + fp + fn)


def best_f1_threshold(scores: Tensor, target: Tensor) -> tuple[float, float]:
    """Decision threshold on ``scores (N,)`` maximising F1 against boolean ``target (N,)``.

    Predict positive when ``score > threshold``. Candidate cuts lie between
    distinct sorted scores; the returned threshold is the midpoint of the best
    cut. Returns ``(threshold, f1)``; without positives, ``(inf, nan)``.
    """
    target = target.bool()
    n_pos = int(target.sum())
    if n_pos == 0:
        return float("inf"), float("nan")
    order = torch.argsort(scores, descending=True)
    s, t = scores[order].double(), target[order].double()
    tp = torch.cumsum(t, 0)  # predicting the top-k positive
    k = torch.arange(1, len(s) + 1, dtype=torch.float64)
    f1 = 2 * tp / (k + n_pos)
    # a cut after position k is realisable only where the next score is strictly lower
    valid = torch.ones_like(s, dtype=torch.bool)
    valid[:-1] = s[:-1] > s[1:]
    f1 = torch.where(valid, f1, torch.full_like(f1, -1.0))
    best = int(torch.argmax(f1))
    threshold = (s[best] + s[best + 1]).item() / 2 if best + 1 < len(s) else s[best].item() - 1.0
    return float(threshold), float(f1[best])


def r2_scores(pred: Tensor, target: Tensor) -> Tensor:
    """Coefficient of determination per column of ``target (N, K)``: 1 - SSE / SST."""
    sse = (pred - target).pow(2).sum(0)
    sst = (target - target.mean(0)).pow(2).sum(0)
    return 1 - sse / sst.clamp_min(1e-12)
