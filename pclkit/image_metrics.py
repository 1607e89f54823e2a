"""Full-reference image quality: PSNR and SSIM (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004).

Used to score swap reconstructions D(F_f^A, F_p^B) against the SynthFaces
ground-truth re-render of face A at the pose of B. Images are float
``(B, C, H, W)`` in [0, 1] (data range L = 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"expected two image batches (B, C, H, W) of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def psnr(x: Tensor, y: Tensor, max_db: float = 100.0) -> Tensor:
    """Peak signal-to-noise ratio per image, ``10 log10(1 / MSE)`` in dB, shape ``(B,)``.

    Identical images would give +inf; the value is capped at ``max_db``.
    """
    _check_pair(x, y)
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    floor = 10.0 ** (-max_db / 10.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(floor))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """Normalised 2-D Gaussian window ``(size, size)`` (Wang et al. 2004: 11 x 11, sigma 1.5)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords.pow(2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(x: Tensor, y: Tensor, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> Tensor:
    """Mean structural similarity per image, shape ``(B,)``.

    Local means, variances and covariance come from a Gaussian window
    (``window_size`` x ``window_size``, ``sigma``) over the valid region of each
    channel; SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) /
    ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)) with C1 = (k1 L)^2,
    C2 = (k2 L)^2, L = 1; the map is averaged over positions and channels.
    """
    _check_pair(x, y)
    b, c, h, w = x.shape
    if min(h, w) < window_size:
        raise ValueError(f"images of {h}x{w} pixels are smaller than the {window_size}x{window_size} SSIM window")
    window = gaussian_window(window_size, sigma).to(x.device)[None, None].expand(c, 1, -1, -1)
    x, y = x.float(), y.float()

    def local_mean(t: Tensor) -> Tensor:
        return F.conv2d(t, window, groups=c)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x.pow(2)
    var_y = local_mean(y * y) - mu_y.pow(2)
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.pow(2) + mu_y.pow(2) + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)
