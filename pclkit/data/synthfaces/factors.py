"""SynthFaces factors: what one synthetic face image is made of, and how it is sampled.

A face is fully described by a :class:`Factors` row: an identity (an integer that
fixes geometry, colours and accessories, see :mod:`pclkit.data.synthfaces.identity`),
an expression class, 8 action-unit intensities, a head pose and nuisance
parameters (light, background, framing). Everything is drawn from a
counter-based hash of ``(split, seed, index)``, so sample ``i`` never depends on
how many samples were requested, on batching, or on the global RNG.

Expression prototypes follow the EMFACS descriptions of the basic emotions
(Ekman & Friesen 1978; Friesen & Ekman 1983) restricted to the DISFA AU set
(Mavadati et al., IEEE TAC 2013) that the PCL paper reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

AU_NAMES: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU6", "AU9", "AU12", "AU25", "AU26")
AU_DESCRIPTIONS: tuple[str, ...] = (
    "inner brow raiser",
    "outer brow raiser",
    "brow lowerer",
    "cheek raiser",
    "nose wrinkler",
    "lip corner puller",
    "lips part",
    "jaw drop",
)
EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
SPLITS: tuple[str, ...] = ("train", "val", "test")
NUISANCE_NAMES: tuple[str, ...] = (
    "light_x", "light_y", "light_z",  # unit vector towards the light, camera frame (x right, y up, z to viewer)
    "light_intensity",                # diffuse (Lambert) strength
    "ambient",                        # ambient strength
    "bg_r", "bg_g", "bg_b",           # background colour
    "scale",                          # head size multiplier
    "shift_x", "shift_y",             # head translation, fraction of the image half-width
)

#: AU intensity prototypes per expression, columns in ``AU_NAMES`` order.
EXPRESSION_PROTOTYPES = torch.tensor(
    [
        #  AU1  AU2  AU4  AU6  AU9  AU12 AU25 AU26
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # neutral
        [0.0, 0.0, 0.0, 0.8, 0.0, 0.9, 0.5, 0.0],  # happy: 6+12(+25)
        [0.8, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0],  # sad: 1+4(+15)
        [0.9, 0.9, 0.0, 0.0, 0.0, 0.0, 0.7, 0.8],  # surprise: 1+2(+5)+25+26
        [0.8, 0.6, 0.7, 0.0, 0.0, 0.0, 0.6, 0.3],  # fear: 1+2+4(+5+20)+25(+26)
        [0.0, 0.0, 0.4, 0.0, 0.9, 0.0, 0.3, 0.0],  # disgust: 9(+10+15)
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # anger: 4(+5+7+23)
    ]
)

#: Action units outside the labelled set that the basic emotions also use; they
#: drive geometry (so expressions read as in EMFACS) but are not labels. Their
#: intensity is derived from the labelled AUs (see :func:`hidden_aus`).
HIDDEN_AU_NAMES: tuple[str, ...] = ("AU5", "AU7", "AU10", "AU15", "AU20", "AU23")
HIDDEN_PROTOTYPES = torch.tensor(
    [
        #  AU5  AU7  AU10 AU15 AU20 AU23
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # neutral
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # happy
        [0.0, 0.0, 0.0, 0.8, 0.0, 0.0],  # sad
        [0.8, 0.0, 0.0, 0.0, 0.0, 0.0],  # surprise
        [0.8, 0.0, 0.0, 0.3, 0.7, 0.0],  # fear
        [0.0, 0.4, 0.8, 0.4, 0.0, 0.0],  # disgust
        [0.5, 0.8, 0.0, 0.0, 0.0, 0.8],  # anger
    ]
)


#: standard deviations (yaw, pitch, roll) of the default near-frontal pose prior, degrees
POSE_STD: tuple[float, float, float] = (25.0, 10.0, 7.0)
POSE_PRIORS: tuple[str, ...] = ("normal", "uniform")


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and ranges of SynthFaces. Identity ranges of the splits are disjoint.

    ``identities[split]`` identities are used by a split, numbered from
    ``identity_base[split]``; sample ``i`` shows identity ``base + i % count``,
    so every identity appears ``n / count`` times (balanced).

    Head pose: ``pose_prior="normal"`` (the default) draws each angle from a
    zero-mean normal with ``pose_std`` degrees truncated to ``pose_range``:
    mostly near-frontal with tails to the range ends, as in real face data
    (VoxCeleb yaw is concentrated within +-45 deg; Nagrani et al. 2017).
    ``"uniform"`` draws uniformly in ``pose_range`` (the first SynthFaces).
    """

    pose_range: tuple[tuple[float, float], ...] = ((-90.0, 90.0), (-40.0, 40.0), (-30.0, 30.0))
    pose_prior: Literal["normal", "uniform"] = "normal"
    #: standard deviations (yaw, pitch, roll) of the normal pose prior, degrees (before truncation)
    pose_std: tuple[float, float, float] = POSE_STD
    identities: dict[str, int] = field(default_factory=lambda: {"train": 500, "val": 100, "test": 200})
    default_n: dict[str, int] = field(default_factory=lambda: {"train": 20000, "val": 2000, "test": 4000})
    identity_base: dict[str, int] = field(
        default_factory=lambda: {"train": 0, "val": 1_000_000, "test": 2_000_000}
    )
    #: AU intensity noise around the expression prototype (uniform half-width)
    au_jitter: float = 0.1
    #: probability that an AU outside the prototype is active anyway (real faces mix AUs)
    au_extra_prob: float = 0.1
    scale_range: tuple[float, float] = (0.92, 1.08)
    shift_range: float = 0.05

    def __post_init__(self) -> None:
        if len(self.pose_range) != 3 or any(lo > hi for lo, hi in self.pose_range):
            raise ValueError(f"pose_range must be 3 (low, high) pairs for yaw, pitch, roll; got {self.pose_range}")
        if self.pose_prior not in POSE_PRIORS:
            raise ValueError(f"pose_prior must be one of {POSE_PRIORS}, got {self.pose_prior!r}")
        if len(self.pose_std) != 3 or any(not s > 0 for s in self.pose_std):
            raise ValueError(f"pose_std must be 3 positive angles (yaw, pitch, roll), got {self.pose_std}")
        for split in SPLITS:
            count, base = self.identities.get(split), self.identity_base.get(split)
            if count is None or base is None or count < 1:
                raise ValueError(f"identities and identity_base need a positive entry for split {split!r}")
        spans = sorted((self.identity_base[s], self.identity_base[s] + self.identities[s]) for s in SPLITS)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise ValueError(f"identity ranges of the splits overlap: {spans}")

    def identity_range(self, split: str) -> range:
        """The identity integers used by ``split``."""
        check_split(split)
        return range(self.identity_base[split], self.identity_base[split] + self.identities[split])


DEFAULT_CONFIG = SynthConfig()
#: half-widths (yaw, pitch, roll) of the default pose ranges, degrees
DEFAULT_POSE_LIMITS: tuple[float, float, float] = tuple(hi for _, hi in DEFAULT_CONFIG.pose_range)  # type: ignore[assignment]


def symmetric_pose_config(
    limits: Sequence[float], base: SynthConfig = DEFAULT_CONFIG, prior: str | None = None
) -> SynthConfig:
    """``base`` with poses within ``[-limit, limit]`` for (yaw, pitch, roll), degrees.

    ``prior``: ``"normal"`` (truncated normal, ``base.pose_std``) or
    ``"uniform"``; None keeps ``base``'s. The default limits and prior give
    ``base`` itself, so datasets and their caches are unchanged.
    """
    limits = tuple(float(x) for x in limits)
    if len(limits) != 3 or any(not 0.0 <= x <= 180.0 for x in limits):
        raise ValueError(f"pose limits must be 3 angles in [0, 180] degrees (yaw, pitch, roll), got {limits}")
    pose_range = tuple((-x, x) for x in limits)
    prior = base.pose_prior if prior is None else prior
    if pose_range == base.pose_range and prior == base.pose_prior:
        return base
    return replace(base, pose_range=pose_range, pose_prior=prior)


def truncated_normal(u: Tensor, std: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Inverse-CDF draw of N(0, std^2) truncated to [low, high] from uniforms ``u`` in [0, 1).

    Shapes broadcast: ``u`` (n, K), ``std``/``low``/``high`` (K,). Deterministic
    in ``u`` (no generator), so SynthFaces samples stay counter-based.
    """
    def cdf(x: Tensor) -> Tensor:
        return 0.5 * (1 + torch.erf(x / (std * math.sqrt(2.0))))

    lo_p, hi_p = cdf(low), cdf(high)
    p = (lo_p + u * (hi_p - lo_p)).clamp(1e-7, 1 - 1e-7)
    return (std * math.sqrt(2.0) * torch.erfinv(2 * p - 1)).clamp(low, high)


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


# ---------------------------------------------------------------------------
# counter-based random numbers (no generator state: value = hash(key))

_MASK32 = 0xFFFFFFFF


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixing hash (int64 tensor in, int64 in [0, 2^32) out).

    Products stay below 2^60, so int64 arithmetic never overflows.
    """
    x = x & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    return (x >> 16) ^ x


def hash_keys(*parts: Tensor | int) -> Tensor:
    """Combine integers / int64 tensors (broadcast) into one hashed key per element."""
    key = torch.tensor(0x2545F491, dtype=torch.int64)
    for part in parts:
        part = torch.as_tensor(part, dtype=torch.int64)
        key = _hash32(key * 0x3B + (part & _MASK32))
    return key


def hash_uniform(keys: Tensor, streams: int | Sequence[int] | Tensor) -> Tensor:
    """Uniform floats in [0, 1): one per (key, stream); shape ``keys.shape + (S,)``."""
    streams = torch.as_tensor(streams, dtype=torch.int64).reshape(-1)
    bits = _hash32(_hash32(keys[..., None] + 0x9E3779B9) ^ (streams * 0x27D4EB2F & _MASK32))
    return (bits >> 8).to(torch.float32) / float(1 << 24)


# ---------------------------------------------------------------------------


@dataclass
class Factors:
    """A batch of B faces; all tensors on one device.

    identity (B,) long; expression (B,) long; aus (B, 8) float in [0, 1] in
    ``AU_NAMES`` order; pose (B, 3) float degrees (yaw, pitch, roll); nuisance
    (B, K) float in ``NUISANCE_NAMES`` order.

    Pose convention (camera frame x right, y up, z towards the viewer): positive
    yaw turns the nose towards the image's right, positive pitch lifts the chin
    (face looks up), positive roll tilts the head counter-clockwise on screen.
    The head rotation is ``R = Rz(roll) Rx(-pitch) Ry(yaw)`` (right-handed
    elementary rotations), so a horizontal flip maps (yaw, pitch, roll) to
    (-yaw, pitch, -roll) (see :meth:`mirrored`).
    """

    identity: Tensor
    expression: Tensor
    aus: Tensor
    pose: Tensor
    nuisance: Tensor

    def __post_init__(self) -> None:
        n = self.identity.shape[0] if self.identity.dim() == 1 else -1
        shapes = {
            "identity": (self.identity, (n,)),
            "expression": (self.expression, (n,)),
            "aus": (self.aus, (n, len(AU_NAMES))),
            "pose": (self.pose, (n, 3)),
            "nuisance": (self.nuisance, (n, len(NUISANCE_NAMES))),
        }
        for name, (value, shape) in shapes.items():
            if not isinstance(value, Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"Factors.{name} must have shape {shape}, got {got}")
        if self.identity.dtype != torch.int64 or self.expression.dtype != torch.int64:
            raise ValueError("Factors.identity and Factors.expression must be int64 tensors")

    def __len__(self) -> int:
        return self.identity.shape[0]

    def __getitem__(self, idx: int | slice | Tensor | Sequence[int]) -> "Factors":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        elif not isinstance(idx, slice):
            idx = torch.as_tensor(idx, dtype=torch.int64, device=self.identity.device)
        return Factors(self.identity[idx], self.expression[idx], self.aus[idx], self.pose[idx], self.nuisance[idx])

    def to(self, device: torch.device | str) -> "Factors":
        return Factors(*(t.to(device) for t in self._fields()))

    def _fields(self) -> tuple[Tensor, ...]:
        return (self.identity, self.expression, self.aus, self.pose, self.nuisance)

    def with_pose(self, pose: Tensor) -> "Factors":
        """The same faces at another head pose ``(B, 3)`` (degrees)."""
        pose = torch.as_tensor(pose, dtype=torch.float32, device=self.pose.device)
        pose = pose.expand_as(self.pose).clone() if pose.dim() == 1 else pose
        if pose.shape != self.pose.shape:
            raise ValueError(f"with_pose needs a pose of shape {tuple(self.pose.shape)} or (3,), got {tuple(pose.shape)}")
        return Factors(self.identity, self.expression, self.aus, pose, self.nuisance)

    def with_expression(self, expression: Tensor, aus: Tensor) -> "Factors":
        """The same faces with another expression class ``(B,)`` and AU intensities ``(B, 8)``."""
        return Factors(self.identity, expression.to(self.expression), aus.to(self.aus), self.pose, self.nuisance)

    @staticmethod
    def combine(face_from: "Factors", pose_from: "Factors") -> "Factors":
        """Identity, expression, AUs and nuisance of ``face_from`` with the pose of ``pose_from``.

        ``render(Factors.combine(A, B))`` is the ground truth for the PCL swap
        reconstruction ``D(F_f^A, F_p^B)`` (Liu et al. 2023, Sec. 3.2).
        """
        if len(face_from) != len(pose_from):
            raise ValueError(f"combine needs equal batch sizes, got {len(face_from)} and {len(pose_from)}")
        return face_from.with_pose(pose_from.pose.to(face_from.pose.device))

    def mirrored(self) -> "Factors":
        """Factors whose render is (for a left-right symmetric identity) the horizontal mirror image.

        A flip maps yaw -> -yaw, roll -> -roll, leaves pitch, and mirrors the
        light and the horizontal shift.
        """
        pose = self.pose * torch.tensor([-1.0, 1.0, -1.0], device=self.pose.device)
        nuisance = self.nuisance.clone()
        for name in ("light_x", "shift_x"):
            nuisance[:, NUISANCE_NAMES.index(name)] *= -1
        return Factors(self.identity, self.expression, self.aus, pose, nuisance)

    @staticmethod
    def cat(parts: Sequence["Factors"]) -> "Factors":
        """Concatenate batches."""
        if not parts:
            raise ValueError("Factors.cat needs at least one Factors")
        return Factors(*(torch.cat(column) for column in zip(*(p._fields() for p in parts))))

    def labels(self) -> dict[str, Tensor]:
        """Label tensors in the project's item format (without ``index``)."""
        return {"identity": self.identity, "expression": self.expression, "aus": self.aus, "pose": self.pose}


# ---------------------------------------------------------------------------


def hidden_aus(expression: Tensor, aus: Tensor) -> Tensor:
    """Intensities ``(B, 6)`` of the unlabelled AUs (``HIDDEN_AU_NAMES``).

    They follow the expression's prototype, scaled by how strongly the labelled
    AUs express that prototype (least-squares scale), so editing the labelled
    AUs of a face also scales its hidden AUs and nothing else is stored.
    """
    proto = EXPRESSION_PROTOTYPES.to(aus.device)[expression]
    norm = (proto * proto).sum(1)
    strength = torch.where(norm > 0, (aus * proto).sum(1) / norm.clamp_min(1e-6), torch.zeros_like(norm))
    return HIDDEN_PROTOTYPES.to(aus.device)[expression] * strength.clamp(0, 1.2)[:, None]


_SPLIT_CODES = {"train": 11, "val": 23, "test": 37}


def sample_factors(split: str, n: int, seed: int = 0, config: SynthConfig = DEFAULT_CONFIG) -> Factors:
    """The factors of samples ``0..n-1`` of ``split`` with ``seed`` (CPU tensors).

    Sample ``i`` depends only on ``(split, seed, i, config)``: identity
    ``base + i % count``; a uniform expression; AUs = prototype x intensity in
    [0.75, 1.1] + uniform jitter + occasional extra AUs, clipped to [0, 1];
    pose from ``config.pose_prior`` within ``config.pose_range``; light mostly from the front.
    """
    check_split(split)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    index = torch.arange(n, dtype=torch.int64)
    keys = hash_keys(_SPLIT_CODES[split], seed, index)
    u = hash_uniform(keys, range(40))  # (n, 40): one stream per random quantity
    identity = config.identity_base[split] + index % config.identities[split]
    expression = (u[:, 0] * len(EXPRESSIONS)).long().clamp(max=len(EXPRESSIONS) - 1)
    aus = _sample_aus(expression, u[:, 1:18], config)
    lo = torch.tensor([r[0] for r in config.pose_range])
    hi = torch.tensor([r[1] for r in config.pose_range])
    if config.pose_prior == "uniform":
        pose = lo + (hi - lo) * u[:, 18:21]
    else:
        pose = truncated_normal(u[:, 18:21], torch.tensor(config.pose_std), lo, hi)
    nuisance = _sample_nuisance(u[:, 21:32], config)  # 11 streams
    return Factors(identity, expression, aus, pose, nuisance)


def _sample_aus(expression: Tensor, u: Tensor, config: SynthConfig) -> Tensor:
    """AU intensities (n, 8) from 17 uniforms per sample."""
    n_au = len(AU_NAMES)
    proto = EXPRESSION_PROTOTYPES[expression]
    intensity = 0.75 + 0.35 * u[:, :1]
    jitter = (u[:, 1 : 1 + n_au] - 0.5) * 2 * config.au_jitter
    # extra AUs: the (1-p)..1 tail of a second uniform switches one on, with its own strength
    extra_on = u[:, 1 + n_au : 1 + 2 * n_au] > 1 - config.au_extra_prob
    extra = torch.where(
        extra_on, 0.25 + 0.6 * (u[:, 1 + n_au : 1 + 2 * n_au] - (1 - config.au_extra_prob)) / max(config.au_extra_prob, 1e-6), 0.0
    )
    return (proto * intensity + jitter + extra).clamp(0, 1)


def _sample_nuisance(u: Tensor, config: SynthConfig) -> Tensor:
    """Nuisance columns (n, K) in ``NUISANCE_NAMES`` order from 11 uniforms per sample."""
    azimuth = (u[:, 0] - 0.5) * 1.6  # radians, +-46 degrees
    elevation = -0.2 + 0.9 * u[:, 1]
    light = torch.stack(
        [torch.sin(azimuth) * torch.cos(elevation), torch.sin(elevation), torch.cos(azimuth) * torch.cos(elevation)], 1
    )
    intensity = 0.55 + 0.35 * u[:, 2]
    ambient = 0.3 + 0.2 * u[:, 3]
    # muted backgrounds: a grey level plus a moderate colour tint
    background = (0.2 + 0.6 * u[:, 4:5]) + 0.3 * (u[:, 5:8] - 0.5)
    s_lo, s_hi = config.scale_range
    scale = s_lo + (s_hi - s_lo) * u[:, 8]
    shift = (u[:, 9:11] - 0.5) * 2 * config.shift_range
    return torch.cat([light, intensity[:, None], ambient[:, None], background, scale[:, None], shift], 1)


def make_factors(
    identity: Sequence[int] | Tensor,
    expression: Sequence[int] | Tensor | None = None,
    aus: Tensor | None = None,
    pose: Tensor | Sequence[Sequence[float]] | None = None,
    nuisance: Tensor | None = None,
) -> Factors:
    """Hand-made factors (e.g. for figures and tests): frontal, neutral, canonical light by default.

    ``aus`` defaults to the expression prototypes.
    """
    identity = torch.as_tensor(identity, dtype=torch.int64).reshape(-1)
    b = identity.shape[0]
    expression = (
        torch.zeros(b, dtype=torch.int64)
        if expression is None
        else torch.as_tensor(expression, dtype=torch.int64).reshape(-1).expand(b).clone()
    )
    if expression.min() < 0 or expression.max() >= len(EXPRESSIONS):
        raise ValueError(f"expression indices must be in [0, {len(EXPRESSIONS)}), got {expression.tolist()}")
    aus = (
        EXPRESSION_PROTOTYPES[expression].clone()
        if aus is None
        else torch.as_tensor(aus, dtype=torch.float32).expand(b, len(AU_NAMES)).clone()
    )
    pose = torch.zeros(b, 3) if pose is None else torch.as_tensor(pose, dtype=torch.float32).expand(b, 3).clone()
    if nuisance is None:
        nuisance = canonical_nuisance(b)
    return Factors(
        identity, expression, aus, pose, torch.as_tensor(nuisance, dtype=torch.float32).expand(b, len(NUISANCE_NAMES)).clone()
    )


def canonical_nuisance(b: int) -> Tensor:
    """A neutral setting: frontal light from slightly above, grey-blue background, no shift."""
    light = torch.tensor([0.0, 0.35, 1.0])
    light = light / light.norm()
    row = torch.cat([light, torch.tensor([0.75, 0.4, 0.55, 0.6, 0.7, 1.0, 0.0, 0.0])])
    return row.expand(b, -1).clone()
