"""SynthFaces: the embedded procedural 3D face dataset with ground-truth factors (DESIGN §2.1).

Public API (docs/architecture.md, "SynthFaces factor API")::

    factors = sample_factors("train", n=1000, seed=0)      # Factors of samples 0..999
    images = render(factors, size=64)                      # (B, 3, 64, 64) float in [0, 1]
    swapped = render(Factors.combine(face_from=a, pose_from=b))   # ground truth of D(F_f^a, F_p^b)
    ds = SynthFaces("train")                               # torch Dataset of (image, labels)
    images_u8, labels = ds.tensors()                       # everything at once, cached

Faces are unions of ellipsoids (head, jaw, chin, cheeks, ears, eyeballs with
iris and pupil, lids, brows, nose, lips, teeth, hair, optional beard, moustache
and glasses) ray-cast in batches with a z-buffer (:mod:`pclkit.data.synth_raycast`),
driven by identity parameters (:mod:`pclkit.data.synth_identity`) and action
units (:mod:`pclkit.data.synth_face`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset

from pclkit.threads import torch_threads
from pclkit.data.synth_face import LANDMARK_NAMES, SceneConfig, build_scene, landmarks
from pclkit.data.synth_factors import (
    AU_DESCRIPTIONS,
    AU_NAMES,
    DEFAULT_CONFIG,
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
from pclkit.data.synth_raycast import composite

__all__ = [
    "AU_DESCRIPTIONS",
    "AU_NAMES",
    "DEFAULT_CONFIG",
    "EXPRESSIONS",
    "EXPRESSION_PROTOTYPES",
    "NUISANCE_NAMES",
    "SPLITS",
    "Factors",
    "LANDMARK_NAMES",
    "SceneConfig",
    "SynthConfig",
    "SynthFaces",
    "canonical_nuisance",
    "landmarks",
    "make_factors",
    "render",
    "sample_factors",
    "symmetric_pose_config",
    "torch_threads",
]

#: images per rendering chunk: keeps the per-part window tensors cache-sized
RENDER_CHUNK = 128
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
    """
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    if not isinstance(factors, Factors):
        raise TypeError(f"render needs a Factors batch, got {type(factors).__name__}")
    out = torch.empty(len(factors), 3, size, size, device=factors.pose.device)
    with torch_threads(threads):
        for start in range(0, len(factors), chunk):
            part = factors[start : start + chunk]
            out[start : start + len(part)] = _render_chunk(part, size, supersample, symmetric, mixed_resolution, scene)
    return out


def _render_chunk(
    factors: Factors, size: int, supersample: int, symmetric: bool, mixed_resolution: bool, scene: SceneConfig
) -> Tensor:
    fine = size * supersample
    groups, light, background = build_scene(factors, symmetric=symmetric, config=scene)
    # a soft vertical gradient so the background is not a flat colour: (B, 3, fine, 1)
    ramp = torch.linspace(1.08, 0.85, fine, device=background.device)
    backdrop = background[:, :, None, None] * ramp[None, None, :, None]
    coarse = supersample if mixed_resolution else 1
    # coarse depths step by up to one fine pixel: push them back by that much (camera units)
    image = composite(groups, fine, light, backdrop, coarse_factor=coarse, coarse_bias=2.0 / fine, downsample=supersample)
    return image.clamp_(0, 1)


class SynthFaces(Dataset):
    """Procedural faces with labels ``identity, expression, aus, pose, index``.

    ``SynthFaces(split="train"|"val"|"test", n=None, size=64, seed=0)``; ``n``
    defaults to ``config.default_n[split]`` (20,000 / 2,000 / 4,000 with
    500 / 100 / 200 disjoint identities). Items are rendered on demand;
    :meth:`tensors` renders everything once in batches and caches it (uint8)
    in memory and, with ``cache_dir`` (default: ``$PCLKIT_SYNTH_CACHE`` if
    set), on disk, keyed by everything that determines the pixels.
    """

    def __init__(
        self,
        split: str = "train",
        n: int | None = None,
        size: int = 64,
        seed: int = 0,
        config: SynthConfig = DEFAULT_CONFIG,
        supersample: int = 2,
        cache_dir: str | Path | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        self.split = split
        self.n = config.default_n[split] if n is None else int(n)
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        self.size = size
        self.seed = seed
        self.config = config
        self.supersample = supersample
        self.factors = sample_factors(split, self.n, seed, config)
        self.class_names: dict[str, list[str]] = {
            "expression": list(EXPRESSIONS),
            "aus": list(AU_NAMES),
            "pose": ["yaw", "pitch", "roll"],
        }
        self._cache: tuple[Tensor, dict[str, Tensor]] | None = None
        env_dir = os.environ.get("PCLKIT_SYNTH_CACHE")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else (Path(env_dir) if env_dir else None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Any]]:
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for SynthFaces({self.split!r}) of length {self.n}")
        i = i % self.n
        if self._cache is not None:
            image = self._cache[0][i].float() / 255
        else:
            image = render(self.factors[i], self.size, supersample=self.supersample)[0]
        return image, self.labels(i)

    def labels(self, i: int) -> dict[str, Any]:
        """The label dict of item ``i``."""
        f = self.factors
        return {
            "identity": int(f.identity[i]),
            "expression": int(f.expression[i]),
            "aus": f.aus[i].clone(),
            "pose": f.pose[i].clone(),
            "index": i,
        }

    def tensors(
        self, progress: bool = False, batch: int = 512, threads: int | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """All images as uint8 (N, 3, S, S) and labels as tensors (N, ...); rendered once, then cached.

        ``threads``: torch intra-op threads while rendering (see :func:`render`).
        """
        if self._cache is None:
            images = self._load_disk_cache()
            if images is None:
                with torch_threads(threads):
                    images = self._render_all(progress, batch)
                self._save_disk_cache(images)
            labels = {key: value.clone() for key, value in self.factors.labels().items()}
            labels["index"] = torch.arange(self.n)
            self._cache = (images, labels)
        images, labels = self._cache
        return images, dict(labels)

    def _render_all(self, progress: bool, batch: int) -> Tensor:
        from tqdm.auto import tqdm

        images = torch.empty(self.n, 3, self.size, self.size, dtype=torch.uint8)
        for start in tqdm(range(0, self.n, batch), desc=f"rendering SynthFaces {self.split}", disable=not progress):
            part = self.factors[start : start + batch]
            rgb = render(part, self.size, supersample=self.supersample)
            images[start : start + len(part)] = (rgb * 255).round().to(torch.uint8)
        return images

    def cache_key(self) -> str:
        """A digest of everything that determines the pixels (renderer version included)."""
        spec = repr((RENDERER_VERSION, self.split, self.n, self.size, self.seed, self.supersample, self.config))
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"synthfaces_{self.split}_{self.n}_{self.size}px_{self.cache_key()}.pt"

    def _load_disk_cache(self) -> Tensor | None:
        path = self._cache_path()
        if path is None or not path.is_file():
            return None
        try:
            images = torch.load(path, weights_only=True)
        except Exception as err:  # a torn or foreign file: re-render rather than fail
            warnings.warn(f"ignoring unreadable SynthFaces cache {path}: {err}")
            return None
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or tuple(images.shape) != (self.n, 3, self.size, self.size):
            warnings.warn(f"ignoring SynthFaces cache {path}: unexpected content")
            return None
        return images

    def _save_disk_cache(self, images: Tensor) -> None:
        path = self._cache_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(images, tmp)
        os.replace(tmp, path)  # atomic: readers never see a half-written file

    def __repr__(self) -> str:
        return f"SynthFaces(split={self.split!r}, n={self.n}, size={self.size}, seed={self.seed})"
