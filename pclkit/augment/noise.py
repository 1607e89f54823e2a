"""Additive Gaussian noise for the reconstruction inputs (appearance-only).

PCL's public code (Liu et al., CVPR 2023) feeds the pose-disentangled decoder
branch ``s + 0.4 * N(0, 1)`` and scores the reconstruction against the clean
``s``; the noisy input is *not* clamped there, which is this function's default.
"""

from __future__ import annotations

import torch

from pclkit.augment._checks import check_generator, check_images, normal


def add_gaussian_noise(
    images: torch.Tensor, generator: torch.Generator, sigma: float = 0.4, clamp: bool = False
) -> torch.Tensor:
    """Return ``images + sigma * N(0, 1)`` (i.i.d. per pixel and channel).

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1] (the clean targets stay untouched).
        generator: fixes the noise.
        sigma: noise standard deviation in image units (reference: 0.4).
        clamp: clip the result to [0, 1]. Default ``False`` as in the reference
            code, so the noise stays zero-mean (the result then leaves [0, 1]).

    Returns:
        ``(B, 3, H, W)``, same dtype and device.
    """
    check_images(images)
    check_generator(generator, images.device)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noisy = images + sigma * normal(generator, images)
    return noisy.clamp_(0.0, 1.0) if clamp else noisy
