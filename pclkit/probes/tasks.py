"""The per-task probes of :mod:`pclkit.probes`: each selects its hyperparameters on the validation split
only, then scores the test split (classification, AU detection, pose regression, weighted kNN)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pclkit.probes.containers import ProbeConfig, ProbeResult, Split, as_features
from pclkit.probes.metrics import best_f1_threshold, binary_f1, class_accuracies, r2_scores
from pclkit.probes.solvers import LinearModel, LogisticProblem, Standardizer, ridge_path


@dataclass(frozen=True)
class SelectedClassifier:
    """A standardiser + softmax classifier and the validation score that chose it."""

    standardizer: Standardizer
    model: LinearModel
    l2: float
    val_accuracy: float

    def predict(self, x: Tensor) -> Tensor:
        return self.model(self.standardizer(x)).argmax(1)


def select_classifier(train: Split, val: Split, n_classes: int, config: ProbeConfig = ProbeConfig()) -> SelectedClassifier:
    """Fit a softmax probe for each ``config.l2_grid`` value (strongest first, warm-started) and keep the best on ``val``."""
    std = Standardizer.fit(train.x)
    xt, xv = std(train.x), std(val.x)
    problem = LogisticProblem(xt, train.y, n_outputs=n_classes)
    best: SelectedClassifier | None = None
    model = None
    for l2 in sorted(config.l2_grid, reverse=True):
        model = problem.fit(l2, config.max_iter, init=model, threads=config.solver_threads)
        acc = (model(xv).argmax(1) == val.y).float().mean().item()
        if best is None or acc > best.val_accuracy:  # ties keep the stronger regulariser
            best = SelectedClassifier(std, model, l2, acc)
    assert best is not None
    return best


def classification_probe(
    train: Split, val: Split, test: Split, n_classes: int | None = None, config: ProbeConfig = ProbeConfig()
) -> ProbeResult:
    """Multinomial logistic regression on standardised features, l2 chosen on ``val``.

    Labels are class indices ``(N,)``. Metrics: test ``accuracy`` and
    ``mean_class_accuracy`` (the RAF-DB convention of reporting both).
    """
    if n_classes is None:
        n_classes = int(max(train.y.max(), val.y.max())) + 1
    chosen = select_classifier(train, val, n_classes, config)
    metrics = class_accuracies(chosen.predict(test.x), test.y.long(), n_classes)
    return ProbeResult(metrics, {"l2": chosen.l2, "val_accuracy": chosen.val_accuracy})


# --------------------------------------------------------------------------- AU detection


@dataclass(frozen=True)
class SelectedAUProbes:
    """Per-AU binary probes: one column of ``model`` per AU, with its own l2 and decision threshold."""

    standardizer: Standardizer
    model: LinearModel
    l2: tuple[float, ...]
    thresholds: tuple[float, ...]  # on the sigmoid probability
    val_f1: tuple[float, ...]

    def predict(self, x: Tensor) -> Tensor:
        prob = torch.sigmoid(self.model(self.standardizer(x)))
        return prob > torch.tensor(self.thresholds)


def select_au_probes(train: Split, val: Split, config: ProbeConfig = ProbeConfig()) -> SelectedAUProbes:
    """One logistic probe per AU on binarised intensities ``y (N, A) >= config.au_intensity_threshold``.

    For every l2 value all AUs are fitted in one multilabel solve (their losses
    are independent); each AU then keeps the l2, and with ``au_decision="val"``
    the probability threshold, that maximise its validation F1.
    """
    thr = config.au_intensity_threshold
    std = Standardizer.fit(train.x)
    xt, xv = std(train.x), std(val.x)
    yt, yv = train.y >= thr, val.y >= thr
    n_aus = yt.shape[1]
    best_f1 = [-1.0] * n_aus
    best_l2 = [float("nan")] * n_aus
    best_thr = [0.5] * n_aus
    weight = torch.zeros(xt.shape[1], n_aus)
    bias = torch.zeros(n_aus)
    problem = LogisticProblem(xt, yt, multilabel=True)
    model = None
    for l2 in sorted(config.l2_grid, reverse=True):
        model = problem.fit(l2, config.max_iter, init=model, threads=config.solver_threads)
        prob = torch.sigmoid(model(xv))
        for a in range(n_aus):
            if config.au_decision == "val":
                threshold, f1 = best_f1_threshold(prob[:, a], yv[:, a])
                threshold = min(max(threshold, 0.0), 1.0)
            else:
                threshold = float(config.au_decision)
                f1 = binary_f1(prob[:, a] > threshold, yv[:, a])
            f1 = -0.5 if np.isnan(f1) else f1  # AU absent from val: keep the first (strongest) l2
            if f1 > best_f1[a]:
                best_f1[a], best_l2[a], best_thr[a] = f1, l2, threshold
                weight[:, a], bias[a] = model.weight[:, a], model.bias[a]
    val_f1 = tuple(float("nan") if f < 0 else f for f in best_f1)
    return SelectedAUProbes(std, LinearModel(weight, bias), tuple(best_l2), tuple(best_thr), val_f1)


def au_detection_probe(
    train: Split, val: Split, test: Split, au_names: tuple[str, ...] | None = None, config: ProbeConfig = ProbeConfig()
) -> ProbeResult:
    """AU detection (DISFA analogue): F1 per AU on test and their mean.

    Labels are intensities ``(N, A)`` in [0, 1]; an AU is present at
    ``>= config.au_intensity_threshold``. AUs without positives in the test
    split get F1 = NaN and are left out of ``f1_mean`` (``n_aus_scored`` says how many count).
    """
    n_aus = train.y.shape[1] if train.y.ndim == 2 else 0
    if n_aus == 0:
        raise ValueError(f"AU labels must be (N, A) intensities, got shape {tuple(train.y.shape)}")
    names = au_names or tuple(f"AU{i}" for i in range(n_aus))
    if len(names) != n_aus:
        raise ValueError(f"{len(names)} AU names for {n_aus} AU columns")
    chosen = select_au_probes(train, val, config)
    pred = chosen.predict(test.x)
    present = test.y >= config.au_intensity_threshold
    f1 = [binary_f1(pred[:, a], present[:, a]) for a in range(n_aus)]
    scored = [v for v in f1 if not np.isnan(v)]
    metrics = {f"f1_{name}": v for name, v in zip(names, f1)}
    metrics["f1_mean"] = float(np.mean(scored)) if scored else float("nan")
    metrics["n_aus_scored"] = float(len(scored))
    selected = {f"l2_{name}": v for name, v in zip(names, chosen.l2)}
    selected.update({f"threshold_{name}": v for name, v in zip(names, chosen.thresholds)})
    return ProbeResult(metrics, selected)


# --------------------------------------------------------------------------- pose regression


@dataclass(frozen=True)
class SelectedRegressor:
    standardizer: Standardizer
    model: LinearModel
    lam: float
    val_mae: float

    def predict(self, x: Tensor) -> Tensor:
        return self.model(self.standardizer(x))


def select_regressor(train: Split, val: Split, config: ProbeConfig = ProbeConfig()) -> SelectedRegressor:
    """Ridge regression of ``y (N, K)`` with the ``config.ridge_grid`` value of lowest mean validation MAE."""
    std = Standardizer.fit(train.x)
    xt, xv = std(train.x), std(val.x)
    yt, yv = train.y.float(), val.y.float()
    best: SelectedRegressor | None = None
    for lam, model in zip(config.ridge_grid, ridge_path(xt, yt, config.ridge_grid)):
        mae = (model(xv) - yv).abs().mean().item()
        if best is None or mae < best.val_mae:
            best = SelectedRegressor(std, model, lam, mae)
    assert best is not None
    return best


def pose_regression_probe(
    train: Split, val: Split, test: Split, names: tuple[str, ...] = ("yaw", "pitch", "roll"), config: ProbeConfig = ProbeConfig()
) -> ProbeResult:
    """Head-pose regression (AFLW2000 analogue): ridge on standardised features, lam chosen on ``val``.

    Labels are angles ``(N, 3)`` in degrees. Metrics: ``mae_<angle>`` and
    ``mae_mean`` (degrees), ``r2_<angle>`` and ``r2_mean`` on test.
    """
    if train.y.ndim != 2 or train.y.shape[1] != len(names):
        raise ValueError(f"pose labels must be (N, {len(names)}) angles, got shape {tuple(train.y.shape)}")
    chosen = select_regressor(train, val, config)
    pred, target = chosen.predict(test.x), test.y.float()
    mae = (pred - target).abs().mean(0)
    r2 = r2_scores(pred, target)
    metrics = {f"mae_{n}": v.item() for n, v in zip(names, mae)}
    metrics["mae_mean"] = mae.mean().item()
    metrics.update({f"r2_{n}": v.item() for n, v in zip(names, r2)})
    metrics["r2_mean"] = r2.mean().item()
    return ProbeResult(metrics, {"ridge": chosen.lam, "val_mae": chosen.val_mae})


# --------------------------------------------------------------------------- kNN


def knn_predict(
    train_x: Tensor, train_y: Tensor, query_x: Tensor, n_classes: int, k: int = 20, temperature: float = 0.07, chunk: int = 1024
) -> Tensor:
    """Weighted kNN of Wu et al. (CVPR 2018): cosine similarity, neighbour weight exp(s / T).

    ``train_x (N, D)``, ``train_y (N,)``, ``query_x (M, D)`` -> predicted classes ``(M,)``.
    """
    train_n = F.normalize(as_features(train_x, "train features"), dim=1)
    query_n = F.normalize(as_features(query_x, "query features"), dim=1)
    labels = torch.as_tensor(train_y).long()
    k = min(k, train_n.shape[0])
    preds = []
    for start in range(0, query_n.shape[0], chunk):
        sim = query_n[start:start + chunk] @ train_n.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], n_classes)
        votes.scatter_add_(1, labels[top_idx], torch.exp(top_sim / temperature))
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_probe(train: Split, test: Split, n_classes: int | None = None, config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """Weighted kNN accuracy (k = ``config.knn_k``, T = ``config.knn_temperature``); nothing is selected."""
    if n_classes is None:
        n_classes = int(train.y.max()) + 1
    pred = knn_predict(train.x, train.y, test.x, n_classes, config.knn_k, config.knn_temperature)
    return ProbeResult(class_accuracies(pred, test.y.long(), n_classes), {})
