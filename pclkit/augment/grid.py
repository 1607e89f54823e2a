"""Sampling grids for per-image affine resampling (crops, rotations) with ``grid_sample``.

``torch.nn.functional.affine_grid`` builds its grid with a batched matmul
whose inner dimension is 3, which on CPU costs several times the
``grid_sample`` call itself (measured ~70 ms vs ~16 ms for 256 x 64 x 64 on
2 busy cores). The same grid is three broadcast multiply-adds per coordinate.
"""

from __future__ import annotations

import torch


def pixel_centres(size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalised coordinates ``(size,)`` of pixel centres in [-1, 1] (``align_corners=False``)."""
    return (torch.arange(size, device=device, dtype=dtype) * 2 + 1) / size - 1


def affine_sampling_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Grid ``(B, height, width, 2)`` equal to ``F.affine_grid(theta, (B, C, height, width), align_corners=False)``.

    Args:
        theta: ``(B, 2, 3)`` maps output coordinates ``(x, y, 1)`` in [-1, 1]
            to input coordinates for ``grid_sample``.
    """
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must have shape (B, 2, 3), got {tuple(theta.shape)}")
    xs = pixel_centres(width, theta.device, theta.dtype).view(1, 1, width)
    ys = pixel_centres(height, theta.device, theta.dtype).view(1, height, 1)
    t = theta.reshape(-1, 6, 1, 1)
    grid = torch.empty(theta.shape[0], height, width, 2, device=theta.device, dtype=theta.dtype)
    # the small (B, 1, W) and (B, H, 1) terms carry the offsets: one full-size add per coordinate
    torch.add(t[:, 0] * xs + t[:, 2], t[:, 1] * ys, out=grid[..., 0])
    torch.add(t[:, 3] * xs + t[:, 5], t[:, 4] * ys, out=grid[..., 1])
    return grid
