"""Pose-changing augmentations: horizontal flip, in-plane roll rotation, 3D re-render.

PCL (Liu et al., CVPR 2023) contrasts the pose feature of a face against
pose-changed views of the *same* face; the public code uses only the
horizontal flip, which maps yaw -> -yaw and roll -> -roll and leaves pitch, so
a frontal face's "negative" is almost the positive. Two stronger pose changes
are offered beside it: an in-plane rotation (changes roll only) and, on
SynthFaces, a true re-render of the same face at another head pose.

Every pose change is a callable
``(images (B, 3, H, W), pose (B, 3) | None, generator, factors=None) -> (images_hat, pose_hat)``
with ``pose = (yaw, pitch, roll)`` in degrees; an unknown pose (``None``) gives
``pose_hat = None``. Build one with :func:`make_pose_change`.

Angle conventions are SynthFaces' (:class:`pclkit.data.synthfaces.Factors`):
camera frame x right, y up, z towards the viewer; head rotation
``R = Rz(roll) Rx(-pitch) Ry(yaw)``; positive roll tilts the head
counter-clockwise on screen. Because roll is the outermost rotation, about the
viewing axis, rotating the image counter-clockwise by ``a`` degrees changes
roll by exactly ``+a`` and leaves yaw and pitch (orthographic camera).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from pclkit.augment._checks import check_generator, check_images, check_range, uniform
from pclkit.augment.grid import affine_sampling_grid

if TYPE_CHECKING:
    from pclkit.data.synthfaces import Factors

#: multiply a (yaw, pitch, roll) pose by this to get the pose of the mirror image
FLIP_POSE_SIGNS = (-1.0, 1.0, -1.0)

PoseChange = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


def check_pose(pose: torch.Tensor | None, batch: int) -> None:
    """Raise unless ``pose`` is ``None`` or a float ``(B, 3)`` tensor of (yaw, pitch, roll) degrees."""
    if pose is None:
        return
    if not isinstance(pose, torch.Tensor) or not pose.is_floating_point() or pose.shape != (batch, 3):
        got = f"{pose.dtype} {tuple(pose.shape)}" if isinstance(pose, torch.Tensor) else type(pose).__name__
        raise ValueError(
            f"pose must be a float tensor (B, 3) = ({batch}, 3) of (yaw, pitch, roll) degrees or None, got {got}; "
            "pass pose=None where only a pose class is known"
        )


def flip_pose(pose: torch.Tensor) -> torch.Tensor:
    """Pose ``(B, 3)`` of the horizontally mirrored images: yaw -> -yaw, pitch kept, roll -> -roll."""
    return pose * torch.tensor(FLIP_POSE_SIGNS, dtype=pose.dtype, device=pose.device)


def wrap_degrees(angle: torch.Tensor) -> torch.Tensor:
    """Angles mapped into [-180, 180)."""
    return torch.remainder(angle + 180.0, 360.0) - 180.0


def rotate_images(images: torch.Tensor, degrees: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Rotate each image about its centre, counter-clockwise on screen by ``degrees`` (bilinear).

    Args:
        images: ``(B, C, H, W)`` float.
        degrees: ``(B,)`` angles; positive = counter-clockwise as displayed.
        padding_mode: ``grid_sample`` fill for the corners that come from
            outside the image: ``"border"`` (replicate), ``"reflection"`` or ``"zeros"``.

    Returns:
        ``(B, C, H, W)``, same dtype.
    """
    batch, channels, height, width = images.shape
    if degrees.shape != (batch,):
        raise ValueError(f"degrees must have shape (B,) = ({batch},), got {tuple(degrees.shape)}")
    angle = torch.deg2rad(degrees.to(device=images.device, dtype=torch.float32))
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    # output pixel p samples the input at R^-1 p; with y pointing down on screen a
    # counter-clockwise turn is [[c, s], [-s, c]], whose inverse is [[c, -s], [s, c]].
    # The H/W factors keep the turn rigid in pixels for non-square images.
    theta = torch.stack(
        [torch.stack([cos, -sin * height / width, zero], 1), torch.stack([sin * width / height, cos, zero], 1)], 1
    ).to(images.dtype)
    grid = affine_sampling_grid(theta, height, width)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


@dataclass(frozen=True)
class HorizontalFlip:
    """Mirror left-right (the reference's only pose change): yaw -> -yaw, roll -> -roll, pitch kept."""

    def __call__(
        self,
        images: torch.Tensor,
        pose: torch.Tensor | None,
        generator: torch.Generator,
        factors: Factors | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_images(images)
        check_pose(pose, images.shape[0])
        return images.flip(-1), None if pose is None else flip_pose(pose)


@dataclass(frozen=True)
class RollRotation:
    """In-plane rotation by a per-image angle: roll += angle, yaw and pitch kept.

    The angle's magnitude is uniform in ``[min_degrees, max_degrees]`` and its
    sign is a fair coin (positive = counter-clockwise on screen = SynthFaces'
    positive roll). A ``min_degrees`` above 0 guarantees a real pose change.
    The new roll is wrapped into [-180, 180); it may leave SynthFaces'
    sampling range ([-30, 30] by default), which is still a valid label.
    """

    max_degrees: float = 30.0
    min_degrees: float = 10.0
    padding_mode: str = "border"

    def __post_init__(self) -> None:
        check_range(self.min_degrees, self.max_degrees, "(min_degrees, max_degrees)", minimum=0.0)
        if self.max_degrees > 180:
            raise ValueError(f"max_degrees must be <= 180, got {self.max_degrees}")
        if self.padding_mode not in ("border", "reflection", "zeros"):
            raise ValueError(f"padding_mode must be 'border', 'reflection' or 'zeros', got {self.padding_mode!r}")

    def sample_angles(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """``(B,)`` signed rotation angles in degrees."""
        draws = uniform(generator, (batch, 2), device)
        magnitude = self.min_degrees + (self.max_degrees - self.min_degrees) * draws[:, 0]
        return torch.where(draws[:, 1] < 0.5, -magnitude, magnitude)

    def __call__(
        self,
        images: torch.Tensor,
        pose: torch.Tensor | None,
        generator: torch.Generator,
        factors: Factors | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_images(images)
        check_generator(generator, images.device)
        check_pose(pose, images.shape[0])
        angles = self.sample_angles(images.shape[0], generator, images.device)
        rotated = rotate_images(images, angles, self.padding_mode)
        if pose is None:
            return rotated, None
        pose_hat = pose.clone()
        pose_hat[:, 2] = wrap_degrees(pose[:, 2] + angles.to(pose))
        return rotated, pose_hat


#: how Render3D draws a new pose (``Render3D.change_axes``)
CHANGE_AXES = ("all", "one")


@dataclass(frozen=True)
class Render3D:
    """Re-render the same SynthFaces face (identity, expression, AUs, nuisance) at another head pose.

    Needs ``factors`` (the :class:`~pclkit.data.synthfaces.Factors` the images
    were rendered from); ``pose`` is not needed — the current pose is
    ``factors.pose`` — and ``pose_hat`` is always returned, since the new pose
    is known exactly.

    New pose, per image, with ``change_axes="all"`` (the default): yaw uniform
    over the part of ``yaw_range`` at least ``min_yaw_change`` degrees away
    from the current yaw (so the view really turns); pitch and roll uniform in
    their ranges, or kept when the range is ``None``. With
    ``change_axes="one"`` (this project's option): one axis per image, chosen
    uniformly among yaw, pitch and roll, moves by at least its minimum change
    (``min_yaw_change``, ``min_pitch_change``, ``min_roll_change``) within its
    range, and the other two keep their current values -- so a pose negative
    that keeps the yaw can only be told apart by pitch or roll, which a pose
    code must then hold too. Each minimum must be at most half its range so
    that every current angle has somewhere to go.
    """

    yaw_range: tuple[float, float] = (-90.0, 90.0)
    pitch_range: tuple[float, float] | None = (-40.0, 40.0)
    roll_range: tuple[float, float] | None = (-30.0, 30.0)
    min_yaw_change: float = 45.0
    change_axes: str = "all"
    min_pitch_change: float = 10.0
    min_roll_change: float = 8.0

    def __post_init__(self) -> None:
        check_range(*self.yaw_range, name="yaw_range")
        for name in ("pitch_range", "roll_range"):
            if getattr(self, name) is not None:
                check_range(*getattr(self, name), name=name)
        if self.change_axes not in CHANGE_AXES:
            raise ValueError(f"change_axes must be one of {', '.join(CHANGE_AXES)}, got {self.change_axes!r}")
        checked = [("yaw", self.yaw_range, self.min_yaw_change)]
        if self.change_axes == "one":
            if self.pitch_range is None or self.roll_range is None:
                raise ValueError("change_axes='one' moves pitch or roll too: it needs pitch_range and roll_range")
            checked += [("pitch", self.pitch_range, self.min_pitch_change),
                        ("roll", self.roll_range, self.min_roll_change)]
        for axis, (low, high), minimum in checked:
            if not 0.0 <= minimum <= (high - low) / 2:
                raise ValueError(
                    f"min_{axis}_change must be in [0, {(high - low) / 2:g}] (half the {axis} range "
                    f"{(low, high)}), got {minimum}"
                )

    def sample_pose(self, current: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """New poses ``(B, 3)`` for current poses ``(B, 3)`` (degrees), same device and dtype."""
        if self.change_axes == "one":
            return self._sample_one_axis(current, generator)
        draws = uniform(generator, (current.shape[0], 3), current.device).to(current.dtype)
        columns = [_turn(current[:, 0], self.yaw_range, self.min_yaw_change, draws[:, 0])]
        for column, angle_range in ((1, self.pitch_range), (2, self.roll_range)):
            if angle_range is None:
                columns.append(current[:, column])
            else:
                columns.append(angle_range[0] + (angle_range[1] - angle_range[0]) * draws[:, column])
        return torch.stack(columns, dim=1)

    def _sample_one_axis(self, current: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``change_axes="one"``: one axis per image (column 3 of the draws picks it) turns, the others stay."""
        draws = uniform(generator, (current.shape[0], 4), current.device).to(current.dtype)
        axis = (draws[:, 3] * 3).long().clamp_max(2)  # (B,) 0 yaw, 1 pitch, 2 roll
        rules = ((self.yaw_range, self.min_yaw_change), (self.pitch_range, self.min_pitch_change),
                 (self.roll_range, self.min_roll_change))
        columns = [torch.where(axis == column, _turn(current[:, column], angle_range, minimum, draws[:, column]),
                               current[:, column])
                   for column, (angle_range, minimum) in enumerate(rules)]
        return torch.stack(columns, dim=1)

    def __call__(
        self,
        images: torch.Tensor,
        pose: torch.Tensor | None,
        generator: torch.Generator,
        factors: Factors | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from pclkit.data.synthfaces import render  # lazy: the renderer is only needed here

        check_images(images)
        check_generator(generator, images.device)
        check_pose(pose, images.shape[0])
        if factors is None:
            raise ValueError("render3d needs the SynthFaces factors of the images (factors=...)")
        if len(factors) != images.shape[0]:
            raise ValueError(f"factors describe {len(factors)} faces but images hold {images.shape[0]}")
        height, width = images.shape[-2:]
        if height != width:
            raise ValueError(f"render3d renders square images; got {height}x{width}")
        factors = factors.to(images.device)
        pose_hat = self.sample_pose(factors.pose.float(), generator)
        rendered = render(factors.with_pose(pose_hat), size=height)
        return rendered.to(images.dtype), pose_hat


def _turn(angle: torch.Tensor, angle_range: tuple[float, float], minimum: float, draw: torch.Tensor) -> torch.Tensor:
    """New angles (B,), uniform over the part of ``angle_range`` at least ``minimum`` from ``angle`` (B,).

    ``angle`` is clamped into the range first; the allowed set is [low, a - d] U [a + d, high] and
    ``draw`` (B,) in [0, 1) places a point on their joint length.
    """
    low, high = angle_range
    angle = angle.clamp(low, high)
    below = (angle - minimum - low).clamp_min(0.0)
    above = (high - angle - minimum).clamp_min(0.0)
    position = draw * (below + above)
    return torch.where(position < below, low + position, angle + minimum + (position - below))


POSE_CHANGES: dict[str, type] = {"flip": HorizontalFlip, "roll": RollRotation, "render3d": Render3D}


def make_pose_change(name: str, **options: object) -> PoseChange:
    """Build a pose change by name: ``"flip"``, ``"roll"`` or ``"render3d"``.

    ``options`` are the fields of :class:`HorizontalFlip` (none),
    :class:`RollRotation` or :class:`Render3D`.
    The result is ``(images, pose, generator, factors=None) -> (images_hat, pose_hat)``.
    """
    if name not in POSE_CHANGES:
        raise ValueError(f"unknown pose change {name!r}; choose one of {sorted(POSE_CHANGES)}")
    cls = POSE_CHANGES[name]
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"pose change {name!r} has no option(s) {unknown}; allowed: {sorted(allowed) or 'none'}")
    return cls(**options)
