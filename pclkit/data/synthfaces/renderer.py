"""SynthFaces renderer: :class:`~pclkit.data.synthfaces.factors.Factors` -> images.

Faces are unions of ellipsoids (head, jaw, chin, cheeks, ears, eyeballs with
iris and pupil, lids, brows, nose, lips, teeth, hair, optional beard, moustache
and glasses; :mod:`pclkit.data.synthfaces.parts`) placed by
:func:`pclkit.data.synthfaces.scene.build_scene` and ray-cast in batches with a
z-buffer (:mod:`pclkit.data.synthfaces.raycast`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pclkit.data.synthfaces import fused
from pclkit.data.synthfaces.factors import Factors
from pclkit.data.synthfaces.raycast import composite
from pclkit.data.synthfaces.scene import SceneConfig, build_scene
from pclkit.threads import torch_threads

__all__ = ["RENDERER_BACKENDS", "RENDERER_VERSION", "RENDER_CHUNK", "render"]

#: ``render``'s backends: ``fused`` (one compiled loop per chunk, :mod:`pclkit.data.synthfaces.fused`;
#: CPU, needs numba), ``torch`` (batched tensor code, any device) and ``auto`` (fused where it can run)
RENDERER_BACKENDS = ("auto", "fused", "torch")

#: images per rendering chunk. 256 rather than 128: fewer, larger torch calls, so more of them pass
#: torch's parallel grain size; 1,024 faces at 64 px, fresh processes, 3 alternating rounds on a 2-core
#: Xeon: 2 threads 694 / 770 / 641 img/s against 557 / 677 / 562, 1 thread 558 / 488 / 413 against
#: 544 / 448 / 387 (512 and 1,024 were no faster; docs/results/renderer_speed.md)
RENDER_CHUNK = 256
#: bump when the renderer's pixels change: invalidates on-disk caches
RENDERER_VERSION = 4


def render(
    factors: Factors,
    size: int = 64,
    *,
    supersample: int = 2,
    symmetric: bool = False,
    mixed_resolution: bool = True,
    scene: SceneConfig = SceneConfig(),
    chunk: int = RENDER_CHUNK,
    threads: int | None = None,
    backend: str = "auto",
) -> Tensor:
    """Render faces: (B, 3, size, size) float32 in [0, 1] on the factors' device.

    ``supersample`` x ``supersample`` rays per pixel are box-filtered
    (anti-aliasing). With ``mixed_resolution`` the large smooth parts (skull,
    jaw, hair, neck, ears) get one ray per output pixel, bilinearly upsampled,
    and only the detailed parts (eyes, lids, brows, nose, mouth, glasses) are
    supersampled: about 2x faster, edges of the big parts slightly softer.
    ``symmetric=True`` renders mirror-symmetric versions of the identities
    (no hair parting or other left/right asymmetry). ``threads`` temporarily
    sets torch's intra-op thread count (restored afterwards); on a busy shared
    machine ``threads=1`` is often several times faster than the default.
    Deterministic: the same factors give the same image in any batch.

    ``backend``: ``"torch"`` casts each group of parts with batched tensor operations (any device);
    ``"fused"`` runs the same steps as one loop per face compiled by numba (CPU only; ~2.5x faster
    on 2 cores, the same pixels to float rounding, ``docs/results/renderer_speed.md``; the first
    call in a fresh checkout compiles for ~10 s, later ones load numba's cache);
    ``"auto"`` (default) uses ``fused`` on CPU when numba is installed, else ``torch``.
    """
    if backend not in RENDERER_BACKENDS:
        raise ValueError(f"backend must be one of {RENDERER_BACKENDS}, got {backend!r}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    if not isinstance(factors, Factors):
        raise TypeError(f"render needs a Factors batch, got {type(factors).__name__}")
    on_cpu = factors.pose.device.type == "cpu"
    if backend == "fused" and not (on_cpu and fused.available()):
        raise ValueError("the fused renderer needs CPU factors and numba (pip install numba); use backend='torch'")
    use_fused = backend == "fused" or (backend == "auto" and on_cpu and fused.available())
    out = torch.empty(len(factors), 3, size, size, device=factors.pose.device)
    with torch_threads(threads):
        for start in range(0, len(factors), chunk):
            part = factors[start : start + chunk]
            out[start : start + len(part)] = _render_chunk(
                part, size, supersample, symmetric, mixed_resolution, scene, use_fused
            )
    return out


def _render_chunk(
    factors: Factors, size: int, supersample: int, symmetric: bool, mixed_resolution: bool, scene: SceneConfig,
    use_fused: bool = False,
) -> Tensor:
    fine = size * supersample
    groups, light, background = build_scene(factors, symmetric=symmetric, config=scene)
    # a soft vertical gradient so the background is not a flat colour: (B, 3, fine, 1)
    ramp = torch.linspace(1.08, 0.85, fine, device=background.device)
    backdrop = background[:, :, None, None] * ramp[None, None, :, None]
    coarse = supersample if mixed_resolution else 1
    # coarse depths step by up to one fine pixel: push them back by that much (camera units)
    options = {"coarse_factor": coarse, "coarse_bias": 2.0 / fine, "downsample": supersample}
    if use_fused and fused.fusable(groups):  # a part whose rules have no fused twin: the torch code
        image = fused.composite_fused(groups, fine, light, backdrop, **options)
    else:
        image = composite(groups, fine, light, backdrop, **options)
    return image.clamp_(0, 1)
