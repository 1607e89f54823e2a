"""Linear-evaluation protocols on frozen feature arrays.

Every protocol takes features ``x (N, D)`` with their labels and returns test
metrics plus the hyperparameters it selected. Model selection follows the
linear-evaluation practice of MoCo (He et al., CVPR 2020) and SimCLR (Chen et
al., ICML 2020) with one fix over the PCL reference code: hyperparameters are
chosen on the **validation** split only. Protocols are written as a
``select_*`` step that sees train and validation data and never the test split,
followed by scoring on test, so test labels cannot leak into selection.

Protocols (the paper's four tasks, Liu et al., CVPR 2023, and their analogues):

* :func:`classification_probe` -- multinomial logistic regression (expression,
  identity, CMU pose); accuracy and mean class accuracy.
* :func:`au_detection_probe` -- one binary logistic probe per action unit
  (DISFA protocol, Mavadati et al. 2013); F1 per AU and mean.
* :func:`pose_regression_probe` -- ridge regression of yaw, pitch, roll
  (AFLW2000 protocol); MAE per angle in degrees, and R^2.
* :func:`verification_accuracy` -- face verification by cosine similarity with
  10-fold threshold selection (LFW, Huang et al. 2007; CPLFW, Zheng & Deng 2018).
* :func:`knn_probe` -- weighted k-nearest-neighbour classifier (Wu et al.,
  CVPR 2018).

Solvers are full-batch and deterministic (L-BFGS for logistic losses, a closed
form for ridge), so the probe is a function of its inputs; randomness (seeds)
enters only through the data subsets and pairs the caller draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from pclkit.threads import torch_threads
from torch import Tensor

ArrayLike = Tensor | np.ndarray


# --------------------------------------------------------------------------- containers


def as_features(x: ArrayLike, name: str = "features") -> Tensor:
    """Return ``x`` as a float32 CPU tensor ``(N, D)``; reject other shapes and non-finite values."""
    t = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return t


@dataclass(frozen=True)
class Split:
    """Features ``x (N, D)`` and labels ``y (N,)`` or ``(N, K)`` of one data split."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", as_features(self.x))
        y = torch.as_tensor(self.y).detach().cpu()
        if y.shape[0] != self.x.shape[0]:
            raise ValueError(f"features have {self.x.shape[0]} rows but labels have {y.shape[0]}")
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, index: Tensor) -> Split:
        return Split(self.x[index], self.y[index])


@dataclass
class ProbeResult:
    """Test ``metrics`` of a protocol and the hyperparameters it ``selected`` on validation."""

    metrics: dict[str, float]
    selected: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeConfig:
    """Hyperparameter grids and protocol constants.

    ``l2_grid`` is the weight-decay grid of the logistic probes on standardised
    features (loss = mean NLL + l2/2 |W|^2); ``ridge_grid`` the ridge grid
    (loss = mean squared error + lam |W|^2). Both are searched on validation.
    """

    l2_grid: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
    ridge_grid: tuple[float, ...] = (1e2, 1e1, 1.0, 1e-1, 1e-2, 1e-3)
    max_iter: int = 50
    #: AU present when intensity >= this (DISFA convention: level >= 2 of 0..5)
    au_intensity_threshold: float = 0.4
    #: "val" (F1-optimal threshold on validation) or a fixed probability such as 0.5
    au_decision: str | float = "val"
    knn_k: int = 20
    knn_temperature: float = 0.07
    verification_folds: int = 10
    #: intra-op threads of the L-BFGS solver (None: torch's setting). One thread is the
    #: default because a full-batch probe is hundreds of small ops, and OpenMP threads
    #: that spin-wait make them several times slower on a shared or busy CPU
    solver_threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.l2_grid or not self.ridge_grid:
            raise ValueError("l2_grid and ridge_grid must not be empty")
        if any(v < 0 for v in (*self.l2_grid, *self.ridge_grid)):
            raise ValueError("regularisation strengths must be >= 0")
        if self.au_decision != "val" and not (0.0 < float(self.au_decision) < 1.0):
            raise ValueError(f"au_decision must be 'val' or a probability in (0, 1), got {self.au_decision!r}")


# --------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class Standardizer:
    """Per-dimension z-scoring with statistics of the training split only.

    The scale of each dimension is floored at ``floor`` x the median scale of
    the non-constant dimensions. ReLU features are often almost always zero on
    the training set; dividing by their tiny std would turn one unseen
    activation at test time into a value of hundreds of standard deviations
    and wreck a linear readout that never saw it.
    """

    mean: Tensor  # (D,)
    std: Tensor  # (D,)

    @staticmethod
    def fit(x: Tensor, floor: float = 0.1) -> Standardizer:
        std = x.std(dim=0, unbiased=False)
        alive = std[std > 1e-12]
        typical = alive.median() if alive.numel() else torch.tensor(1.0)
        return Standardizer(x.mean(dim=0), std.clamp_min(floor * typical))

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


# --------------------------------------------------------------------------- linear models


@dataclass(frozen=True)
class LinearModel:
    """``logits = x @ weight + bias`` with ``weight (D, C)``, ``bias (C,)``."""

    weight: Tensor
    bias: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.bias


class LogisticProblem:
    """A full-batch linear classification problem, laid out for fast repeated L-BFGS fits.

    Softmax cross-entropy for class indices ``targets (N,)`` (``multilabel=False``),
    or independent sigmoid cross-entropies for binary ``targets (N, C)``
    (``multilabel=True``; the loss is a sum of per-column losses, so each column
    is the same problem as a separate binary probe). The objective is
    ``mean loss + l2/2 * |W|^2``; the bias is not penalised.

    Loss and gradient are written out by hand rather than through autograd:
    with ``x`` kept both as ``(N, D)`` and as a contiguous ``(D, N)`` copy,
    both products are row-major GEMMs, several times faster on CPU than the
    transposed product autograd takes for ``x^T @ grad``.
    """

    def __init__(self, x: Tensor, targets: Tensor, multilabel: bool = False, n_outputs: int | None = None):
        self.x = x.float().contiguous()  # (N, D)
        self.x_t = self.x.T.contiguous()  # (D, N)
        self.n = x.shape[0]
        self.multilabel = multilabel
        if multilabel:
            self.targets_t = targets.float().T.contiguous()  # (C, N)
            self.n_outputs = targets.shape[1]
        else:
            labels = targets.long()
            self.n_outputs = int(n_outputs if n_outputs is not None else int(labels.max()) + 1)
            if labels.min() < 0 or labels.max() >= self.n_outputs:
                raise ValueError(f"class labels must lie in [0, {self.n_outputs}), got [{int(labels.min())}, {int(labels.max())}]")
            self.targets_t = F.one_hot(labels, self.n_outputs).float().T.contiguous()  # (C, N)

    def loss_and_grad(self, weight_t: Tensor, bias: Tensor, l2: float) -> tuple[Tensor, Tensor, Tensor]:
        """Objective and its gradients for ``weight_t (C, D)`` (= W^T) and ``bias (C,)``."""
        logits_t = torch.addmm(bias[:, None], weight_t, self.x_t)  # (C, N)
        if self.multilabel:
            data_loss = F.binary_cross_entropy_with_logits(logits_t, self.targets_t, reduction="sum") / self.n
            residual = torch.sigmoid(logits_t) - self.targets_t
        else:
            log_prob = torch.log_softmax(logits_t, dim=0)
            data_loss = -(log_prob * self.targets_t).sum() / self.n
            residual = log_prob.exp() - self.targets_t
        residual /= self.n
        loss = data_loss + 0.5 * l2 * weight_t.pow(2).sum()
        return loss, residual @ self.x + l2 * weight_t, residual.sum(1)

    def fit(self, l2: float, max_iter: int = 60, init: LinearModel | None = None, threads: int | None = 1) -> LinearModel:
        """L-BFGS (strong Wolfe line search) from zero or from ``init`` (warm start along a grid)."""
        weight_t = torch.zeros(self.n_outputs, self.x.shape[1]) if init is None else init.weight.T.contiguous()
        bias = torch.zeros(self.n_outputs) if init is None else init.bias.clone()
        optimizer = torch.optim.LBFGS(
            [weight_t, bias], lr=1.0, max_iter=max_iter, history_size=10,
            tolerance_grad=1e-5, tolerance_change=1e-7, line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            loss, grad_w, grad_b = self.loss_and_grad(weight_t, bias, l2)
            weight_t.grad, bias.grad = grad_w, grad_b
            return loss

        with torch.no_grad(), torch_threads(threads):
            optimizer.step(closure)
        return LinearModel(weight_t.T.contiguous(), bias.clone())


def fit_logistic(
    x: Tensor,
    targets: Tensor,
    l2: float,
    multilabel: bool = False,
    n_outputs: int | None = None,
    max_iter: int = 60,
    init: LinearModel | None = None,
    threads: int | None = 1,
) -> LinearModel:
    """One L-BFGS fit of :class:`LogisticProblem` ``(x (N, D), targets)`` at ``l2``.

    ``threads``: see :attr:`ProbeConfig.solver_threads`.
    """
    return LogisticProblem(x, targets, multilabel, n_outputs).fit(l2, max_iter, init, threads)


def ridge_path(x: Tensor, y: Tensor, lambdas: tuple[float, ...]) -> list[LinearModel]:
    """Ridge regressions ``min |x W + b - y|^2 / N + lam |W|^2`` for every ``lam``.

    ``x (N, D)``, ``y (N, K)``. The Gram matrix of the smaller side (``D x D``,
    or ``N x N`` in dual form) is formed once in float32 and each ``lam`` is a
    float64 Cholesky solve, which is several times cheaper than an
    eigendecomposition for the handful of values a grid has.
    """
    x_mean, y_mean = x.mean(0), y.float().mean(0)
    xc, yc = x - x_mean, (y.float() - y_mean).double()
    n, d = xc.shape
    primal = d <= n
    gram = ((xc.T @ xc) if primal else (xc @ xc.T)).double() / n
    rhs = (xc.T.double() @ yc) / n if primal else yc / n
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    models = []
    for lam in lambdas:
        solution = _spd_solve(gram + lam * eye, rhs)
        w = solution if primal else xc.T.double() @ solution
        models.append(LinearModel(w.float(), (y_mean.double() - x_mean.double() @ w).float()))
    return models


def _spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a z = b`` for symmetric positive (semi)definite ``a``; least squares if it is singular."""
    factor, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(b, factor)
    return torch.linalg.lstsq(a, b).solution


# --------------------------------------------------------------------------- metrics


def class_accuracies(pred: Tensor, target: Tensor, n_classes: int) -> dict[str, float]:
    """Accuracy and mean per-class accuracy (classes absent from ``target`` are skipped)."""
    correct = (pred == target).float()
    per_class = [correct[target == c].mean().item() for c in range(n_classes) if (target == c).any()]
    return {"accuracy": correct.mean().item(), "mean_class_accuracy": float(np.mean(per_class))}


def binary_f1(pred: Tensor, target: Tensor) -> float:
    """F1 = 2TP / (2TP + FP + FN) of boolean ``pred (N,)`` vs ``target (N,)``; NaN if ``target`` has no positives."""
    pred, target = pred.bool(), target.bool()
    if not target.any():
        return float("nan")
    tp = (pred & target).sum().item()
    fp = (pred & ~target).sum().item()
    fn = (~pred & target).sum().item()
    return 2 * tp / (2 * tp + fp + fn)


def best_f1_threshold(scores: Tensor, target: Tensor) -> tuple[float, float]:
    """Decision threshold on ``scores (N,)`` maximising F1 against boolean ``target (N,)``.

    Predict positive when ``score > threshold``. Candidate cuts lie between
    distinct sorted scores; the returned threshold is the midpoint of the best
    cut. Returns ``(threshold, f1)``; without positives, ``(inf, nan)``.
    """
    target = target.bool()
    n_pos = int(target.sum())
    if n_pos == 0:
        return float("inf"), float("nan")
    order = torch.argsort(scores, descending=True)
    s, t = scores[order].double(), target[order].double()
    tp = torch.cumsum(t, 0)  # predicting the top-k positive
    k = torch.arange(1, len(s) + 1, dtype=torch.float64)
    f1 = 2 * tp / (k + n_pos)
    # a cut after position k is realisable only where the next score is strictly lower
    valid = torch.ones_like(s, dtype=torch.bool)
    valid[:-1] = s[:-1] > s[1:]
    f1 = torch.where(valid, f1, torch.full_like(f1, -1.0))
    best = int(torch.argmax(f1))
    threshold = (s[best] + s[best + 1]).item() / 2 if best + 1 < len(s) else s[best].item() - 1.0
    return float(threshold), float(f1[best])


def r2_scores(pred: Tensor, target: Tensor) -> Tensor:
    """Coefficient of determination per column of ``target (N, K)``: 1 - SSE / SST."""
    sse = (pred - target).pow(2).sum(0)
    sst = (target - target.mean(0)).pow(2).sum(0)
    return 1 - sse / sst.clamp_min(1e-12)


# --------------------------------------------------------------------------- classification


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


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Pairs:
    """Verification pairs ``(left[i], right[i])`` with ``same[i]`` and their cross-validation ``fold[i]``."""

    left: Tensor
    right: Tensor
    same: Tensor
    fold: Tensor

    def __len__(self) -> int:
        return self.left.shape[0]


def identity_pairs(
    identity: Tensor,
    n_pairs: int,
    generator: torch.Generator,
    n_folds: int = 10,
    yaw: Tensor | None = None,
    min_abs_delta_yaw: float | None = None,
) -> Pairs:
    """Balanced same/different-identity pairs in identity-disjoint folds, as LFW View 2.

    Identities are shuffled into ``n_folds`` groups; fold ``k`` holds up to
    ``n_pairs / (2 n_folds)`` positive and as many negative pairs drawn among
    its own identities, so no identity appears in two folds and the threshold
    chosen on nine folds is tested on unseen people. With ``yaw (N,)`` and
    ``min_abs_delta_yaw``, only pairs whose yaw differs by more than that are
    used (the CPLFW cross-pose setting). Positives and negatives are kept equal
    per fold (the smaller count wins) so chance is 50%.
    """
    identity = torch.as_tensor(identity).long()
    ids = torch.unique(identity)
    if len(ids) < 2 * n_folds:
        raise ValueError(f"{len(ids)} identities cannot form {n_folds} identity-disjoint folds with negatives (need >= {2 * n_folds})")
    per_fold = max(1, n_pairs // (2 * n_folds))
    groups = ids[torch.randperm(len(ids), generator=generator)].chunk(n_folds)
    left, right, same, fold = [], [], [], []
    for k, group in enumerate(groups):
        members = torch.nonzero(torch.isin(identity, group)).flatten()
        i, j = torch.triu_indices(len(members), len(members), offset=1)
        a, b = members[i], members[j]
        if yaw is not None and min_abs_delta_yaw is not None:
            keep = (yaw[a] - yaw[b]).abs() > min_abs_delta_yaw
            a, b = a[keep], b[keep]
        is_same = identity[a] == identity[b]
        pos = torch.nonzero(is_same).flatten()
        neg = torch.nonzero(~is_same).flatten()
        m = min(per_fold, len(pos), len(neg))
        pos = pos[torch.randperm(len(pos), generator=generator)[:m]]
        neg = neg[torch.randperm(len(neg), generator=generator)[:m]]
        chosen = torch.cat([pos, neg])
        left.append(a[chosen])
        right.append(b[chosen])
        same.append(torch.cat([torch.ones(m, dtype=torch.bool), torch.zeros(m, dtype=torch.bool)]))
        fold.append(torch.full((2 * m,), k))
    pairs = Pairs(torch.cat(left), torch.cat(right), torch.cat(same), torch.cat(fold))
    if len(pairs) == 0:
        raise ValueError("no verification pairs satisfy the constraints")
    return pairs


def best_accuracy_threshold(scores: Tensor, same: Tensor) -> float:
    """Threshold on ``scores (M,)`` maximising accuracy of ``score > threshold`` == ``same``.

    Candidate cuts lie between distinct sorted scores (and below/above all);
    the midpoint of the first best cut is returned.
    """
    order = torch.argsort(scores)
    s, t = scores[order].double(), same[order].bool()
    m = len(s)
    # cut after position c (0..m): the first c are predicted "different"
    neg_below = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum((~t).double(), 0)])
    pos_above = t.sum() - torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(t.double(), 0)])
    correct = neg_below + pos_above
    valid = torch.ones(m + 1, dtype=torch.bool)
    valid[1:m] = s[:-1] < s[1:]
    correct = torch.where(valid, correct, torch.full_like(correct, -1.0))
    c = int(torch.argmax(correct))
    if c == 0:
        return s[0].item() - 1.0
    if c == m:
        return s[-1].item() + 1.0
    return (s[c - 1].item() + s[c].item()) / 2


def verification_accuracy(scores: Tensor, same: Tensor, fold: Tensor) -> ProbeResult:
    """k-fold verification accuracy (LFW protocol): each fold is scored with the threshold best on the others.

    ``scores (M,)`` similarity (higher = same), ``same (M,)`` bool, ``fold (M,)``
    int. Metrics: ``accuracy`` (mean over folds), ``accuracy_fold_std``,
    ``n_pairs``; ``selected`` holds the mean threshold.
    """
    scores, same, fold = scores.double(), same.bool(), fold.long()
    accs, thresholds = [], []
    for k in torch.unique(fold):
        held = fold == k
        threshold = best_accuracy_threshold(scores[~held], same[~held])
        accs.append(((scores[held] > threshold) == same[held]).double().mean().item())
        thresholds.append(threshold)
    metrics = {"accuracy": float(np.mean(accs)), "accuracy_fold_std": float(np.std(accs)), "n_pairs": float(len(scores))}
    return ProbeResult(metrics, {"threshold_mean": float(np.mean(thresholds))})


def verification_probe(features: Tensor, pairs: Pairs) -> ProbeResult:
    """Cosine-similarity face verification of ``features (N, D)`` on ``pairs`` (10-fold, LFW protocol)."""
    x = F.normalize(as_features(features), dim=1)
    scores = (x[pairs.left] * x[pairs.right]).sum(1)
    return verification_accuracy(scores, pairs.same, pairs.fold)
