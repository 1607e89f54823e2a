"""Pose swaps: decoding (face, pose) feature pairs, and drawing pairs of faces.

Every place that decodes swapped features -- the L_dis loss (Liu et al.,
CVPR 2023, Eq. 2), the training snapshots, the paper's reconstruction grid,
swap fidelity and the figures -- goes through :func:`decode_pairs`, and every
place that pairs faces A != B draws them with :func:`draw_swap_pairs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["decode_pairs", "swap_quad", "draw_swap_pairs", "margin_by_yaw_turn", "SWAP_QUAD", "YAW_TURN_EDGES"]

Decoder = Callable[[Tensor, Tensor], Tensor]

#: bin edges of the yaw turn |yaw_B - yaw_A| in degrees (:func:`margin_by_yaw_turn`)
YAW_TURN_EDGES = (0.0, 10.0, 20.0, 40.0, 180.0)

#: the four reconstructions of L_dis, in the order :func:`swap_quad` returns them
SWAP_QUAD = ("D(F_f,F_p)", "D(F_f,F_p^)", "D(F_f^,F_p)", "D(F_f^,F_p^)")


def decode_pairs(decode: Decoder, pairs: Sequence[tuple[Tensor, Tensor]]) -> list[Tensor]:
    """D(F_f, F_p) for each ``(face (B_i, D), pose (B_i, D_p))`` pair, in ONE decoder call.

    Returns one (B_i, 3, H, W) tensor per pair. One call keeps the decoder fast;
    with a BatchNorm decoder in training mode it also normalises over all pairs
    at once (in eval mode the result equals separate calls).
    """
    if not pairs:
        return []
    for face, pose in pairs:
        if face.dim() != 2 or pose.dim() != 2 or face.shape[0] != pose.shape[0]:
            raise ValueError(f"face {tuple(face.shape)} and pose {tuple(pose.shape)} features must be two "
                             "matrices with one row per image")
    faces = torch.cat([face for face, _ in pairs], dim=0)
    poses = torch.cat([pose for _, pose in pairs], dim=0)
    decoded = decode(faces, poses)  # (sum B_i, 3, H, W)
    if decoded.shape[0] != faces.shape[0]:
        raise ValueError(f"the decoder returned {decoded.shape[0]} images for {faces.shape[0]} feature rows")
    return list(decoded.split([face.shape[0] for face, _ in pairs], dim=0))


def swap_quad(decode: Decoder, face: Tensor, face_hat: Tensor, pose: Tensor, pose_hat: Tensor) -> Tensor:
    """The four reconstructions of L_dis (Eq. 2) as (4, B, 3, H, W), in :data:`SWAP_QUAD` order.

    Each takes its pose feature from the view it must reproduce:
    D(F_f, F_p) -> s, D(F_f, F_p̂) -> ŝ, D(F_f̂, F_p) -> s, D(F_f̂, F_p̂) -> ŝ.
    """
    pairs = [(face, pose), (face, pose_hat), (face_hat, pose), (face_hat, pose_hat)]
    return torch.stack(decode_pairs(decode, pairs), dim=0)


def draw_swap_pairs(n: int, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``min(count, n)`` random pairs (A, B) of indices below ``n`` with A != B.

    A is a random permutation prefix; B is A shifted by a random non-zero offset
    modulo ``n``, so a face is never paired with itself. Returns two int64 tensors.
    """
    if n < 2:
        raise ValueError(f"pairs of distinct faces need at least 2 faces, got {n}")
    a = torch.randperm(n, generator=generator)[:count]
    b = (a + torch.randint(1, n, (len(a),), generator=generator)) % n
    return a, b


def margin_by_yaw_turn(swapped: Tensor, truth: Tensor, image_a: Tensor, yaw_turn: Tensor,
                       edges: Sequence[float] = YAW_TURN_EDGES, with_all: bool = False) -> dict[str, dict[str, float]]:
    """The swap-fidelity margin split by how far the head turns between A and B.

    ``swapped`` D(F_f^A, F_p^B), ``truth`` render(face A, pose B) and ``image_a`` (B, 3, H, W) in [0, 1];
    ``yaw_turn`` (B,) |yaw_B - yaw_A| in degrees. Per bin ``"low-high"`` of ``edges`` that holds pairs:
    ``pairs``, ``psnr_swap`` (mean PSNR against the truth, dB) and ``margin_over_a`` (mean of PSNR
    against the truth minus PSNR against image A: how much closer the swap is to the truth than to
    face A at its own pose); with ``with_all`` also ``"all"``, every pair (the protocol's mean). Where
    the head barely turns, the truth and image A are nearly the same picture and no decoder can be
    closer to one than to the other.
    """
    from pclkit.image_metrics import psnr

    psnr_swap = psnr(swapped, truth)  # (B,)
    margin = psnr_swap - psnr(swapped, image_a)  # (B,)

    def scores(rows: Tensor) -> dict[str, float]:
        return {"pairs": int(rows.sum()), "psnr_swap": float(psnr_swap[rows].mean()),
                "margin_over_a": float(margin[rows].mean())}

    bins = {f"{low:g}-{high:g}": scores(rows) for low, high in zip(edges[:-1], edges[1:])
            if (rows := (yaw_turn >= low) & (yaw_turn < high)).any()}
    if with_all:
        bins["all"] = scores(torch.ones_like(yaw_turn, dtype=torch.bool))
    return bins
