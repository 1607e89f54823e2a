"""SynthFaces as a torch dataset: one split of rendered faces with their factors as labels.

:func:`synthfaces_split` is the one way the package builds a split whose head
poses are drawn within symmetric limits (the training data, the probe
monitor, the evaluation and the figures all draw their faces through it).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from pclkit.data.synthfaces.factors import (
    AU_NAMES,
    DEFAULT_CONFIG,
    DEFAULT_POSE_LIMITS,
    EXPRESSIONS,
    SPLITS,
    SynthConfig,
    sample_factors,
    symmetric_pose_config,
)
from pclkit.data.synthfaces.renderer import RENDERER_VERSION, render
from pclkit.threads import torch_threads

__all__ = ["SynthFaces", "load_cache", "save_cache", "synthfaces_split", "tensor_matches"]


def tensor_matches(value: Any, dtype: torch.dtype, shape: tuple[int, ...]) -> bool:
    """Whether ``value`` is a tensor of this dtype and shape (cache validation)."""
    return isinstance(value, Tensor) and value.dtype == dtype and tuple(value.shape) == shape


def load_cache(path: Path, valid: Callable[[Any], bool]) -> Any:
    """What ``path`` holds (``torch.load``, ``weights_only=True``) if ``valid`` accepts it, else None.

    A missing file gives None; a torn, foreign or unexpected one a warning and None (the caller
    renders again rather than fail).
    """
    if not path.is_file():
        return None
    try:
        content = torch.load(path, weights_only=True)
    except Exception as err:  # a torn or foreign file: re-render rather than fail
        warnings.warn(f"ignoring unreadable SynthFaces cache {path}: {err}", stacklevel=3)
        return None
    if not valid(content):
        warnings.warn(f"ignoring SynthFaces cache {path}: unexpected content", stacklevel=3)
        return None
    return content


def save_cache(path: Path, content: Any) -> None:
    """``torch.save`` ``content`` to ``path`` atomically: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(content, tmp)
    os.replace(tmp, path)


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
        return self.images([i])[0], self.labels(i)

    def images(self, indices: Sequence[int] | Tensor) -> Tensor:
        """Items ``indices`` as float (len, 3, S, S) in [0, 1]: exactly ``self[i][0]`` for each, in one
        batched render when the images are not cached (:func:`render` gives every face the same pixels in
        any batch)."""
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(index) and not bool(((index >= -self.n) & (index < self.n)).all()):
            raise IndexError(f"indices out of range for SynthFaces({self.split!r}) of length {self.n}")
        index = index % self.n
        if self._cache is not None:
            return self._cache[0].index_select(0, index).float() / 255
        return render(self.factors[index], self.size, supersample=self.supersample)

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
        if path is None:
            return None
        shape = (self.n, 3, self.size, self.size)
        return load_cache(path, lambda images: tensor_matches(images, torch.uint8, shape))

    def _save_disk_cache(self, images: Tensor) -> None:
        path = self._cache_path()
        if path is not None:
            save_cache(path, images)

    def __repr__(self) -> str:
        return f"SynthFaces(split={self.split!r}, n={self.n}, size={self.size}, seed={self.seed})"


def synthfaces_split(
    split: str,
    n: int | None = None,
    size: int = 64,
    seed: int = 0,
    pose_limits: Sequence[float] | None = None,
    prior: str | None = None,
    **options: Any,
) -> SynthFaces:
    """A :class:`SynthFaces` ``split`` of ``n`` faces at ``size`` px, head poses within ``pose_limits``.

    ``pose_limits``: half-widths (yaw, pitch, roll) in degrees (None: the
    default ranges, :data:`~pclkit.data.synthfaces.factors.DEFAULT_POSE_LIMITS`);
    ``prior``: ``"normal"`` or ``"uniform"`` pose prior (None: the default's).
    The default limits and prior give the default config, so caches keyed by it
    are shared. ``options`` go to :class:`SynthFaces` (``supersample``, ``cache_dir``).
    """
    limits = DEFAULT_POSE_LIMITS if pose_limits is None else pose_limits
    config = symmetric_pose_config(limits, prior=prior)
    return SynthFaces(split, n=n, size=size, seed=seed, config=config, **options)
