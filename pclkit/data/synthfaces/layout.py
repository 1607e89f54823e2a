"""SynthFaces scene layout: camera framing, rotations, and the parts collector.

The face is modelled in a head frame (x towards the subject's left = image
right when frontal, y up, z forward out of the face), in "head units" (head
about 1.25 tall). :class:`SceneParts` collects ellipsoid parts given in that
frame and moves them into camera space (head pose, framing); :class:`FaceLayout`
holds the key positions of a batch of faces that every part is placed against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pclkit.data.synthfaces.factors import NUISANCE_NAMES, Factors
from pclkit.data.synthfaces.identity import IdentityParams
from pclkit.data.synthfaces.raycast import PartGroup


@dataclass(frozen=True)
class SceneConfig:
    """Camera framing: head units -> image half-widths (before the per-sample scale)."""

    zoom: float = 1.35
    #: depth of the head's turning axis (the head turns about (0, 0, pivot_z) in head units)
    pivot_z: float = 0.25
    #: draw the neck (upright in the camera frame; the head turns on it)
    neck: bool = True


# ---------------------------------------------------------------------------
# small geometry helpers on (B,) tensors


def rot_x(a: Tensor) -> Tensor:
    """Right-handed rotation about x by angles ``a`` (...,) radians -> (..., 3, 3)."""
    c, s, o, z = a.cos(), a.sin(), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*a.shape, 3, 3)


def rot_y(a: Tensor) -> Tensor:
    """Right-handed rotation about y (maps +z towards +x for a > 0) -> (..., 3, 3)."""
    c, s, o, z = a.cos(), a.sin(), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*a.shape, 3, 3)


def rot_z(a: Tensor) -> Tensor:
    """Right-handed rotation about z (counter-clockwise on screen for a > 0) -> (..., 3, 3)."""
    c, s, o, z = a.cos(), a.sin(), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*a.shape, 3, 3)


def head_rotation(pose_deg: Tensor) -> Tensor:
    """(B,3,3) camera-from-head rotation for (yaw, pitch, roll) degrees: Rz(roll) Rx(-pitch) Ry(yaw).

    Ry(yaw) turns the nose (0,0,1) towards +x (image right); Rx(-pitch) lifts it
    towards +y; Rz(roll) turns counter-clockwise on screen.
    """
    yaw, pitch, roll = torch.deg2rad(pose_deg).unbind(-1)
    return rot_z(roll) @ rot_x(-pitch) @ rot_y(yaw)


def vec3(x: Tensor | float, y: Tensor | float, z: Tensor | float, like: Tensor) -> Tensor:
    """Stack three (B,) tensors or floats into (B, 3)."""
    return torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device).expand_as(like) for v in (x, y, z)], -1)


def ellipsoid_front(x: Tensor, y: Tensor, center: Tensor, radii: Tensor) -> Tensor:
    """z of the front of an axis-aligned ellipsoid above (x, y); far behind where outside. (B,)"""
    inside = 1 - ((x - center[:, 0]) / radii[:, 0]) ** 2 - ((y - center[:, 1]) / radii[:, 1]) ** 2
    return torch.where(inside > 0, center[:, 2] + radii[:, 2] * inside.clamp_min(0).sqrt(), torch.full_like(x, -10.0))


# ---------------------------------------------------------------------------


class SceneParts:
    """Collects parts in head coordinates and converts them to camera space."""

    def __init__(self, factors: Factors, config: SceneConfig):
        nuisance = dict(zip(NUISANCE_NAMES, factors.nuisance.unbind(1)))
        self.batch = len(factors)
        self.device = factors.pose.device
        self.rotation = head_rotation(factors.pose)  # (B,3,3)
        self.pivot = torch.tensor([0.0, 0.0, config.pivot_z], device=self.device)
        self.scale = config.zoom * nuisance["scale"]  # (B,)
        zeros = torch.zeros_like(self.scale)
        self.shift = torch.stack([nuisance["shift_x"], nuisance["shift_y"], zeros], -1)
        self.groups: list[PartGroup] = []

    def add(
        self,
        name: str,
        centers: list[Tensor],
        radii: list[Tensor],
        albedo: Tensor | list[Tensor],
        rotations: list[Tensor] | None = None,
        enabled: Tensor | list[Tensor] | None = None,
        in_head_frame: bool = True,
        params: dict[str, Tensor] | None = None,
        part_params: dict[str, Tensor] | None = None,
        **material,
    ) -> None:
        """Add P parts (lists of (B,3) centres, (B,3) radii, optional (B,3,3) local rotations)."""
        center = torch.stack(centers, 1)  # (B,P,3)
        p = center.shape[1]
        eye = torch.eye(3, device=self.device).expand(self.batch, p, 3, 3)
        local_rot = eye if rotations is None else torch.stack(rotations, 1)
        radius = torch.stack(radii, 1)
        colour = torch.stack(albedo, 1) if isinstance(albedo, list) else albedo[:, None, :].expand(-1, p, -1)
        if isinstance(enabled, list):
            enabled = torch.stack(enabled, 1)
        elif enabled is not None:
            enabled = enabled[:, None].expand(-1, p)
        s = self.scale[:, None, None]
        if in_head_frame:
            center = s * (self.rotation[:, None] @ (center - self.pivot)[..., None])[..., 0] + self.shift[:, None]
            rot = self.rotation[:, None] @ local_rot
        else:
            center = s * center + self.shift[:, None]
            rot = local_rot
        self.groups.append(
            PartGroup(name, center, rot.contiguous(), radius * s, colour.contiguous(), enabled, params=params or {},
                      part_params=part_params or {}, **material)
        )


class FaceLayout:
    """Key positions of one batch of faces in head coordinates (all (B,) tensors)."""

    def __init__(self, ident: IdentityParams, au: dict[str, Tensor]):
        self.id = ident
        self.au = au
        like = ident.eye_spacing
        self.like = like
        self.zeros = torch.zeros_like(like)
        self.cranium_c = vec3(0.0, 0.04, 0.0, like)
        self.cranium_r = ident.head_radii
        self.jaw_drop = 0.26 * au["AU26"]
        jaw_ry = 0.34 * ident.jaw_length + self.jaw_drop / 2
        self.jaw_c = vec3(0.0, -0.28 - self.jaw_drop / 2, 0.1, like)
        self.jaw_r = vec3(0.33 * ident.jaw_width, jaw_ry, 0.47, like)
        self.eye_y = ident.eye_height
        self.mouth_y = ident.eye_height - ident.mouth_drop

    def surface_z(self, x: Tensor | float, y: Tensor | float) -> Tensor:
        x = torch.as_tensor(x, dtype=self.like.dtype).expand_as(self.like)
        y = torch.as_tensor(y, dtype=self.like.dtype).expand_as(self.like)
        return torch.maximum(
            ellipsoid_front(x, y, self.cranium_c, self.cranium_r), ellipsoid_front(x, y, self.jaw_c, self.jaw_r)
        )

    def surface_yaw(self, x: Tensor, y: Tensor) -> Tensor:
        """Angle (B,) of the cranium normal around y at (x, y): parts there turn with the surface."""
        rx, rz = self.cranium_r[:, 0], self.cranium_r[:, 2]
        sin_a = (x / rx).clamp(-0.95, 0.95)
        return torch.atan2(sin_a * rz / rx, (1 - sin_a**2).sqrt())
