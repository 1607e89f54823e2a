"""``AppearanceAugment``: the pose-preserving (appearance-only) augmentation pipeline.

Reproduces the photometric pipeline of PCL's face views (Liu et al., CVPR 2023,
public code), itself SimCLR's (Chen et al., ICML 2020), on whole batches:

1. colour jitter ``ColorJitter(0.8, 0.8, 0.8, 0.2)`` with p = 0.8, the four
   operations in a random order per image (as torchvision);
2. grayscale with p = 0.2;
3. Gaussian blur with p = 0.8, kernel ~10% of the image side, sigma from
   [0.1, 2.0] scaled by ``image side / 224`` (SimCLR's range was chosen for
   224 px images; the reference code uses it unscaled at 64 px, where a
   7-tap kernel truncates sigma = 2 to almost a box filter — set
   ``blur_sigma_reference_size=None`` to reproduce that);
4. gradient-magnitude ("Sobel") map with p = 0.6;
5. optional additive Gaussian noise (off by default; see :mod:`pclkit.augment.noise`).

None of these moves a pixel, so the head pose of every image is unchanged —
this is the family for PCL's positives. All parameters are drawn per image
from one ``torch.Generator`` in a single draw; the batch is then transformed
with a handful of batched tensor ops (one colour einsum, one pair of bmm for
the blur, one gradient map).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pclkit.augment._checks import check_generator, check_images, check_probability, check_range, normal, uniform
from pclkit.augment.colour import apply_colour_transform, grayscale_matrix, jitter_transform
from pclkit.augment.filters import blur_kernel_size, gaussian_blur, grey_gradient_magnitude

# columns of the single per-image uniform draw
_JITTER_ON, _BRIGHT, _CONTRAST, _SATUR, _HUE = 0, 1, 2, 3, 4
_ORDER = slice(5, 9)
_GRAY_ON, _BLUR_ON, _BLUR_SIGMA, _GRADIENT_ON, _NOISE_ON = 9, 10, 11, 12, 13
_N_DRAWS = 14


@dataclass(frozen=True)
class AppearanceAugment:
    """Pose-preserving photometric augmentation; defaults are PCL's reference values.

    Call as ``augment(images (B, 3, H, W) in [0, 1], generator) -> (B, 3, H, W)``.
    The result is in [0, 1] unless noise is enabled with ``noise_clamp=False``.

    Attributes:
        jitter_p: probability of colour jitter per image.
        brightness, contrast, saturation: jitter strengths ``s``; factors are
            drawn from ``[max(0, 1 - s), 1 + s]`` (torchvision semantics).
        hue: hue shift drawn from ``[-hue, hue]`` turns, ``0 <= hue <= 0.5``.
        grayscale_p: probability of converting to grey (after jitter).
        blur_p: probability of Gaussian blur.
        blur_sigma: sigma range in pixels at ``blur_sigma_reference_size``.
        blur_sigma_reference_size: image side the sigma range refers to; sigma
            is scaled by ``H / blur_sigma_reference_size``. ``None`` = unscaled.
        blur_kernel_frac: kernel side as a fraction of the image side.
        gradient_p: probability of replacing the image by its gradient map.
        noise_p, noise_sigma, noise_clamp: additive Gaussian noise (last step).
    """

    jitter_p: float = 0.8
    brightness: float = 0.8
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2
    grayscale_p: float = 0.2
    blur_p: float = 0.8
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_sigma_reference_size: int | None = 224
    blur_kernel_frac: float = 0.1
    gradient_p: float = 0.6
    noise_p: float = 0.0
    noise_sigma: float = 0.4
    noise_clamp: bool = False

    def __post_init__(self) -> None:
        for name in ("jitter_p", "grayscale_p", "blur_p", "gradient_p", "noise_p"):
            check_probability(getattr(self, name), name)
        for name in ("brightness", "contrast", "saturation", "noise_sigma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5] turns, got {self.hue}")
        if len(self.blur_sigma) != 2:
            raise ValueError(f"blur_sigma must be (low, high), got {self.blur_sigma!r}")
        check_range(*self.blur_sigma, name="blur_sigma", minimum=0.0)
        if self.blur_sigma_reference_size is not None and self.blur_sigma_reference_size <= 0:
            raise ValueError(
                f"blur_sigma_reference_size must be positive or None, got {self.blur_sigma_reference_size}"
            )
        if not 0.0 <= self.blur_kernel_frac <= 1.0:
            raise ValueError(f"blur_kernel_frac must be in [0, 1], got {self.blur_kernel_frac}")

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch ``(B, 3, H, W)`` in [0, 1]; parameters drawn per image from ``generator``."""
        check_images(images)
        check_generator(generator, images.device)
        draws = uniform(generator, (images.shape[0], _N_DRAWS), images.device)
        out = self._colour(images, draws)
        out = self._blur(out, draws)
        if self.gradient_p > 0:
            use_gradient = (draws[:, _GRADIENT_ON] < self.gradient_p).view(-1, 1, 1, 1)
            # the (B, 1, H, W) map broadcasts over RGB inside where(): no 3-channel copy
            out = torch.where(use_gradient, grey_gradient_magnitude(out), out)
        if self.noise_p > 0:
            use_noise = (draws[:, _NOISE_ON] < self.noise_p).view(-1, 1, 1, 1)
            noisy = out + self.noise_sigma * normal(generator, out)
            out = torch.where(use_noise, noisy.clamp_(0.0, 1.0) if self.noise_clamp else noisy, out)
        return out

    def _colour(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        if self.jitter_p == 0 and self.grayscale_p == 0:
            return images
        jitter_on = draws[:, _JITTER_ON] < self.jitter_p

        unchanged = torch.ones_like(draws[:, 0])

        def factor(column: int, strength: float) -> torch.Tensor:
            low, high = max(0.0, 1.0 - strength), 1.0 + strength
            return torch.where(jitter_on, low + (high - low) * draws[:, column], unchanged)

        hue = torch.where(jitter_on, self.hue * (2 * draws[:, _HUE] - 1), unchanged - 1)
        order = torch.argsort(draws[:, _ORDER], dim=1)
        mean_rgb = images.float().mean(dim=(2, 3))
        matrix, offset = jitter_transform(
            factor(_BRIGHT, self.brightness),
            factor(_CONTRAST, self.contrast),
            factor(_SATUR, self.saturation),
            hue,
            order,
            mean_rgb,
        )
        to_grey = (draws[:, _GRAY_ON] < self.grayscale_p).view(-1, 1, 1)
        grey = grayscale_matrix(images.device)
        matrix = torch.where(to_grey, grey @ matrix, matrix)
        offset = torch.where(to_grey.view(-1, 1), offset @ grey.T, offset)
        return apply_colour_transform(images, matrix, offset)

    def _blur(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        kernel_size = blur_kernel_size(min(height, width), self.blur_kernel_frac)
        if self.blur_p == 0 or kernel_size == 1:
            return images
        scale = 1.0 if self.blur_sigma_reference_size is None else height / self.blur_sigma_reference_size
        low, high = self.blur_sigma[0] * scale, self.blur_sigma[1] * scale
        sigma = low + (high - low) * draws[:, _BLUR_SIGMA]
        # unselected images get sigma 0, an exact identity kernel: one batched op, no gather
        sigma = torch.where(draws[:, _BLUR_ON] < self.blur_p, sigma, torch.zeros_like(sigma))
        # the taps sum to 1 only up to rounding: clamp so the output range is exact
        return gaussian_blur(images, sigma, kernel_size).clamp_(0.0, 1.0)
