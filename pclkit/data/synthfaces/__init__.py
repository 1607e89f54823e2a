"""SynthFaces: the embedded procedural 3D face dataset with ground-truth factors.

Public API::

    factors = sample_factors("train", n=1000, seed=0)      # Factors of samples 0..999
    images = render(factors, size=64)                      # (B, 3, 64, 64) float in [0, 1]
    swapped = render(Factors.combine(face_from=a, pose_from=b))   # ground truth of D(F_f^a, F_p^b)
    ds = SynthFaces("train")                               # torch Dataset of (image, labels)
    ds = synthfaces_split("test", 500, 64, pose_limits=(30, 20, 15))   # poses within limits
    images_u8, labels = ds.tensors()                       # everything at once, cached
    bank = render_pose_bank(ds, Render3D(), k=8)           # 8 re-renders per face at new poses, cached

The modules, from factors to pixels:

* :mod:`~pclkit.data.synthfaces.factors` -- what a face is made of (identity,
  expression, action units, head pose, nuisance) and how it is sampled;
* :mod:`~pclkit.data.synthfaces.identity` -- identity integer -> geometry, colours, accessories;
* :mod:`~pclkit.data.synthfaces.layout` -- head frame, camera framing, the parts collector;
* :mod:`~pclkit.data.synthfaces.parts` -- the ellipsoid parts and how action units move them;
* :mod:`~pclkit.data.synthfaces.scene` -- one batch of factors -> parts, lighting, background;
* :mod:`~pclkit.data.synthfaces.raycast` -- batched ray casting with a z-buffer;
* :mod:`~pclkit.data.synthfaces.renderer` -- :func:`render`;
* :mod:`~pclkit.data.synthfaces.dataset` -- :class:`SynthFaces`, :func:`synthfaces_split`;
* :mod:`~pclkit.data.synthfaces.pose_bank` -- :class:`PoseBank`: every face pre-rendered at K new poses.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pclkit.data.synthfaces.dataset import SynthFaces, synthfaces_split
from pclkit.data.synthfaces.factors import (
    AU_DESCRIPTIONS,
    AU_NAMES,
    DEFAULT_CONFIG,
    DEFAULT_POSE_LIMITS,
    EXPRESSION_PROTOTYPES,
    EXPRESSIONS,
    NUISANCE_NAMES,
    SPLITS,
    Factors,
    SynthConfig,
    canonical_nuisance,
    make_factors,
    sample_factors,
    symmetric_pose_config,
)
from pclkit.data.synthfaces.pose_bank import PoseBank, render_pose_bank
from pclkit.data.synthfaces.renderer import RENDER_CHUNK, RENDERER_VERSION, render
from pclkit.data.synthfaces.scene import LANDMARK_NAMES, SceneConfig, build_scene, landmarks

__all__ = [
    "AU_DESCRIPTIONS",
    "AU_NAMES",
    "DEFAULT_CONFIG",
    "DEFAULT_POSE_LIMITS",
    "EXPRESSIONS",
    "EXPRESSION_PROTOTYPES",
    "LANDMARK_NAMES",
    "NUISANCE_NAMES",
    "PoseBank",
    "RENDERER_VERSION",
    "RENDER_CHUNK",
    "SPLITS",
    "Factors",
    "SceneConfig",
    "SynthConfig",
    "SynthFaces",
    "build_scene",
    "canonical_nuisance",
    "landmarks",
    "make_factors",
    "render",
    "render_pose_bank",
    "renderer_source_hash",
    "sample_factors",
    "symmetric_pose_config",
    "synthfaces_split",
]


def renderer_source_hash() -> str:
    """16 hex digits of the SHA-256 of this package's source (every module, by name): the renderer's code.

    A cache of rendered images keyed by it goes stale whenever the renderer's
    code changes, even where :data:`RENDERER_VERSION` was not bumped.
    """
    folder = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
