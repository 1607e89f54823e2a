"""``python -m pclkit evaluate``: linear evaluation of frozen encoders on the PCL paper's four tasks.

Liu et al. (CVPR 2023) evaluate PCL with linear probes on expression
recognition (RAF-DB, FER-2013), face verification (LFW, CPLFW), AU detection
(DISFA) and head pose (AFLW2000). This module is the evaluation's orchestration:
its settings (:class:`EvalConfig`), the checkpoints and baselines it compares,
and the command line. The rest lives by concern:

* :mod:`pclkit.protocols` -- SynthFaces and CMU faces: image sets, splits, task
  suites, chance rows, swap fidelity, the frozen-encoder assertions;
* :mod:`pclkit.protocols_real` -- the paper's real benchmarks (RAF-DB,
  FER-2013, LFW, CPLFW, DISFA, 300W-LP -> AFLW2000, a class folder);
* :mod:`pclkit.probes` -- the linear probes, kNN and verification;
* :mod:`pclkit.features` -- frozen feature extraction, its cache, pixel PCA;
* :mod:`pclkit.tables` -- every table (``results.md``, ``results.tex``).

Baselines: raw pixels (PCA to the compared dimension, fitted on training
images), a randomly initialised encoder of the same architecture, and a
supervised reference read from JSON. Importable: :func:`evaluate_checkpoints`,
:func:`evaluate_checkpoint`, :func:`evaluate_sources`, and (from
:mod:`pclkit.tables`) :func:`result_tables`, :func:`summary_table`, :func:`write_results`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from pclkit.data.synthfaces import DEFAULT_CONFIG, DEFAULT_POSE_LIMITS
from pclkit.features import (
    FEATURE_KEYS,
    EncoderSource,
    FeatureCache,
    ImageSet,
    PixelSource,
    file_sha256,
    model_features,
    parse_feature_names,
)
from pclkit.probes import ProbeConfig
from pclkit.protocols import (  # noqa: F401  (CHANCE: re-exported for pclkit.figures and the notebooks)
    CHANCE,
    PIXELS,
    RANDOM_INIT,
    SUPERVISED,
    can_swap,
    chance_rows,
    cmu_parts,
    cmu_tasks,
    frozen_encoders,
    result_rows,
    source_models,
    swap_fidelity,
    synthfaces_parts,
    synthfaces_tasks,
)
from pclkit.protocols_real import REAL_DATASETS, DataInputError, evaluate_real, locate_inputs
from pclkit.tables import result_tables, summary_table, write_results  # noqa: F401  (re-exported: the notebooks' imports)

DATASETS = ("synthfaces", "cmu", *REAL_DATASETS)


@dataclass(frozen=True)
class EvalConfig:
    """Everything an evaluation depends on besides the checkpoints.

    SynthFaces sizes ``n_train``/``n_val``/``n_test`` are images of the
    identity-disjoint splits (500/100/200 identities). Each of ``seeds`` seeds
    draws a random ``train_fraction`` of the probe-training images, new
    verification pairs, new within-identity splits and (CMU) a new subject
    split; tables report mean ± std over seeds.

    Real benchmarks (``data`` in :data:`~pclkit.protocols_real.REAL_DATASETS`)
    read ``root`` (and ``train_root`` for AFLW2000's 300W-LP, ``pairs`` for a
    LFW/CPLFW pair list kept elsewhere); ``val_fraction`` of the training data
    is held out per seed for validation where the benchmark has no official
    validation split, and ``folder_split`` gives a class folder's train / val
    fractions (the rest is test).
    """

    data: str = "synthfaces"
    features: tuple[str, ...] = FEATURE_KEYS
    seeds: int = 3
    n_train: int = 3000
    n_val: int = 1000
    n_test: int = 2000
    data_seed: int = 0
    #: SynthFaces pose half-ranges (yaw, pitch, roll) in degrees; None: the checkpoints' ``data.pose_limits``
    pose_limits: tuple[float, float, float] | None = None
    #: SynthFaces pose prior ("normal" | "uniform"); None: the checkpoints' ``data.pose_prior``
    pose_prior: str | None = None
    cmu_root: str | None = None
    cmu_scale: int = 2
    cmu_subjects: tuple[int, int, int] = (12, 4, 4)
    cache_dir: str | None = ".cache/features"
    batch_size: int = 256
    bf16: bool = False
    device: str = "cpu"
    baselines: bool = True
    random_init_seed: int = 0
    train_fraction: float = 0.8
    n_pairs: int = 3000
    cross_pose_yaw: float = 45.0
    n_swap: int = 128
    #: identity probe (disentanglement report): a seeded subset of this many test identities
    identity_classes: int = 100
    supervised_json: str | None = None
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    progress: bool = True
    root: str | None = None
    train_root: str | None = None
    pairs: str | None = None
    val_fraction: float = 0.1
    folder_split: tuple[float, float] = (0.6, 0.2)

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ValueError(f"unknown data {self.data!r}; choose one of {DATASETS}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError("n_train, n_val and n_test must be >= 1")
        if self.data == "cmu" and not self.cmu_root:
            raise ValueError("data 'cmu' needs cmu_root (--cmu PATH, the folder with the 20 user folders)")
        if self.data in REAL_DATASETS and not self.root:
            raise ValueError(f"data {self.data!r} needs root (--root PATH; layouts in data/README.md)")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if min(self.folder_split) <= 0 or sum(self.folder_split) >= 1:
            raise ValueError(f"folder_split (train, val) must be positive with a sum below 1, got {self.folder_split}")
        object.__setattr__(self, "features", parse_feature_names(self.features))


# --------------------------------------------------------------------------- SynthFaces poses of the runs


def trained_pose_limits(config: Mapping[str, Any]) -> tuple[float, ...]:
    """The SynthFaces ``data.pose_limits`` a run was pretrained with (runs older than the key: the default)."""
    limits = config.get("data", {}).get("pose_limits", DEFAULT_POSE_LIMITS)
    return tuple(float(x) for x in limits)


def trained_pose_prior(config: Mapping[str, Any]) -> str:
    """The SynthFaces ``data.pose_prior`` a run was pretrained with (runs older than the key: uniform)."""
    return str(config.get("data", {}).get("pose_prior", "uniform"))


def _resolve_trained(what: str, option: str, requested: Any, trained: set[Any]) -> Any:
    """``requested``, or else the one value the runs were trained with; a mismatch is warned about."""
    if requested is None:
        if len(trained) > 1:
            raise ValueError(f"the checkpoints were pretrained on different SynthFaces {what} {sorted(trained)}; "
                             f"choose one with EvalConfig.{option} / --{option.replace('_', '-')}")
        return trained.pop()
    if trained != {requested}:
        warnings.warn(f"checkpoints were pretrained on SynthFaces {what} {sorted(trained)} but are "
                      f"evaluated at {requested}", stacklevel=4)
    return requested


def resolve_pose_limits(requested: Sequence[float] | None, configs: Sequence[Mapping[str, Any]]) -> tuple[float, ...]:
    """The SynthFaces pose limits to evaluate at: ``requested``, or else the runs' own (which must agree).

    Evaluating at other limits than a run was trained on is allowed (a
    generalisation test) but warned about.
    """
    requested = None if requested is None else tuple(float(x) for x in requested)
    return _resolve_trained("pose limits", "pose_limits", requested, {trained_pose_limits(c) for c in configs})


def resolve_pose_prior(requested: str | None, configs: Sequence[Mapping[str, Any]]) -> str:
    """The SynthFaces pose prior to evaluate with: ``requested``, or else the runs' own (which must agree)."""
    return _resolve_trained("pose priors", "pose_prior", requested, {trained_pose_prior(c) for c in configs})


# --------------------------------------------------------------------------- checkpoints and baselines


def checkpoint_labels(paths: Sequence[str | Path], configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A label per checkpoint: its run folder (``runs/pcl/last.pt`` -> ``pcl``), ``NAME`` of
    ``pretrained:NAME``, else the file stem; made unique."""
    from pclkit.pretrained import is_pretrained_ref, pretrained_name

    labels = []
    for path, config in zip(paths, configs):
        if is_pretrained_ref(path):
            base = pretrained_name(path)
        else:
            path = Path(path)
            base = (
                path.name
                if path.is_dir()
                else (path.parent.name if path.stem in ("last", "best", "final") and path.parent.name else path.stem)
            )
        label = base or str(config.get("method", "model"))
        while label in labels:
            label = f"{label}'"
        labels.append(label)
    return labels




def checkpoint_file(path: str | Path) -> Path:
    """The file of a checkpoint reference (run folder, file or ``pretrained:NAME``).

    See :func:`pclkit.checkpoint.checkpoint_path`.
    """
    from pclkit.checkpoint import checkpoint_path

    return checkpoint_path(path)


def checkpoint_method(config: Mapping[str, Any]) -> str:
    """The registered method a checkpoint's config trained (runs older than the top-level key: ``model.method``)."""
    from pclkit.config import TrainConfig

    return str(config.get("method") or config.get("model", {}).get("method") or TrainConfig.method)


def random_init_model(config: Mapping[str, Any], seed: int, device: str) -> nn.Module:
    """The checkpoint's architecture with fresh random weights (``torch.manual_seed(seed)``), in eval mode.

    BatchNorm running statistics stay at their initial (0, 1) values.
    """
    from pclkit.config import config_from_dict
    from pclkit.models import build_model

    model_cfg = config_from_dict(config).model
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_model(model_cfg)
    finally:
        torch.random.set_rng_state(state)  # leave the caller's global RNG untouched
    return model.to(device).eval()


def _learnability_items(payload: Mapping[str, Any], au_threshold: float) -> list[tuple[str, str, float]]:
    """``(task, metric, value)`` from the JSON of ``benchmarks/synthfaces_learnability.py``.

    AU F1 is kept only when that run binarised AUs at ``au_threshold`` (F1
    values at different intensity thresholds are not comparable). Its identity
    accuracy (closed set over training identities) has no column here and is
    kept under the task ``identity_closed_set``.
    """
    items: list[tuple[str, str, float]] = []
    if "test_expression_accuracy" in payload:
        items.append(("expression", "accuracy", payload["test_expression_accuracy"]))
    if "heldout_identity_accuracy" in payload:
        items.append(("identity_closed_set", "accuracy", payload["heldout_identity_accuracy"]))
    threshold = payload.get("au_threshold")
    if threshold is not None and abs(float(threshold) - au_threshold) < 1e-9:
        items += [("au", f"f1_{name}", v) for name, v in payload.get("test_au_f1", {}).items()]
        if "test_au_f1_mean" in payload:
            items.append(("au", "f1_mean", payload["test_au_f1_mean"]))
    elif "test_au_f1_mean" in payload:
        print(f"note: supervised AU F1 left out: computed at intensity >= {threshold}, this evaluation uses >= {au_threshold}")
    mae = payload.get("test_pose_mae_deg", {})
    items += [("head_pose", f"mae_{angle}", v) for angle, v in mae.items()]
    if len(mae) == 3:
        items.append(("head_pose", "mae_mean", sum(mae.values()) / 3))
    return items


def supervised_rows(
    path: str | Path, data: str, au_threshold: float = ProbeConfig.au_intensity_threshold
) -> list[dict[str, Any]]:
    """Rows of the supervised reference for ``data`` (method ``supervised``, feature ``CNN``).

    Accepted JSON: the output of ``benchmarks/synthfaces_learnability.py`` (a
    SynthFaces reference), a list of tidy rows or ``{"rows": [...]}`` (fields
    ``task``, ``metric``, ``value``, optional ``feature``, ``seed``, ``data``),
    or a nested ``{task: {metric: value}}`` mapping (optionally under ``"results"``).
    """
    payload = json.loads(Path(path).read_text())
    if isinstance(payload, dict) and "rows" in payload:
        payload = payload["rows"]
    if isinstance(payload, dict) and "test_expression_accuracy" in payload:
        if data != "synthfaces":
            return []
        from pclkit.data.synthfaces import RENDERER_VERSION

        if payload.get("renderer_version") != RENDERER_VERSION:
            warnings.warn(f"{path}: the supervised reference was measured on SynthFaces renderer version "
                          f"{payload.get('renderer_version', '<= 2')}, these faces are version {RENDERER_VERSION}: "
                          "its row is left out (re-run benchmarks/synthfaces_learnability.py)", stacklevel=2)
            return []
        raw = [{"task": t, "metric": m, "value": v} for t, m, v in _learnability_items(payload, au_threshold)]
    elif isinstance(payload, dict):
        payload = payload.get("results", payload)
        items = [(t, m, v) for t, metrics in payload.items() if isinstance(metrics, dict) for m, v in metrics.items()]
        raw = [{"task": t, "metric": m, "value": v} for t, m, v in items if isinstance(v, (int, float))]
    elif isinstance(payload, list):
        raw = payload
    else:
        raise ValueError(f"{path}: supervised reference must be a JSON object or list of rows")
    rows = []
    for row in raw:
        if not isinstance(row, dict) or not {"task", "metric", "value"} <= set(row):
            raise ValueError(f"{path}: each supervised row needs task, metric and value; got {row!r}")
        if row.get("data", data) != data:
            continue
        rows.append(dict(data=data, method=SUPERVISED, feature=str(row.get("feature", "CNN")), task=str(row["task"]),
                         metric=str(row["metric"]), seed=int(row.get("seed", 0)), value=float(row["value"])))
    return rows


def evaluate_checkpoints(
    paths: Sequence[str | Path], config: EvalConfig = EvalConfig(), names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Evaluate checkpoints (and, with ``config.baselines``, the baselines) -> tidy result rows.

    Rows: ``{"data", "method", "feature", "task", "metric", "seed", "value"}``.
    Accuracies, F1 and R^2 are fractions; MAE in degrees; PSNR in dB. Each
    checkpoint is probed on the features its method exposes
    (:attr:`pclkit.methods.Method.features`); ``names`` label the checkpoints
    (default :func:`checkpoint_labels`).
    """
    from pclkit.checkpoint import load_model

    if not paths:
        raise ValueError("no checkpoints to evaluate")
    # a bad root or a missing list file fails here, in a second, before any model is loaded
    inputs = locate_inputs(config.data, config.root, config.train_root, config.pairs) if config.data in REAL_DATASETS else None
    cache = FeatureCache(Path(config.cache_dir)) if config.cache_dir else None
    loaded = []
    for path in paths:
        file = checkpoint_file(path)
        model, model_config = load_model(file, device=config.device)
        loaded.append((file, model, model_config))
    labels = list(names) if names else checkpoint_labels(paths, [c for _, _, c in loaded])
    if len(labels) != len(loaded):
        raise ValueError(f"{len(labels)} names for {len(loaded)} checkpoints")
    sizes = {int(m.image_size) for _, m, _ in loaded}
    if len(sizes) != 1:
        raise ValueError(f"checkpoints take different image sizes {sorted(sizes)}; evaluate them separately")
    size = sizes.pop()
    if config.data == "synthfaces":
        configs = [c for _, _, c in loaded]
        config = replace(config, pose_limits=resolve_pose_limits(config.pose_limits, configs),
                         pose_prior=resolve_pose_prior(config.pose_prior, configs))
    image_sets: Mapping[str, ImageSet] = {}  # real benchmarks build their own (pclkit.protocols_real)
    if inputs is None:
        image_sets = synthfaces_parts(config, size, cache) if config.data == "synthfaces" else cmu_parts(config, size)

    extraction = dict(batch_size=config.batch_size, device=config.device, bf16=config.bf16, progress=config.progress)
    sources: list[Any] = []
    for (file, model, model_config), label in zip(loaded, labels):
        exposed = model_features(checkpoint_method(model_config))
        features = tuple(f for f in config.features if f in exposed)
        if features:
            sources.append(EncoderSource(label, model, features, {"checkpoint_sha256": file_sha256(file)}, cache, **extraction))
    if config.baselines:
        first_model, first_config = loaded[0][1], loaded[0][2]
        baseline = random_init_model(first_config, config.random_init_seed, config.device)
        init_id = {"random_init": first_config.get("model", {}), "seed": config.random_init_seed,
                   "torch": torch.__version__.split("+")[0]}
        sources.append(EncoderSource(RANDOM_INIT, baseline, ("F_s",), init_id, cache, **extraction))
        sources.append(PixelSource(PIXELS, int(first_model.feature_dims["F_s"]), config.probe.solver_threads))

    rows = evaluate_real(sources, config, size, inputs) if inputs is not None else evaluate_sources(sources, image_sets, config)
    default_poses = config.pose_limits in (None, DEFAULT_POSE_LIMITS) and config.pose_prior in (None, DEFAULT_CONFIG.pose_prior)
    if config.supervised_json and not default_poses:
        warnings.warn(f"the supervised reference was trained at the default poses, not {config.pose_limits} "
                      f"({config.pose_prior}): its row is left out", stacklevel=2)
    elif config.supervised_json:
        rows += supervised_rows(config.supervised_json, config.data, config.probe.au_intensity_threshold)
    return rows


def evaluate_sources(sources: Sequence[Any], image_sets: Mapping[str, ImageSet], config: EvalConfig) -> list[dict[str, Any]]:
    """Run the task suite of ``config.data`` for every feature source and seed (+ swap fidelity) -> rows.

    ``image_sets``: SynthFaces ``train``/``val``/``test`` or CMU ``all``
    (:func:`pclkit.protocols.synthfaces_parts`, :func:`pclkit.protocols.cmu_parts`).
    The sources' encoders must come out unchanged (:func:`pclkit.protocols.frozen_encoders`).
    """
    suite = synthfaces_tasks if config.data == "synthfaces" else cmu_tasks
    rows: list[dict[str, Any]] = []
    if config.baselines:
        rows += [row for seed in range(config.seeds) for row in chance_rows(image_sets, seed, config)]
    work = [(source, seed) for source in sources for seed in range(config.seeds)]
    with frozen_encoders(source_models(sources)):
        for source, seed in tqdm(work, desc=f"evaluate on {config.data}", disable=not config.progress):
            rows += suite(source, image_sets, seed, config)
            if config.data == "synthfaces" and config.n_swap > 0 and can_swap(source):
                result = swap_fidelity(source.model, image_sets["test"], config.n_swap, seed, config)
                rows += result_rows("synthfaces", source.method, "decoder", "swap", seed, result)
    return rows


def evaluate_checkpoint(path: str | Path, data: str = "synthfaces", **options: Any) -> list[dict[str, Any]]:
    """Evaluate one checkpoint; ``options`` are :class:`EvalConfig` fields (e.g. ``seeds=1, baselines=False``)."""
    return evaluate_checkpoints([path], EvalConfig(data=data, **options))


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoints",
        nargs="+",
        help="checkpoint files, run folders holding last.pt, or pretrained:NAME (models shipped in pclkit/weights)",
    )
    parser.add_argument("--data", choices=DATASETS, default="synthfaces",
                        help="evaluation data (default: synthfaces); the real benchmarks need --root (layouts: data/README.md)")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.csv / results.md / results.tex")
    parser.add_argument("--features", default=",".join(FEATURE_KEYS), help="comma list of F_s,F_f,F_p,F_fp (F_fp = F_f ⊕ F_p)")
    parser.add_argument("--seeds", type=int, default=3, help="probe seeds (subsamples, pairs, splits); mean ± std")
    parser.add_argument("--cmu", default=None, help="CMU faces folder (for --data cmu)")
    parser.add_argument("--root", default=None,
                        help="real benchmark: RAF-DB folder, fer2013.csv (or its folder), LFW/CPLFW image folder, DISFA folder, "
                             "AFLW2000 .npz (or a folder holding it and the 300W-LP .npz), or a folder of class sub-folders")
    parser.add_argument("--train-root", default=None,
                        help="aflw2000: the 300W-LP .npz or its folder (default: next to the AFLW2000 .npz)")
    parser.add_argument("--pairs", default=None,
                        help="lfw/cplfw: the pair list (default: pairs.txt / pairs_CPLFW.txt in --root or its parent)")
    parser.add_argument("--val-fraction", type=float, default=EvalConfig.val_fraction,
                        help="share of the training data (RAF-DB, 300W-LP; DISFA training subjects) held out per seed "
                             "for validation (default 0.1)")
    parser.add_argument("--names", default=None, help="comma list of method labels, one per checkpoint")
    parser.add_argument(
        "--supervised-json", default=None, help="supervised reference JSON (benchmarks/synthfaces_learnability.py)"
    )
    parser.add_argument("--cache-dir", default=".cache/features", help="feature cache folder ('' disables)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the raw-pixel and random-init baselines")
    parser.add_argument("--n-train", type=int, default=EvalConfig.n_train, help="SynthFaces probe-training images")
    parser.add_argument("--n-val", type=int, default=EvalConfig.n_val, help="SynthFaces validation images")
    parser.add_argument("--n-test", type=int, default=EvalConfig.n_test, help="SynthFaces test images")
    parser.add_argument("--batch-size", type=int, default=256, help="extraction batch size")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast during extraction")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--au-threshold", type=float, default=ProbeConfig.au_intensity_threshold,
                        help="AU present at intensity >= this (default 0.4: DISFA level >= 2 of 0..5)")
    parser.add_argument(
        "--au-decision", default="val", help="AU decision threshold: 'val' (chosen on validation) or a probability"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--pose-limits", type=float, nargs=3, default=None, metavar=("YAW", "PITCH", "ROLL"),
                        help="SynthFaces pose half-ranges in degrees (default: the checkpoints' data.pose_limits)")
    parser.add_argument("--pose-prior", choices=("normal", "uniform"), default=None,
                        help="SynthFaces pose prior (default: the checkpoints' data.pose_prior)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    decision = args.au_decision if args.au_decision == "val" else float(args.au_decision)
    try:
        config = EvalConfig(
            data=args.data, features=parse_feature_names(args.features), seeds=args.seeds, cmu_root=args.cmu,
            supervised_json=args.supervised_json, cache_dir=args.cache_dir or None, baselines=not args.no_baselines,
            n_train=args.n_train, n_val=args.n_val, n_test=args.n_test, batch_size=args.batch_size, bf16=args.bf16,
            device=args.device, probe=ProbeConfig(au_decision=decision, au_intensity_threshold=args.au_threshold),
            progress=not args.quiet, root=args.root, train_root=args.train_root, pairs=args.pairs, val_fraction=args.val_fraction,
        )
    except ValueError as error:  # an option that does not fit: say which, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.pose_limits is not None:
        config = replace(config, pose_limits=tuple(args.pose_limits))
    if args.pose_prior is not None:
        config = replace(config, pose_prior=args.pose_prior)
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    start = time.perf_counter()
    try:
        rows = evaluate_checkpoints(args.checkpoints, config, names)
    except DataInputError as error:  # bad root, missing list file, nothing usable: a message, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    meta = {"checkpoints": [str(p) for p in args.checkpoints], "config": asdict(config), "seconds": round(elapsed, 1),
            "torch": torch.__version__, "threads": torch.get_num_threads()}
    files = write_results(rows, args.out, meta)
    print((args.out / "results.md").read_text())
    print(f"evaluated in {elapsed:.0f} s; wrote " + ", ".join(str(p) for p in files.values()))
    return 0
