"""Per-image colour transforms as batched 3x3 affine maps (appearance-only).

Brightness, contrast, saturation, hue and grayscale are all (affine-)linear in
RGB, so a chain of them is one matrix ``A (B, 3, 3)`` plus an offset
``t (B, 3)`` per image, and the whole batch is transformed by a single
``einsum`` over the pixels: ``out = clamp(A @ rgb + t, 0, 1)``. This is what
makes per-image parameters cheap (no per-image Python loop).

Follows the colour distortion of SimCLR (Chen et al., ICML 2020, arXiv
2002.05709), which PCL (Liu et al., CVPR 2023) uses for its face views:
torchvision ``ColorJitter(0.8, 0.8, 0.8, 0.2)`` applied with p = 0.8, then
``RandomGrayscale(p=0.2)``. Two documented differences from torchvision:

* intermediate results are not clamped to [0, 1] between the four jitter
  operations (only the final result is), because clamping is not affine;
* hue is shifted by rotating the chroma about the grey axis (a rotation by
  ``hue * 360`` degrees around ``(1, 1, 1)``), not in HSV space. It maps grey
  to grey, keeps the mean of R, G, B, turns red towards green for a positive
  shift, and a shift of 1/3 turn maps red exactly to green — the same
  direction and period as torchvision's ``adjust_hue``.
"""

from __future__ import annotations

import math

import torch

#: ITU-R BT.601 luma weights (R, G, B), as torchvision's ``rgb_to_grayscale``
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: order of the jitter operations in the ``order`` argument
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


def _luma(device: torch.device) -> torch.Tensor:
    return torch.tensor(LUMA_WEIGHTS, dtype=torch.float32, device=device)


def _eye(batch: int, device: torch.device) -> torch.Tensor:
    return torch.eye(3, device=device).expand(batch, 3, 3)


def saturation_matrices(factor: torch.Tensor) -> torch.Tensor:
    """``(B,)`` saturation factors -> ``(B, 3, 3)``: blend of each pixel with its luma (0 = grey, 1 = unchanged)."""
    grey = torch.ones(3, 1, device=factor.device) * _luma(factor.device).view(1, 3)
    f = factor.view(-1, 1, 1)
    return f * _eye(len(factor), factor.device) + (1 - f) * grey


def hue_matrices(shift: torch.Tensor) -> torch.Tensor:
    """``(B,)`` hue shifts in turns (torchvision's ``hue_factor``) -> ``(B, 3, 3)`` rotations about the grey axis.

    Rodrigues' formula for the unit axis ``k = (1, 1, 1) / sqrt(3)``:
    ``R = cos(a) I + sin(a) [k]_x + (1 - cos(a)) k k^T`` with ``a = 2 pi shift``.
    """
    device = shift.device
    angle = (2 * math.pi * shift).view(-1, 1, 1)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=device) / math.sqrt(3)
    outer = torch.full((3, 3), 1.0 / 3.0, device=device)
    return torch.cos(angle) * _eye(len(shift), device) + torch.sin(angle) * cross + (1 - torch.cos(angle)) * outer


def grayscale_matrix(device: torch.device) -> torch.Tensor:
    """``(3, 3)`` matrix that replaces R, G and B by the luma of the pixel."""
    return torch.ones(3, 1, device=device) * _luma(device).view(1, 3)


def jitter_transform(
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    hue: torch.Tensor,
    order: torch.Tensor,
    mean_rgb: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose the four jitter operations per image into one affine colour map.

    Args:
        brightness, contrast, saturation: ``(B,)`` multiplicative factors
            (1 = unchanged), as torchvision's ``adjust_*`` functions.
        hue: ``(B,)`` hue shift in turns, in [-0.5, 0.5] (0 = unchanged).
        order: ``(B, 4)`` long, a permutation of ``0..3`` per image: the
            operations (indices into :data:`JITTER_OPS`) in the order applied.
        mean_rgb: ``(B, 3)`` mean colour of each input image; contrast blends
            towards the mean luma of the image *as it is at that step*, which
            for affine maps follows from the input mean alone.

    Returns:
        ``(matrix (B, 3, 3), offset (B, 3))`` with ``out = matrix @ rgb + offset``.
    """
    batch, device = len(brightness), brightness.device
    if order.shape != (batch, 4):
        raise ValueError(f"order must be (B, 4) = ({batch}, 4), got {tuple(order.shape)}")
    eye = _eye(batch, device)
    luma = _luma(device)
    fixed = {
        0: brightness.view(-1, 1, 1) * eye,
        2: saturation_matrices(saturation),
        3: hue_matrices(hue),
    }
    matrix = eye.clone()
    offset = torch.zeros(batch, 3, device=device)
    for step in range(4):
        op = order[:, step].view(-1, 1, 1)
        # contrast blends towards the current mean luma, so it is built from the state so far
        current_mean_luma = ((matrix @ mean_rgb.unsqueeze(-1)).squeeze(-1) + offset) @ luma
        c = contrast.view(-1, 1)
        contrast_offset = (1 - c) * current_mean_luma.view(-1, 1).expand(batch, 3)
        step_matrix = torch.where(op == 1, c.view(-1, 1, 1) * eye, eye)
        for index, op_matrix in fixed.items():
            step_matrix = torch.where(op == index, op_matrix, step_matrix)
        step_offset = torch.where(op.view(-1, 1) == 1, contrast_offset, torch.zeros_like(offset))
        matrix = step_matrix @ matrix
        offset = (step_matrix @ offset.unsqueeze(-1)).squeeze(-1) + step_offset
    return matrix, offset


def apply_colour_transform(images: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Apply per-image affine colour maps and clamp to [0, 1].

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        matrix: ``(B, 3, 3)``; ``offset``: ``(B, 3)``.

    Returns:
        ``(B, 3, H, W)`` in [0, 1], same dtype as ``images``.
    """
    batch, channels, height, width = images.shape
    if matrix.shape != (batch, 3, 3) or offset.shape != (batch, 3):
        raise ValueError(
            f"matrix must be (B, 3, 3) and offset (B, 3) for B = {batch}, "
            f"got {tuple(matrix.shape)} and {tuple(offset.shape)}"
        )
    pixels = images.reshape(batch, channels, height * width)
    out = torch.einsum("bij,bjn->bin", matrix.to(images.dtype), pixels)
    out.add_(offset.to(images.dtype).unsqueeze(-1)).clamp_(0.0, 1.0)
    return out.view(batch, channels, height, width)
