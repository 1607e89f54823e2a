"""SynthFaces identities: an integer identity -> face geometry, colours and accessories.

Every parameter is a deterministic hash of the identity integer (no RNG state),
so identity ``k`` is the same person in every split, batch and process.
Units are "head units": the head is about 1.25 tall (crown to chin), the image
spans [-1, 1] before the camera zoom.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from pclkit.data.synthfaces.factors import hash_keys, hash_uniform

#: skin tones from light to dark (linear RGB albedo); a tone is interpolated between neighbours
SKIN_TONES = torch.tensor(
    [[0.97, 0.80, 0.68], [0.92, 0.70, 0.56], [0.80, 0.58, 0.43], [0.62, 0.42, 0.29], [0.42, 0.28, 0.19]]
)
HAIR_COLOURS = torch.tensor(
    [
        [0.06, 0.05, 0.05],  # black
        [0.22, 0.13, 0.07],  # dark brown
        [0.42, 0.27, 0.13],  # brown
        [0.80, 0.64, 0.36],  # blond
        [0.55, 0.22, 0.09],  # red
        [0.62, 0.62, 0.62],  # grey
    ]
)
IRIS_COLOURS = torch.tensor(
    [[0.30, 0.17, 0.08], [0.16, 0.09, 0.05], [0.25, 0.45, 0.70], [0.30, 0.50, 0.30], [0.45, 0.35, 0.15], [0.45, 0.52, 0.58]]
)
GLASSES_COLOURS = torch.tensor([[0.05, 0.05, 0.06], [0.35, 0.20, 0.10], [0.60, 0.60, 0.65], [0.50, 0.08, 0.10]])

#: hair styles
BALD, SHORT, LONG = 0, 1, 2


@dataclass
class IdentityParams:
    """Per-identity face parameters, each a tensor with leading batch dim B."""

    skin: Tensor           # (B, 3) albedo
    hair_colour: Tensor    # (B, 3)
    iris_colour: Tensor    # (B, 3)
    lip_colour: Tensor     # (B, 3)
    head_radii: Tensor     # (B, 3) cranium ellipsoid
    jaw_width: Tensor      # (B,) multiplier
    jaw_length: Tensor     # (B,) multiplier
    chin: Tensor           # (B,) chin size multiplier
    eye_spacing: Tensor    # (B,) half distance between eye centres
    eye_height: Tensor     # (B,) eye-line height
    eye_size: Tensor       # (B,) eyeball radius
    eye_open: Tensor       # (B,) lid opening (normalised lid-sphere units)
    brow_height: Tensor    # (B,) above the eye line
    brow_thickness: Tensor  # (B,)
    brow_length: Tensor    # (B,)
    nose_length: Tensor    # (B,)
    nose_width: Tensor     # (B,)
    nose_depth: Tensor     # (B,)
    mouth_width: Tensor    # (B,) half width
    lip_thickness: Tensor  # (B,)
    mouth_drop: Tensor     # (B,) eye line to mouth distance
    ear_size: Tensor       # (B,)
    ear_angle: Tensor      # (B,) radians, how far the ears stand out
    hair_style: Tensor     # (B,) long: BALD / SHORT / LONG
    hair_volume: Tensor    # (B,)
    hairline: Tensor       # (B,) front hairline height (normalised cap units)
    parting: Tensor        # (B,) left/right tilt of the hairline (asymmetry)
    beard: Tensor          # (B,) bool
    moustache: Tensor      # (B,) bool
    glasses: Tensor        # (B,) bool
    glasses_colour: Tensor  # (B, 3)
    asym_eye: Tensor       # (B,) height difference of the eyes (asymmetry)
    asym_brow: Tensor      # (B,) height difference of the brows (asymmetry)
    asym_mouth: Tensor     # (B,) horizontal offset of the mouth (asymmetry)

    def __getitem__(self, idx: Tensor) -> "IdentityParams":
        return IdentityParams(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _lerp_palette(palette: Tensor, t: Tensor) -> Tensor:
    """Piecewise-linear interpolation in a (P, 3) palette at t in [0, 1] -> (B, 3)."""
    pos = t * (palette.shape[0] - 1)
    lo = pos.floor().long().clamp(max=palette.shape[0] - 2)
    frac = (pos - lo)[:, None]
    return palette[lo] * (1 - frac) + palette[lo + 1] * frac


def _pick(palette: Tensor, u: Tensor) -> Tensor:
    return palette[(u * palette.shape[0]).long().clamp(max=palette.shape[0] - 1)]


def identity_params(identity: Tensor, symmetric: bool = False) -> IdentityParams:
    """Face parameters of each identity in ``identity`` (B,) long, on its device.

    ``symmetric=True`` zeroes every left/right asymmetry (hair parting, eye,
    brow and mouth offsets) so the face is mirror-symmetric; used to test the
    renderer's geometry (mirror(render(yaw, pitch, roll)) = render(-yaw, pitch, -roll)).
    """
    device = identity.device
    u = hash_uniform(hash_keys(0x1D, identity.cpu()), range(48)).to(device)  # (B, 48)

    def span(k: int, lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * u[:, k]

    # correlated skin/hair: dark skin tones get dark hair more often (kept simple: shift the hair draw)
    skin_t = u[:, 0] ** 1.3
    skin = _lerp_palette(SKIN_TONES.to(device), skin_t) * span(1, 0.95, 1.03)[:, None]
    hair_u = (u[:, 2] * (1 - 0.6 * skin_t)).clamp(0, 0.999)
    hair_colour = _pick(HAIR_COLOURS.to(device), hair_u)
    iris_u = (u[:, 3] * (1 - 0.7 * skin_t)).clamp(0, 0.999)
    iris_colour = _pick(IRIS_COLOURS.to(device), iris_u)
    lip_colour = skin * torch.tensor([0.85, 0.55, 0.55], device=device) + torch.tensor([0.08, 0.0, 0.02], device=device)
    head_radii = torch.stack([span(4, 0.38, 0.5), span(5, 0.55, 0.66), span(6, 0.54, 0.62)], 1)

    style_u = u[:, 30]
    hair_style = torch.where(style_u < 0.08, BALD, torch.where(style_u < 0.6, SHORT, LONG)).long()
    has_beard_u = u[:, 31]
    beard = has_beard_u < 0.15
    moustache = (has_beard_u < 0.22) & ~(has_beard_u < 0.15) | (beard & (u[:, 32] < 0.6))
    glasses = u[:, 33] < 0.2

    zero = torch.zeros_like(u[:, 0])
    asym = 0.0 if symmetric else 1.0
    return IdentityParams(
        skin=skin,
        hair_colour=hair_colour,
        iris_colour=iris_colour,
        lip_colour=lip_colour,
        head_radii=head_radii,
        jaw_width=span(7, 0.75, 1.12),
        jaw_length=span(8, 0.88, 1.14),
        chin=span(9, 0.7, 1.35),
        eye_spacing=span(10, 0.145, 0.2),
        eye_height=span(11, -0.03, 0.05),
        eye_size=span(12, 0.068, 0.092),
        eye_open=span(13, 0.24, 0.46),
        brow_height=span(14, 0.095, 0.145),
        brow_thickness=span(15, 0.015, 0.034),
        brow_length=span(16, 0.078, 0.108),
        nose_length=span(17, 0.75, 1.3),
        nose_width=span(18, 0.75, 1.35),
        nose_depth=span(19, 0.7, 1.3),
        mouth_width=span(20, 0.105, 0.16),
        lip_thickness=span(21, 0.017, 0.038),
        mouth_drop=span(22, 0.32, 0.42),
        ear_size=span(23, 0.85, 1.2),
        ear_angle=span(24, 0.3, 0.6),
        hair_style=hair_style,
        hair_volume=span(25, 0.0, 1.0),
        hairline=span(26, 0.42, 0.62),
        parting=(u[:, 27] - 0.5) * 0.3 * asym,
        beard=beard,
        moustache=moustache,
        glasses=glasses,
        glasses_colour=_pick(GLASSES_COLOURS.to(device), u[:, 34]),
        asym_eye=(u[:, 35] - 0.5) * 0.012 * asym + zero,
        asym_brow=(u[:, 36] - 0.5) * 0.02 * asym + zero,
        asym_mouth=(u[:, 37] - 0.5) * 0.012 * asym + zero,
    )
