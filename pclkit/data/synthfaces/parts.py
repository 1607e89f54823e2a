"""SynthFaces parts: the ellipsoids of a face, placed in the head frame of
:mod:`pclkit.data.synthfaces.layout`, and how action units change them.

Parts are ellipsoids; action units move, rotate, resize or
clip them following the FACS appearance changes (Ekman & Friesen 1978):

* AU1 inner brow raiser, AU2 outer brow raiser, AU4 brow lowerer: brow
  height, tilt and inward pull;
* AU6 cheek raiser: cheeks rise and bulge, lower lids rise (eye narrowing);
* AU9 nose wrinkler: nose wings rise and widen, wrinkle lines on the bridge,
  upper lip and brows follow a little;
* AU12 lip corner puller: the lips' corner segments rotate up (smile curve) and widen;
* AU25 lips part: lips separate and show teeth and mouth cavity;
* AU26 jaw drop: jaw, chin and lower lip move down.

Unlabelled AUs (AU5 upper lid raiser, AU7 lid tightener, AU10 upper lip
raiser, AU15 lip corner depressor, AU20 lip stretcher, AU23 lip tightener)
follow the expression (see :func:`pclkit.data.synthfaces.factors.hidden_aus`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pclkit.data.synthfaces.identity import LONG, SHORT
from pclkit.data.synthfaces.layout import FaceLayout, SceneParts, rot_x, rot_y, rot_z, vec3

SCLERA = (0.92, 0.89, 0.86)
PUPIL = (0.02, 0.02, 0.02)
TEETH = (0.94, 0.91, 0.82)
MOUTH_INSIDE = (0.28, 0.06, 0.07)


# ---------------------------------------------------------------------------
# clip and texture rules: q is (3, *H) unit-sphere coordinates of hits (H = (K,) or (rows,
# columns)); params hold each hit's values, broadcastable against q[0]
# (pclkit.data.synthfaces.raycast.rule_params): per image or per part one value, a colour
# three (leading axis); "part" the part index within the group


def _const_colour(rgb: tuple[float, float, float], like: Tensor) -> Tensor:
    """A fixed colour (3, 1, ...) to broadcast against q (3, *H)."""
    return torch.tensor(rgb, device=like.device).reshape(3, *([1] * (like.dim() - 1)))


def _ear_texture(q: Tensor, params: dict) -> Tensor:
    # the concha (darker hollow) is on the outer face: -x for the left ear (part 0), +x for the right
    side = params["part"] * 2.0 - 1.0
    concha = (q[0] * side > 0) & (q[1] ** 2 * 1.6 + (q[2] + 0.15) ** 2 < 0.35)
    return params["skin"] * torch.where(concha, 0.68, 1.0)


def _eye_texture(q: Tensor, params: dict) -> Tensor:
    rho2 = q[0] ** 2 + q[1] ** 2
    front = q[2] > 0
    iris_r2, pupil_r2 = 0.52**2, 0.24**2
    limbal = 1 - 0.55 * (rho2 / iris_r2) ** 2  # darker iris rim
    iris = params["iris"] * limbal
    colour = torch.where(front & (rho2 < iris_r2), iris, _const_colour(SCLERA, q))
    return torch.where(front & (rho2 < pupil_r2), _const_colour(PUPIL, q), colour)


def _lid_edge(q: Tensor, params: dict) -> Tensor:
    """Signed distance-like value > 0 on the kept lid skin; the opening edge is a parabola.

    Parts flagged ``upper`` keep q_y above ``open - c q_x^2``, the lower lids
    keep q_y below ``-(open - c q_x^2)`` (an almond-shaped opening).
    """
    edge = params["open"] - LID_CURVE * q[0] ** 2
    return torch.where(params["upper"], q[1] - edge, -edge - q[1])


def _lid_clip(q: Tensor, params: dict) -> Tensor:
    return _lid_edge(q, params) > 0


def _lid_texture(q: Tensor, params: dict) -> Tensor:
    """Brightness map: dark lash line along the edge (stronger on the upper lid), crease shadow above it."""
    edge = _lid_edge(q, params)
    upper_shade = torch.where(edge < 0.13, 0.22, torch.where(edge < 0.3, 0.82, 1.0))
    lower_shade = torch.where(edge < 0.08, 0.62, 1.0)
    return torch.where(params["upper"], upper_shade, lower_shade)


def _bridge_texture(q: Tensor, params: dict) -> Tensor:
    # AU9: horizontal wrinkle lines across the upper bridge
    lines = (torch.sin(q[1] * 18.0) > 0.3) & (q[1] > 0.05)
    return params["skin"] * (1 - 0.9 * params["wrinkle"] * lines)


def _hair_streaks(q: Tensor, params: dict) -> Tensor:
    """Brightness map (H): fine streaks across the strands."""
    return torch.cos(q[0] * 26.0 / (1.35 - q[1])).mul_(0.06).add_(0.94)  # even in x: mirror-symmetric


def _cap_clip(q: Tensor, params: dict) -> Tensor:
    # hairline: a plane rising towards the front, tilted sideways by the parting
    # the hairline is highest at the forehead, lower at the sides, and drops to the nape at the back;
    # the parting tilts it sideways and it dips at the temples
    back = (-q[2]).clamp_min_(0)
    threshold = params["front"] - HAIR_SIDE_DROP * (1 - q[2]) - HAIR_BACK_DROP * back
    threshold = threshold + params["parting"] * q[0] - TEMPLE_DIP * q[0] * q[0]
    return q[1] > threshold


def _beard_clip(q: Tensor, params: dict) -> Tensor:
    radii = params["radii"]  # (3, ...) per hit
    x, y = q[0] * radii[0], q[1] * radii[1]  # head-axis offsets from the beard centre
    # the beard line runs under the mouth and rises along a parabola towards the sideburns
    return y < params["mouth_limit"] + BEARD_CURVE * x * x


def _rim_clip(q: Tensor, params: dict) -> Tensor:
    return q[0] ** 2 + q[1] ** 2 > 0.76**2


LID_CURVE = 0.75
HAIR_SIDE_DROP = 0.45
HAIR_BACK_DROP = 0.7
TEMPLE_DIP = 0.2
BEARD_CURVE = 1.6
CHEEK_RADII = (0.11, 0.085, 0.06)


# ---------------------------------------------------------------------------
# parts


def add_head(scene: SceneParts, face: FaceLayout) -> None:
    ident, au, like = face.id, face.au, face.like
    skin = ident.skin
    scene.add("cranium", [face.cranium_c], [face.cranium_r], skin, coarse=True)
    scene.add("jaw", [face.jaw_c], [face.jaw_r], skin, coarse=True)
    chin_c = vec3(0.0, -0.53 * ident.jaw_length - face.jaw_drop, 0.3, like)
    chin_r = vec3(0.11 * ident.chin, 0.075 * ident.chin, 0.125, like)
    scene.add("chin", [chin_c], [chin_r], skin, coarse=True)
    # cheeks: flat pads lying on the face surface; AU6 raises them and makes them bulge
    # a smile (AU12) also pushes the cheeks up a little, as the zygomaticus pulls on them
    lift = 0.14 * au["AU6"] + 0.05 * au["AU12"]
    bulge = -0.006 + 0.06 * au["AU6"] + 0.015 * au["AU12"]  # flush with (just under) the skin until raised
    cheeks, cheek_rots = [], []
    for side in (-1.0, 1.0):
        x = side * (ident.eye_spacing + 0.04)
        y = face.eye_y - 0.14 + lift
        yaw = face.surface_yaw(x, y)
        depth = CHEEK_RADII[2] - bulge
        cheeks.append(vec3(x - yaw.sin() * depth, y, face.surface_z(x, y) - yaw.cos() * depth, like))
        cheek_rots.append(rot_y(yaw))
    blush = skin * (1 + 0.2 * au["AU6"][:, None] * torch.tensor([0.5, -0.4, -0.4], device=like.device))
    cheek_r = vec3(*CHEEK_RADII, like)
    scene.add("cheeks", cheeks, [cheek_r, cheek_r], blush, rotations=cheek_rots, coarse=True)
    # ears: flat ellipsoids standing out backwards
    ears, ear_rot = [], []
    for side in (-1.0, 1.0):
        ears.append(vec3(side * (ident.head_radii[:, 0] - 0.01), face.eye_y - 0.07, -0.06, like))
        ear_rot.append(rot_y(-side * ident.ear_angle))
    ear_r = vec3(0.03, 0.11 * ident.ear_size, 0.065 * ident.ear_size, like)
    ear_skin = skin * torch.tensor([1.0, 0.93, 0.93], device=like.device)
    scene.add(
        "ears", ears, [ear_r, ear_r], ear_skin, rotations=ear_rot, texture=_ear_texture, params={"skin": ear_skin}, coarse=True
    )


def add_eyes(scene: SceneParts, face: FaceLayout) -> None:
    ident, au, like = face.id, face.au, face.like
    centers, lid_rots = [], []
    for side in (-1.0, 1.0):
        x = side * ident.eye_spacing
        y = face.eye_y + side * ident.asym_eye
        z = face.surface_z(x, y) - 0.55 * ident.eye_size  # the eyeball bulges 0.45 r out of the skin
        centers.append(vec3(x, y, z, like))
        lid_rots.append(rot_y(face.surface_yaw(x, y) * 0.5))  # lids follow the face surface a little
    r_eye = vec3(ident.eye_size, ident.eye_size, ident.eye_size, like)
    # eyeballs look straight ahead (no rotation): iris and pupil are a texture on the front
    scene.add(
        "eyeballs",
        centers,
        [r_eye, r_eye],
        ident.skin,
        texture=_eye_texture,
        params={"iris": ident.iris_colour},
        specular=0.5,
        shininess=40.0,
    )

    # lids: skin shells around the eyeball clipped along parabolas (an almond-shaped opening)
    upper_open = ident.eye_open + 0.6 * au["AU5"] - 0.3 * au["AU6"] - 0.35 * au["AU7"] - 0.2 * au["AU4"] - 0.2 * au["AU9"]
    lower_open = ident.eye_open - 0.55 * au["AU6"] - 0.3 * au["AU7"] - 0.15 * au["AU9"] + 0.1 * au["AU5"]
    r_lid = r_eye * 1.1
    lid_centers = [c - vec3(0.0, 0.0, 0.1 * ident.eye_size, like) for c in centers]
    openings = torch.stack([upper_open.clamp(0.05, 0.8)] * 2 + [lower_open.clamp(0.02, 0.8)] * 2, 1)
    upper = torch.tensor([True, True, False, False], device=like.device).expand(scene.batch, 4)
    scene.add("lids", lid_centers * 2, [r_lid] * 4, ident.skin, rotations=lid_rots * 2, clip=_lid_clip,
              texture=_lid_texture, part_params={"open": openings, "upper": upper})


def add_brows(scene: SceneParts, face: FaceLayout) -> None:
    ident, au, like = face.id, face.au, face.like
    inner = 0.18 * au["AU1"] - 0.12 * au["AU4"] - 0.04 * au["AU9"]
    outer = 0.18 * au["AU2"] - 0.04 * au["AU4"] - 0.01 * au["AU9"]
    pull_in = 0.05 * au["AU4"]
    half = ident.brow_length
    centers, rots = [], []
    for side in (-1.0, 1.0):
        x = side * (ident.eye_spacing + 0.015 - pull_in)
        y = face.eye_y + ident.brow_height + (inner + outer) / 2 + side * ident.asym_brow
        centers.append(vec3(x, y, face.surface_z(x, y) - 0.008, like))
        # the inner end is towards x = 0, so raising it turns the brow by -side; +0.12 rad natural arch
        tilt = torch.atan2(inner - outer, 2 * half) + 0.12
        rots.append(rot_y(face.surface_yaw(x, y)) @ rot_z(-side * tilt))
    radii = vec3(half, ident.brow_thickness, 0.03, like)
    scene.add("brows", centers, [radii, radii], ident.hair_colour * 0.75 + 0.03, rotations=rots)


def add_nose(scene: SceneParts, face: FaceLayout) -> None:
    ident, au, like = face.id, face.au, face.like
    skin = ident.skin
    length = 0.21 * ident.nose_length
    root_y = face.eye_y + 0.01
    tip_y = face.eye_y - length
    root_z = face.surface_z(0.0, root_y)
    tip_z = face.surface_z(0.0, tip_y) + 0.13 * ident.nose_depth
    # bridge: an elongated ellipsoid from root to tip, tilted so its lower end sticks out
    mid = vec3(0.0, (root_y + tip_y) / 2, (root_z + tip_z) / 2 - 0.04, like)
    tilt = torch.atan2(tip_z - root_z, root_y - tip_y)
    bridge_r = vec3(0.038 * ident.nose_width, length * 0.55, 0.06, like)
    scene.add("nose_bridge", [mid], [bridge_r], skin, rotations=[rot_x(tilt)], texture=_bridge_texture,
              params={"skin": skin, "wrinkle": au["AU9"]})
    tip_r = 0.045 * (0.8 + 0.2 * ident.nose_width)
    tip = vec3(0.0, tip_y, tip_z - 0.045, like)
    # wings: AU9 lifts and widens them; nostrils are dark hollows under the tip
    lift = 0.05 * au["AU9"] + 0.015 * au["AU10"]
    wings = [
        vec3(side * (0.045 * ident.nose_width + 0.02 * au["AU9"]), tip_y - 0.005 + lift, tip_z - 0.085, like)
        for side in (-1.0, 1.0)
    ]
    nostrils = [vec3(side * 0.022, tip_y - 0.04 + lift * 0.5, tip_z - 0.06, like) for side in (-1.0, 1.0)]
    wing_r = vec3(0.03, 0.026, 0.035, like)
    nostril_r = vec3(0.017, 0.009, 0.022, like)
    scene.add("nose", [tip, *wings, *nostrils], [vec3(tip_r, tip_r * 0.95, tip_r, like), wing_r, wing_r, nostril_r, nostril_r],
              [skin * 1.02, skin * 0.97, skin * 0.97, skin * 0.3, skin * 0.3])


def add_mouth(scene: SceneParts, face: FaceLayout) -> None:
    ident, au, like = face.id, face.au, face.like
    width = ident.mouth_width * (1 + 0.7 * au["AU12"] + 0.5 * au["AU20"] - 0.25 * au["AU23"])
    thick = ident.lip_thickness * (1 - 0.5 * au["AU23"])
    corner = 1.3 * au["AU12"] - 0.9 * au["AU15"] - 0.2 * au["AU20"]
    up = 0.03 * au["AU25"] + 0.04 * au["AU10"] + 0.015 * au["AU9"]
    down = 0.08 * au["AU25"] + face.jaw_drop
    x0 = ident.asym_mouth
    y0 = face.mouth_y
    z0 = face.surface_z(x0, y0) - 0.005
    upper_pivot = vec3(x0, y0 + 0.7 * thick + up, z0, like)
    lower_pivot = vec3(x0, y0 - 0.8 * thick - down, z0 - 0.004, like)

    def segments(pivot: Tensor, radii: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """A straight middle segment and two corner segments hinged at its ends.

        AU12 turns the corner segments up (the smile curve), AU15 down; they also
        follow the face surface backwards.
        """
        centers, rots, sizes = (
            [pivot],
            [torch.eye(3, device=like.device).expand(scene.batch, 3, 3)],
            [radii * vec3(0.5, 1.0, 1.0, like)],
        )
        for side in (-1.0, 1.0):
            rot = rot_y(side * 0.55 + 0 * like) @ rot_z(side * corner)
            hinge = pivot + vec3(side * 0.32 * width, 0.0, -0.004, like)
            centers.append(hinge + (rot @ vec3(side * 0.3 * width, 0.0, 0.0, like)[..., None])[..., 0])
            rots.append(rot)
            sizes.append(radii * vec3(0.4, 0.85, 0.9, like))
        return centers, rots, sizes

    lip = ident.lip_colour
    up_c, up_rot, up_r = segments(upper_pivot, vec3(width, thick, 0.036, like))
    lo_c, lo_rot, lo_r = segments(lower_pivot, vec3(width * 0.95, thick * 1.15, 0.036, like))
    gap = (upper_pivot[:, 1] - thick) - (lower_pivot[:, 1] + thick * 1.15)
    # the cavity sits just behind the lips' meeting line and shows where they part
    cavity_pivot = vec3(x0, (upper_pivot[:, 1] + lower_pivot[:, 1]) / 2, z0 - 0.016, like)
    cav_c, cav_rot, cav_r = segments(cavity_pivot, vec3(width * 0.98, (gap / 2).clamp_min(0) + 0.5 * thick + 0.004, 0.032, like))
    inside = torch.tensor(MOUTH_INSIDE, device=like.device).expand(scene.batch, 3)
    teeth_c = vec3(x0, upper_pivot[:, 1] - thick + 0.002, z0 - 0.016, like)
    teeth_r = vec3(width * 0.65, 0.02, 0.033, like)
    teeth = torch.tensor(TEETH, device=like.device).expand(scene.batch, 3)
    moustache_c = vec3(x0, face.mouth_y + 0.045 + 0.015 * au["AU10"] + up, face.surface_z(0.0, face.mouth_y) - 0.005, like)
    moustache_r = vec3(ident.mouth_width * 1.1, 0.02, 0.035, like)
    beard_colour = ident.hair_colour * 0.9 + 0.02
    no_turn = torch.eye(3, device=like.device).expand(scene.batch, 3, 3)
    # parts of similar size share a group (a group's window fits its largest part)
    scene.add("lips", up_c + lo_c, up_r + lo_r, lip, rotations=up_rot + lo_rot, specular=0.15)
    scene.add("mouth_inside", cav_c + [teeth_c], cav_r + [teeth_r], [inside] * 3 + [teeth], rotations=cav_rot + [no_turn],
              specular=torch.tensor([0.0, 0.0, 0.0, 0.2], device=like.device))
    scene.add("moustache", [moustache_c], [moustache_r], beard_colour, enabled=ident.moustache)


def add_hair(scene: SceneParts, face: FaceLayout) -> None:
    ident, like = face.id, face.like
    vol = ident.hair_volume
    cap_c = face.cranium_c + vec3(0.0, 0.015 + 0.02 * vol, -0.01, like)
    cap_r = face.cranium_r * vec3(1.05 + 0.06 * vol, 1.035 + 0.05 * vol, 1.04 + 0.05 * vol, like)
    cap_params = {"hair": ident.hair_colour, "front": ident.hairline, "parting": ident.parting}
    # a shell over the cranium, clipped at the hairline; below it the cranium (skin) shows
    scene.add("hair_cap", [cap_c], [cap_r], ident.hair_colour, enabled=ident.hair_style >= SHORT, clip=_cap_clip,
              texture=_hair_streaks, params=cap_params, coarse=True)
    # long hair: a volume set back behind the face, so it frames the face from the front and fills the back in profile
    long_c = vec3(0.0, -0.2, -0.25 - 0.02 * vol, like)
    long_r = vec3(face.cranium_r[:, 0] * 1.1 + 0.03 * vol, 0.6, 0.42, like)
    scene.add("hair_long", [long_c], [long_r], ident.hair_colour, enabled=ident.hair_style == LONG,
              texture=_hair_streaks, coarse=True)


def add_accessories(scene: SceneParts, face: FaceLayout) -> None:
    ident, like = face.id, face.like
    colour = ident.hair_colour * 0.9 + 0.02
    # beard: a shell around the jaw kept below the mouth and on the lower cheeks
    beard_c = face.jaw_c + vec3(0.0, -0.01, 0.0, like)
    beard_r = face.jaw_r * 1.05 + 0.005
    beard_params = {
        "radii": beard_r,
        "mouth_limit": face.mouth_y - 0.045 - face.jaw_drop - beard_c[:, 1],
    }
    scene.add("beard", [beard_c], [beard_r], colour, enabled=ident.beard, clip=_beard_clip, params=beard_params, coarse=True)
    # glasses: two flat rings in front of the eyes, a bridge and temples back to the ears
    frame = ident.glasses_colour
    rims, rim_rot, temples, temple_rot, temple_len = [], [], [], [], []
    front_z = face.surface_z(0.0, face.eye_y) + 0.04
    for side in (-1.0, 1.0):
        x = side * ident.eye_spacing * 1.05
        rims.append(vec3(x, face.eye_y, front_z - 0.01, like))
        rim_rot.append(rot_y(side * 0.15 + 0 * like))
        start = vec3(x + side * 0.085, face.eye_y + 0.02, front_z - 0.03, like)
        end = vec3(side * (ident.head_radii[:, 0] + 0.005), face.eye_y, -0.08, like)
        temples.append((start + end) / 2)
        direction = end - start
        temple_rot.append(rot_y(torch.atan2(direction[:, 0], direction[:, 2])))
        temple_len.append(vec3(0.008, 0.008, direction.norm(dim=-1) / 2, like))
    rim_r = vec3(0.085, 0.062, 0.012, like)
    scene.add("glasses_rims", rims, [rim_r, rim_r], frame, rotations=rim_rot, enabled=ident.glasses, clip=_rim_clip, specular=0.4)
    bridge_c = vec3(0.0, face.eye_y + 0.02, front_z, like)
    no_turn = torch.eye(3, device=like.device).expand(scene.batch, 3, 3)
    scene.add("glasses_frame", [bridge_c, *temples], [vec3(0.04, 0.008, 0.008, like), *temple_len], frame,
              rotations=[no_turn, *temple_rot], enabled=ident.glasses)


def add_neck(scene: SceneParts, face: FaceLayout) -> None:
    # the neck stays upright in the camera frame: the head turns on it
    neck_c = vec3(0.0, -0.8, -0.05, face.like)
    neck_r = vec3(0.22, 0.45, 0.22, face.like)
    scene.add("neck", [neck_c], [neck_r], face.id.skin * 0.8, in_head_frame=False, coarse=True)
