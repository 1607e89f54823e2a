"""Mutual k-nearest neighbours, their cohesion, and how well they match a known truth.

The false-negative detector of the calibrated contrastive losses
(:mod:`pclkit.losses.calibrated`): two images whose projections are *mutual*
k-nearest neighbours (each is among the other's k nearest, by cosine
similarity) are taken to show the same thing -- the same person in the face
space, the same head pose in the pose space -- and so to be false negatives
of a contrastive loss that treats every other image as a negative.

Mutual kNN is the classic symmetric neighbour graph (Gowda & Krishna, Pattern
Recognition 1978); the *cohesion* of a pair is the Jaccard overlap of the two
closed neighbourhoods, a shared-nearest-neighbour similarity in the spirit of
Jarvis & Patrick (IEEE Trans. Computers, 1973):

    N+(i) = {i} ∪ kNN(i),    cohesion(i, j) = |N+(i) ∩ N+(j)| / |N+(i) ∪ N+(j)|.

For a mutual pair both i and j lie in both closed neighbourhoods, so cohesion
is in [1/k, 1]: 1/k when the two share nothing but each other, 1 when they sit
in a tight group of k + 1 points that are all each other's nearest neighbours.

Everything here is computed without gradient, in float32.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["NeighbourPairs", "PairScores", "knn_mask", "mutual_neighbours", "pair_scores", "upper_pairs"]


class NeighbourPairs(NamedTuple):
    """Mutual k-nearest-neighbour pairs of N points.

    pairs: (N, N) bool, symmetric, False on the diagonal: i and j are mutual kNN.
    cohesion: (N, N) float32 in [0, 1], the closed-neighbourhood Jaccard overlap;
        zero wherever ``pairs`` is False.
    """

    pairs: Tensor
    cohesion: Tensor


class PairScores(NamedTuple):
    """Detected pairs scored against true pairs, over unordered pairs i < j.

    precision: hits / detected (0.0 when nothing is detected: see ``detected``).
    recall: hits / true pairs (0.0 when there is no true pair: see ``true``).
    detected, true, hits: pair counts. All 0-d float32 tensors.
    """

    precision: Tensor
    recall: Tensor
    detected: Tensor
    true: Tensor
    hits: Tensor


def knn_mask(x: Tensor, k: int) -> Tensor:
    """Each row's k nearest other rows by cosine similarity: (N, N) bool, row i marks kNN(i).

    ``k`` is clipped to N - 1; a point is never its own neighbour. Ties are
    broken by :func:`torch.topk` (arbitrary but deterministic on a device).

    Args:
        x: (N, D) features (any scale; rows are L2-normalised here).
        k: neighbours per point, >= 1.
    """
    if x.dim() != 2:
        raise ValueError(f"x must be a (N, D) tensor, got shape {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = x.shape[0]
    mask = torch.zeros(n, n, dtype=torch.bool, device=x.device)
    k = min(k, n - 1)
    if k == 0:
        return mask
    with torch.no_grad():
        unit = F.normalize(x.detach().float(), dim=1)
        similarity = unit @ unit.T  # (N, N) cosine
        similarity.fill_diagonal_(float("-inf"))  # never one's own neighbour
        nearest = similarity.topk(k, dim=1).indices  # (N, k)
        mask.scatter_(1, nearest, True)
    return mask


def mutual_neighbours(x: Tensor, k: int) -> NeighbourPairs:
    """Mutual k-nearest-neighbour pairs of the rows of ``x`` (N, D) and their cohesion (no gradient).

    ``pairs[i, j]`` iff j in kNN(i) and i in kNN(j); ``cohesion[i, j]`` is the
    Jaccard overlap of {i} ∪ kNN(i) and {j} ∪ kNN(j) on those pairs, 0 elsewhere.
    """
    knn = knn_mask(x, k)  # (N, N)
    pairs = knn & knn.T
    closed = (knn | torch.eye(knn.shape[0], dtype=torch.bool, device=knn.device)).float()
    shared = closed @ closed.T  # (N, N): |N+(i) ∩ N+(j)|
    sizes = closed.sum(dim=1)
    union = sizes[:, None] + sizes[None, :] - shared
    cohesion = torch.where(pairs, shared / union.clamp_min(1.0), torch.zeros_like(shared))
    return NeighbourPairs(pairs, cohesion)


def upper_pairs(mask: Tensor) -> Tensor:
    """The unordered pairs i < j of a (N, N) bool relation (strict upper triangle)."""
    return torch.triu(mask, diagonal=1)


def pair_scores(detected: Tensor, true: Tensor) -> PairScores:
    """Precision and recall of ``detected`` pairs against ``true`` pairs ((N, N) bool each, i < j counted).

    Undefined ratios (no detected pair, no true pair) are 0.0, not NaN: the
    counts say which case it was.
    """
    if detected.shape != true.shape or detected.dim() != 2 or detected.shape[0] != detected.shape[1]:
        raise ValueError(f"detected {tuple(detected.shape)} and true {tuple(true.shape)} must be the same (N, N)")
    found, real = upper_pairs(detected.bool()), upper_pairs(true.bool())
    n_found = found.sum().float()
    n_real = real.sum().float()
    hits = (found & real).sum().float()
    # hits <= both counts, so a zero count gives 0 / 1 = 0 (no host sync, no NaN)
    precision = hits / n_found.clamp_min(1.0)
    recall = hits / n_real.clamp_min(1.0)
    return PairScores(precision, recall, n_found, n_real, hits)
