"""Input validation and per-image random sampling shared by the augmentations.

Every augmentation draws its random numbers through :func:`uniform` so that a
``torch.Generator`` alone fixes the result: the draws happen on the
generator's device (CPU or the images' CUDA device) and are then moved to the
images' device.
"""

from __future__ import annotations

import torch

#: slack for values just outside [0, 1] produced by float rounding upstream
RANGE_TOLERANCE = 1e-3


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """Raise a clear error unless ``images`` is a float batch ``(B, 3, H, W)`` in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0 or images.shape[2] < 2 or images.shape[3] < 2:
        raise ValueError(f"{name} must hold at least one image of at least 2x2 pixels, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor in [0, 1], got {images.dtype}; "
            "convert uint8 images with images.float() / 255"
        )
    # one pass and (on CUDA) one synchronisation for both bounds
    low, high = torch.stack(torch.aminmax(images)).tolist()
    if not (low >= -RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE):  # written so that NaN fails too
        raise ValueError(f"{name} must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]")


def check_generator(generator: torch.Generator, device: torch.device) -> None:
    """Raise unless ``generator`` is a ``torch.Generator`` on ``device`` or on the CPU."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu" and generator.device != device:
        raise ValueError(
            f"generator is on {generator.device} but the images are on {device}; "
            "use a generator on the images' device or on the CPU"
        )


def check_probability(value: float, name: str) -> None:
    """Raise unless ``0 <= value <= 1``."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


def check_range(low: float, high: float, name: str, minimum: float | None = None) -> None:
    """Raise unless ``low <= high`` (and ``low >= minimum`` when given)."""
    if low > high:
        raise ValueError(f"{name} must be (low, high) with low <= high, got ({low}, {high})")
    if minimum is not None and low < minimum:
        raise ValueError(f"{name} must not go below {minimum}, got ({low}, {high})")


def uniform(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Float32 draws from U[0, 1) of ``shape``, made on the generator's device, returned on ``device``."""
    draws = torch.rand(shape, generator=generator, device=generator.device)
    return draws.to(device)


def normal(generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws shaped and typed like ``like``, made on the generator's device."""
    draws = torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype)
    return draws.to(like.device)
