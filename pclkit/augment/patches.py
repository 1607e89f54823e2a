"""Two non-overlapping patches from different image quadrants (appearance-only face views).

PCL's public code (Liu et al., CVPR 2023) builds the two views of its face
contrastive branch this way: pick two distinct quadrants, place a square patch
of side ``0.4`` of the image inside each (so they cannot overlap), and use
the patches as a positive pair. The reference additionally mirrors the second
patch; callers that want that apply ``view_b.flip(-1)`` themselves.

Crops are taken at sub-pixel positions and resized with one batched bilinear
``grid_sample`` per view (no per-image loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pclkit.augment._checks import check_generator, check_images, uniform
from pclkit.augment.grid import affine_sampling_grid


def sample_quadrant_boxes(
    batch: int, generator: torch.Generator, patch_frac: float = 0.4, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Draw two patch boxes per image, in distinct quadrants.

    Quadrants are numbered ``0 top-left, 1 top-right, 2 bottom-left,
    3 bottom-right``; each patch lies wholly inside its quadrant, at a uniform
    position.

    Returns:
        ``(B, 2, 4)`` float32 boxes ``(x0, y0, x1, y1)`` as fractions of the
        image width/height; ``[:, 0]`` is view a, ``[:, 1]`` view b.
    """
    if not 0.0 < patch_frac <= 0.5:
        raise ValueError(f"patch_frac must be in (0, 0.5] so a patch fits in a quadrant, got {patch_frac}")
    draws = uniform(generator, (batch, 6), torch.device(device))
    quadrant_a = (draws[:, 0] * 4).long().clamp_(max=3)
    # b is a uniformly chosen *other* quadrant
    quadrant_b = (quadrant_a + 1 + (draws[:, 1] * 3).long().clamp_(max=2)) % 4
    quadrants = torch.stack([quadrant_a, quadrant_b], dim=1)  # (B, 2)
    origin_x = (quadrants % 2).float() * 0.5
    origin_y = (quadrants // 2).float() * 0.5
    slack = 0.5 - patch_frac
    x0 = origin_x + draws[:, 2:4] * slack
    y0 = origin_y + draws[:, 4:6] * slack
    return torch.stack([x0, y0, x0 + patch_frac, y0 + patch_frac], dim=-1)


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, out_size: int) -> torch.Tensor:
    """Crop one box per image and resize it to ``out_size`` x ``out_size`` (bilinear).

    Args:
        images: ``(B, C, H, W)`` float.
        boxes: ``(B, 4)`` ``(x0, y0, x1, y1)`` as fractions of width/height.

    Returns:
        ``(B, C, out_size, out_size)``, same dtype.
    """
    batch = images.shape[0]
    if boxes.shape != (batch, 4):
        raise ValueError(f"boxes must have shape (B, 4) = ({batch}, 4), got {tuple(boxes.shape)}")
    boxes = boxes.to(device=images.device, dtype=images.dtype)
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    zeros = torch.zeros_like(x0)
    # affine_grid maps output coords in [-1, 1] onto the box in the input's [-1, 1] frame
    theta = torch.stack(
        [torch.stack([x1 - x0, zeros, x0 + x1 - 1], dim=1), torch.stack([zeros, y1 - y0, y0 + y1 - 1], dim=1)],
        dim=1,
    )
    grid = affine_sampling_grid(theta, out_size, out_size)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def quadrant_patches(
    images: torch.Tensor, generator: torch.Generator, patch_frac: float = 0.4, out_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views per image: square patches from two different quadrants, resized.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: fixes quadrants and positions (drawn per image).
        patch_frac: patch side as a fraction of the image side (reference 0.4;
            at most 0.5 so it fits in a quadrant).
        out_size: side of the returned views (reference 64).

    Returns:
        ``(view_a, view_b)``, each ``(B, 3, out_size, out_size)`` in [0, 1].
    """
    check_images(images)
    check_generator(generator, images.device)
    if not isinstance(out_size, int) or out_size < 1:
        raise ValueError(f"out_size must be a positive int, got {out_size!r}")
    boxes = sample_quadrant_boxes(images.shape[0], generator, patch_frac, images.device)
    return crop_and_resize(images, boxes[:, 0], out_size), crop_and_resize(images, boxes[:, 1], out_size)


def sample_crop_boxes(
    batch: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.35, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Random-resized-crop boxes of the whole image (SimCLR's view; Chen et al., ICML 2020).

    Per image: an area fraction uniform in ``scale``, an aspect ratio
    log-uniform in ``ratio`` (sides clipped to the image), a uniform position
    inside the image. No flip: for faces a flip changes the pose.

    Returns:
        ``(B, 4)`` float32 boxes ``(x0, y0, x1, y1)`` as fractions of width/height.
    """
    low, high = scale
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"crop ratio must satisfy 0 < low <= high, got {ratio}")
    draws = uniform(generator, (batch, 4), torch.device(device))
    area = low + (high - low) * draws[:, 0]
    log_lo, log_hi = torch.log(torch.tensor(ratio[0])), torch.log(torch.tensor(ratio[1]))
    aspect = torch.exp(log_lo + (log_hi - log_lo) * draws[:, 1])
    width = (area * aspect).sqrt().clamp(max=1.0)
    height = (area / aspect).sqrt().clamp(max=1.0)
    x0 = draws[:, 2] * (1 - width)
    y0 = draws[:, 3] * (1 - height)
    return torch.stack([x0, y0, x0 + width, y0 + height], dim=-1)


def random_resized_crops(
    images: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.35, 1.0),
    out_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random resized crops of the whole face per image (``views.face_view=crop``).

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        generator: fixes the boxes (drawn per image and view).
        scale: range of the crop area as a fraction of the image.
        out_size: side of the returned views.

    Returns:
        ``(view_a, view_b)``, each ``(B, 3, out_size, out_size)``.
    """
    check_images(images)
    check_generator(generator, images.device)
    if not isinstance(out_size, int) or out_size < 1:
        raise ValueError(f"out_size must be a positive int, got {out_size!r}")
    batch = images.shape[0]
    boxes = sample_crop_boxes(2 * batch, generator, scale, device=images.device)
    both = crop_and_resize(torch.cat([images, images]), boxes, out_size)  # one batched resample
    return both[:batch], both[batch:]
