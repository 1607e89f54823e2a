"""Pretraining configuration: nested dataclasses, YAML presets, ``--set`` overrides.

A run is described by one :class:`TrainConfig`. It is built in three layers:
dataclass defaults (the reference hyperparameters of the PCL code, Liu et al.,
CVPR 2023), then a preset YAML from ``pclkit/presets/`` (``smoke``,
``synth_cpu``, ``paper``) or any YAML file, then ``key=value`` overrides with
dotted keys (``optim.lr=3e-4``; values are parsed as YAML scalars). Unknown
keys and bad values raise :class:`ConfigError` with the list of what is valid.
The resolved config is a plain dict (:func:`config_to_dict`) stored in the run
folder and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from pclkit.augment.pose import CHANGE_AXES
from pclkit.data.synthfaces.factors import DEFAULT_CONFIG as SYNTH_DEFAULTS
from pclkit.data.synthfaces.factors import DEFAULT_POSE_LIMITS
from pclkit.methods import DEFAULT_METHOD
from pclkit.models import ModelConfig

PoseChange = Literal["flip", "roll", "render3d"]
Schedule = Literal["joint", "alternating"]
Precision = Literal["auto", "fp32", "bf16"]
#: smallest probe-monitor set: two images of each SynthFaces val identity (identity kNN)
MIN_MONITOR_IMAGES = 2 * SYNTH_DEFAULTS.identities["val"]

class ConfigError(ValueError):
    """A preset, override or config dict names an unknown key or holds a bad value."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass
class DataConfig:
    """Where training images come from."""

    source: Literal["synth", "folder"] = "synth"
    #: frames folder for ``source: folder`` (pclkit.data.FaceFolder, recursive)
    root: str | None = None
    #: SynthFaces: number of training images (rendered once, kept in memory as uint8)
    n: int = 4096
    #: SynthFaces dataset seed (which faces); the run seed drives everything else
    seed: int = 0
    #: SynthFaces: poses lie within [-limit, limit] degrees for (yaw, pitch, roll);
    #: default (90, 40, 30). Evaluation of a run uses the same limits.
    pose_limits: tuple[float, float, float] = DEFAULT_POSE_LIMITS
    #: SynthFaces pose prior within the limits: truncated normal (near-frontal, like real
    #: face data; std (25, 10, 7) degrees) or uniform (the first SynthFaces; runs older than
    #: this key were uniform)
    pose_prior: Literal["normal", "uniform"] = "normal"
    #: DataLoader worker processes for ``source: folder``
    workers: int = 4
    #: how FaceFolder verifies files at start: decode every file, or read headers only (large folders)
    folder_check: Literal["decode", "header"] = "header"

    def __post_init__(self) -> None:
        _require(self.n >= 1, f"data.n must be >= 1, got {self.n}")
        _require(self.workers >= 0, f"data.workers must be >= 0, got {self.workers}")
        _require(len(self.pose_limits) == 3 and all(0.0 <= x <= 180.0 for x in self.pose_limits),
                 f"data.pose_limits must be 3 angles in [0, 180] (yaw, pitch, roll), got {self.pose_limits}")
        _require(self.source != "folder" or bool(self.root),
                 "data.source 'folder' needs data.root (a folder of face frames)")


@dataclass
class ViewConfig:
    """How the views of one step are made from a batch (PCL, Liu et al., CVPR 2023, Sec. 3)."""

    #: pose change for ŝ and the pose negatives: flip (reference), roll, render3d (SynthFaces only)
    pose_change: PoseChange = "flip"
    #: extra keyword arguments of ``pclkit.augment.make_pose_change`` (e.g. roll angle range)
    pose_change_options: dict[str, Any] = field(default_factory=dict)
    #: render3d only: re-render every face at this many head poses once, before training
    #: (cached on disk with the data), and let each step pick one of them instead of
    #: rendering anew; 0 renders every step (this project's speed option;
    #: pclkit.data.synthfaces.pose_bank)
    render3d_bank: int = 0
    #: M: appearance-augmented copies of the pose-changed view per image (reference 100)
    num_negatives: int = 100
    #: with a pose bank: the M pose negatives of an image are M *different* re-renders (other
    #: head poses of the same face) instead of M appearance changes of one ŝ (this project's
    #: option; the paper's negatives all augment one flipped view). Needs render3d_bank >= M.
    negatives_across_poses: bool = False
    #: with negatives_across_poses: the pose negatives after the first come from a second pose
    #: bank whose new poses follow ``Render3D(change_axes=...)`` ("one": one axis at a time, so
    #: most keep the yaw), while ŝ -- the first negative, the face positive and the reconstruction
    #: target -- keeps the pose change's own rule (this project's option; None: one bank)
    negative_change_axes: str | None = None
    #: mix each pose negative with another of the same image by Beta(mix_alpha, mix_alpha)
    negative_mix: bool = False
    mix_alpha: float = 1.6
    #: Gaussian noise sigma on the reconstruction inputs (targets stay clean)
    recon_noise: float = 0.4
    #: the noisy reconstruction inputs s + n and ŝ + n double as the first pose positive and the
    #: first pose negative (noise is an appearance-only change), saving 2B encoder images a step
    #: (this project's option; the reference encodes them separately)
    share_recon_views: bool = False
    #: face views (L_face; SimCLR's views): ``quadrant`` = two patches from different quadrants
    #: (the reference code), ``crop`` = two random resized crops of the whole face (SimCLR's
    #: standard view, no flip since a flip changes the pose)
    face_view: Literal["quadrant", "crop"] = "quadrant"
    #: side of the two quadrant patches of the face views, as a fraction of the image side
    patch_frac: float = 0.4
    #: area range of the ``crop`` face views, as fractions of the image
    crop_scale: tuple[float, float] = (0.35, 1.0)
    #: cut the second face view from the pose-changed view ŝ instead of s, so the face positives
    #: differ in pose (this project's option, not in the paper; SimCLR gets the same views)
    face_across_pose: bool = False
    #: keyword arguments of ``pclkit.augment.AppearanceAugment`` (empty = reference augmentation)
    appearance: dict[str, Any] = field(default_factory=dict)
    #: multi-crop (ProS; pclkit.views.MultiCrop): local crops per image, their side (None = half
    #: the model side) and area range; the global crops use crop_scale
    local_crops: int = 4
    local_size: int | None = None
    local_scale: tuple[float, float] = (0.05, 0.4)

    def __post_init__(self) -> None:
        _require(self.num_negatives >= 1, f"views.num_negatives must be >= 1, got {self.num_negatives}")
        _require(self.render3d_bank >= 0, f"views.render3d_bank must be >= 0, got {self.render3d_bank}")
        _require(self.render3d_bank == 0 or self.pose_change == "render3d",
                 "views.render3d_bank pre-renders the render3d pose change; set views.pose_change: render3d or 0")
        # with negative_change_axes, ŝ comes from one bank and the other M - 1 from a second
        needed = self.num_negatives - (self.negative_change_axes is not None)
        _require(not self.negatives_across_poses or self.render3d_bank >= needed,
                 f"views.negatives_across_poses draws the {self.num_negatives} pose negatives from the pose bank: "
                 f"set views.render3d_bank >= {needed} (got {self.render3d_bank})")
        _require(self.negative_change_axes in (None, *CHANGE_AXES),
                 f"views.negative_change_axes must be null or one of {', '.join(CHANGE_AXES)}, "
                 f"got {self.negative_change_axes!r}")
        _require(self.negative_change_axes is None or (self.negatives_across_poses and self.num_negatives >= 2),
                 "views.negative_change_axes draws the pose negatives after ŝ from a second bank: "
                 "set views.negatives_across_poses: true and views.num_negatives >= 2")
        _require(not self.negative_mix or self.num_negatives >= 2,
                 "views.negative_mix needs views.num_negatives >= 2")
        _require(self.mix_alpha > 0, f"views.mix_alpha must be > 0, got {self.mix_alpha}")
        _require(self.recon_noise >= 0, f"views.recon_noise must be >= 0, got {self.recon_noise}")
        _require(0 < self.patch_frac <= 0.5, f"views.patch_frac must be in (0, 0.5], got {self.patch_frac}")
        _require(len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
                 f"views.crop_scale must be (low, high) with 0 < low <= high <= 1, got {self.crop_scale}")
        _require(self.local_crops >= 0, f"views.local_crops must be >= 0, got {self.local_crops}")
        _require(self.local_size is None or self.local_size >= 1, f"views.local_size must be >= 1, got {self.local_size}")
        # build the augmentations once so a bad option fails here, not at the first step
        from pclkit.augment import AppearanceAugment, make_pose_change

        try:
            AppearanceAugment(**self.appearance)
        except (TypeError, ValueError) as err:
            valid = ", ".join(f.name for f in dataclasses.fields(AppearanceAugment))
            raise ConfigError(f"views.appearance: {err}; valid keys: {valid}") from err
        try:
            make_pose_change(self.pose_change, **self.pose_change_options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"views.pose_change_options: {err}") from err


@dataclass
class LossConfig:
    """Loss terms, their switches (the paper's ablation) and the objective schedule."""

    #: tau of the face NT-Xent (L_face) and of L_pose
    temperature: float = 0.07
    pose_temperature: float = 0.07
    #: pose loss: positive also in the denominator (reference code) or only negatives (paper formula)
    pose_positive_in_denominator: bool = True
    #: ablation switches (method "pcl"); SimCLR uses L_face only
    use_dis: bool = True
    use_orth: bool = True
    use_pose: bool = True
    use_dwa: bool = True
    #: orthogonality form: dsn (reference code) or dot (paper formula)
    orth_mode: Literal["dsn", "dot", "cosine", "xcorr"] = "dsn"
    #: weight of L_orth in the sum (the paper: 1)
    orth_weight: float = 1.0
    #: weight of L_dis in the sum (the paper: 1; a larger weight is this project's option)
    dis_weight: float = 1.0
    #: weight of L_inv, this project's option (0 = off, the paper): F_f itself, not only its
    #: projection, kept the same across the pose change (pclkit.losses.branch_invariance)
    face_invariance_weight: float = 0.0
    #: L_inv's form: ``cosine`` of the centred rows (per image), or ``correlation`` of the standardised
    #: columns (per dimension; every direction a probe on standardised features reads counts alike)
    face_invariance_form: Literal["cosine", "correlation"] = "cosine"
    #: weight of L_cyc, this project's option (0 = off, the paper): a swap D(F_f^A, F_p^B) across
    #: two faces of the batch must re-encode to F_f^A and F_p^B (pclkit.losses.swap_cycle)
    cycle_weight: float = 0.0
    #: L_cyc's second encoder pass: ``trained`` (its gradient reaches the encoder too) or ``frozen``
    #: (eval mode, no parameter gradient: a fixed judge of the decoder's swaps)
    cycle_encoder: Literal["trained", "frozen"] = "trained"
    #: L_cyc's decoder: ``trained`` (the gradient reaches it through the swaps) or ``detached`` (the
    #: swaps are fixed pictures the encoder must read back: cross-identity positives)
    cycle_decoder: Literal["trained", "detached"] = "trained"
    #: what L_cyc reads back from a swap: ``both`` F_f^A and F_p^B, or ``pose`` F_p^B alone
    cycle_parts: Literal["both", "pose"] = "both"
    #: weight of L_adv, this project's option (0 = off, the paper): an MLP reads the standardised F_p
    #: from F_f and the face branch is trained against it (pclkit.losses.pose_adversary; needs
    #: model.pose_adversary_hidden > 0)
    adversary_weight: float = 0.0
    #: how F_f is trained against the adversary: ``confusion`` (its prediction pushed to the batch
    #: mean) or ``reversal`` (a gradient reversal: F_f maximises its error)
    adversary_form: Literal["confusion", "reversal"] = "confusion"
    #: weight of L_pred, this project's option (0 = off, the paper): the held-out squared correlation
    #: of F_p with a ridge regression on F_f fitted afresh on each batch (pclkit.losses.predictability)
    predictability_weight: float = 0.0
    #: λ of that ridge regression
    predictability_ridge: float = 1.0
    #: past batches whose F_f / F_p rows join the regression's fit rows (0 = the batch alone;
    #: pclkit.losses.PredictabilityMemory)
    predictability_memory: int = 0
    #: weight of L_flip, this project's option (0 = off, the paper): F_p of the horizontally mirrored
    #: s + n must be F_p of s + n with its first ``flip_odd_dims`` columns negated (yaw and roll change
    #: sign under a flip, pitch does not; pclkit.losses.flip_equivariance). Adds B mirrored images to
    #: the step's encoder pass.
    flip_weight: float = 0.0
    #: how many of F_p's columns change sign under the flip (None = half of them)
    flip_odd_dims: int | None = None
    #: L_dis terms: ``all`` four of the paper's Eq. 2, or ``swaps`` -- only the two swap terms,
    #: half the decoder calls (this project's option)
    dis_terms: Literal["all", "swaps"] = "all"
    #: weight w of a structural term in each L_dis reconstruction, |x - D| + w (1 - SSIM(x, D)) (this
    #: project's option, 0 = the paper's plain L1; Zhao et al., IEEE TCI 2017, mix L1 with SSIM)
    dis_ssim_weight: float = 0.0
    #: where L_dis reads F_p: ``clean`` -- the noisy inputs s + n and ŝ + n that also give F_f
    #: (the paper); ``augmented`` -- the appearance-augmented copies of s and ŝ that the pose loss
    #: already encodes (this project's option; needs views.share_recon_views and M >= 2 copies of ŝ), so
    #: the decoder must take colour -- backdrop, skin, hair -- from F_f, as a swap across faces needs
    dis_pose_views: Literal["clean", "augmented"] = "clean"
    #: ProS (pclkit.methods.pros.ProSSettings; None = that method's default): temperatures of the
    #: student and teacher softmax over prototypes, centre EMA and the teacher's base EMA momentum
    student_temperature: float | None = None
    teacher_temperature: float | None = None
    center_momentum: float | None = None
    ema_momentum: float | None = None
    dwa_temperature: float = 2.0
    #: joint: one summed loss per step; alternating: reference's three optimiser steps
    schedule: Schedule = "joint"

    def __post_init__(self) -> None:
        _require(self.temperature > 0, f"loss.temperature must be > 0, got {self.temperature}")
        _require(self.pose_temperature > 0, f"loss.pose_temperature must be > 0, got {self.pose_temperature}")
        _require(self.orth_weight >= 0, f"loss.orth_weight must be >= 0, got {self.orth_weight}")
        _require(self.dis_weight > 0, f"loss.dis_weight must be > 0 (use_dis=false switches L_dis off), got {self.dis_weight}")
        _require(self.face_invariance_weight >= 0,
                 f"loss.face_invariance_weight must be >= 0, got {self.face_invariance_weight}")
        _require(self.cycle_weight >= 0, f"loss.cycle_weight must be >= 0, got {self.cycle_weight}")
        _require(self.adversary_weight >= 0, f"loss.adversary_weight must be >= 0, got {self.adversary_weight}")
        _require(self.predictability_weight >= 0,
                 f"loss.predictability_weight must be >= 0, got {self.predictability_weight}")
        _require(self.predictability_ridge > 0, f"loss.predictability_ridge must be > 0, got {self.predictability_ridge}")
        _require(self.predictability_memory >= 0,
                 f"loss.predictability_memory must be >= 0 batches, got {self.predictability_memory}")
        _require(self.flip_weight >= 0, f"loss.flip_weight must be >= 0, got {self.flip_weight}")
        _require(self.flip_odd_dims is None or self.flip_odd_dims >= 1,
                 f"loss.flip_odd_dims must be >= 1 (or null for half of F_p), got {self.flip_odd_dims}")
        _require(self.dis_ssim_weight >= 0, f"loss.dis_ssim_weight must be >= 0, got {self.dis_ssim_weight}")
        _require(self.dwa_temperature > 0, f"loss.dwa_temperature must be > 0, got {self.dwa_temperature}")


@dataclass
class OptimConfig:
    """Optimiser, schedule and run length."""

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 1e-3
    #: global batch (split over ranks under torchrun)
    batch_size: int = 256
    epochs: int = 100
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    #: clip the global gradient norm (None: off)
    grad_clip: float | None = None
    #: stop after this many steps (checkpoint and exit); the LR schedule still spans all epochs
    max_steps: int | None = None
    #: the swap decoder's learning rate as a multiple of ``lr`` (this project's option; 1 = one rate)
    decoder_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        _require(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.batch_size >= 2, f"optim.batch_size must be >= 2 (contrastive pairs), got {self.batch_size}")
        _require(self.epochs >= 1, f"optim.epochs must be >= 1, got {self.epochs}")
        _require(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        _require(self.grad_clip is None or self.grad_clip > 0, f"optim.grad_clip must be > 0 or null, got {self.grad_clip}")
        _require(self.max_steps is None or self.max_steps >= 1, f"optim.max_steps must be >= 1 or null, got {self.max_steps}")
        _require(self.decoder_lr_scale > 0, f"optim.decoder_lr_scale must be > 0, got {self.decoder_lr_scale}")


@dataclass
class RuntimeConfig:
    """Device, numerics and logging; none of these change what is learned (bar precision and
    ``encoder_chunks``, which changes BatchNorm's batch statistics)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: bf16 autocast (CPU and CUDA), plain fp32, or auto: bf16 where the device computes it
    #: natively (CUDA; CPUs with AVX-512 BF16 / AMX), else fp32 (emulated bf16 is ~10x slower)
    precision: Precision = "auto"
    channels_last: bool = True
    #: torch intra-op threads (None: torch's default)
    threads: int | None = None
    #: split a step's encoder pass into this many interleaved chunks ("ghost batches": BatchNorm
    #: normalises each chunk by its own statistics, as the reference's nn.DataParallel replicas do per
    #: GPU). On CPUs whose cache a large bf16 pass overflows it is faster (pclkit.methods.base.encode_in_chunks)
    encoder_chunks: int = 1
    #: write a metrics.jsonl step line every this many steps
    log_every: int = 10
    #: also write last.pt every this many steps (0: only at epoch ends and at the end)
    checkpoint_every: int = 0
    #: reconstruction snapshot PNG every this many epochs (0: only at the end)
    snapshot_every: int = 1
    progress: bool = True
    #: under torchrun on CUDA, convert BatchNorm to SyncBatchNorm (gloo/CPU has none: per-rank statistics)
    sync_bn: bool = True
    #: probes during pretraining (``pclkit.monitor.ProbeMonitor``): kNN/ridge probes of F_s/F_f/F_p
    #: on SynthFaces val every this many epochs, logged as "monitor" records (0: off; needs data.source synth)
    monitor_every: int = 0
    #: size of the monitor's fixed SynthFaces val set (two or more images of each of its 100 identities)
    monitor_images: int = 1000
    #: log every metrics record to TensorBoard in <run>/tensorboard (pclkit.tensorboard_log; needs
    #: `pip install tensorboard`, not a requirement of pclkit)
    tensorboard: bool = False
    #: also keep a checkpoint every this many epochs beside last.pt, as epoch_XXX.pt (0: off)
    keep_every: int = 0

    def __post_init__(self) -> None:
        _require(self.threads is None or self.threads >= 1, f"runtime.threads must be >= 1 or null, got {self.threads}")
        _require(self.encoder_chunks >= 1, f"runtime.encoder_chunks must be >= 1, got {self.encoder_chunks}")
        _require(self.keep_every >= 0, f"runtime.keep_every must be >= 0 (0: off), got {self.keep_every}")
        _require(self.monitor_every >= 0, f"runtime.monitor_every must be >= 0 (0: off), got {self.monitor_every}")
        _require(self.monitor_images >= MIN_MONITOR_IMAGES,
                 f"runtime.monitor_images must be >= {MIN_MONITOR_IMAGES} (two images of each SynthFaces val "
                 f"identity), got {self.monitor_images}")
        _require(self.log_every >= 1, f"runtime.log_every must be >= 1, got {self.log_every}")
        _require(self.checkpoint_every >= 0, f"runtime.checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _require(self.snapshot_every >= 0, f"runtime.snapshot_every must be >= 0, got {self.snapshot_every}")


@dataclass
class TrainConfig:
    """Everything that defines a pretraining run."""

    #: a registered method name (:func:`pclkit.methods.method_names`)
    method: str = DEFAULT_METHOD
    seed: int = 0
    #: name of the preset the run started from (informational)
    preset: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    views: ViewConfig = field(default_factory=ViewConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    #: the method's own knobs (its ``options_type``, e.g. PCFRL's calibration); checked by the method
    method_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the model section repeats the method; the top-level key is the one knob
        _require(self.model.method == self.method,
                 f"model.method ({self.model.method!r}) differs from method ({self.method!r}); set 'method' only")
        try:
            self.model.validate()
        except ValueError as err:
            raise ConfigError(f"invalid model: {err}") from err
        _require(self.views.pose_change != "render3d" or self.data.source == "synth",
                 "views.pose_change 'render3d' re-renders SynthFaces; it needs data.source 'synth'")
        from pclkit.methods import get_method

        try:
            get_method(self.method).parse_options(self.method_options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"method_options: {err}") from err
        problem = get_method(self.method).validate(self)
        _require(problem is None, f"method {self.method!r}: {problem}")
        _require(self.runtime.monitor_every == 0 or self.data.source == "synth",
                 "runtime.monitor_every probes SynthFaces val; it needs data.source 'synth' "
                 "(set runtime.monitor_every=0, or add a pclkit.monitor.ProbeMonitor to the Trainer yourself)")


# ---------------------------------------------------------------------------
# dict <-> dataclass with type checks


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (after YAML parsing) and convert mild forms."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin is Literal:
        choices = typing.get_args(tp)
        _require(value in choices, f"{key} must be one of {', '.join(map(repr, choices))}; got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            _require(type(None) in options, f"{key} must not be null")
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {_type_name(tp)}")
    if tp is bool:
        _require(isinstance(value, bool), f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        _require(isinstance(value, int) and not isinstance(value, bool), f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        _require(isinstance(value, (int, float)) and not isinstance(value, bool), f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        _require(isinstance(value, str), f"{key} must be a string, got {value!r}")
        return value
    if origin is dict or tp is dict:
        _require(isinstance(value, Mapping), f"{key} must be a mapping, got {value!r}")
        return dict(value)
    if origin in (tuple, list) or tp in (tuple, list):
        _require(isinstance(value, (list, tuple)), f"{key} must be a list, got {value!r}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, item, f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    return value  # other annotations: trust the dataclass's own checks


def _build(cls: type, data: Any, prefix: str) -> Any:
    section = prefix.rstrip(".") or "config"
    _require(isinstance(data, Mapping), f"{section} must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [key for key in data if key not in names]
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix + str(unknown[0])!r}; valid keys in {section}: {', '.join(names)}"
        )
    kwargs = {name: _coerce(hints[name], data[name], prefix + name) for name in names if name in data}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid {section}: {err}") from err


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a (possibly partial) plain dict."""
    return _build(TrainConfig, data, "")


def model_config_from_dict(data: Mapping[str, Any]) -> ModelConfig:
    """Only the ``model`` section (what evaluation needs to rebuild a checkpoint's network)."""
    model = _build(ModelConfig, data, "model.")
    try:
        model.validate()
    except ValueError as err:
        raise ConfigError(f"invalid model: {err}") from err
    return model


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain dicts/lists/scalars (YAML- and checkpoint-safe)."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


# ---------------------------------------------------------------------------
# presets and overrides


def preset_names() -> list[str]:
    """Names of the presets shipped in ``pclkit/presets``."""
    folder = resources.files("pclkit") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_preset(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw dict of a shipped preset (by name) or of a YAML file (by path)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text()
    else:
        names = preset_names()
        if name_or_path not in names:
            raise ConfigError(f"unknown preset {name_or_path!r}; choose one of {', '.join(names)} or give a YAML file")
        text = (resources.files("pclkit") / "presets" / f"{name_or_path}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    _require(isinstance(data, dict), f"preset {name_or_path!r} must be a YAML mapping")
    # ``inherit: NAME`` starts from another preset and changes only the keys given here
    parent = data.pop("inherit", None)
    if parent is not None:
        seen = (*_seen, name_or_path)
        _require(isinstance(parent, str) and parent not in seen,
                 f"preset {name_or_path!r}: inherit {parent!r} makes a cycle or is not a name ({' -> '.join(seen)})")
        data = _deep_merge(read_preset(parent, seen), data)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> (["optim", "lr"], 0.0003); the value is a YAML scalar."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    _require(bool(sep) and bool(key), f"override {text!r} must look like key=value (e.g. optim.lr=3e-4)")
    parts = key.split(".")
    _require(all(parts), f"override key {key!r} has an empty part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse the value of override {text!r}: {err}") from err
    return parts, value


def parse_overrides(texts: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "seed=1"]`` -> ``{"optim.lr": 0.0003, "seed": 1}`` (the ``--set`` options of every CLI)."""
    overrides: dict[str, Any] = {}
    for text in texts:
        parts, value = parse_override(text)
        overrides[".".join(parts)] = value
    return overrides


def set_dotted(data: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    """Set ``data[parts[0]][parts[1]]... = value``, creating dict levels as needed."""
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        _require(isinstance(child, dict),
                 f"cannot set {'.'.join(parts)!r}: {'.'.join(parts[: depth + 1])!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_config(
    preset: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    base: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Defaults <- ``base`` dict (e.g. a run's saved config) <- preset <- overrides.

    ``overrides`` is a list of ``"dotted.key=value"`` strings or a mapping of
    dotted keys to (already parsed) values.
    """
    data: dict[str, Any] = config_to_dict(TrainConfig())
    if base is not None:
        data = _deep_merge(data, base)
    if preset is not None:
        data = _deep_merge(data, read_preset(preset))
        data["preset"] = Path(preset).stem if preset.endswith((".yaml", ".yml")) else preset
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
    for key, value in items:
        parts = key.split(".") if isinstance(key, str) else list(key)
        _require(parts != ["model", "method"], "set the method with 'method=...' (or --method), not 'model.method'")
        set_dotted(data, parts, value)
    if isinstance(data.get("model"), dict):
        data["model"]["method"] = data.get("method")
    return config_from_dict(data)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_config_file(path: str | Path) -> TrainConfig:
    """Read a ``config.yaml`` written by :func:`save_config`.

    Keys added after a run was made take the value that run actually used:
    SynthFaces poses were uniform before ``data.pose_prior`` existed.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if isinstance(data.get("data"), dict):
        data["data"].setdefault("pose_prior", "uniform")
    return config_from_dict(data)
