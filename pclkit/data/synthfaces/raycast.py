"""Batched orthographic ray casting of ellipsoids with a z-buffer, in torch.

Each primitive is an ellipsoid ``{p : |diag(1/r) R^T (p - c)| = 1}`` in camera
space (x right, y up, z towards the viewer, who looks along -z). The image
plane spans [-1, 1]^2 and rays are parallel to z (orthographic camera). With
``q(t) = q0 + t d`` the ray in the ellipsoid's unit-sphere coordinates
(``q0 = A u`` for the pixel's offset ``u`` from the centre, ``d = A e_z``,
``A = diag(1/r) R^T``), a hit solves ``|q0 + t d|^2 = 1``.

Work is spent only where it shows:

* **exact silhouettes**: on each pixel row an ellipsoid covers, the pixels
  its rays hit form an interval found in closed form (:func:`_scanlines`);
  only those pixels are cast, all rows of a group in one (rows, widest row)
  grid, so misses cost nothing and disabled optional parts (beard, glasses,
  long hair) cast no rows;
* **deferred shading**: hidden surfaces are removed with a z-buffer (nearest
  hit wins, which makes occlusion exact: the far eye hidden in profile, the
  nose over the cheek), and only hits that win it are shaded.

Shading: Lambert + ambient, optional Blinn-Phong highlight (Blinn, SIGGRAPH
1977). Anti-aliasing is done by the caller (render at k x the size, box filter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

#: Clip rule: (q (3, *H) unit-sphere coordinates of hits, params of :func:`rule_params`, broadcastable
#: against q[0]) -> keep mask H. H is (K,) or (rows, columns).
ClipFn = Callable[[Tensor, dict], Tensor]
#: Texture rule: (q (3, *H), params) -> albedo broadcastable to (3, *H), or a brightness map H
TextureFn = Callable[[Tensor, dict], Tensor]


@dataclass
class PartGroup:
    """P ellipsoids per image that share clip/texture rules.

    center (B,P,3), rotation (B,P,3,3) camera-from-local, radii (B,P,3) in
    camera space; albedo (B,P,3); enabled (B,P) bool or None (all on).
    ``params`` holds per-image tensors (leading dim B) and ``part_params``
    per-part tensors (B,P) read by ``clip`` and ``texture`` (plain functions;
    they see the values of each ray's image or part, :func:`rule_params`).
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
    part_params: dict[str, Tensor] = field(default_factory=dict)
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
        for key, value in self.part_params.items():
            if tuple(value.shape) != (b, p):
                raise ValueError(f"part {self.name!r}: part_params[{key!r}] must be {(b, p)}, got {tuple(value.shape)}")


@dataclass
class Lighting:
    """Per-image lighting: direction (B,3) unit towards the light, diffuse (B,), ambient (B,)."""

    direction: Tensor
    diffuse: Tensor
    ambient: Tensor


def _ragged(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Expand entries by ``counts`` (M,): (entry (N,), position 0..count-1 within it (N,)), N = counts.sum()."""
    total = int(counts.sum())
    entry = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts, output_size=total)
    first = (counts.cumsum(0) - counts).index_select(0, entry)
    return entry, torch.arange(total, device=counts.device) - first


def _gather(table: Tensor, index: Tensor) -> Tensor:
    """Columns of a (k, M) table for ``index`` (N,): (k, N)."""
    return table.index_select(1, index)


def part_geometry(group: PartGroup) -> Tensor:
    """What the rays of every part need, (19, B*P) float: the products of the columns of
    ``A = diag(1/r) R^T`` (a_x.d, a_y.d, a_x.a_x, a_x.a_y, a_y.a_y, d.d), the centre (3), the columns
    a_x, d, a_y (3 each) and the silhouette's half-height ``sqrt((R diag(r^2) R^T)_yy)``.

    Shared by :func:`_scanlines` and the fused kernel (:mod:`pclkit.data.synthfaces.fused`), so both
    start from the same rounded values.
    """
    b, p = group.center.shape[:2]
    rot, radii, center = group.rotation, group.radii, group.center
    half_height = (rot[..., 1, :] ** 2 * radii**2).sum(-1).sqrt()  # (B,P)
    a = (rot.transpose(-1, -2) / radii[..., :, None]).reshape(b * p, 3, 3)
    a_x, a_y, d = a[..., 0], a[..., 1], a[..., 2]  # (BP,3)
    products = torch.stack(
        [(a_x * d).sum(-1), (a_y * d).sum(-1), (a_x * a_x).sum(-1), (a_x * a_y).sum(-1), (a_y * a_y).sum(-1),
         (d * d).sum(-1)], 0
    )
    return torch.cat([products, center.reshape(b * p, 3).T, a_x.T, d.T, a_y.T, half_height.reshape(1, b * p)], 0)


@dataclass
class _Scanlines:
    """Per image row of each part (R rows): where its silhouette lies and what its rays need.

    ``part`` (R,) flat part index; ``pixel0`` (R,) flat z-buffer index of the first covered pixel;
    ``width`` (R,) covered pixels; ``table`` (17, R): ux of the first pixel, the discriminant's
    coefficients a2, a1, a0 in ux, q0.d = alpha ux + beta, 1/|d|^2, the centre's z, the columns of
    A for x and for the ray direction (3 + 3), and A's y column times the row's uy (3).
    """

    part: Tensor
    pixel0: Tensor
    width: Tensor
    table: Tensor


def _scanlines(group: PartGroup, image_size: int) -> _Scanlines:
    """The exact horizontal extent of every ellipsoid's silhouette on every pixel row it covers.

    Pixel (row i, column j) has its centre at x = -1 + (j + 0.5) h, y = 1 - (i + 0.5) h, h = 2 / S.
    Rows: those inside the projected half-height sqrt((R diag(r^2) R^T)_yy). On a row, with
    ``u = (ux, uy)`` the offset from the centre, ``q0 = a_x ux + a_y uy`` and ``d = a_z`` (the
    columns of ``A = diag(1/r) R^T``), the ray hits where ``disc(ux) = (q0.d)^2 - |d|^2 (|q0|^2 - 1)
    = a2 ux^2 + 2 a1 ux + a0 > 0``, an interval of ux (a2 < 0): only its pixels are cast.
    """
    b, p = group.center.shape[:2]
    s, h = image_size, 2.0 / image_size
    per_part = part_geometry(group)
    half_height = per_part[18].view(b, p)
    row0 = torch.ceil((1 - group.center[..., 1] - half_height) / h - 0.5).clamp(0, s)
    row1 = torch.floor((1 - group.center[..., 1] + half_height) / h - 0.5).clamp(-1, s - 1)
    height = (row1 - row0 + 1).clamp_min(0).long()
    if group.enabled is not None:
        height = height * group.enabled
    part, offset = _ragged(height.reshape(-1))  # one entry per (part, row)
    row = row0.long().reshape(-1).index_select(0, part) + offset

    x_d, y_d, x_x, x_y, y_y, d_d, cx, cy, cz = _gather(per_part[:9], part)
    uy = 1 - (row + 0.5) * h - cy
    beta = y_d * uy
    a2 = x_d * x_d - d_d * x_x
    a1 = x_d * beta - d_d * x_y * uy
    a0 = beta * beta - d_d * (y_y * uy * uy - 1)
    root = (a1 * a1 - a2 * a0).clamp_min(0).sqrt()
    ux_lo, ux_hi = (root - a1) / a2, (-root - a1) / a2  # a2 < 0
    col0 = torch.ceil((ux_lo + cx + 1) / h - 0.5).clamp(0, s)
    col1 = torch.floor((ux_hi + cx + 1) / h - 0.5).clamp(-1, s - 1)
    width = (col1 - col0 + 1).clamp_min(0).long()
    pixel0 = torch.div(part, p, rounding_mode="floor") * (s * s) + row * s + col0.long()
    ux0 = (col0 + 0.5) * h - 1 - cx
    vectors = _gather(per_part[9:18], part)  # a_x (3), d (3), a_y (3)
    table = torch.cat([torch.stack([ux0, a2, a1, a0, x_d, beta, 1 / d_d, cz]), vectors[:6], vectors[6:] * uy], 0)
    return _Scanlines(part, pixel0, width, table)


@dataclass
class Hits:
    """Visible surface hits of one group, one per ray (K of them).

    ``part`` (K,) is the flat part index ``image * P + p``; ``pixel`` (K,) the flat z-buffer index
    ``image * S^2 + row * S + column``; ``depth`` (K,) the camera z of the hit (larger is nearer);
    ``q`` (3, K) the hit in the part's unit-sphere coordinates; ``inside`` (K,) bool where the ray
    shows the inner (far) surface of a clipped shell, or None.
    """

    part: Tensor
    pixel: Tensor
    depth: Tensor
    q: Tensor
    inside: Tensor | None = None

    def take(self, keep: Tensor) -> "Hits":
        """The hits at positions ``keep`` (K',) long."""
        pick = lambda t: None if t is None else t.index_select(-1, keep)  # noqa: E731
        return Hits(pick(self.part), pick(self.pixel), pick(self.depth), pick(self.q), pick(self.inside))


def rule_params(group: PartGroup, part: Tensor, per_row: bool = False) -> dict[str, Tensor]:
    """The group's ``params`` and ``part_params`` for hits on flat parts ``part`` (K,).

    Per-image tensors (B, ...) become (..., K) (a colour (B, 3) becomes (3, K)), per-part tensors
    (B, P) become (K,); ``"part"`` (K,) holds each hit's part index 0..P-1 within its image. With
    ``per_row`` the entries are rows of hits and every value gains a trailing axis of 1, to
    broadcast against hits laid out as (K rows, W columns).
    """
    p = group.center.shape[1]
    image = torch.div(part, p, rounding_mode="floor")
    out = {key: value.index_select(0, image).movedim(0, -1) for key, value in group.params.items()}
    out.update({key: value.reshape(-1).index_select(0, part) for key, value in group.part_params.items()})
    out["part"] = part - image * p
    return {key: value[..., None] for key, value in out.items()} if per_row else out


def cast_group(group: PartGroup, image_size: int) -> Hits | None:
    """Intersect the group's rays with its ellipsoids: the nearest kept surface hit of every ray, or None.

    Only the pixels inside each ellipsoid's silhouette are cast (:func:`_scanlines`), laid out as
    (R rows, W columns) with W the widest row, so per-row values broadcast without gathers. With
    the ray ``q(t) = q0 + t d`` in unit-sphere coordinates, the nearest root of ``|q(t)|^2 = 1`` is
    ``t = (sqrt(disc) - q0.d) / |d|^2``; the hit's camera z is the centre's z plus t.
    """
    s, h = image_size, 2.0 / image_size
    lines = _scanlines(group, s)
    if lines.width.numel() == 0 or int(lines.width.max()) == 0:
        return None
    column = torch.arange(int(lines.width.max()), device=lines.width.device)
    valid = column < lines.width[:, None]  # (R,W)
    ux0, a2, a1, a0, x_d, beta, inv_dd, cz = lines.table[:8, :, None]  # (R,1) each
    ux = ux0 + h * column
    root = ((a2 * ux + 2 * a1) * ux + a0).clamp_min_(0).sqrt_()  # edge pixels may round below 0
    q0_d = x_d * ux + beta
    t = (root - q0_d) * inv_dd  # the larger root: nearest to the viewer
    a_x, d, q_y = lines.table[8:11, :, None], lines.table[11:14, :, None], lines.table[14:17, :, None]
    q0 = a_x * ux + q_y  # (3,R,W)
    q = q0 + d * t
    inside = None
    if group.clip is not None:
        params = rule_params(group, lines.part, per_row=True)
        keep = group.clip(q, params)
        if group.back_faces:
            t_back = (-root - q0_d) * inv_dd
            q_back = q0 + d * t_back
            keep_back = group.clip(q_back, params)
            inside = ~keep & keep_back
            t = torch.where(inside, t_back, t)
            q = torch.where(inside, q_back, q)
            keep = keep | keep_back
        valid = valid & keep
    pick = valid.reshape(-1).nonzero()[:, 0]
    flat = lambda x: x.reshape(*x.shape[:-2], -1).index_select(-1, pick)  # noqa: E731
    part = flat(lines.part[:, None].expand(valid.shape))
    pixel = flat(lines.pixel0[:, None] + column)
    return Hits(part, pixel, flat(cz + t), flat(q), None if inside is None else flat(inside))


def has_highlight(group: PartGroup) -> bool:
    """Whether any part of the group has a Blinn-Phong highlight."""
    return bool((torch.as_tensor(group.specular) > 0).any())


def shading_table(group: PartGroup, light: Lighting) -> Tensor:
    """Per part what shading needs, (B*P, 11) or, with a highlight, (B*P, 15) float: the light
    direction in the part's frame scaled by 1/r (3), 1/r (3), the albedo (3), the image's diffuse and
    ambient intensities, then the half vector in the part's frame scaled by 1/r (3) and the highlight
    strength. Shared by :func:`shade` and the fused kernel (:mod:`pclkit.data.synthfaces.fused`).
    """
    b, p = group.center.shape[:2]
    inv_r = 1.0 / group.radii
    to_local = group.rotation.transpose(-1, -2)  # (B,P,3,3)
    per_image = torch.stack([light.diffuse, light.ambient], -1)[:, None, :].expand(b, p, 2)
    columns = [(to_local @ light.direction[:, None, :, None])[..., 0] * inv_r, inv_r, group.albedo, per_image]
    if has_highlight(group):
        half = light.direction + torch.tensor([0.0, 0.0, 1.0], device=inv_r.device)
        half = half / half.norm(dim=-1, keepdim=True)
        strength = torch.as_tensor(group.specular, dtype=inv_r.dtype, device=inv_r.device).expand(b, p)
        columns += [(to_local @ half[:, None, :, None])[..., 0] * inv_r, strength[..., None]]
    return torch.cat(columns, -1).reshape(b * p, -1)


def shade(group: PartGroup, hits: Hits, light: Lighting) -> Tensor:
    """Colour (3, K) of the hits: albedo (or texture) x (Lambert + ambient), plus a Blinn-Phong highlight.

    The outward normal is ``n = R diag(1/r) q``, so ``n.l = (diag(1/r) R^T l).q`` and
    ``|n| = |diag(1/r) q|``: no normal is formed in camera space.
    """
    has_specular = has_highlight(group)
    per_ray = _gather(shading_table(group, light).T.contiguous(), hits.part)
    diffuse, ambient = per_ray[9], per_ray[10]
    q = hits.q
    inv_norm = (q * per_ray[3:6]).square_().sum(0).clamp_min_(1e-12).rsqrt_()
    if hits.inside is not None:
        inv_norm = torch.where(hits.inside, -inv_norm, inv_norm)  # the inner surface faces the other way
    lum = ((q * per_ray[0:3]).sum(0) * inv_norm).clamp_min_(0).mul_(diffuse).add_(ambient)
    albedo = per_ray[6:9]
    if group.texture is not None:
        texture = group.texture(q, rule_params(group, hits.part))
        if texture.dim() == 1:  # a brightness map (K,): cheaper than a colour map
            lum = lum * texture
        else:
            albedo = texture
    colour = albedo * lum
    if has_specular:
        n_dot_h = (q * per_ray[11:14]).sum(0) * inv_norm
        colour = colour + n_dot_h.clamp_min_(0).pow_(group.shininess).mul_(per_ray[14] * diffuse)
    return colour


def _box_downsample(pixels: Tensor, size: int, factor: int) -> Tensor:
    """Mean of factor x factor blocks: (C, B, size*size) -> (C, B, size/f, size/f).

    Rows first (adds of contiguous image rows), then columns: about 3x faster than
    summing the f^2 strided sub-grids.
    """
    c, b, low = pixels.shape[0], pixels.shape[1], size // factor
    by_rows = pixels.view(c, b, low, factor, size)
    rows = by_rows[:, :, :, 0].clone()
    for i in range(1, factor):
        rows += by_rows[:, :, :, i]
    by_columns = rows.view(c, b, low, low, factor)
    total = by_columns[..., 0].clone()
    for j in range(1, factor):
        total += by_columns[..., j]
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
    device = background.device
    for factor in (coarse_factor, downsample):
        if s % factor:
            raise ValueError(f"image size {s} is not divisible by {factor}")
    zbuf = torch.full((b, s * s), float("-inf"), device=device)
    coarse = [g for g in groups if g.coarse] if coarse_factor > 1 else []
    if coarse:
        low = s // coarse_factor
        low_bg = background if background.shape[-1] == 1 else F.avg_pool2d(background, coarse_factor)
        low_bg = F.avg_pool2d(low_bg, (coarse_factor, 1)) if low_bg.shape[-1] == 1 else low_bg
        low_colour, low_depth = composite(coarse, low, light, low_bg, return_depth=True, channels_first=True)
        # as (3B, 1, low, low): torch's bilinear kernel is ~1.5x faster with one channel than with B
        up = F.interpolate(
            low_colour.reshape(3 * b, 1, low, low), scale_factor=coarse_factor, mode="bilinear", align_corners=False
        )
        cbuf = up.reshape(3, b, s * s)
        k = coarse_factor
        blocks = zbuf.view(b, low, k, low, k)
        blocks.copy_((low_depth - coarse_bias)[:, :, None, :, None].expand(b, low, k, low, k))
        groups = [g for g in groups if not g.coarse]
    else:
        cbuf = torch.empty(3, b, s * s, device=device)
        cbuf.copy_(background.expand(b, 3, s, s).transpose(0, 1).reshape(3, b, s * s))
    zflat, cflat = zbuf.view(-1), cbuf.view(3, -1)
    winner = torch.empty(zflat.shape, dtype=torch.long, device=device)  # per pixel: the hit that paints it
    for group in groups:
        hits = cast_group(group, s)
        if hits is None:
            continue
        # all parts of the group at once: max-reduce the depths; only the hits that hold the new
        # maximum are shaded (deferred shading: most hits are hidden) and write their colour
        zflat.scatter_reduce_(0, hits.pixel, hits.depth, reduce="amax")
        front = (hits.depth == zflat.index_select(0, hits.pixel)).nonzero()[:, 0]
        # parts that touch can tie exactly in depth: keep one hit per pixel, the last in cast order,
        # so that no pixel is written twice (which write lands would depend on the thread count)
        pixel = hits.pixel.index_select(0, front)
        winner.scatter_reduce_(0, pixel, front, reduce="amax", include_self=False)  # stale entries ignored
        hits = hits.take(front[winner.index_select(0, pixel) == front])
        cflat[:, hits.pixel] = shade(group, hits, light)
    colour = _box_downsample(cbuf, s, downsample) if downsample > 1 else cbuf.reshape(3, b, s, s)
    colour = colour.contiguous() if channels_first else colour.transpose(0, 1).contiguous()
    if return_depth:
        return colour, zbuf.reshape(b, s, s)
    return colour
