"""Probes during pretraining: a fast online evaluation of F_s / F_f / F_p on SynthFaces val.

:class:`ProbeMonitor` is a :class:`pclkit.callbacks.TrainerCallback`. Every
``every_epochs`` epochs it freezes the model for a moment (eval mode, no
autograd; the previous training modes are restored), extracts the features of
a small fixed set of **validation** SynthFaces (rendered once, kept in memory)
and scores three closed-form probes per feature:

* ``expression`` -- accuracy of a weighted kNN classifier (Wu et al., CVPR
  2018: cosine similarity, k = 20, weights exp(s / 0.07));
* ``identity`` -- accuracy of the same kNN over identities (k = 5);
* ``yaw_r2`` -- R^2 of a ridge regression of the yaw angle (standardised
  features, lambda chosen by the closed-form leave-one-out error on the
  reference half).

Every probe is fitted on a fixed *reference* half of the images and scored on
the other (*query*) half. The halves alternate the images of each identity, so
both hold every identity (what the identity kNN needs) and the same mix of
expressions and poses. The result is one ``metrics.jsonl`` record::

    {"kind": "monitor", "epoch": 1, "step": 128, "seconds": 1.9, "n_images": 1000,
     "F_s/expression": 0.41, "F_s/identity": 0.55, "F_s/yaw_r2": 0.83, "F_f/expression": ..., ...}

``epoch`` is the 0-based epoch just finished (as in the ``epoch`` record it
follows). SimCLR models are probed on F_s only (:func:`pclkit.features.model_features`).
The monitor never renders the test split: its numbers are for watching a run,
the test split is for the final evaluation (:mod:`pclkit.evaluate`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from pclkit.callbacks import Record, TrainerCallback
from pclkit.config import MIN_MONITOR_IMAGES
from pclkit.data.synthfaces.factors import DEFAULT_CONFIG as SYNTH_DEFAULTS
from pclkit.features import extract_features, model_features
from pclkit.probes import ProbeConfig, Standardizer, knn_predict, r2_scores, ridge_path
from pclkit.threads import torch_threads

if TYPE_CHECKING:  # pragma: no cover
    from pclkit.config import TrainConfig
    from pclkit.trainer import Trainer

#: the only SynthFaces split the monitor may render
MONITOR_SPLIT = "val"
#: features the monitor probes (those a model has learned, see ``model_features``)
MONITOR_FEATURES: tuple[str, ...] = ("F_s", "F_f", "F_p")
#: tasks, in panel order, and their axis labels
MONITOR_TASKS: tuple[str, ...] = ("expression", "identity", "yaw_r2")
TASK_LABELS: dict[str, str] = {"expression": "expression acc. (kNN)", "identity": "identity acc. (kNN)",
                               "yaw_r2": "yaw $R^2$ (ridge)"}
#: record kind written by the monitor
MONITOR_KIND = "monitor"
#: identities of the SynthFaces val split (100); the identity kNN needs two images of each
VAL_IDENTITIES = SYNTH_DEFAULTS.identities[MONITOR_SPLIT]


def monitor_key(feature: str, task: str) -> str:
    """Key of one value in a monitor record: ``"F_f/identity"``."""
    return f"{feature}/{task}"


# --------------------------------------------------------------------------- the fixed validation set


@dataclass(frozen=True)
class MonitorSet:
    """The monitor's images and labels, and its reference/query split.

    ``images`` uint8 ``(N, 3, S, S)``; ``expression``, ``identity`` long ``(N,)``;
    ``yaw`` float ``(N,)`` degrees; ``reference`` bool ``(N,)`` (True: fit side).
    """

    images: Tensor
    expression: Tensor
    identity: Tensor
    yaw: Tensor
    reference: Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])


def alternate_within_groups(groups: Tensor) -> Tensor:
    """Bool ``(N,)``: True for the 1st, 3rd, 5th ... occurrence of each value of ``groups (N,)``.

    Each group is split as evenly as possible between the two sides.
    """
    order = torch.argsort(groups, stable=True)
    sorted_groups = groups[order]
    starts = torch.ones_like(sorted_groups, dtype=torch.bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    position = torch.arange(len(groups))
    first = torch.cummax(torch.where(starts, position, torch.zeros_like(position)), dim=0).values
    rank_in_group = position - first
    reference = torch.empty_like(starts)
    reference[order] = rank_in_group % 2 == 0
    return reference


def monitor_set(images: Tensor, labels: Mapping[str, Tensor]) -> MonitorSet:
    """A :class:`MonitorSet` from uint8 images and SynthFaces labels (identity, expression, pose)."""
    identity = labels["identity"].long()
    counts = torch.unique(identity, return_counts=True)[1]
    if int(counts.min()) < 2:
        raise ValueError("the identity probe needs at least two images of every identity "
                         f"(got {len(identity)} images of {len(counts)} identities)")
    return MonitorSet(images=images, expression=labels["expression"].long(), identity=identity,
                      yaw=labels["pose"][:, 0].float(), reference=alternate_within_groups(identity))


def render_monitor_set(config: "TrainConfig", n_images: int, split: str = MONITOR_SPLIT) -> MonitorSet:
    """Render ``n_images`` SynthFaces of ``split`` (must be "val") drawn like the run's training faces.

    Size, dataset seed, pose limits and pose prior come from ``config``. The
    global torch RNG is left untouched, so a monitored run trains exactly like
    an unmonitored one.
    """
    if split != MONITOR_SPLIT:
        raise ValueError(f"the probe monitor only uses the {MONITOR_SPLIT!r} split, never {split!r}")
    from pclkit.data.synthfaces import synthfaces_split

    dataset = synthfaces_split(MONITOR_SPLIT, n_images, config.model.image_size, config.data.seed,
                               config.data.pose_limits, config.data.pose_prior)
    assert dataset.split == MONITOR_SPLIT  # the test split must stay unseen during training
    with torch.random.fork_rng(devices=[]):
        images, labels = dataset.tensors(progress=False)
    return monitor_set(images, labels)


# --------------------------------------------------------------------------- probes


def knn_accuracy(x: Tensor, labels: Tensor, reference: Tensor, k: int, temperature: float) -> float:
    """Accuracy on the query rows of a weighted kNN over the reference rows.

    ``x (N, D)`` features, ``labels (N,)`` any integers, ``reference (N,)`` bool.
    """
    classes, target = torch.unique(labels, return_inverse=True)
    query = ~reference
    pred = knn_predict(x[reference], target[reference], x[query], len(classes), k=k, temperature=temperature)
    return float((pred == target[query]).float().mean())


def loo_ridge_lambda(x: Tensor, y: Tensor, grid: Sequence[float]) -> float:
    """The ridge strength of ``grid`` with the lowest leave-one-out squared error on ``(x (N, D), y (N,))``.

    Same objective as :func:`pclkit.probes.ridge_path` (mean squared error +
    lam |W|^2, intercept unpenalised). In kernel form the fit is
    ``y_hat = H y`` with ``H = 11^T / N + K (K + N lam I)^-1``, ``K = Xc Xc^T``;
    the leave-one-out residual is ``(y - y_hat) / (1 - H_ii)``, so one
    eigendecomposition of ``K`` scores the whole grid.
    """
    n = x.shape[0]
    xc = (x - x.mean(0)).double()
    yc = (y - y.mean()).double()
    evals, evecs = torch.linalg.eigh(xc @ xc.T)
    evals = evals.clamp_min(0.0)
    projected = evecs.T @ yc  # (N,)
    squared = evecs.pow(2)  # (N, N)
    best, best_error = float(grid[0]), math.inf
    for lam in grid:
        shrink = evals / (evals + n * lam)
        fitted = evecs @ (shrink * projected)
        leverage = 1.0 / n + squared @ shrink
        error = float(((yc - fitted) / (1.0 - leverage).clamp_min(1e-9)).pow(2).mean())
        if error < best_error:
            best, best_error = float(lam), error
    return best


def ridge_r2(x: Tensor, y: Tensor, reference: Tensor, grid: Sequence[float]) -> float:
    """R^2 on the query rows of a ridge regression of ``y (N,)`` on ``x (N, D)`` fitted on the reference rows.

    Features are standardised with reference statistics
    (:class:`pclkit.probes.Standardizer`); lambda is chosen on the reference
    rows alone (:func:`loo_ridge_lambda`).
    """
    query = ~reference
    scale = Standardizer.fit(x[reference])
    x_ref, x_query = scale(x[reference]), scale(x[query])
    y_ref = y[reference].float()
    lam = loo_ridge_lambda(x_ref, y_ref, grid)
    model = ridge_path(x_ref, y_ref[:, None], (lam,))[0]
    return float(r2_scores(model(x_query), y[query].float()[:, None])[0])


def probe_scores(features: Mapping[str, Tensor], data: MonitorSet, k: int = 20, identity_k: int = 5,
                 temperature: float = 0.07, ridge_grid: Sequence[float] = ProbeConfig().ridge_grid) -> dict[str, float]:
    """``{"<feature>/<task>": value}`` for every feature ``(N, D)`` in ``features`` and every task."""
    scores: dict[str, float] = {}
    for name, x in features.items():
        scores[monitor_key(name, "expression")] = knn_accuracy(x, data.expression, data.reference, k, temperature)
        scores[monitor_key(name, "identity")] = knn_accuracy(x, data.identity, data.reference, identity_k, temperature)
        scores[monitor_key(name, "yaw_r2")] = ridge_r2(x, data.yaw, data.reference, ridge_grid)
    return scores


# --------------------------------------------------------------------------- frozen features


def _modes(model: nn.Module) -> dict[nn.Module, bool]:
    return {module: module.training for module in model.modules()}


def frozen_features(model: nn.Module, images: Tensor, names: tuple[str, ...], device: torch.device | str,
                    bf16: bool, batch_size: int = 256) -> dict[str, Tensor]:
    """Features ``{name: float32 (N, D)}`` of ``images`` in eval mode without autograd.

    Every submodule's training flag is restored afterwards (BatchNorm running
    statistics are read, never updated), so training continues unchanged.
    """
    modes = _modes(model)
    model.eval()
    try:
        return extract_features(model, images, names, batch_size=batch_size, device=device, bf16=bf16, progress=False)
    finally:
        for module, training in modes.items():
            module.training = training


# --------------------------------------------------------------------------- the callback


class ProbeMonitor(TrainerCallback):
    """kNN / ridge probes of F_s, F_f, F_p on SynthFaces val every ``every_epochs`` epochs.

    Args:
        every_epochs: probe after epochs ``every - 1, 2 * every - 1, ...`` (0-based).
        n_images: size of the fixed validation set (>= 200: two images of each of its 100 identities).
        k, identity_k: neighbours of the expression and identity kNN.
        batch_size: feature-extraction batch.
        probe_threads: torch threads of the probes (kNN, ridge; as ``ProbeConfig.solver_threads``:
            small ops run faster on one thread of a busy CPU); features use the trainer's setting.
        precision: "fp32" (default) or "bf16" autocast for the features. Measured on
            2 CPU cores without AMX, bf16 inference of the ``small`` encoder is ~8x
            slower than fp32 (1000 images at 64 px: 4.7 s vs 0.56 s), so fp32 it is.
    """

    def __init__(self, every_epochs: int, n_images: int = 1000, k: int = 20, identity_k: int = 5,
                 batch_size: int = 256, precision: str = "fp32", probe_threads: int | None = 1) -> None:
        if every_epochs < 1:
            raise ValueError(f"every_epochs must be >= 1, got {every_epochs}")
        if n_images < MIN_MONITOR_IMAGES:
            raise ValueError(f"n_images must be >= {MIN_MONITOR_IMAGES} (two images of each of the "
                             f"{VAL_IDENTITIES} val identities), got {n_images}")
        if precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', got {precision!r}")
        self.every_epochs, self.n_images = int(every_epochs), int(n_images)
        self.k, self.identity_k, self.batch_size, self.precision = k, identity_k, batch_size, precision
        self.probe_threads = probe_threads
        self.data: MonitorSet | None = None

    @classmethod
    def from_config(cls, config: "TrainConfig") -> "ProbeMonitor":
        """The monitor a run's ``runtime.monitor_every`` / ``runtime.monitor_images`` ask for."""
        return cls(config.runtime.monitor_every, config.runtime.monitor_images)

    def due(self, epoch: int) -> bool:
        """Whether the monitor runs after 0-based ``epoch``."""
        return (epoch + 1) % self.every_epochs == 0

    def prepare(self, config: "TrainConfig") -> MonitorSet:
        """Render the validation set once (later calls return it)."""
        if self.data is None:
            self.data = render_monitor_set(config, self.n_images)
        return self.data

    def measure(self, model: nn.Module, config: "TrainConfig", device: torch.device | str) -> dict[str, float]:
        """``{"<feature>/<task>": value}`` of ``model`` (a :class:`pclkit.models.PCLModel`) now."""
        data = self.prepare(config)
        names = tuple(n for n in MONITOR_FEATURES if n in model_features(config.method))
        features = frozen_features(model, data.images, names, device, self.precision == "bf16", self.batch_size)
        with torch_threads(self.probe_threads):
            return probe_scores(features, data, k=self.k, identity_k=self.identity_k)

    # -- hooks -----------------------------------------------------------------

    def on_fit_start(self, trainer: "Trainer") -> None:
        self.prepare(trainer.config)

    def on_record(self, trainer: "Trainer", record: Record) -> None:
        if record.get("kind") != "epoch" or not self.due(int(record["epoch"])):
            return
        from pclkit.checkpoint import unwrap

        start = time.perf_counter()
        scores = self.measure(unwrap(trainer.model), trainer.config, trainer.device)
        trainer.log({"kind": MONITOR_KIND, "epoch": int(record["epoch"]), "step": int(record["step"]),
                     "seconds": time.perf_counter() - start, "n_images": self.n_images, **scores})


# --------------------------------------------------------------------------- reading records back


def monitor_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The monitor records of a run's ``metrics.jsonl`` records."""
    return [r for r in records if r.get("kind") == MONITOR_KIND]


def monitor_series(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """``{task: {feature: (epochs, values)}}`` of the monitor records (epochs counted from 1).

    Tasks and features without a value are left out; an empty dict means no monitor records.
    """
    series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for record in monitor_records(records):
        for task in MONITOR_TASKS:
            for feature in MONITOR_FEATURES:
                value = record.get(monitor_key(feature, task))
                if not isinstance(value, (int, float)):
                    continue
                epochs, values = series.setdefault(task, {}).setdefault(feature, ([], []))
                epochs.append(int(record["epoch"]) + 1)
                values.append(float(value))
    return series
