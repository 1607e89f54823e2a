"""A fused CPU kernel for SynthFaces' compositing: the same pixels as :func:`raycast.composite`, one loop.

:func:`pclkit.data.synthfaces.raycast.composite` spends a chunk of faces on ~8,000 small torch calls
(scanlines, casting, clipping, a z-buffer per group, deferred shading, resampling), and most of its
time is their overhead, not arithmetic (``docs/results/renderer_speed.md``). Here the same steps run
as plain loops compiled by numba (Lam et al., LLVM-HPC 2015), one face per iteration and the faces of
a chunk spread over the threads:

    for every face:
        coarse layer (skull, jaw, hair, ears, neck) at S / k: cast, z-test, shade the winners,
        bilinear 2x upsampling of its colours, its depths pushed back by ``coarse_bias``;
        detailed parts at S: cast every pixel of every silhouette row, clip, z-test (``>=``:
        the last of equal depths in cast order wins, as in ``composite``), shade the winners;
        box filter S -> S / supersample.

The per-part values the rays and the shading need come from the torch code
(:func:`~pclkit.data.synthfaces.raycast.part_geometry`, :func:`~pclkit.data.synthfaces.raycast.shading_table`),
and every per-pixel operation is done in float32 in the order the torch code does it, so the two
agree to float rounding (transcendental functions -- the hair streaks' cosine, the highlight's power
-- may differ in the last bit; ``tests/test_synthetic.py`` compares them).

The clip and texture rules of :mod:`pclkit.data.synthfaces.parts` are torch functions; each has a
twin here (``_clip``, ``_texture``) with its parameters packed per part by :data:`RULES`. A scene
with a rule that has no twin (a user's own part) is rendered by the torch code instead
(:func:`fusable`). numba is optional (it comes with ``umap-learn``); without it ``render`` uses the
torch code.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from pclkit.data.synthfaces import parts
from pclkit.data.synthfaces.raycast import Lighting, PartGroup, has_highlight, part_geometry, shading_table

__all__ = ["RULES", "available", "composite_fused", "fusable"]

# rule ids: 0 = none
CLIP_LID, CLIP_CAP, CLIP_BEARD, CLIP_RIM = 1, 2, 3, 4
TEX_EAR, TEX_EYE, TEX_LID, TEX_BRIDGE, TEX_STREAKS = 1, 2, 3, 4, 5

#: torch rule -> (its twin's id, the ``params`` / ``part_params`` it reads, in slot order; a colour
#: takes three slots)
RULES: dict = {
    parts._lid_clip: (CLIP_LID, ("open", "upper")),
    parts._cap_clip: (CLIP_CAP, ("front", "parting")),
    parts._beard_clip: (CLIP_BEARD, ("radii", "mouth_limit")),
    parts._rim_clip: (CLIP_RIM, ()),
    parts._ear_texture: (TEX_EAR, ("skin",)),
    parts._eye_texture: (TEX_EYE, ("iris",)),
    parts._lid_texture: (TEX_LID, ("open", "upper")),
    parts._bridge_texture: (TEX_BRIDGE, ("skin", "wrinkle")),
    parts._hair_streaks: (TEX_STREAKS, ()),
}
#: parameter slots per part
N_PARAMS = 8
#: columns of the per-part geometry table (raycast.part_geometry) and of the shading table (15:
#: with the highlight columns, zero where a group has none)
N_GEOMETRY, N_SHADING = 19, 15


def rule_constants() -> np.ndarray:
    """The rules' constants from parts.py, (11,) float32, in the slots ``_fused_kernel`` reads."""
    values = [parts.LID_CURVE, parts.HAIR_SIDE_DROP, parts.HAIR_BACK_DROP, parts.TEMPLE_DIP, parts.BEARD_CURVE,
              *parts.SCLERA, *parts.PUPIL]
    return np.asarray(values, dtype=np.float32)


def available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def fusable(groups: list[PartGroup]) -> bool:
    """Whether every group's clip and texture rule has a twin here, on CPU float32 tensors."""
    for group in groups:
        if group.center.device.type != "cpu" or group.center.dtype != torch.float32:
            return False
        if any(rule is not None and rule not in RULES for rule in (group.clip, group.texture)):
            return False
    return True


def _rule_columns(group: PartGroup, rule) -> list[Tensor]:
    """The parameters ``rule`` reads, each (B, P, 1) or, for a colour, (B, P, 3)."""
    b, p = group.center.shape[:2]
    columns = []
    for name in RULES[rule][1] if rule is not None else ():
        if name in group.part_params:
            columns.append(group.part_params[name].float()[..., None])
        else:
            value = group.params[name].float()  # (B,) or (B, k)
            value = value[:, None] if value.dim() == 1 else value
            columns.append(value[:, None, :].expand(b, p, value.shape[1]))
    return columns


def _pack_params(group: PartGroup) -> tuple[Tensor, int]:
    """(B, P, N_PARAMS) float32: the clip rule's parameters from slot 0, then the texture rule's;
    and the texture rule's first slot."""
    clip, texture = _rule_columns(group, group.clip), _rule_columns(group, group.texture)
    packed = torch.zeros(*group.center.shape[:2], N_PARAMS)
    if clip or texture:
        values = torch.cat(clip + texture, -1)
        if values.shape[-1] > N_PARAMS:
            raise ValueError(f"part {group.name!r}: its rules need {values.shape[-1]} parameters, at most {N_PARAMS}")
        packed[..., : values.shape[-1]] = values
    return packed, sum(column.shape[-1] for column in clip)


def composite_fused(
    groups: list[PartGroup],
    image_size: int,
    light: Lighting,
    backdrop: Tensor,
    coarse_factor: int = 1,
    coarse_bias: float = 0.0,
    downsample: int = 1,
) -> Tensor:
    """``raycast.composite`` for a backdrop that varies by row only: colours (B, 3, S/downsample, S/downsample).

    ``backdrop`` is (B, 3, S, 1); ``image_size`` S the full (supersampled) resolution; the other
    arguments as in :func:`~pclkit.data.synthfaces.raycast.composite`. Threads: torch's intra-op count,
    each face on one thread (so the pixels do not depend on the count).
    """
    from pclkit.data.synthfaces import _fused_kernel

    b, s = backdrop.shape[0], image_size
    for factor in (coarse_factor, downsample):
        if s % factor:
            raise ValueError(f"image size {s} is not divisible by {factor}")
    if tuple(backdrop.shape) != (b, 3, s, 1):
        raise ValueError(f"the fused renderer needs a backdrop of shape {(b, 3, s, 1)}, got {tuple(backdrop.shape)}")
    if not groups or not fusable(groups):
        raise ValueError("the fused renderer needs one or more groups of CPU float32 parts whose rules all "
                         "have twins (fused.RULES)")
    geometry, shading, params, enabled, table, shininess = [], [], [], [], [], []
    first = 0
    for group in groups:
        p = group.center.shape[1]
        geometry.append(part_geometry(group).T.reshape(b, p, N_GEOMETRY))
        shade = shading_table(group, light).reshape(b, p, -1)
        shading.append(torch.nn.functional.pad(shade, (0, N_SHADING - shade.shape[-1])))
        packed, texture_first = _pack_params(group)
        params.append(packed)
        enabled.append(torch.ones(b, p, dtype=torch.bool) if group.enabled is None else group.enabled.bool())
        clip = 0 if group.clip is None else RULES[group.clip][0]
        texture = 0 if group.texture is None else RULES[group.texture][0]
        coarse = int(group.coarse and coarse_factor > 1)
        table.append([first, p, clip, texture, texture_first, int(group.back_faces), coarse,
                      int(has_highlight(group))])
        shininess.append(group.shininess)
        first += p
    low = s // coarse_factor
    low_backdrop = torch.nn.functional.avg_pool2d(backdrop, (coarse_factor, 1)) if coarse_factor > 1 else backdrop
    out = np.empty((b, 3, s // downsample, s // downsample), dtype=np.float32)
    arrays = (
        torch.cat(geometry, 1).contiguous().numpy(),
        torch.cat(shading, 1).contiguous().numpy(),
        torch.cat(params, 1).contiguous().numpy(),
        torch.cat(enabled, 1).contiguous().numpy(),
        np.asarray(table, dtype=np.int64).reshape(len(groups), 8),
        np.repeat(np.arange(len(groups)), [row[1] for row in table]).astype(np.int64),
        np.asarray(shininess, dtype=np.float32),
        backdrop[..., 0].contiguous().numpy(),
        low_backdrop[..., 0].contiguous().numpy(),
        s, low, coarse_factor, np.float32(coarse_bias), downsample, rule_constants(),
    )
    # slices of the batch on torch's intra-op thread count: the kernel releases the GIL, and plain
    # Python threads (made afresh per call) keep numba's own threading layers -- and their fork
    # safety -- out of it
    threads = max(1, min(torch.get_num_threads(), b))
    bounds = [b * k // threads for k in range(threads + 1)]
    work = [(bounds[k], bounds[k + 1]) for k in range(threads)]
    if threads == 1:
        _fused_kernel.composite_kernel(*arrays, 0, b, out)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda span: _fused_kernel.composite_kernel(*arrays, *span, out), work))
    return torch.from_numpy(out)
