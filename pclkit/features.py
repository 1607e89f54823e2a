"""Frozen feature extraction for linear evaluation, its on-disk cache, and the raw-pixel baseline.

Linear evaluation freezes the encoder (He et al., MoCo, CVPR 2020; Chen et al.,
SimCLR, ICML 2020): the model is in eval mode -- BatchNorm uses its running
statistics -- and no gradient is taken while features are computed. The PCL
paper (Liu et al., CVPR 2023) probes F_s, F_f, F_p and the concatenation
F_f ⊕ F_p; they are named here ``F_s``, ``F_f``, ``F_p`` and ``F_fp``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

#: feature keys in table order; "F_fp" is the concatenation F_f ⊕ F_p
FEATURE_KEYS: tuple[str, ...] = ("F_s", "F_f", "F_p", "F_fp")
#: human-readable names (Markdown / plots) and LaTeX names
DISPLAY_NAMES: dict[str, str] = {"F_s": "F_s", "F_f": "F_f", "F_p": "F_p", "F_fp": "F_f ⊕ F_p", "pixels": "pixels"}
LATEX_NAMES: dict[str, str] = {"F_s": "$F_s$", "F_f": "$F_f$", "F_p": "$F_p$", "F_fp": r"$F_f \oplus F_p$", "pixels": "pixels"}
_ALIASES = {"F_f⊕F_p": "F_fp", "F_f+F_p": "F_fp", "F_f^F_p": "F_fp", "fs": "F_s", "ff": "F_f", "fp": "F_p"}
#: bump when extraction changes so old cache entries are not reused
CACHE_VERSION = 1


def parse_feature_names(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"F_s,F_f,F_f⊕F_p"`` -> ``("F_s", "F_f", "F_fp")``; unknown names raise ``ValueError``."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    names = []
    for part in parts:
        if not part:
            continue
        key = _ALIASES.get(part, _ALIASES.get(part.lower(), part))
        if key not in FEATURE_KEYS:
            raise ValueError(f"unknown feature {part!r}; choose from {', '.join(FEATURE_KEYS)} (F_fp = F_f ⊕ F_p)")
        if key not in names:
            names.append(key)
    if not names:
        raise ValueError("no feature names given")
    return tuple(names)


def model_features(method: str) -> tuple[str, ...]:
    """Features a model of ``method`` exposes for evaluation (declared by the method)."""
    from pclkit.methods import get_method

    return get_method(method).features


def check_frozen(model: nn.Module) -> None:
    """Refuse a model (or any submodule, e.g. a BatchNorm) that is in training mode."""
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise RuntimeError(
            f"feature extraction needs the model in eval mode (BatchNorm running statistics); "
            f"call model.eval() first. Modules in training mode: {training[:5]}"
        )


def to_model_input(images: Tensor, size: int, device: torch.device | str) -> Tensor:
    """uint8 ``(B, 3, H, W)`` -> float ``(B, 3, size, size)`` in [0, 1] on ``device``.

    Images of another size are resized (bilinear, antialiased) because the
    encoder's flattened features need a fixed input side.
    """
    x = images.to(device).float() / 255.0 if images.dtype == torch.uint8 else images.to(device).float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    return x


def extract_features(
    model: nn.Module,
    images: Tensor,
    names: tuple[str, ...] = FEATURE_KEYS,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = True,
    desc: str = "features",
) -> dict[str, Tensor]:
    """Frozen features of ``images`` (uint8 ``(N, 3, H, W)`` or float in [0, 1]).

    Returns ``{name: float32 (N, D_name)}`` on CPU for ``names`` out of
    ``F_s (N, D_s)``, ``F_f (N, D)``, ``F_p (N, D)`` and ``F_fp (N, 2D)``.
    The model must be in eval mode; batches run under ``torch.inference_mode``
    (optionally in bf16 autocast, features returned in float32).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    check_frozen(model)
    size = int(getattr(model, "image_size", images.shape[-1]))
    device = torch.device(device)
    chunks: dict[str, list[Tensor]] = {name: [] for name in names}
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in tqdm(range(0, images.shape[0], batch_size), desc=desc, disable=not progress, leave=False):
            x = to_model_input(images[start:start + batch_size], size, device)
            batch = dict(model.forward_features(x))  # {"F_s": (B, D_s), ...}: what the model has
            if any(t.requires_grad for t in batch.values()):  # cannot happen under inference_mode
                raise RuntimeError("features were computed with autograd enabled")
            if "F_fp" in names and "F_f" in batch and "F_p" in batch:
                batch["F_fp"] = torch.cat([batch["F_f"], batch["F_p"]], dim=1)
            missing = [name for name in names if name not in batch]
            if missing:
                raise ValueError(f"the model has no feature {', '.join(missing)} (it has {', '.join(batch)})")
            for name in names:
                chunks[name].append(batch[name].float().cpu())
    return {name: torch.cat(parts) for name, parts in chunks.items()}


# --------------------------------------------------------------------------- cache


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content (a checkpoint is identified by what it holds, not by its name)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(identity: Mapping[str, Any]) -> str:
    """Stable hex key of a JSON-serialisable identity (model hash, dataset name/split/n/seed/size, features...)."""
    text = json.dumps({**identity, "cache_version": CACHE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class FeatureCache:
    """Features on disk at ``<root>/<key>.pt``, written atomically, read with ``weights_only=True``."""

    root: Path

    def path(self, identity: Mapping[str, Any]) -> Path:
        return Path(self.root) / f"{cache_key(identity)}.pt"

    def load(self, identity: Mapping[str, Any]) -> dict[str, Tensor] | None:
        path = self.path(identity)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a truncated or foreign file is a cache miss, recomputed below
            return None
        stored = payload.get("identity") if isinstance(payload, dict) else None
        if stored != json.dumps(dict(identity), sort_keys=True, default=str):
            return None
        return dict(payload["features"])

    def save(self, identity: Mapping[str, Any], features: Mapping[str, Tensor]) -> Path:
        path = self.path(identity)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{id(features)}")
        payload = {"identity": json.dumps(dict(identity), sort_keys=True, default=str), "features": dict(features)}
        torch.save(payload, tmp)
        tmp.replace(path)
        return path


def cached(
    cache: FeatureCache | None, identity: Mapping[str, Any], compute: Callable[[], dict[str, Tensor]]
) -> dict[str, Tensor]:
    """``compute()`` unless ``cache`` holds features for ``identity``; store what is computed."""
    if cache is not None:
        hit = cache.load(identity)
        if hit is not None:
            return hit
    features = compute()
    if cache is not None:
        cache.save(identity, features)
    return features


# --------------------------------------------------------------------------- raw-pixel baseline


def pixel_vectors(images: Tensor) -> Tensor:
    """uint8 ``(N, 3, H, W)`` -> float ``(N, 3HW)`` in [0, 1]."""
    return images.reshape(images.shape[0], -1).float() / (255.0 if images.dtype == torch.uint8 else 1.0)


@dataclass(frozen=True)
class PCA:
    """Principal components ``components (D, K)`` and ``mean (D,)`` of a training set."""

    mean: Tensor
    components: Tensor

    @staticmethod
    def fit(x: Tensor, dim: int) -> PCA:
        """Top-``dim`` principal directions of ``x (N, D)`` (capped at the rank bound ``min(N - 1, D)``).

        Uses the ``N x N`` Gram matrix when ``N < D`` (images: D = 3HW is large).
        """
        mean = x.mean(0)
        xc = (x - mean).float()
        n, d = xc.shape
        dim = max(1, min(dim, n - 1, d))
        if n < d:
            evals, evecs = torch.linalg.eigh(xc @ xc.T)
            top = torch.argsort(evals, descending=True)[:dim]
            # right singular vectors: V = X^T U / s
            comps = xc.T @ evecs[:, top] / evals[top].clamp_min(1e-12).sqrt()
        else:
            evals, evecs = torch.linalg.eigh(xc.T @ xc)
            comps = evecs[:, torch.argsort(evals, descending=True)[:dim]]
        return PCA(mean, comps)

    def __call__(self, x: Tensor) -> Tensor:
        """``x (M, D)`` -> scores ``(M, K)``."""
        return (x - self.mean) @ self.components


# --------------------------------------------------------------------------- feature sources for evaluation


@dataclass
class ImageSet:
    """A named set of evaluation images (a data split such as ``train`` or ``test``, or ``all``):
    labels at once, images on demand, an identity for cache keys.

    ``labels`` maps label names to tensors ``(N, ...)``; ``load_images()``
    returns uint8 ``(N, 3, H, W)`` and is called at most once (SynthFaces
    renders only when some features are not cached); ``identity`` is a
    JSON-able description (dataset, split, n, seed, size, ...).
    """

    name: str
    labels: dict[str, Tensor]
    identity: dict[str, Any]
    load_images: Callable[[], Tensor]
    factors: Any = None  # SynthFaces Factors (swap fidelity ground truth)
    _images: Tensor | None = None

    def images(self) -> Tensor:
        if self._images is None:
            self._images = self.load_images()
        return self._images

    def __len__(self) -> int:
        return int(next(iter(self.labels.values())).shape[0])


class EncoderSource:
    """Features ``names`` of a frozen model, extracted once per data part and cached on disk.

    The cache key is ``identity`` (e.g. the checkpoint's SHA-256) + the part's
    identity + the feature names + bf16.
    """

    def __init__(
        self,
        method: str,
        model: nn.Module,
        names: tuple[str, ...],
        identity: Mapping[str, Any],
        cache: FeatureCache | None = None,
        batch_size: int = 256,
        device: str = "cpu",
        bf16: bool = False,
        progress: bool = True,
    ):
        self.method, self.model, self.names, self.identity, self.cache = method, model, tuple(names), dict(identity), cache
        self.batch_size, self.device, self.bf16, self.progress = batch_size, device, bf16, progress
        self._features: dict[str, dict[str, Tensor]] = {}

    def features(
        self, parts: Mapping[str, ImageSet], fit_rows: Mapping[str, Tensor] | None = None
    ) -> dict[str, dict[str, Tensor]]:
        """``{feature: {part: (N, D)}}``; ``fit_rows`` is ignored (a frozen encoder fits nothing)."""
        for part in parts.values():
            if part.name in self._features:
                continue
            key = {**self.identity, **part.identity, "features": list(self.names), "bf16": self.bf16}
            compute = lambda part=part: extract_features(  # noqa: E731
                self.model, part.images(), self.names, self.batch_size, self.device, self.bf16, self.progress,
                desc=f"{self.method} {part.name}",
            )
            self._features[part.name] = cached(self.cache, key, compute)
        return {name: {p: self._features[p][name] for p in parts} for name in self.names}


class PixelSource:
    """Raw-pixel baseline: PCA of the images to ``dim`` components, fitted on the training images only."""

    def __init__(self, method: str, dim: int, threads: int | None = 1):
        self.method, self.names, self.dim, self.threads = method, ("pixels",), dim, threads
        self._fitted: dict[bytes, dict[str, Tensor]] = {}

    def features(
        self, parts: Mapping[str, ImageSet], fit_rows: Mapping[str, Tensor] | None = None
    ) -> dict[str, dict[str, Tensor]]:
        """``{"pixels": {part: (N, dim)}}``; the PCA sees only the rows ``fit_rows[part]`` (the training set)."""
        from pclkit.threads import torch_threads

        if not fit_rows:
            raise ValueError("the pixel baseline needs the training rows to fit its PCA on")
        key = b"".join(p.encode() + rows.numpy().tobytes() for p, rows in sorted(fit_rows.items()))
        if key not in self._fitted:
            # one eigendecomposition: multithreaded LAPACK is far slower than one thread on a busy CPU
            with torch_threads(self.threads):
                train = torch.cat([pixel_vectors(parts[p].images()[rows]) for p, rows in fit_rows.items()])
                pca = PCA.fit(train, self.dim)
                self._fitted = {key: {p: pca(pixel_vectors(part.images())) for p, part in parts.items()}}
        return {"pixels": self._fitted[key]}
