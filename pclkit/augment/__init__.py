"""Augmentations for PCL, in two families kept apart (Liu et al., CVPR 2023).

PCL learns from the difference between views that keep the head pose and views
that change it, so the two families have separate entry points:

* **Appearance-only (pose-preserving)** — positives for the pose branch and the
  face views: :class:`AppearanceAugment` (colour jitter, grayscale, blur,
  gradient map, optional noise), :func:`quadrant_patches` (two patches from
  different quadrants), :func:`random_resized_crops` (two crops of the whole
  face), :func:`add_gaussian_noise` (noisy reconstruction inputs).
* **Pose-changing** — negatives for the pose branch:
  :func:`make_pose_change` with ``"flip"``, ``"roll"`` or ``"render3d"``.

All take batches ``(B, 3, H, W)`` in [0, 1] on any device with a
``torch.Generator`` (on that device or the CPU), draw parameters per image
and apply them with batched tensor ops — no per-image Python loop.
"""

from pclkit.augment.appearance import AppearanceAugment
from pclkit.augment.colour import apply_colour_transform, jitter_transform
from pclkit.augment.filters import gaussian_blur, gradient_magnitude
from pclkit.augment.noise import add_gaussian_noise
from pclkit.augment.patches import (
    crop_and_resize,
    quadrant_patches,
    random_resized_crops,
    sample_crop_boxes,
    sample_quadrant_boxes,
)
from pclkit.augment.pose import (
    FLIP_POSE_SIGNS,
    HorizontalFlip,
    Render3D,
    RollRotation,
    flip_pose,
    make_pose_change,
    rotate_images,
)

__all__ = [
    "AppearanceAugment",
    "FLIP_POSE_SIGNS",
    "HorizontalFlip",
    "Render3D",
    "RollRotation",
    "add_gaussian_noise",
    "apply_colour_transform",
    "crop_and_resize",
    "flip_pose",
    "gaussian_blur",
    "gradient_magnitude",
    "jitter_transform",
    "make_pose_change",
    "quadrant_patches",
    "random_resized_crops",
    "rotate_images",
    "sample_crop_boxes",
    "sample_quadrant_boxes",
]
