"""SynthFaces scene: factors -> the parts of each face in camera space, lighting, background.

:func:`build_scene` places every part of :mod:`pclkit.data.synthfaces.parts`
for a batch of :class:`~pclkit.data.synthfaces.factors.Factors` (identity,
expression and AUs, head pose, nuisance) in the frame of
:mod:`pclkit.data.synthfaces.layout`; :mod:`pclkit.data.synthfaces.raycast`
draws them. :func:`landmarks` projects a few face points the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pclkit.data.synthfaces.factors import AU_NAMES, HIDDEN_AU_NAMES, NUISANCE_NAMES, Factors, hidden_aus
from pclkit.data.synthfaces.identity import identity_params
from pclkit.data.synthfaces.layout import FaceLayout, SceneConfig, SceneParts, vec3
from pclkit.data.synthfaces.parts import (
    add_accessories,
    add_brows,
    add_eyes,
    add_hair,
    add_head,
    add_mouth,
    add_neck,
    add_nose,
)
from pclkit.data.synthfaces.raycast import Lighting, PartGroup

__all__ = ["LANDMARK_NAMES", "SceneConfig", "build_scene", "landmarks"]


def build_scene(
    factors: Factors, symmetric: bool = False, config: SceneConfig = SceneConfig()
) -> tuple[list[PartGroup], Lighting, Tensor]:
    """Parts (camera space), lighting and background colour (B,3) for a batch of factors."""
    ident = identity_params(factors.identity, symmetric=symmetric)
    au = dict(zip(AU_NAMES, factors.aus.clamp(0, 1).unbind(1)))
    au.update(zip(HIDDEN_AU_NAMES, hidden_aus(factors.expression, factors.aus.clamp(0, 1)).unbind(1)))
    scene = SceneParts(factors, config)
    face = FaceLayout(ident, au)
    add_head(scene, face)
    add_eyes(scene, face)
    add_brows(scene, face)
    add_nose(scene, face)
    add_mouth(scene, face)
    add_hair(scene, face)
    add_accessories(scene, face)
    if config.neck:
        add_neck(scene, face)
    nuisance = dict(zip(NUISANCE_NAMES, factors.nuisance.unbind(1)))
    light_dir = torch.stack([nuisance["light_x"], nuisance["light_y"], nuisance["light_z"]], -1)
    light = Lighting(light_dir / light_dir.norm(dim=-1, keepdim=True), nuisance["light_intensity"], nuisance["ambient"])
    background = torch.stack([nuisance["bg_r"], nuisance["bg_g"], nuisance["bg_b"]], -1)
    return scene.groups, light, background


LANDMARK_NAMES: tuple[str, ...] = ("eye_left", "eye_right", "brow_left", "brow_right", "nose_tip", "mouth", "chin")


def landmarks(factors: Factors, size: int = 64, symmetric: bool = False, config: SceneConfig = SceneConfig()) -> Tensor:
    """Pixel positions (B, 7, 2) as (column, row) of ``LANDMARK_NAMES`` in a ``size`` image.

    "left"/"right" are image sides of a frontal face. Points are on the face
    surface of the neutral layout (AU offsets of brows/mouth not included);
    occlusion is not checked.
    """
    ident = identity_params(factors.identity, symmetric=symmetric)
    au = dict(zip(AU_NAMES, factors.aus.clamp(0, 1).unbind(1)))
    au.update(zip(HIDDEN_AU_NAMES, hidden_aus(factors.expression, factors.aus.clamp(0, 1)).unbind(1)))
    face = FaceLayout(ident, au)
    scene = SceneParts(factors, config)
    like = face.like
    points = []
    for x, y in [
        (-ident.eye_spacing, face.eye_y),
        (ident.eye_spacing, face.eye_y),
        (-ident.eye_spacing, face.eye_y + ident.brow_height),
        (ident.eye_spacing, face.eye_y + ident.brow_height),
    ]:
        points.append(vec3(x, y, face.surface_z(x, y), like))
    tip_y = face.eye_y - 0.21 * ident.nose_length
    points.append(vec3(0.0, tip_y, face.surface_z(0.0, tip_y) + 0.13 * ident.nose_depth, like))
    points.append(vec3(0.0, face.mouth_y, face.surface_z(0.0, face.mouth_y), like))
    chin_y = -0.54 * ident.jaw_length - face.jaw_drop
    points.append(vec3(0.0, chin_y, face.surface_z(0.0, chin_y), like))
    local = torch.stack(points, 1)  # (B,7,3)
    cam = scene.scale[:, None, None] * (scene.rotation[:, None] @ (local - scene.pivot)[..., None])[..., 0] + scene.shift[:, None]
    column = (cam[..., 0] + 1) / 2 * size
    row = (1 - cam[..., 1]) / 2 * size
    return torch.stack([column, row], -1)
