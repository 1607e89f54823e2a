"""``python -m pclkit evaluate``: linear evaluation of frozen encoders on the PCL paper's four tasks.

Liu et al. (CVPR 2023) evaluate PCL with linear probes on expression
recognition (RAF-DB, FER-2013), face verification (LFW, CPLFW), AU detection
(DISFA) and head pose (AFLW2000). This module runs the analogues of those tasks
(DESIGN §3) on SynthFaces -- where every factor is known -- or on the CMU faces:

* SynthFaces: 7-class expression, identity-pair verification (also cross-pose,
  |Δyaw| > 45°), 8-AU detection, yaw/pitch/roll regression; probes trained on
  the ``train`` split, selected on ``val``, scored on ``test`` (identities of
  the three splits are disjoint); verification pairs use the test identities.
* CMU faces: 4-class expression and 4-class pose with subject-disjoint
  train/val/test subjects (12/4/4, redrawn per seed), and verification on
  identity pairs in identity-disjoint folds.
* The paper's real benchmarks (RAF-DB, FER-2013, LFW, CPLFW, DISFA,
  300W-LP -> AFLW2000) and any folder of class sub-folders, with their
  standard protocols: :mod:`pclkit.protocols_real` (``--data NAME --root PATH``).

plus weighted kNN (Wu et al. 2018), a disentanglement report (pose, identity
and expression decodability of F_f and of F_p; swap fidelity on SynthFaces) and
baselines: raw pixels (PCA to the compared dimension, fitted on training
images), a randomly initialised encoder of the same architecture, and a
supervised reference read from JSON. Importable: :func:`evaluate_checkpoints`,
:func:`evaluate_checkpoint`, :func:`summary_table`, :func:`result_tables`, :func:`write_results`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pclkit.data.synth_factors import DEFAULT_CONFIG, DEFAULT_POSE_LIMITS
from pclkit.features import (
    DISPLAY_NAMES,
    FEATURE_KEYS,
    LATEX_NAMES,
    DataPart,
    EncoderSource,
    FeatureCache,
    PixelSource,
    cached,
    file_sha256,
    model_features,
    parse_feature_names,
)
from pclkit.probes import (
    ProbeConfig,
    ProbeResult,
    Split,
    au_detection_probe,
    binary_f1,
    class_accuracies,
    classification_probe,
    identity_pairs,
    knn_probe,
    pose_regression_probe,
    r2_scores,
    torch_threads,
    verification_probe,
)
from pclkit.protocols_real import DATA_INFO, REAL_DATASETS, DataInputError, evaluate_real, locate_inputs, real_table_specs
from pclkit.tables import Column, Table, TableSpec, to_latex, to_markdown, write_csv
from pclkit.tables import summary_table as layout_table

DATASETS = ("synthfaces", "cmu", *REAL_DATASETS)
PIXELS = "pixels (PCA)"
RANDOM_INIT = "random init"
SUPERVISED = "supervised"
CHANCE = "chance"


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


# --------------------------------------------------------------------------- data parts


def _source_hash(*modules: str) -> str:
    """Hash of the source of ``modules``: cached images/features become stale when the renderer changes."""
    import importlib

    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    return digest.hexdigest()[:16]


def synthfaces_parts(cfg: EvalConfig, size: int, cache: FeatureCache | None, synth_config: Any = None) -> dict[str, DataPart]:
    """SynthFaces ``train``/``val``/``test`` at ``size`` px; rendered images are cached like features.

    ``synth_config`` (a :class:`pclkit.data.synthetic.SynthConfig`, default the
    standard one with ``cfg.pose_limits``, or the default poses when unset)
    changes identity counts or ranges, e.g. for small tests.
    """
    from pclkit.data.synthetic import SynthFaces, symmetric_pose_config

    synth_config = synth_config or symmetric_pose_config(cfg.pose_limits or DEFAULT_POSE_LIMITS, prior=cfg.pose_prior)

    version = _source_hash("pclkit.data.synthetic", "pclkit.data.synth_face", "pclkit.data.synth_factors",
                           "pclkit.data.synth_identity", "pclkit.data.synth_raycast")
    parts = {}
    for split, n in (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test)):
        dataset = SynthFaces(split, n=n, size=size, seed=cfg.data_seed, config=synth_config)
        identity = {"data": "synthfaces", "split": split, "n": n, "seed": cfg.data_seed, "size": size,
                    "renderer": version, "synth_config": repr(synth_config)}

        def load(dataset: SynthFaces = dataset, identity: dict = identity) -> Tensor:
            render = lambda: {"images": dataset.tensors(progress=cfg.progress)[0]}  # noqa: E731
            return cached(cache, {**identity, "kind": "images"}, render)["images"]

        labels = {**dataset.factors.labels(), "index": torch.arange(n)}
        parts[split] = DataPart(split, labels, identity, load, factors=dataset.factors)
    return parts


def cmu_parts(cfg: EvalConfig, size: int) -> dict[str, DataPart]:
    """All usable CMU face images at ``size`` px as one part (splits are drawn per seed)."""
    from pclkit.data import CMUFaces, as_tensors

    dataset = CMUFaces(cfg.cmu_root, scale=cfg.cmu_scale, size=size)
    images, labels = as_tensors(dataset, progress=cfg.progress)
    identity = {"data": "cmu", "root": str(Path(cfg.cmu_root).resolve()), "scale": cfg.cmu_scale, "n": len(dataset), "size": size}
    return {"all": DataPart("all", labels, identity, lambda: images, _images=images)}


# --------------------------------------------------------------------------- result rows


def result_rows(data: str, method: str, feature: str, task: str, seed: int, result: ProbeResult) -> list[dict[str, Any]]:
    """Tidy rows of one protocol result; selected hyperparameters get the metric prefix ``selected_``."""
    rows = [dict(data=data, method=method, feature=feature, task=task, metric=m, seed=seed, value=float(v)) for m, v in result.metrics.items()]
    rows += [dict(data=data, method=method, feature=feature, task=task, metric=f"selected_{m}", seed=seed, value=float(v)) for m, v in result.selected.items()]
    return rows


def _generator(seed: int, salt: str) -> torch.Generator:
    """A generator per (seed, purpose), so adding one protocol never shifts another's random draws."""
    return torch.Generator().manual_seed(int(hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()[:12], 16))


def subsample(n: int, fraction: float, seed: int, salt: str) -> Tensor:
    """Sorted random ``fraction`` of ``range(n)`` (all of it when ``fraction == 1``)."""
    if fraction >= 1.0:
        return torch.arange(n)
    k = max(1, int(round(n * fraction)))
    return torch.randperm(n, generator=_generator(seed, salt))[:k].sort().values


def within_identity_split(
    identity: Tensor, seed: int, fractions: tuple[float, float] = (0.6, 0.2), max_identities: int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Rows split per identity into train/val/test (``fractions`` train and val, rest test).

    Identity *classification* needs every identity in every split, unlike
    verification, which uses unseen identities. With ``max_identities``, a
    seeded random subset of identities is used (the probe's cost grows with
    the number of classes).
    """
    gen = _generator(seed, "within-identity")
    identities = torch.unique(identity)
    if max_identities is not None and max_identities < len(identities):
        identities = identities[torch.randperm(len(identities), generator=gen)[:max_identities]].sort().values
    train, val, test = [], [], []
    for ident in identities:
        rows = torch.nonzero(identity == ident).flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)]
        if len(rows) < 3:
            continue
        n_tr = max(1, int(round(len(rows) * fractions[0])))
        n_va = max(1, int(round(len(rows) * fractions[1])))
        n_tr = min(n_tr, len(rows) - 2)
        train.append(rows[:n_tr])
        val.append(rows[n_tr:n_tr + n_va])
        test.append(rows[n_tr + n_va:])
    if not train:
        raise ValueError("identity classification needs identities with at least 3 images")
    return torch.cat(train), torch.cat(val), torch.cat(test)


def class_indices(identity: Tensor, rows: Sequence[Tensor]) -> Tensor:
    """Identity integers -> class indices 0..K-1 over the identities present in ``rows``.

    (SynthFaces identity integers are global: test identities start at 2,000,000.)
    Entries of identities outside ``rows`` are meaningless and never read.
    """
    present = torch.unique(identity[torch.cat(list(rows))])
    return torch.searchsorted(present, identity).clamp_max(len(present) - 1)


def subject_split(identity: Tensor, counts: tuple[int, int, int], seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rows of disjoint random subject groups of sizes ``counts`` (train, val, test)."""
    subjects = torch.unique(identity)
    if sum(counts) > len(subjects):
        raise ValueError(f"subject split {counts} needs {sum(counts)} subjects, the data has {len(subjects)}")
    order = subjects[torch.randperm(len(subjects), generator=_generator(seed, "subjects"))]
    groups = (order[:counts[0]], order[counts[0]:counts[0] + counts[1]], order[counts[0] + counts[1]:sum(counts)])
    return tuple(torch.nonzero(torch.isin(identity, g)).flatten() for g in groups)  # type: ignore[return-value]


# --------------------------------------------------------------------------- task suites


def synthfaces_tasks(source: Any, parts: Mapping[str, DataPart], seed: int, cfg: EvalConfig) -> list[dict[str, Any]]:
    """All SynthFaces protocols for every feature of ``source`` at one seed -> tidy rows.

    Probes train on a seed-dependent ``cfg.train_fraction`` of the ``train``
    split, select on ``val`` and report ``test``; verification pairs and the
    identity probe (a within-identity split) use the test identities.
    """
    feats = source.features(parts, fit_rows={"train": torch.arange(len(parts["train"]))})
    lab = {p: parts[p].labels for p in parts}
    test_id = lab["test"]["identity"]
    identity_rows = within_identity_split(test_id, seed, max_identities=cfg.identity_classes)
    lab["test"] = {**lab["test"], "identity_class": class_indices(test_id, identity_rows)}
    folds = cfg.probe.verification_folds
    plan = {
        "train_rows": subsample(len(parts["train"]), cfg.train_fraction, seed, "probe-train"),
        "pairs": identity_pairs(test_id, cfg.n_pairs, _generator(seed, "pairs"), folds),
        "cross_pairs": identity_pairs(test_id, cfg.n_pairs, _generator(seed, "pairs-cross"), folds,
                                      yaw=lab["test"]["pose"][:, 0], min_abs_delta_yaw=cfg.cross_pose_yaw),
        "identity_rows": identity_rows,
    }
    rows: list[dict[str, Any]] = []
    with torch_threads(cfg.probe.solver_threads):
        for name, by_part in feats.items():
            for task, result in synthfaces_feature_results(name, by_part, lab, plan, cfg.probe):
                rows += result_rows("synthfaces", source.method, name, task, seed, result)
    return rows


def synthfaces_feature_results(
    name: str, x: Mapping[str, Tensor], lab: Mapping[str, Mapping[str, Tensor]], plan: Mapping[str, Any], probe: ProbeConfig
) -> list[tuple[str, ProbeResult]]:
    """``(task, result)`` of every SynthFaces protocol on feature ``name`` (``x[part] (N, D)``)."""
    from pclkit.data.synthetic import AU_NAMES

    def split(part: str, key: str, index: Tensor | None = None) -> Split:
        return Split(x[part], lab[part][key]) if index is None else Split(x[part][index], lab[part][key][index])

    def sets(key: str) -> tuple[Split, Split, Split]:
        return split("train", key, plan["train_rows"]), split("val", key), split("test", key)

    results = [
        ("expression", classification_probe(*sets("expression"), 7, probe)),
        ("expression_knn", knn_probe(sets("expression")[0], split("test", "expression"), 7, probe)),
        ("au", au_detection_probe(*sets("aus"), tuple(AU_NAMES), probe)),
        ("head_pose", pose_regression_probe(*sets("pose"), config=probe)),
        ("verification", verification_probe(x["test"], plan["pairs"])),
        ("verification_cross_pose", verification_probe(x["test"], plan["cross_pairs"])),
    ]
    if name in ("F_f", "F_p"):
        id_sets = [split("test", "identity_class", rows) for rows in plan["identity_rows"]]
        results.append(("identity", classification_probe(*id_sets, config=probe)))
    return results


def cmu_tasks(source: Any, parts: Mapping[str, DataPart], seed: int, cfg: EvalConfig) -> list[dict[str, Any]]:
    """CMU faces protocols at one seed -> tidy rows.

    Expression and pose probes use disjoint random subject groups
    (``cfg.cmu_subjects`` = train/val/test, redrawn per seed); verification
    uses all subjects in identity-disjoint folds; the identity probe a
    within-identity split.
    """
    labels = dict(parts["all"].labels)
    identity = labels["identity"]
    subject_rows = subject_split(identity, cfg.cmu_subjects, seed)
    feats = source.features(parts, fit_rows={"all": subject_rows[0]})
    pairs = identity_pairs(identity, cfg.n_pairs, _generator(seed, "pairs"), cfg.probe.verification_folds)
    identity_rows = within_identity_split(identity, seed, max_identities=cfg.identity_classes)
    labels["identity_class"] = class_indices(identity, identity_rows)
    rows: list[dict[str, Any]] = []
    with torch_threads(cfg.probe.solver_threads):
        for name, by_part in feats.items():
            x = by_part["all"]

            def sets(key: str, index_sets: tuple[Tensor, ...] = subject_rows) -> list[Split]:
                return [Split(x[index], labels[key][index]) for index in index_sets]

            results = [
                ("expression", classification_probe(*sets("expression"), 4, cfg.probe)),
                ("expression_knn", knn_probe(sets("expression")[0], sets("expression")[2], 4, cfg.probe)),
                ("pose", classification_probe(*sets("pose"), 4, cfg.probe)),
                ("verification", verification_probe(x, pairs)),
            ]
            if name in ("F_f", "F_p"):
                results.append(("identity", classification_probe(*sets("identity_class", identity_rows), config=cfg.probe)))
            for task, result in results:
                rows += result_rows("cmu", source.method, name, task, seed, result)
    return rows


def chance_rows(parts: Mapping[str, DataPart], seed: int, cfg: EvalConfig) -> list[dict[str, Any]]:
    """What the labels alone give: the reference a probe must beat.

    Classification: the majority class of the probe-training set; AU detection:
    "every AU present" (F1 = 2p / (1 + p) at prevalence p, the best
    constant); head pose: the training mean; verification: 50% (pairs are
    balanced by construction).
    """
    rows: list[dict[str, Any]] = []

    def emit(task: str, metrics: dict[str, float]) -> None:
        rows.extend(result_rows(cfg.data, CHANCE, CHANCE, task, seed, ProbeResult(metrics)))

    def majority(train_y: Tensor, test_y: Tensor, n_classes: int) -> dict[str, float]:
        guess = torch.full_like(test_y, int(torch.bincount(train_y, minlength=n_classes).argmax()))
        return class_accuracies(guess, test_y, n_classes)

    if cfg.data == "synthfaces":
        from pclkit.data.synthetic import AU_NAMES

        train = {k: v[subsample(len(parts["train"]), cfg.train_fraction, seed, "probe-train")] for k, v in parts["train"].labels.items()}
        test = parts["test"].labels
        emit("expression", majority(train["expression"], test["expression"], 7))
        present = test["aus"] >= cfg.probe.au_intensity_threshold
        f1 = {f"f1_{name}": binary_f1(torch.ones(len(present), dtype=torch.bool), present[:, a]) for a, name in enumerate(AU_NAMES)}
        emit("au", {**f1, "f1_mean": float(torch.tensor(list(f1.values())).nanmean())})
        guess = train["pose"].float().mean(0).expand_as(test["pose"])
        mae, r2 = (guess - test["pose"]).abs().mean(0), r2_scores(guess, test["pose"].float())
        metrics = {f"mae_{n}": v.item() for n, v in zip(("yaw", "pitch", "roll"), mae)} | {"mae_mean": mae.mean().item(), "r2_mean": r2.mean().item()}
        emit("head_pose", metrics)
        emit("verification_cross_pose", {"accuracy": 0.5})
    else:
        labels = parts["all"].labels
        tr, _, te = subject_split(labels["identity"], cfg.cmu_subjects, seed)
        emit("expression", majority(labels["expression"][tr], labels["expression"][te], 4))
        emit("pose", majority(labels["pose"][tr], labels["pose"][te], 4))
    emit("verification", {"accuracy": 0.5})
    return rows


def swap_fidelity(model: nn.Module, part: DataPart, n_pairs: int, seed: int, cfg: EvalConfig) -> ProbeResult:
    """Swap reconstructions scored against SynthFaces ground truth (PSNR dB, SSIM; Wang et al. 2004).

    For random test pairs (A, B), A != B: ``swap`` compares D(F_f^A, F_p^B) with
    ``render(Factors.combine(face_from=A, pose_from=B))``; two controls compare
    the same D(F_f^A, F_p^B) with render(face A, pose A) = image A (``swap_vs_a``:
    high if the decoder ignores F_p) and with render(face B, pose B) = image B
    (``swap_vs_b``: high if F_p carries B's face); a real swap beats both.
    ``noswap`` compares D(F_f^A, F_p^A) with the swap target; ``recon``
    compares D(F_f^A, F_p^A) with image A.
    """
    from pclkit.data.synthetic import Factors, render
    from pclkit.features import check_frozen, to_model_input
    from pclkit.image_metrics import psnr, ssim

    check_frozen(model)
    gen = _generator(seed, "swap")
    n = len(part)
    a = torch.randperm(n, generator=gen)[:n_pairs]
    # B is A shifted by a random non-zero offset: never a face paired with itself
    b = (a + torch.randint(1, max(n, 2), (len(a),), generator=gen)) % n
    images = part.images()
    size = int(model.image_size)
    scores: dict[str, list[Tensor]] = {}
    with torch.inference_mode():
        for start in range(0, len(a), cfg.batch_size):
            ia, ib = a[start:start + cfg.batch_size], b[start:start + cfg.batch_size]
            xa, xb = to_model_input(images[ia], size, cfg.device), to_model_input(images[ib], size, cfg.device)
            _, ff_a, fp_a = model.forward_features(xa)
            _, _, fp_b = model.forward_features(xb)
            swapped, recon = model.decode(ff_a, fp_b).float().cpu(), model.decode(ff_a, fp_a).float().cpu()
            target = render(Factors.combine(part.factors[ia], part.factors[ib]), size)
            # the truth passes through the same 8-bit quantisation as the inputs
            target = (target * 255).round() / 255
            xa, xb = xa.float().cpu(), xb.float().cpu()
            compared = {"swap": (swapped, target), "swap_vs_a": (swapped, xa), "swap_vs_b": (swapped, xb),
                        "noswap": (recon, target), "recon": (recon, xa)}
            for key, (pred, truth) in compared.items():
                scores.setdefault(f"psnr_{key}", []).append(psnr(pred, truth))
                scores.setdefault(f"ssim_{key}", []).append(ssim(pred, truth))
    metrics = {k: torch.cat(v).mean().item() for k, v in scores.items()}
    metrics["n_pairs"] = float(len(a))
    return ProbeResult(metrics, {})


# --------------------------------------------------------------------------- checkpoints and baselines


def method_names(paths: Sequence[str | Path], configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A label per checkpoint: its run folder (``runs/pcl/last.pt`` -> ``pcl``), ``NAME`` of
    ``pretrained:NAME``, else the file stem; made unique."""
    from pclkit.pretrained import is_pretrained_ref, pretrained_name

    names = []
    for path, config in zip(paths, configs):
        if is_pretrained_ref(path):
            base = pretrained_name(path)
        else:
            path = Path(path)
            base = path.name if path.is_dir() else (path.parent.name if path.stem in ("last", "best", "final") and path.parent.name else path.stem)
        name = base or str(config.get("method", "model"))
        while name in names:
            name = f"{name}'"
        names.append(name)
    return names


def checkpoint_file(path: str | Path) -> Path:
    """The file of a checkpoint reference (run folder, file or ``pretrained:NAME``; see :func:`pclkit.checkpoint.checkpoint_path`)."""
    from pclkit.checkpoint import checkpoint_path

    return checkpoint_path(path)


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


def supervised_rows(path: str | Path, data: str, au_threshold: float = ProbeConfig.au_intensity_threshold) -> list[dict[str, Any]]:
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
        from pclkit.data.synthetic import RENDERER_VERSION

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


def evaluate_checkpoints(paths: Sequence[str | Path], config: EvalConfig = EvalConfig(), names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Evaluate checkpoints (and, with ``config.baselines``, the baselines) -> tidy result rows.

    Rows: ``{"data", "method", "feature", "task", "metric", "seed", "value"}``.
    Accuracies, F1 and R^2 are fractions; MAE in degrees; PSNR in dB.
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
    labels = list(names) if names else method_names(paths, [c for _, _, c in loaded])
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
    parts: Mapping[str, DataPart] = {}  # real benchmarks build their own parts (pclkit.protocols_real)
    if inputs is None:
        parts = synthfaces_parts(config, size, cache) if config.data == "synthfaces" else cmu_parts(config, size)

    extraction = dict(batch_size=config.batch_size, device=config.device, bf16=config.bf16, progress=config.progress)
    sources: list[Any] = []
    for (file, model, model_config), label in zip(loaded, labels):
        names_here = tuple(f for f in config.features if f in model_features(str(model_config.get("method", "pcl"))))
        if not names_here:
            continue
        sources.append(EncoderSource(label, model, names_here, {"checkpoint_sha256": file_sha256(file)}, cache, **extraction))
    if config.baselines:
        first_model, first_config = loaded[0][1], loaded[0][2]
        model_section = first_config.get("model", {})
        baseline = random_init_model(first_config, config.random_init_seed, config.device)
        init_id = {"random_init": model_section, "seed": config.random_init_seed, "torch": torch.__version__.split("+")[0]}
        sources.append(EncoderSource(RANDOM_INIT, baseline, ("F_s",), init_id, cache, **extraction))
        sources.append(PixelSource(PIXELS, int(first_model.feature_dims["F_s"]), config.probe.solver_threads))

    rows = evaluate_real(sources, config, size, inputs) if inputs is not None else evaluate_sources(sources, parts, config)
    default_poses = config.pose_limits in (None, DEFAULT_POSE_LIMITS) and config.pose_prior in (None, DEFAULT_CONFIG.pose_prior)
    if config.supervised_json and not default_poses:
        warnings.warn(f"the supervised reference was trained at the default poses, not {config.pose_limits} "
                      f"({config.pose_prior}): its row is left out", stacklevel=2)
    elif config.supervised_json:
        rows += supervised_rows(config.supervised_json, config.data, config.probe.au_intensity_threshold)
    return rows


def evaluate_sources(sources: Sequence[Any], parts: Mapping[str, DataPart], config: EvalConfig) -> list[dict[str, Any]]:
    """Run the task suite of ``config.data`` for every feature source and seed (+ swap fidelity) -> rows.

    ``parts``: SynthFaces ``train``/``val``/``test`` or CMU ``all`` (:func:`synthfaces_parts`, :func:`cmu_parts`).
    """
    suite = synthfaces_tasks if config.data == "synthfaces" else cmu_tasks
    rows: list[dict[str, Any]] = []
    if config.baselines:
        rows += [row for seed in range(config.seeds) for row in chance_rows(parts, seed, config)]
    work = [(source, seed) for source in sources for seed in range(config.seeds)]
    for source, seed in tqdm(work, desc=f"evaluate on {config.data}", disable=not config.progress):
        rows += suite(source, parts, seed, config)
        model = getattr(source, "model", None)
        has_decoder = model is not None and getattr(model, "decoder", None) is not None
        if config.data == "synthfaces" and has_decoder and source.method != RANDOM_INIT and config.n_swap > 0:
            result = swap_fidelity(model, parts["test"], config.n_swap, seed, config)
            rows += result_rows("synthfaces", source.method, "decoder", "swap", seed, result)
    return rows


def evaluate_checkpoint(path: str | Path, data: str = "synthfaces", **options: Any) -> list[dict[str, Any]]:
    """Evaluate one checkpoint; ``options`` are :class:`EvalConfig` fields (e.g. ``seeds=1, baselines=False``)."""
    return evaluate_checkpoints([path], EvalConfig(data=data, **options))


# --------------------------------------------------------------------------- tables


def _pct(task: str, metric: str, header: str, latex: str | None = None) -> Column:
    return Column(task, metric, header, scale=100.0, digits=1, latex_header=latex)


def _deg(task: str, metric: str, header: str, latex: str | None = None) -> Column:
    return Column(task, metric, header, scale=1.0, digits=1, higher_is_better=False, latex_header=latex)


SYNTH_COLUMNS = (
    _pct("expression", "accuracy", "Expr. acc ↑"),
    _pct("verification", "accuracy", "Verif. acc ↑"),
    _pct("verification_cross_pose", "accuracy", "Cross-pose verif. ↑"),
    _pct("au", "f1_mean", "AU F1 ↑"),
    _deg("head_pose", "mae_yaw", "Yaw MAE ↓"),
    _deg("head_pose", "mae_pitch", "Pitch MAE ↓"),
    _deg("head_pose", "mae_roll", "Roll MAE ↓"),
    _deg("head_pose", "mae_mean", "Pose MAE ↓"),
    _pct("expression_knn", "accuracy", "kNN expr. ↑"),
)
CMU_COLUMNS = (
    _pct("expression", "accuracy", "Expr. acc ↑"),
    _pct("verification", "accuracy", "Verif. acc ↑"),
    _pct("pose", "accuracy", "Pose acc ↑"),
    _pct("expression_knn", "accuracy", "kNN expr. ↑"),
)


def _disentangle_columns(data: str) -> tuple[Column, ...]:
    # no "best" marking: high pose decodability is wanted from F_p and unwanted from F_f
    pose = (Column("head_pose", "r2_mean", "Pose R²", digits=3, higher_is_better=None) if data == "synthfaces"
            else Column("pose", "accuracy", "Pose acc", scale=100.0, higher_is_better=None))
    return (pose,
            Column("identity", "accuracy", "Identity acc", scale=100.0, higher_is_better=None),
            Column("expression", "accuracy", "Expr. acc", scale=100.0, higher_is_better=None))


SWAP_COLUMNS = (
    Column("swap", "psnr_swap", "Swap PSNR (dB) ↑", digits=2),
    Column("swap", "ssim_swap", "Swap SSIM ↑", digits=3),
    Column("swap", "psnr_swap_vs_a", "Swap vs face A, pose A (dB)", digits=2, higher_is_better=None),
    Column("swap", "psnr_swap_vs_b", "Swap vs face B, pose B (dB)", digits=2, higher_is_better=None),
    Column("swap", "psnr_noswap", "No-swap PSNR (dB)", digits=2, higher_is_better=None),
    Column("swap", "ssim_noswap", "No-swap SSIM", digits=3, higher_is_better=None),
    Column("swap", "psnr_recon", "Recon. PSNR (dB) ↑", digits=2),
    Column("swap", "ssim_recon", "Recon. SSIM ↑", digits=3),
)


def _au_columns(rows: Iterable[Mapping[str, Any]]) -> tuple[Column, ...]:
    metrics = list(dict.fromkeys(r["metric"] for r in rows if r["task"] == "au" and str(r["metric"]).startswith("f1_AU")))
    return tuple(_pct("au", m, m[3:]) for m in metrics) + (_pct("au", "f1_mean", "Mean"),)


def seeds_note(rows: Sequence[Mapping[str, Any]], learned: Sequence[str]) -> str:
    """Table footer saying what mean ± std pools: probe seeds, times pretraining runs of one label.

    Runs of several pretraining seeds share a method label, so a learned
    method's cell pools (runs x probe seeds) values while baselines pool probe
    seeds only.
    """
    n_probe = len({r["seed"] for r in rows})
    cells = Counter((r["method"], r["feature"], r["task"], r["metric"]) for r in rows if r["method"] in learned)
    n_runs = max(cells.values(), default=n_probe) // max(n_probe, 1)
    if n_runs > 1:
        return (f"Mean ± std (sample, ddof = 1) over {n_runs} pretraining runs × {n_probe} probe seed(s) "
                f"for learned methods; baselines over the {n_probe} probe seed(s).")
    return f"Mean ± std (sample, ddof = 1) over {n_probe} probe seed(s)." if n_probe > 1 else "One seed."


def result_tables(rows: Sequence[Mapping[str, Any]], data: str | None = None, main_feature: str = "F_s") -> dict[str, Table]:
    """The report's tables, laid out like the paper's: ``{name: Table}``.

    ``main`` -- methods and baselines on ``main_feature`` (pixels for the pixel
    baseline); ``features`` -- F_s / F_f / F_p / F_f ⊕ F_p per method;
    ``disentanglement`` -- F_f vs F_p; ``swap`` (SynthFaces); ``au`` per-AU F1.
    Real benchmarks: ``main``, ``features`` and ``per_class`` (classification)
    in the benchmark's own columns (:func:`pclkit.protocols_real.real_table_specs`).
    """
    rows = [r for r in rows if data is None or r["data"] == data]
    if not rows:
        raise ValueError(f"no result rows{' for ' + data if data else ''}")
    data = data or rows[0]["data"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    learned = [m for m in methods if m not in (PIXELS, RANDOM_INIT, SUPERVISED, CHANCE, DATA_INFO)]
    present = {(r["method"], r["feature"]) for r in rows}
    columns = SYNTH_COLUMNS if data == "synthfaces" else CMU_COLUMNS

    def lines(candidates: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        return tuple(line for line in candidates if line in present)

    supervised = sorted((m, f) for m, f in present if m == SUPERVISED)
    main_lines = [(m, main_feature) for m in learned] + supervised + [(RANDOM_INIT, "F_s"), (PIXELS, "pixels"), (CHANCE, CHANCE)]
    feature_lines = [(m, f) for m in learned for f in (*FEATURE_KEYS,)]
    note = seeds_note([r for r in rows if r["method"] != DATA_INFO], learned)
    specs = {
        "main": TableSpec(f"{data}: linear evaluation ({DISPLAY_NAMES.get(main_feature, main_feature)}; pixel baseline: PCA of raw pixels)", columns, lines(main_lines), "method", note),
        "features": TableSpec(f"{data}: feature comparison", columns, lines(feature_lines), "both", note),
        "disentanglement": TableSpec(f"{data}: disentanglement (F_f vs F_p)", _disentangle_columns(data),
                                     lines((m, f) for m in learned for f in ("F_f", "F_p")), "both", note),
    }
    if data in REAL_DATASETS:  # each benchmark's own columns; main, features, per-class accuracy
        specs = real_table_specs(rows, data, lines(main_lines), lines(feature_lines), note)
    if data == "synthfaces":
        specs["swap"] = TableSpec("synthfaces: swap fidelity, D(F_f^A, F_p^B) vs render(face A, pose B)", SWAP_COLUMNS,
                                  lines((m, "decoder") for m in learned), "method", note)
        specs["au"] = TableSpec("synthfaces: AU detection, F1 per AU", _au_columns(rows),
                                lines([*main_lines, *feature_lines]), "both", note)
    labels = {**DISPLAY_NAMES}
    latex = {**LATEX_NAMES}
    tables = {name: layout_table(rows, spec, data, labels, latex) for name, spec in specs.items()}
    return {name: table for name, table in tables.items() if table.labels}


def summary_table(rows: Sequence[Mapping[str, Any]], data: str | None = None, name: str = "main") -> Table:
    """One table of :func:`result_tables` (``main``, ``features``, ``disentanglement``, ``swap``, ``au``).

    A :class:`~pclkit.tables.Table` shows itself as Markdown in Jupyter.
    """
    tables = result_tables(rows, data)
    if name not in tables:
        raise KeyError(f"no {name!r} table for these rows; available: {', '.join(tables)}")
    return tables[name]


def write_results(rows: Sequence[Mapping[str, Any]], out: str | Path, meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.csv`` (tidy), ``results.md``, ``results.tex`` (booktabs) and ``meta.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": write_csv(rows, out / "results.csv")}
    markdown, latex = ["# Linear evaluation\n"], ["% generated by python -m pclkit evaluate; needs \\usepackage{booktabs}\n"]
    for data in dict.fromkeys(r["data"] for r in rows):
        for name, table in result_tables(rows, data).items():
            markdown.append(to_markdown(table))
            latex.append(to_latex(table, label=f"tab:{data}-{name}"))
    (out / "results.md").write_text("\n".join(markdown))
    (out / "results.tex").write_text("\n".join(latex))
    files.update(md=out / "results.md", tex=out / "results.tex")
    if meta is not None:
        (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        files["meta"] = out / "meta.json"
    return files


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+",
                        help="checkpoint files, run folders holding last.pt, or pretrained:NAME (models shipped in pclkit/weights)")
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
    parser.add_argument("--supervised-json", default=None, help="supervised reference JSON (benchmarks/synthfaces_learnability.py)")
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
    parser.add_argument("--au-decision", default="val", help="AU decision threshold: 'val' (chosen on validation) or a probability")
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
