"""The protocol of each real benchmark: probes on every feature source's frozen features -> tidy rows.

One function per benchmark (:func:`evaluate_rafdb`, :func:`evaluate_fer2013`,
:func:`evaluate_lfw`, :func:`evaluate_cplfw`, :func:`evaluate_disfa`,
:func:`evaluate_aflw2000`, :func:`evaluate_folder`); :func:`evaluate_real`
prepares the data and runs the one ``cfg.data`` names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from pclkit.probes import (
    Pairs,
    ProbeConfig,
    ProbeResult,
    Split,
    au_detection_probe,
    binary_f1,
    class_accuracies,
    knn_probe,
    pose_regression_probe,
    select_classifier,
    verification_accuracy,
)
from pclkit.protocols import CHANCE, DATA_INFO, frozen_encoders, result_rows, source_models
from pclkit.protocols_real.image_sets import Prepared, describe_info, prepare
from pclkit.protocols_real.inputs import Inputs, locate_inputs
from pclkit.protocols_real.plans import (
    Plan,
    aflw2000_plan,
    capped_fit_rows,
    check_plans,
    disfa_plan,
    fer2013_plan,
    folder_plan,
    rafdb_plan,
)
from pclkit.threads import torch_threads

if TYPE_CHECKING:  # pclkit.evaluate imports this package
    from pclkit.evaluate import EvalConfig

#: false-accept rates at which the true-accept rate is reported
TAR_FARS: tuple[float, ...] = (1e-3,)


def per_class_accuracies(pred: Tensor, target: Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """``accuracy``, ``mean_class_accuracy`` and ``acc_<class>`` per class (NaN for a class absent from ``target``)."""
    metrics = class_accuracies(pred, target, len(class_names))
    correct = (pred == target).float()
    for c, name in enumerate(class_names):
        metrics[f"acc_{name}"] = correct[target == c].mean().item() if bool((target == c).any()) else float("nan")
    return metrics


def per_class_probe(train: Split, val: Split, test: Split, class_names: Sequence[str], config: ProbeConfig) -> ProbeResult:
    """Softmax probe on standardised features, L2 chosen on ``val``; per-class accuracy on ``test``.

    The L2 is chosen by :func:`pclkit.probes.select_classifier`.
    """
    chosen = select_classifier(train, val, len(class_names), config)
    metrics = per_class_accuracies(chosen.predict(test.x), test.y.long(), class_names)
    return ProbeResult(metrics, {"l2": chosen.l2, "val_accuracy": chosen.val_accuracy})


def _splits(x: Mapping[str, Tensor], y: Mapping[str, Tensor], plan: Plan) -> tuple[Split, Split, Split]:
    """Train, val and test :class:`Split` of features ``x[set] (N, D)`` and labels ``y[set]`` under ``plan``."""
    return tuple(Split(x[name][rows], y[name][rows]) for name, rows in (plan.train, plan.val, plan.test))  # type: ignore[return-value]


def classification_results(x: Mapping[str, Tensor], y: Mapping[str, Tensor], plan: Plan, class_names: Sequence[str],
                           task: str, config: ProbeConfig) -> list[tuple[str, ProbeResult]]:
    """``task``: linear probe (per-class accuracy); ``task_knn``: weighted kNN from the training rows (k, T of ``config``)."""
    train, val, test = _splits(x, y, plan)
    return [(task, per_class_probe(train, val, test, class_names, config)),
            (f"{task}_knn", knn_probe(train, test, len(class_names), config))]


def tar_metric_name(far: float) -> str:
    """The metric name of the true-accept rate at false-accept rate ``far``: ``1e-3`` -> ``tar_far_1e-3``."""
    mantissa, exponent = f"{far:.0e}".split("e")
    return f"tar_far_{mantissa}e{int(exponent)}"


def roc_metrics(scores: Tensor, same: Tensor, fars: Sequence[float] = TAR_FARS) -> dict[str, float]:
    """``auc`` (ROC-AUC) and ``tar_far_<far>``: the highest true-accept rate at a false-accept rate <= ``far``.

    ``scores (M,)`` similarities (higher = same), ``same (M,)`` bool; the ROC
    is ``sklearn.metrics.roc_curve`` over all pairs (threshold-free, so no fold
    split is needed).
    """
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, _ = roc_curve(same.numpy().astype(np.int64), scores.double().numpy(), drop_intermediate=False)
    metrics = {"auc": float(auc(fpr, tpr))}
    for far in fars:
        metrics[tar_metric_name(far)] = float(tpr[fpr <= far].max())
    return metrics


def verification_results(x: Tensor, pairs: Pairs) -> ProbeResult:
    """Cosine-similarity verification: k-fold accuracy (threshold from the other folds), fold std, ROC-AUC, TAR@FAR.

    ``x (N, D)`` features of the distinct images; ``pairs`` index into them.
    ``accuracy_fold_std`` is the population std over folds (ddof = 0, as LFW
    evaluation code usually reports it).
    """
    z = F.normalize(x.float(), dim=1)
    scores = (z[pairs.left] * z[pairs.right]).sum(1)
    result = verification_accuracy(scores, pairs.same, pairs.fold)
    result.metrics.update(roc_metrics(scores, pairs.same))
    result.metrics["n_folds"] = float(len(torch.unique(pairs.fold)))
    return result


def _fold_mean(results: Sequence[ProbeResult], au_names: Sequence[str]) -> ProbeResult:
    """Per-AU F1 averaged over folds (NaN-aware); ``f1_mean`` = mean of those; selections kept per fold."""
    metrics = {}
    for name in au_names:
        values = np.array([r.metrics[f"f1_{name}"] for r in results], dtype=np.float64)
        metrics[f"f1_{name}"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    scored = [v for v in metrics.values() if np.isfinite(v)]
    metrics["f1_mean"] = float(np.mean(scored)) if scored else float("nan")
    metrics["n_aus_scored"] = float(len(scored))
    selected = {f"fold{k}_{key}": v for k, r in enumerate(results) for key, v in r.selected.items()}
    return ProbeResult(metrics, selected)


def disfa_probe_config(config: ProbeConfig) -> ProbeConfig:
    """``config`` with the AU threshold moved to raw DISFA intensities (0..5): 0.4 of the [0, 1] scale = level 2."""
    from dataclasses import replace

    from pclkit.data.real import DISFA_MAX_INTENSITY

    return replace(config, au_intensity_threshold=round(config.au_intensity_threshold * DISFA_MAX_INTENSITY, 6))


# --------------------------------------------------------------------------- per-benchmark evaluation


def _classification_rows(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig, seeds: Sequence[int],
                         plan_of: Callable[[Prepared, int, EvalConfig], Plan], label: str, task: str) -> list[dict[str, Any]]:
    """Linear probe + kNN of every source's features for each seed's :class:`Plan` -> rows."""
    rows: list[dict[str, Any]] = []
    y = {name: images.labels[label] for name, images in prepared.image_sets.items()}
    for source in _progress(sources, prepared.data, cfg):
        for seed in seeds:
            plan = plan_of(prepared, seed, cfg)
            feats = source.features(prepared.image_sets, fit_rows=plan.fit)
            with torch_threads(cfg.probe.solver_threads):
                for name, x in feats.items():
                    for task_name, result in classification_results(x, y, plan, prepared.class_names, task, cfg.probe):
                        rows += result_rows(prepared.data, source.method, name, task_name, seed, result)
    return rows


def _classification_chance(prepared: Prepared, cfg: EvalConfig, seeds: Sequence[int],
                           plan_of: Callable[[Prepared, int, EvalConfig], Plan], label: str, task: str) -> list[dict[str, Any]]:
    """Majority class of each seed's training rows, scored on its test rows."""
    rows = []
    for seed in seeds:
        plan = plan_of(prepared, seed, cfg)
        train_y = prepared.image_sets[plan.train[0]].labels[label][plan.train[1]]
        test_y = prepared.image_sets[plan.test[0]].labels[label][plan.test[1]]
        guess = torch.full_like(test_y, int(torch.bincount(train_y, minlength=len(prepared.class_names)).argmax()))
        rows += result_rows(
            prepared.data, CHANCE, CHANCE, task, seed, ProbeResult(per_class_accuracies(guess, test_y, prepared.class_names))
        )
    return rows


def _progress(sources: Sequence[Any], data: str, cfg: EvalConfig) -> Iterable[Any]:
    return tqdm(sources, desc=f"evaluate on {data}", disable=not cfg.progress)


def evaluate_rafdb(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """RAF-DB: 7-class expression (``expression``, ``expression_knn``) per seed; validation carved from the train list."""
    seeds = range(cfg.seeds)
    rows = _classification_rows(sources, prepared, cfg, seeds, rafdb_plan, "expression", "expression")
    return rows + (_classification_chance(prepared, cfg, seeds, rafdb_plan, "expression", "expression") if cfg.baselines else [])


def evaluate_fer2013(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """FER-2013: Training -> PublicTest (validation) -> PrivateTest; fixed splits, so one run (seed 0)."""
    rows = _classification_rows(sources, prepared, cfg, [0], fer2013_plan, "expression", "expression")
    return rows + (_classification_chance(prepared, cfg, [0], fer2013_plan, "expression", "expression") if cfg.baselines else [])


def evaluate_folder(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """Class folder: ``classification`` (linear) and ``classification_knn`` on a stratified split drawn per seed."""
    seeds = range(cfg.seeds)
    rows = _classification_rows(sources, prepared, cfg, seeds, folder_plan, "label", "classification")
    return rows + (_classification_chance(prepared, cfg, seeds, folder_plan, "label", "classification") if cfg.baselines else [])


def evaluate_pairs(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """LFW / CPLFW ``verification``: 10-fold accuracy ± fold std, ROC-AUC, TAR@FAR (deterministic: seed 0).

    The pixel baseline's PCA is fitted on (up to :data:`~pclkit.protocols_real.plans.PIXEL_FIT_MAX` of) the
    pair images themselves: it uses no labels, and the list has no other images.
    """
    pairs: Pairs = prepared.extra["pairs"]
    fit = capped_fit_rows({"pairs": torch.arange(len(prepared.image_sets["pairs"]))}, prepared.data)
    rows: list[dict[str, Any]] = []
    for source in _progress(sources, prepared.data, cfg):
        for name, x in source.features(prepared.image_sets, fit_rows=fit).items():
            rows += result_rows(prepared.data, source.method, name, "verification", 0, verification_results(x["pairs"], pairs))
    if cfg.baselines:
        p_same = float(pairs.same.float().mean())
        chance = {"accuracy": max(p_same, 1 - p_same), "auc": 0.5, **{tar_metric_name(f): f for f in TAR_FARS}}
        rows += result_rows(prepared.data, CHANCE, CHANCE, "verification", 0, ProbeResult(chance))
    return rows


evaluate_lfw = evaluate_pairs
evaluate_cplfw = evaluate_pairs


def evaluate_disfa(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """DISFA ``au``: 8 AUs at intensity >= 2, subject-exclusive 3-fold, F1 per AU and mean, per seed."""
    from pclkit.data.real import DISFA_AUS

    names = tuple(f"AU{au}" for au in DISFA_AUS)
    probe = disfa_probe_config(cfg.probe)
    y = prepared.image_sets["all"].labels["aus_raw"].float()
    n_folds = len(prepared.extra["folds"])
    plans = {(fold, seed): disfa_plan(prepared, fold, seed, cfg) for fold in range(n_folds) for seed in range(cfg.seeds)}
    rows: list[dict[str, Any]] = []
    for source in _progress(sources, prepared.data, cfg):
        fold_results: dict[tuple[str, int], list[ProbeResult]] = {}
        for fold in range(n_folds):  # folds outermost: a fitted baseline (pixel PCA) is refitted once per fold
            feats = source.features(prepared.image_sets, fit_rows=plans[(fold, 0)].fit)
            with torch_threads(cfg.probe.solver_threads):
                for name, x in feats.items():
                    for seed in range(cfg.seeds):
                        plan = plans[(fold, seed)]
                        result = au_detection_probe(*_splits({"all": x["all"]}, {"all": y}, plan), names, probe)
                        fold_results.setdefault((name, seed), []).append(result)
        for (name, seed), results in fold_results.items():
            rows += result_rows("disfa", source.method, name, "au", seed, _fold_mean(results, names))
    if cfg.baselines:
        for seed in range(cfg.seeds):
            results = []
            for fold in range(n_folds):
                present = y[plans[(fold, seed)].test[1]] >= probe.au_intensity_threshold
                f1 = {
                    f"f1_{n}": binary_f1(torch.ones(len(present), dtype=torch.bool), present[:, a]) for a, n in enumerate(names)
                }
                results.append(ProbeResult(f1))
            rows += result_rows("disfa", CHANCE, CHANCE, "au", seed, _fold_mean(results, names))
    return rows


def evaluate_aflw2000(sources: Sequence[Any], prepared: Prepared, cfg: EvalConfig) -> list[dict[str, Any]]:
    """300W-LP -> AFLW2000 ``head_pose``: ridge regression, lambda chosen on held-out 300W-LP; MAE yaw/pitch/roll, per seed."""
    y = {name: prepared.image_sets[name].labels["pose"].float() for name in ("train", "test")}
    rows: list[dict[str, Any]] = []
    for source in _progress(sources, prepared.data, cfg):
        for seed in range(cfg.seeds):
            plan = aflw2000_plan(prepared, seed, cfg)
            feats = source.features(prepared.image_sets, fit_rows=plan.fit)
            with torch_threads(cfg.probe.solver_threads):
                for name, x in feats.items():
                    result = pose_regression_probe(*_splits(x, y, plan), config=cfg.probe)
                    rows += result_rows("aflw2000", source.method, name, "head_pose", seed, result)
    if cfg.baselines:
        for seed in range(cfg.seeds):
            plan = aflw2000_plan(prepared, seed, cfg)
            guess = y["train"][plan.train[1]].mean(0)
            mae = (y["test"] - guess).abs().mean(0)
            metrics = {f"mae_{n}": v.item() for n, v in zip(("yaw", "pitch", "roll"), mae)} | {"mae_mean": mae.mean().item()}
            rows += result_rows("aflw2000", CHANCE, CHANCE, "head_pose", seed, ProbeResult(metrics))
    return rows


#: benchmark -> its protocol
EVALUATORS: dict[str, Callable[[Sequence[Any], Prepared, "EvalConfig"], list[dict[str, Any]]]] = {
    "rafdb": evaluate_rafdb,
    "fer2013": evaluate_fer2013,
    "lfw": evaluate_lfw,
    "cplfw": evaluate_cplfw,
    "disfa": evaluate_disfa,
    "aflw2000": evaluate_aflw2000,
    "folder": evaluate_folder,
}


def info_rows(prepared: Prepared) -> list[dict[str, Any]]:
    """The data description (counts) as rows of method :data:`~pclkit.protocols.DATA_INFO`, seed 0."""
    return [dict(data=prepared.data, method=DATA_INFO, feature="-", task="dataset", metric=k, seed=0, value=float(v))
            for k, v in prepared.info.items()]


def evaluate_real(sources: Sequence[Any], cfg: EvalConfig, size: int, inputs: Inputs | None = None) -> list[dict[str, Any]]:
    """Run benchmark ``cfg.data`` for every feature source -> tidy rows (plus ``dataset info`` rows).

    ``sources`` are :class:`pclkit.features.EncoderSource` / ``PixelSource``
    objects (anything with ``method`` and ``features(image_sets, fit_rows)``);
    their encoders must come out unchanged (:func:`pclkit.protocols.frozen_encoders`).
    """
    inputs = inputs or locate_inputs(cfg.data, cfg.root, cfg.train_root, cfg.pairs)
    prepared = prepare(inputs, size, cfg.progress)
    check_plans(prepared, cfg)
    print(f"{cfg.data}: {describe_info(prepared.data, prepared.info)}")
    with frozen_encoders(source_models(sources)):
        return info_rows(prepared) + EVALUATORS[cfg.data](sources, prepared, cfg)
