"""Batched orthographic ray casting of ellipsoids with a z-buffer, in torch.

Each primitive is an ellipsoid ``{p : |diag(1/r) R^T (p - c)| = 1}`` in camera
space (x right, y up, z towards the viewer, who looks along -z). The image
plane spans [-1, 1]^2 and rays are parallel to z (orthographic camera). With
``q(t) = q0 + t d`` the hit point in the ellipsoid's unit-sphere coordinates,
``q0`` is affine in the pixel offsets (dx, dy) of a window and ``d`` is
constant, so the quantities of the quadratic ``|q0 + t d|^2 = 1`` (its
discriminant, ``q0 . d``) and of Lambert shading (``n . l`` and ``|n|^2`` at
``t = 0`` plus their ``t`` terms) are polynomials of degree <= 2 in (dx, dy):
all of them are evaluated on the window grid by separable broadcasts
(:func:`_evaluate`); per ray only a square root and a handful of
multiply-adds remain.

Cost control: a primitive is only intersected inside a screen-space window
around its projected bounding box (the batch's largest extent), and groups of
optional parts (beard, glasses, long hair) only for the images that have them.
Hidden surfaces are removed with a z-buffer (nearest hit wins), which makes
occlusion exact (far eye hidden in profile, nose over the cheek).

Shading: Lambert + ambient, optional Blinn-Phong highlight (Blinn, SIGGRAPH
1977). Anti-aliasing is done by the caller (render at k x the size, box filter).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

#: Clip rule: (q (3,P,R,n) unit-sphere hit coordinates, params) -> keep mask (P,R,n)
ClipFn = Callable[[Tensor, dict], Tensor]
#: Texture rule: (q (3,P,R,n), params) -> albedo broadcastable to (3,P,R,n), or a brightness map (P,R,n)
TextureFn = Callable[[Tensor, dict], Tensor]


@dataclass
class PartGroup:
    """P ellipsoids per image that share clip/texture rules.

    center (B,P,3), rotation (B,P,3,3) camera-from-local, radii (B,P,3) in
    camera space; albedo (B,P,3); enabled (B,P) bool or None (all on).
    ``params`` holds per-image tensors (leading dim B) read by ``clip`` and
    ``texture`` (plain functions, so rows can be selected for optional parts).
    ``clip`` removes parts of the surface (hairline, eyelid edge, glasses
    rim); with ``back_faces`` a ray whose front hit is clipped may hit the
    inside of the far surface (the inside of a hair volume).
    """

    name: str
    center: Tensor
    rotation: Tensor
    radii: Tensor
    albedo: Tensor
    enabled: Tensor | None = None
    clip: ClipFn | None = None
    texture: TextureFn | None = None
    params: dict[str, Tensor] = field(default_factory=dict)
    back_faces: bool = False
    #: Blinn-Phong highlight strength: one value, or one per part (P,)
    specular: float | Tensor = 0.0
    shininess: float = 30.0
    #: large smooth part: may be rendered at reduced resolution (see :func:`composite`)
    coarse: bool = False

    def __post_init__(self) -> None:
        b, p = self.center.shape[:2]
        expected = {"center": (b, p, 3), "rotation": (b, p, 3, 3), "radii": (b, p, 3), "albedo": (b, p, 3)}
        for key, shape in expected.items():
            if tuple(getattr(self, key).shape) != shape:
                raise ValueError(f"part {self.name!r}: {key} must be {shape}, got {tuple(getattr(self, key).shape)}")
        if self.enabled is not None and tuple(self.enabled.shape) != (b, p):
            raise ValueError(f"part {self.name!r}: enabled must be {(b, p)}, got {tuple(self.enabled.shape)}")
        for key, value in self.params.items():
            if value.shape[0] != b:
                raise ValueError(f"part {self.name!r}: params[{key!r}] needs leading dim {b}, got {tuple(value.shape)}")

    def rows(self, rows: Tensor) -> "PartGroup":
        """The same group restricted to images ``rows``."""
        pick = lambda t: None if t is None else t.index_select(0, rows)  # noqa: E731
        return PartGroup(
            self.name, pick(self.center), pick(self.rotation), pick(self.radii), pick(self.albedo), pick(self.enabled),
            self.clip, self.texture, {k: pick(v) for k, v in self.params.items()}, self.back_faces, self.specular, self.shininess,
            self.coarse,
        )


@dataclass
class Lighting:
    """Per-image lighting: direction (B,3) unit towards the light, diffuse (B,), ambient (B,)."""

    direction: Tensor
    diffuse: Tensor
    ambient: Tensor

    def rows(self, rows: Tensor) -> "Lighting":
        return Lighting(self.direction[rows], self.diffuse[rows], self.ambient[rows])


def _evaluate(coef: Tensor, width: int, height: int, quadratic: int) -> Tensor:
    """Evaluate polynomials on a window grid: (R, P, B, 6) coefficients -> (R, P, B, height*width).

    Coefficients are on the monomials ``(dx^2, dx dy, dy^2, dx, dy, 1)``; the
    first ``quadratic`` rows are quadratic, the rest linear. The grid is
    separable (``f = A(dx) + dy B(dx) + C(dy)``), so each row costs one or two
    broadcast passes over the window and no BLAS call (whose threads stall on
    busy machines).
    """
    device = coef.device
    dx = torch.arange(width, dtype=torch.float32, device=device)
    dy = torch.arange(height, dtype=torch.float32, device=device)
    c = coef.unsqueeze(-1)  # (R,P,B,6,1)
    out = torch.empty(*coef.shape[:3], height, width, device=device)
    q = slice(0, quadratic)
    if quadratic:
        a = c[q, :, :, 0] * dx * dx + c[q, :, :, 3] * dx  # (Q,P,B,W)
        b = c[q, :, :, 1] * dx + c[q, :, :, 4]
        cc = c[q, :, :, 2] * dy * dy + c[q, :, :, 5]  # (Q,P,B,H)
        torch.add(a.unsqueeze(-2), cc.unsqueeze(-1), out=out[q])
        out[q].addcmul_(dy[:, None], b.unsqueeze(-2))
    lin = slice(quadratic, None)
    if coef.shape[0] > quadratic:
        torch.add((c[lin, :, :, 3] * dx).unsqueeze(-2), (c[lin, :, :, 4] * dy + c[lin, :, :, 5]).unsqueeze(-1), out=out[lin])
    return out.flatten(-2)


def _quadratic(form: Tensor) -> Tensor:
    """Monomial coefficients (..., 6) of v^T Q v for symmetric Q (..., 3, 3), v = (dx, dy, 1)."""
    return torch.stack(
        [form[..., 0, 0], 2 * form[..., 0, 1], form[..., 1, 1], 2 * form[..., 0, 2], 2 * form[..., 1, 2], form[..., 2, 2]],
        -1,
    )


def _linear(vec: Tensor) -> Tensor:
    """Monomial coefficients (..., 6) of l . v for l (..., 3)."""
    return torch.cat([torch.zeros_like(vec), vec], -1)


def _window(extent_px: Tensor, image_size: int) -> int:
    return int(min(image_size, math.ceil(2 * float(extent_px.max()) + 2)))


@dataclass
class Candidates:
    """Shaded hits of one group: flat buffer index (P, R*n), depth (P, R*n), colour (3, P, R*n)."""

    index: Tensor
    depth: Tensor
    colour: Tensor


def cast_group(group: PartGroup, image_size: int, light: Lighting, image_rows: Tensor) -> Candidates:
    """Intersect and shade a group (for images ``image_rows`` of the batch) inside its windows."""
    b, p = group.center.shape[:2]
    s = image_size
    h = 2.0 / s  # pixel pitch in image-plane units
    rot, radii, center = group.rotation, group.radii, group.center

    # projected half-extents: sqrt(diag(R diag(r^2) R^T)) for x and y
    spread = (rot[..., :2, :] ** 2 * (radii**2)[..., None, :]).sum(-1).sqrt()  # (B,P,2)
    wx, wy = _window(spread[..., 0] / h, s), _window(spread[..., 1] / h, s)
    ox = torch.round((center[..., 0] + 1) / h - wx / 2).clamp(0, s - wx)
    oy = torch.round((1 - center[..., 1]) / h - wy / 2).clamp(0, s - wy)

    # q0 = A (ux, uy, 0), A = diag(1/r) R^T, with u = p - c at window pixel (dx, dy):
    # ux = ex + h dx, uy = ey - h dy, (ex, ey) = window-origin pixel centre minus c.
    inv_r = 1.0 / radii
    a = rot.transpose(-1, -2) * inv_r[..., :, None]  # (B,P,3,3)
    ex = -1 + (ox + 0.5) * h - center[..., 0]
    ey = 1 - (oy + 0.5) * h - center[..., 1]
    g = torch.stack([a[..., 0] * h, -a[..., 1] * h, a[..., 0] * ex[..., None] + a[..., 1] * ey[..., None]], -1)
    d = a[..., 2]  # the ray direction (0,0,1) in unit-sphere units (B,P,3)
    dd = (d * d).sum(-1)
    beta = (g * d[..., :, None]).sum(-2)  # q0 . d = beta . v
    gtg = g.transpose(-1, -2) @ g
    e33 = torch.zeros(3, 3, device=g.device)
    e33[2, 2] = 1.0
    # dd t^2 + 2 (q0.d) t + |q0|^2 - 1 = 0  ->  disc/4 = (q0.d)^2 - dd (|q0|^2 - 1)
    disc = _quadratic(beta[..., :, None] * beta[..., None, :] - dd[..., None, None] * (gtg - e33))
    if group.enabled is not None:
        disc = torch.where(group.enabled[..., None], disc, torch.tensor([0, 0, 0, 0, 0, -1.0], device=g.device))
    # shading: outward normal n = R diag(1/r) q, so n.l = (diag(1/r) R^T l).q and |n|^2 = |diag(1/r) q|^2
    l_loc = (rot.transpose(-1, -2) @ light.direction[:, None, :, None])[..., 0] * inv_r  # (B,P,3)
    dg = g * inv_r[..., :, None]  # diag(1/r) G
    dvec = d * inv_r
    # quadratic rows first (see _evaluate): disc, |n|^2 at t=0; then linear: q0.d, n.l at t=0, d|n|^2/dt / 2
    rows = [
        disc,
        _quadratic(dg.transpose(-1, -2) @ dg),
        _linear(beta),
        _linear((g * l_loc[..., :, None]).sum(-2)),
        _linear((dg * dvec[..., :, None]).sum(-2)),
    ]
    has_specular = bool((torch.as_tensor(group.specular) > 0).any())
    if has_specular:
        half = light.direction + torch.tensor([0.0, 0.0, 1.0], device=g.device)
        half = half / half.norm(dim=-1, keepdim=True)
        h_loc = (rot.transpose(-1, -2) @ half[:, None, :, None])[..., 0] * inv_r
        rows.append(_linear((g * h_loc[..., :, None]).sum(-2)))
    needs_q = group.clip is not None or group.texture is not None
    if needs_q:
        rows.extend(_linear(g[..., k, :]) for k in range(3))
    coef = torch.stack(rows, 0).transpose(1, 2)  # (rows,P,B,6)
    poly = _evaluate(coef, wx, wy, quadratic=2)  # (rows,P,B,n)

    per_part = lambda t: t.transpose(0, 1)[..., None]  # (B,P) -> (P,B,1)  # noqa: E731
    inv_dd = per_part(1.0 / dd)
    hit = poly[0] > 0
    root = poly[0].clamp_min(0).sqrt_()
    t = (root - poly[2]) * inv_dd  # the larger root: nearest to the viewer
    inside = None
    if needs_q:
        d_pb = d.permute(2, 1, 0)[..., None]  # (3,P,B,1)
        q = poly[-3:] + d_pb * t
        keep = hit if group.clip is None else hit & group.clip(q, group.params)
        if group.back_faces:
            t_back = (-root - poly[2]) * inv_dd
            q_back = poly[-3:] + d_pb * t_back
            keep_back = hit & group.clip(q_back, group.params)
            inside = ~keep & keep_back
            t = torch.where(inside, t_back, t)
            q = torch.where(inside, q_back, q)
            keep = keep | keep_back
    else:
        keep = hit
    depth = torch.where(keep, t + per_part(center[..., 2]), float("-inf"))

    n_dot_l = poly[3] + per_part((l_loc * d).sum(-1)) * t
    norm2 = poly[1] + t * (2 * poly[4] + per_part((dvec * dvec).sum(-1)) * t)
    inv_norm = norm2.clamp_min(1e-12).rsqrt_()
    if inside is not None:
        inv_norm = torch.where(inside, -inv_norm, inv_norm)  # the inner surface faces the other way
    lum = (n_dot_l * inv_norm).clamp_min_(0).mul_(light.diffuse[None, :, None]).add_(light.ambient[None, :, None])
    albedo = group.albedo.permute(2, 1, 0)[..., None]
    if group.texture is not None:
        texture = group.texture(q, group.params)
        if texture.dim() == 3:  # a brightness map (P,B,n): cheaper than a colour map
            lum = lum * texture
        else:
            albedo = texture
    colour = albedo * lum
    if has_specular:
        n_dot_h = (poly[5] + per_part((h_loc * d).sum(-1)) * t) * inv_norm
        strength = group.specular if isinstance(group.specular, float) else group.specular.to(t)[:, None, None]
        colour = colour + n_dot_h.clamp_min_(0).pow_(group.shininess).mul_(strength * light.diffuse[None, :, None])

    dx = torch.arange(wx, device=g.device)
    dy = torch.arange(wy, device=g.device)
    window = (dy[:, None] * s + dx).reshape(-1)  # (n,)
    stride = s * s + 1  # one spare (dummy) pixel per image
    origin = (image_rows[None, :] * stride + (oy * s + ox).long().transpose(0, 1))[..., None]  # (P,B,1)
    return Candidates((origin + window).reshape(p, -1), depth.reshape(p, -1), colour.reshape(3, p, -1))


def _box_downsample(pixels: Tensor, size: int, factor: int) -> Tensor:
    """Mean of factor x factor blocks: (C, B, size*size) strided view -> (C, B, size/f, size/f)."""
    low = size // factor
    blocks = pixels.view(*pixels.shape[:2], low, factor, low, factor)
    total = blocks[:, :, :, 0, :, 0].clone()
    for i in range(factor):
        for j in range(factor):
            if i or j:
                total += blocks[:, :, :, i, :, j]
    return total.div_(factor * factor)


def composite(
    groups: list[PartGroup],
    image_size: int,
    light: Lighting,
    background: Tensor,
    return_depth: bool = False,
    coarse_factor: int = 1,
    coarse_bias: float = 0.0,
    downsample: int = 1,
    channels_first: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Z-buffer all groups over ``background``; returns colours (B, 3, S/downsample, S/downsample).

    ``background`` is (B, 3, S, S) or, for a backdrop that only varies by row,
    (B, 3, S, 1). ``downsample`` box-filters the result (supersampling
    anti-aliasing). With ``return_depth`` also the full-resolution z-buffer
    (B, S, S) (-inf where nothing was hit). ``channels_first`` returns colours
    as (3, B, H, W) (saves a transpose when the caller wants that layout).

    Mixed resolution (``coarse_factor`` > 1): groups marked ``coarse`` (large,
    smooth parts: skull, jaw, hair, neck) are rendered at ``S / coarse_factor``,
    upsampled (colour bilinear, depth nearest) and the detailed parts are
    z-buffered over them at full resolution. Coarse depths are pushed back by
    ``coarse_bias`` so features lying on a coarse surface are not cut by its
    nearest-neighbour depth steps. Cost of the big parts drops by coarse_factor^2.
    """
    b = background.shape[0]
    s = image_size
    stride = s * s + 1  # one spare pixel per image takes the writes of losing candidates
    device = background.device
    for factor in (coarse_factor, downsample):
        if s % factor:
            raise ValueError(f"image size {s} is not divisible by {factor}")
    zbuf = torch.full((b, stride), float("-inf"), device=device)
    cbuf = torch.empty(3, b, stride, device=device)
    cbuf[:, :, -1] = 0
    coarse = [g for g in groups if g.coarse] if coarse_factor > 1 else []
    if coarse:
        low = s // coarse_factor
        low_bg = background if background.shape[-1] == 1 else F.avg_pool2d(background, coarse_factor)
        low_bg = F.avg_pool2d(low_bg, (coarse_factor, 1)) if low_bg.shape[-1] == 1 else low_bg
        low_colour, low_depth = composite(coarse, low, light, low_bg, return_depth=True, channels_first=True)
        up = F.interpolate(low_colour, scale_factor=coarse_factor, mode="bilinear", align_corners=False)  # (3,B,S,S)
        cbuf[:, :, : s * s].copy_(up.reshape(3, b, s * s))
        k = coarse_factor
        blocks = zbuf[:, : s * s].view(b, low, k, low, k)
        blocks.copy_((low_depth - coarse_bias)[:, :, None, :, None].expand(b, low, k, low, k))
        groups = [g for g in groups if not g.coarse]
    else:
        cbuf[:, :, : s * s].copy_(background.expand(b, 3, s, s).transpose(0, 1).reshape(3, b, s * s))
    zflat, cflat = zbuf.view(-1), cbuf.view(3, -1)
    all_rows = torch.arange(b, device=device)
    for group in groups:
        rows = all_rows
        if group.enabled is not None:
            rows = group.enabled.any(1).nonzero()[:, 0]
            if rows.numel() == 0:
                continue
            if rows.numel() < b:
                group = group.rows(rows)
        cand = cast_group(group, s, light if rows.numel() == b else light.rows(rows), rows)
        index, depth = cand.index.reshape(-1), cand.depth.reshape(-1)
        # all parts of the group at once: max-reduce the depths, then the candidates that hold the
        # new maximum write their colour (others go to the spare pixel of their image)
        zflat.scatter_reduce_(0, index, depth, reduce="amax")
        won = (depth == zflat.take(index)) & (depth > float("-inf"))
        dummy = (rows * stride + s * s).repeat_interleave(cand.index.shape[1] // rows.numel()).repeat(cand.index.shape[0])
        index = torch.where(won, index, dummy)
        for channel in range(3):  # three 1-D scatters beat one with an expanded (3, M) index
            cflat[channel].scatter_(0, index, cand.colour[channel].reshape(-1))
    pixels = cbuf[:, :, : s * s]
    colour = _box_downsample(pixels, s, downsample) if downsample > 1 else pixels.reshape(3, b, s, s)
    colour = colour.contiguous() if channels_first else colour.transpose(0, 1).contiguous()
    if return_depth:
        return colour, zbuf[:, : s * s].reshape(b, s, s)
    return colour
