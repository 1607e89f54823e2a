"""The numba loops behind :mod:`pclkit.data.synthfaces.fused` (imported only when numba is).

Every operation is float32 and in the order of the torch code it mirrors
(:mod:`pclkit.data.synthfaces.raycast`, the rules of :mod:`pclkit.data.synthfaces.parts`);
comments name the torch lines. Layouts (B faces, N parts of all groups in order):

* ``geometry`` (B, N, 19): :func:`~pclkit.data.synthfaces.raycast.part_geometry`'s rows;
* ``shading`` (B, N, 15): :func:`~pclkit.data.synthfaces.raycast.shading_table`'s columns;
* ``params`` (B, N, 8): the rules' parameters (``fused._pack_params``); ``enabled`` (B, N) bool;
* ``groups`` (G, 8) int64: first part, parts, clip rule, texture rule, texture's first slot,
  back faces, coarse, highlight; ``shininess`` (G,);
* ``constants``: the rules' constants from :mod:`~pclkit.data.synthfaces.parts` (passed at run
  time, so numba's on-disk cache never holds stale values).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

F32 = np.float32
ZERO, ONE, HALF = F32(0.0), F32(1.0), F32(0.5)
MINUS_INF = F32(-np.inf)
# slots of ``constants`` (fused.rule_constants)
LID_CURVE, HAIR_SIDE_DROP, HAIR_BACK_DROP, TEMPLE_DIP, BEARD_CURVE = 0, 1, 2, 3, 4
SCLERA, PUPIL = 5, 8  # three each


@njit(cache=True)
def _lid_edge(q0, q1, opening, upper, constants):
    # parts._lid_edge: edge = open - LID_CURVE * q[0] ** 2; where(upper, q[1] - edge, -edge - q[1])
    edge = opening - constants[LID_CURVE] * (q0 * q0)
    return q1 - edge if upper > HALF else -edge - q1


@njit(cache=True)
def _clip(rule, q0, q1, q2, prm, constants):
    """The clip rules of parts.py: True where the surface is kept."""
    if rule == 1:  # _lid_clip
        return _lid_edge(q0, q1, prm[0], prm[1], constants) > ZERO
    if rule == 2:  # _cap_clip
        back = max(-q2, ZERO)
        threshold = prm[0] - constants[HAIR_SIDE_DROP] * (ONE - q2) - constants[HAIR_BACK_DROP] * back
        threshold = threshold + prm[1] * q0 - constants[TEMPLE_DIP] * q0 * q0
        return q1 > threshold
    if rule == 3:  # _beard_clip: radii (3 slots), mouth_limit
        x, y = q0 * prm[0], q1 * prm[1]
        return y < prm[3] + constants[BEARD_CURVE] * x * x
    if rule == 4:  # _rim_clip
        return q0 * q0 + q1 * q1 > F32(0.76**2)
    return True


@njit(cache=True)
def _texture(rule, q0, q1, q2, prm, part, constants):
    """The texture rules of parts.py: (True, r, g, b) for a colour map, (False, v, v, v) for brightness."""
    if rule == 1:  # _ear_texture: params skin (3)
        side = F32(part) * F32(2.0) - ONE
        dz = q2 + F32(0.15)
        concha = (q0 * side > ZERO) and ((q1 * q1) * F32(1.6) + dz * dz < F32(0.35))
        k = F32(0.68) if concha else ONE
        return True, prm[0] * k, prm[1] * k, prm[2] * k
    if rule == 2:  # _eye_texture: params iris (3)
        rho2 = q0 * q0 + q1 * q1
        front = q2 > ZERO
        iris_r2, pupil_r2 = F32(0.52**2), F32(0.24**2)
        if front and rho2 < pupil_r2:
            return True, constants[PUPIL], constants[PUPIL + 1], constants[PUPIL + 2]
        if front and rho2 < iris_r2:
            x = rho2 / iris_r2
            limbal = ONE - F32(0.55) * (x * x)
            return True, prm[0] * limbal, prm[1] * limbal, prm[2] * limbal
        return True, constants[SCLERA], constants[SCLERA + 1], constants[SCLERA + 2]
    if rule == 3:  # _lid_texture: params open, upper
        edge = _lid_edge(q0, q1, prm[0], prm[1], constants)
        if prm[1] > HALF:
            v = F32(0.22) if edge < F32(0.13) else (F32(0.82) if edge < F32(0.3) else ONE)
        else:
            v = F32(0.62) if edge < F32(0.08) else ONE
        return False, v, v, v
    if rule == 4:  # _bridge_texture: params skin (3), wrinkle
        lines = (math.sin(q1 * F32(18.0)) > F32(0.3)) and (q1 > F32(0.05))
        k = ONE - F32(0.9) * prm[3] * (ONE if lines else ZERO)
        return True, prm[0] * k, prm[1] * k, prm[2] * k
    # 5, _hair_streaks: cos(q[0] * 26 / (1.35 - q[1])) * 0.06 + 0.94
    v = math.cos(q0 * F32(26.0) / (F32(1.35) - q1)) * F32(0.06) + F32(0.94)
    return False, v, v, v


@njit(cache=True)
def _cast_group(i, g, size, zbuf, winner, hit_q, hit_inside, geometry, params, enabled, groups, constants):
    """raycast.cast_group and composite's z-test for group g of face i at side ``size``."""
    first, count, clip, back_faces = groups[g, 0], groups[g, 1], groups[g, 2], groups[g, 5]
    h = F32(2.0 / size)
    for n in range(first, first + count):
        if not enabled[i, n]:
            continue
        geo = geometry[i, n]
        x_d, y_d, x_x, x_y, y_y, d_d, cx, cy, cz = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8]
        half_height = geo[18]
        # _scanlines: row0 = ceil((1 - cy - half_height) / h - 0.5).clamp(0, s), row1 likewise
        row0 = min(max(math.ceil((ONE - cy - half_height) / h - HALF), 0), size)
        row1 = min(max(math.floor((ONE - cy + half_height) / h - HALF), -1), size - 1)
        inv_dd = ONE / d_d
        prm = params[i, n]
        for row in range(row0, row1 + 1):
            uy = ONE - (F32(row) + HALF) * h - cy
            beta = y_d * uy
            a2 = x_d * x_d - d_d * x_x
            a1 = x_d * beta - d_d * x_y * uy
            a0 = beta * beta - d_d * (y_y * uy * uy - ONE)
            root = math.sqrt(max(a1 * a1 - a2 * a0, ZERO))
            ux_lo, ux_hi = (root - a1) / a2, (-root - a1) / a2
            col0 = min(max(math.ceil((ux_lo + cx + ONE) / h - HALF), 0), size)
            col1 = min(max(math.floor((ux_hi + cx + ONE) / h - HALF), -1), size - 1)
            if col1 < col0:
                continue
            ux0 = (F32(col0) + HALF) * h - ONE - cx
            qy0, qy1, qy2 = geo[15] * uy, geo[16] * uy, geo[17] * uy
            two_a1 = F32(2.0) * a1
            for j in range(col1 - col0 + 1):
                # cast_group: the nearest root of |q0 + t d|^2 = 1
                ux = ux0 + h * F32(j)
                root = math.sqrt(max((a2 * ux + two_a1) * ux + a0, ZERO))
                q0_d = x_d * ux + beta
                t = (root - q0_d) * inv_dd
                p0, p1, p2 = geo[9] * ux + qy0, geo[10] * ux + qy1, geo[11] * ux + qy2
                q0, q1, q2 = p0 + geo[12] * t, p1 + geo[13] * t, p2 + geo[14] * t
                inside = False
                if clip != 0:
                    keep = _clip(clip, q0, q1, q2, prm, constants)
                    if back_faces != 0:
                        t_back = (-root - q0_d) * inv_dd
                        b0, b1, b2 = p0 + geo[12] * t_back, p1 + geo[13] * t_back, p2 + geo[14] * t_back
                        keep_back = _clip(clip, b0, b1, b2, prm, constants)
                        inside = (not keep) and keep_back
                        if inside:
                            t, q0, q1, q2 = t_back, b0, b1, b2
                        keep = keep or keep_back
                    if not keep:
                        continue
                depth = cz + t
                pixel = row * size + col0 + j
                # composite: the nearest depth wins; of equal depths the last in cast order
                if depth >= zbuf[pixel]:
                    zbuf[pixel] = depth
                    winner[pixel] = n
                    hit_q[pixel, 0], hit_q[pixel, 1], hit_q[pixel, 2] = q0, q1, q2
                    hit_inside[pixel] = inside


@njit(cache=True)
def _shade(i, colour, winner, hit_q, hit_inside, part_group, shading, params, groups, shininess, constants):
    """raycast.shade for every pixel that has a winning hit, written into ``colour`` (3, pixels)."""
    for pixel in range(winner.shape[0]):
        n = winner[pixel]
        if n < 0:
            continue
        g = part_group[n]
        sh = shading[i, n]
        q0, q1, q2 = hit_q[pixel, 0], hit_q[pixel, 1], hit_q[pixel, 2]
        s0, s1, s2 = q0 * sh[3], q1 * sh[4], q2 * sh[5]
        inv_norm = ONE / math.sqrt(max(s0 * s0 + s1 * s1 + s2 * s2, F32(1e-12)))
        if hit_inside[pixel]:
            inv_norm = -inv_norm
        lum = max((q0 * sh[0] + q1 * sh[1] + q2 * sh[2]) * inv_norm, ZERO) * sh[9] + sh[10]
        r, gr, bl = sh[6], sh[7], sh[8]
        texture = groups[g, 3]
        if texture != 0:
            is_colour, t0, t1, t2 = _texture(texture, q0, q1, q2, params[i, n, groups[g, 4]:],
                                             n - groups[g, 0], constants)
            if is_colour:
                r, gr, bl = t0, t1, t2
            else:
                lum = lum * t0
        r, gr, bl = r * lum, gr * lum, bl * lum
        if groups[g, 7] != 0:
            n_dot_h = (q0 * sh[11] + q1 * sh[12] + q2 * sh[13]) * inv_norm
            spec = max(n_dot_h, ZERO) ** shininess[g] * (sh[14] * sh[9])
            r, gr, bl = r + spec, gr + spec, bl + spec
        colour[0, pixel], colour[1, pixel], colour[2, pixel] = r, gr, bl


@njit(cache=True)
def _layer(i, size, coarse_pass, zbuf, colour, geometry, shading, params, enabled, groups, part_group, shininess,
           constants):
    """Cast the groups of one layer (coarse or detailed) of face i over ``zbuf`` and shade their winners."""
    pixels = size * size
    winner = np.full(pixels, -1, dtype=np.int64)
    hit_q = np.empty((pixels, 3), dtype=np.float32)
    hit_inside = np.zeros(pixels, dtype=np.bool_)
    for g in range(groups.shape[0]):
        if (groups[g, 6] != 0) == coarse_pass:
            _cast_group(i, g, size, zbuf, winner, hit_q, hit_inside, geometry, params, enabled, groups, constants)
    _shade(i, colour, winner, hit_q, hit_inside, part_group, shading, params, groups, shininess, constants)


@njit(cache=True)
def _upsample_weights(out_size, in_size, factor):
    """F.interpolate(bilinear, align_corners=False, scale_factor) source rows and weights."""
    scale = F32(1.0 / factor)
    first = np.empty(out_size, dtype=np.int64)
    second = np.empty(out_size, dtype=np.int64)
    w_first = np.empty(out_size, dtype=np.float32)
    w_second = np.empty(out_size, dtype=np.float32)
    for k in range(out_size):
        src = max(scale * (F32(k) + HALF) - HALF, ZERO)
        index = int(math.floor(src))
        lam = min(max(src - F32(index), ZERO), ONE)
        first[k], second[k] = index, index + (1 if index < in_size - 1 else 0)
        w_first[k], w_second[k] = ONE - lam, lam
    return first, second, w_first, w_second


@njit(nogil=True, cache=True)
def composite_kernel(geometry, shading, params, enabled, groups, part_group, shininess, backdrop, low_backdrop,
                     size, low, coarse_factor, coarse_bias, downsample, constants, first_face, stop_face, out):
    """raycast.composite of faces ``first_face`` .. ``stop_face - 1`` into ``out`` (B, 3, size / downsample,
    size / downsample). Releases the GIL: the caller runs slices of the batch on its own threads."""
    has_coarse = False
    for g in range(groups.shape[0]):
        if groups[g, 6] != 0:
            has_coarse = True
    first, second, w_first, w_second = _upsample_weights(size, low, coarse_factor)
    side = size // downsample
    for i in range(first_face, stop_face):
        zbuf = np.empty(size * size, dtype=np.float32)
        colour = np.empty((3, size * size), dtype=np.float32)
        if has_coarse:
            low_zbuf = np.full(low * low, MINUS_INF, dtype=np.float32)
            low_colour = np.empty((3, low * low), dtype=np.float32)
            for c in range(3):
                for y in range(low):
                    low_colour[c, y * low: (y + 1) * low] = low_backdrop[i, c, y]
            _layer(i, low, True, low_zbuf, low_colour, geometry, shading, params, enabled, groups, part_group,
                   shininess, constants)
            # composite: colours upsampled bilinearly, depths by nearest neighbour, pushed back by coarse_bias
            for y in range(size):
                y0, y1, wy0, wy1 = first[y], second[y], w_first[y], w_second[y]
                for x in range(size):
                    x0, x1, wx0, wx1 = first[x], second[x], w_first[x], w_second[x]
                    for c in range(3):
                        top = low_colour[c, y0 * low + x0] * wx0 + low_colour[c, y0 * low + x1] * wx1
                        bottom = low_colour[c, y1 * low + x0] * wx0 + low_colour[c, y1 * low + x1] * wx1
                        colour[c, y * size + x] = top * wy0 + bottom * wy1
                    zbuf[y * size + x] = low_zbuf[(y // coarse_factor) * low + x // coarse_factor] - coarse_bias
        else:
            zbuf[:] = MINUS_INF
            for c in range(3):
                for y in range(size):
                    colour[c, y * size: (y + 1) * size] = backdrop[i, c, y]
        _layer(i, size, False, zbuf, colour, geometry, shading, params, enabled, groups, part_group, shininess,
               constants)
        # _box_downsample: rows first, then columns, then the mean
        norm = F32(downsample * downsample)
        for c in range(3):
            for y in range(side):
                for x in range(side):
                    total = ZERO
                    for dx in range(downsample):
                        column = ZERO
                        for dy in range(downsample):
                            column = colour[c, (y * downsample + dy) * size + x * downsample + dx] if dy == 0 else (
                                column + colour[c, (y * downsample + dy) * size + x * downsample + dx])
                        total = column if dx == 0 else total + column
                    out[i, c, y, x] = total / norm
