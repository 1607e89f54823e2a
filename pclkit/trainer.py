"""The pretraining loop: optimiser, LR schedule, DWA, bf16 autocast, logging,
checkpoints, resume, NaN guard and DDP.

The method (:mod:`pclkit.methods`: PCL, Liu et al., CVPR 2023; SimCLR, Chen
et al., ICML 2020) says which loss terms are on, which views each optimiser
step needs and how the terms are weighted (Dynamic Weight Average: Liu, Johns
& Davison, MTAN, CVPR 2019); :mod:`pclkit.objective` runs one encoder pass,
:mod:`pclkit.views` makes the views, :mod:`pclkit.batches` the batches; the
``pretrain`` command line is :mod:`pclkit.pretrain`.

A run folder holds ``config.yaml``, ``metrics.jsonl``, ``last.pt``,
``recon/epoch_XXX.png`` (methods with a decoder) and ``curves.png``; with ``runtime.keep_every=N`` also
``epoch_XXX.pt`` every N epochs, with ``runtime.tensorboard`` a ``tensorboard/`` folder
(:mod:`pclkit.tensorboard_log`). Callbacks
(:mod:`pclkit.callbacks`) see every record; with ``runtime.monitor_every`` a
:class:`pclkit.monitor.ProbeMonitor` adds probe records during pretraining.

Determinism: the augmentation generator is re-seeded from (seed, step, rank,
sub-step) at every step and the batch order is a function of (seed, epoch), so
randomness depends on the step number only; together with the restored model,
optimiser, scheduler, DWA state (with the current epoch's running loss sums)
and torch's global RNG this makes an interrupted and resumed CPU run end with
the same weights as an uninterrupted one.
"""

from __future__ import annotations

import collections
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pclkit import distributed
from pclkit.augment import add_gaussian_noise
from pclkit.batches import Batch, FolderBatches, MemoryBatches
from pclkit.callbacks import TrainerCallback, as_callback
from pclkit.checkpoint import (
    load_checkpoint,
    load_state_strict,
    model_state,
    save_checkpoint,
    unwrap,
    upgraded_state,
)
from pclkit.config import TrainConfig, config_to_dict, save_config
from pclkit.losses import DynamicWeightAverage
from pclkit.methods import Method, get_method
from pclkit.objective import PretrainObjective
from pclkit.optim import WarmupCosine, build_optimizer
from pclkit.runlog import SNAPSHOT_ROWS, MetricsLog, plot_curves, save_snapshot
from pclkit.runtime import (
    autocast,
    resolve_precision,
    rng_state,
    select_device,
    set_rng_state,
    step_seed,
)
from pclkit.swap import swap_quad
from pclkit.threads import torch_threads
from pclkit.views import ViewBuilder, uses_pose_change


def record_key(name: str) -> str:
    """Key of a step value in ``metrics.jsonl``: ``loss``, ``loss_<term>``, and ``alpha_*`` (DWA weights)
    and ``diag_*`` (a method's diagnostics) as they are."""
    return name if name == "loss" or name.startswith(("alpha_", "diag_")) else f"loss_{name}"


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stopped before the optimiser step."""


# ---------------------------------------------------------------------------
# data


def build_pose_bank(config: TrainConfig, dataset: Any, progress: bool = False,
                    pose_negatives: bool | None = None) -> Any:
    """The :class:`~pclkit.data.synthfaces.PoseBank` of ``dataset`` (SynthFaces) that
    ``views.render3d_bank`` asks for (None when it is 0): the config's pose change draws the poses.

    With ``views.negative_change_axes`` and ``pose_negatives`` (the method has a pose loss) the
    bank holds 2K re-renders per face: the first K by the pose change's rule (ŝ), the last K by
    the same change with ``change_axes`` replaced (the other pose negatives; the bank's
    ``negatives_from`` = K). A method without pose negatives (SimCLR) gets the first K only.
    ``pose_negatives`` None: whether ``config.method`` has them (:func:`pose_bank_use`)."""
    if not config.views.render3d_bank:
        return None
    from pclkit.augment import make_pose_change
    from pclkit.data.synthfaces import PoseBank, render_pose_bank

    pose_change = make_pose_change(config.views.pose_change, **config.views.pose_change_options)
    k, seed = config.views.render3d_bank, config.data.seed
    bank = render_pose_bank(dataset, pose_change, k, seed=seed, progress=progress)
    if pose_negatives is None and config.views.negative_change_axes is not None:
        pose_negatives = pose_bank_use(get_method(config.method)(config))[1]
    if config.views.negative_change_axes is None or not pose_negatives:
        return bank
    negatives = render_pose_bank(dataset, replace(pose_change, change_axes=config.views.negative_change_axes),
                                 k, seed=seed + 1, progress=progress)
    return PoseBank(torch.cat([bank.images, negatives.images], 1), torch.cat([bank.poses, negatives.poses], 1),
                    negatives_from=k)


def pose_bank_use(method: Method) -> tuple[bool, bool]:
    """Whether ``method``'s views re-render poses (a pose bank helps) and whether they draw pose negatives."""
    parts = [step.view_parts for step in method.steps()]
    return (any(uses_pose_change(p, method.config.views.face_across_pose) for p in parts),
            any("pose" in p for p in parts))


def build_batches(config: TrainConfig, dist: distributed.DistInfo, device: torch.device,
                  with_pose_bank: bool = True, pose_negatives: bool | None = None) -> MemoryBatches | FolderBatches:
    """The batch source of ``config.data`` (SynthFaces in memory, or a frames folder).

    With ``views.render3d_bank`` and ``with_pose_bank`` (the method's views re-render poses), the
    SynthFaces source carries the training faces' pose bank (``pose_negatives``: see
    :func:`build_pose_bank`).
    """
    size = config.model.image_size
    if config.data.source == "synth":
        from pclkit.data.synthfaces import synthfaces_split

        dataset = synthfaces_split("train", config.data.n, size, config.data.seed,
                                   config.data.pose_limits, config.data.pose_prior)
        images, labels = dataset.tensors(progress=dist.is_main)
        factors = dataset.factors  # render3d re-renders from them; diagnostics read the identities
        bank = (build_pose_bank(config, dataset, progress=dist.is_main, pose_negatives=pose_negatives)
                if with_pose_bank else None)
        return MemoryBatches(images, config.optim.batch_size, dist, config.seed, device,
                             pose=labels.get("pose"), factors=factors, pose_bank=bank)
    from pclkit.data import FaceFolder

    dataset = FaceFolder(config.data.root, size=size, check=config.data.folder_check)
    return FolderBatches(dataset, config.optim.batch_size, dist, config.seed, device, workers=config.data.workers)


# ---------------------------------------------------------------------------
# the trainer


@dataclass
class EpochMeter:
    """Running sums of the (rank-averaged) loss terms over the current epoch."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        return {key: value / max(1, self.count) for key, value in self.sums.items()}

    def state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "count": self.count}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "EpochMeter":
        if not state:
            return cls()
        return cls({k: float(v) for k, v in state["sums"].items()}, int(state["count"]))


class Trainer:
    """One pretraining run in ``out_dir`` (fresh, or resumed from its ``last.pt``).

    Args:
        config: the resolved run config.
        out_dir: run folder (rank 0 writes into it).
        resume: continue from ``out_dir/last.pt``.
        batches: a ready batch source (default: built from ``config.data``; the
            benchmark passes random images).
        callbacks: :class:`pclkit.callbacks.TrainerCallback` objects (or plain
            functions of a record) called on the main rank; more can be added
            with :meth:`add_callback`. A :class:`pclkit.monitor.ProbeMonitor`
            is added automatically when ``runtime.monitor_every > 0``.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        resume: bool = False,
        batches: MemoryBatches | FolderBatches | None = None,
        callbacks: Sequence[TrainerCallback | Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.device = select_device(config.runtime.device)
        self.dist = distributed.init_from_env(self.device.type)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.checkpoint_path = self.out_dir / "last.pt"
        #: the precision actually used (``runtime.precision: auto`` resolved for this device)
        self.precision = resolve_precision(config.runtime.precision, self.device)
        # built first: without the optional tensorboard package this fails before any work is done
        tensorboard = self._tensorboard_logger()
        self._prepare_folder(resume)

        torch.manual_seed(config.seed)  # same initial weights on every rank
        from pclkit.models import build_model

        self.model = build_model(config.model).to(self.device)
        if config.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.dist.enabled and self.device.type == "cuda" and config.runtime.sync_bn:
            # BatchNorm statistics over the global batch, as on one device
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        #: the method (pclkit.methods): its loss terms, the views of each optimiser step, their weights
        self.method = get_method(config.method)(config)
        self.objective: nn.Module = PretrainObjective(self.model, self.method, config.runtime.channels_last)
        if self.dist.enabled:
            self.objective = nn.parallel.DistributedDataParallel(
                self.objective, find_unused_parameters=self.method.leaves_parameters_unused())
        self.optimizer = build_optimizer(self.model, config)
        if batches is None:
            with torch_threads(config.runtime.threads):
                needs_bank, pose_negatives = pose_bank_use(self.method)
                batches = build_batches(config, self.dist, self.device, with_pose_bank=needs_bank,
                                        pose_negatives=pose_negatives)
        self.batches = batches
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total_steps = self.steps_per_epoch * config.optim.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            WarmupCosine(self.total_steps, config.optim.warmup_steps, config.optim.scheduler == "cosine"),
        )
        self.dwa_terms = self.method.weighted_terms()
        #: Dynamic Weight Average over the method's weighted terms (None when it weights none)
        self.dwa = (DynamicWeightAverage(num_losses=len(self.dwa_terms), temperature=config.loss.dwa_temperature)
                    if self.dwa_terms else None)
        self.views = ViewBuilder(config)
        self.step = 0
        self.meter = EpochMeter()
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl") if self.dist.is_main else None
        #: the callbacks (:mod:`pclkit.callbacks`), called in order on the main rank
        self.callbacks: list[TrainerCallback] = []
        #: plain functions given every record written to metrics.jsonl (main rank), called after
        #: the callbacks (the older interface; :meth:`add_callback` accepts such functions too)
        self.on_record: list[Callable[[dict[str, Any]], None]] = []
        # records logged by a callback while another record is being passed on wait here,
        # so every callback sees the records in the order of metrics.jsonl
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._dispatching = False
        for callback in callbacks or ():
            self.add_callback(callback)
        if config.runtime.monitor_every > 0 and self.dist.is_main:
            from pclkit.monitor import ProbeMonitor

            self.add_callback(ProbeMonitor.from_config(config))
        if tensorboard is not None:
            self.add_callback(tensorboard)
        if resume:
            self._load(self.checkpoint_path)
        elif self.dist.is_main:
            save_config(config, self.out_dir / "config.yaml")

    # -- folder, checkpoint ----------------------------------------------

    def _prepare_folder(self, resume: bool) -> None:
        if resume and not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {self.checkpoint_path}")
        if not resume and self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.out_dir} already holds a run (last.pt); resume it with --resume {self.out_dir} "
                "or choose another --out"
            )
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        distributed.barrier()

    def state_dict(self) -> dict[str, Any]:
        """Checkpoint payload (docs/architecture.md format)."""
        return {
            "config": config_to_dict(self.config),
            "model": model_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "dwa": {**(self.dwa.state_dict() if self.dwa is not None else {}), "epoch_meter": self.meter.state(),
                    "terms": list(self.dwa_terms)},
            "rng": rng_state(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "precision": self.precision,  # runtime.precision "auto" resolved on this machine
        }

    def _tensorboard_logger(self) -> TrainerCallback | None:
        """A :class:`pclkit.tensorboard_log.TensorBoardLogger` when ``runtime.tensorboard`` (main rank)."""
        if not (self.config.runtime.tensorboard and self.dist.is_main):
            return None
        from pclkit.tensorboard_log import TensorBoardLogger

        return TensorBoardLogger()

    def kept_checkpoint_path(self, epochs_done: int) -> Path:
        """``<run>/epoch_XXX.pt``: the checkpoint kept after ``epochs_done`` epochs (``runtime.keep_every``)."""
        return self.out_dir / f"epoch_{epochs_done:03d}.pt"

    def save(self, keep_as: Path | None = None) -> None:
        """Write ``last.pt`` (and the same payload to ``keep_as``, if given) on the main rank."""
        if self.dist.is_main:
            payload = self.state_dict()
            save_checkpoint(self.checkpoint_path, payload)
            if keep_as is not None:
                save_checkpoint(keep_as, payload)
        distributed.barrier()

    def _load(self, path: Path) -> None:
        payload = load_checkpoint(path, map_location=self.device)
        load_state_strict(self.model, upgraded_state(self.model, payload["model"]), what=f"model in {path}")
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        dwa_state = dict(payload["dwa"])
        self.meter = EpochMeter.from_state(dwa_state.pop("epoch_meter", None))
        dwa_state.pop("terms", None)
        if self.dwa is not None:
            self.dwa.load_state_dict(dwa_state)
        trained = payload.get("precision")
        if trained is not None and trained != self.precision:
            warnings.warn(f"{path} was trained in {trained} and resumes in {self.precision} "
                          f"(runtime.precision={self.config.runtime.precision!r} on this device): the numerics change "
                          "from here on; set runtime.precision explicitly to keep them", stacklevel=2)
        set_rng_state({k: v.cpu() if isinstance(v, torch.Tensor) else [t.cpu() for t in v]
                       for k, v in payload["rng"].items()})
        self.step = int(payload["step"])
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)

    # -- one step ----------------------------------------------------------

    def _weights(self) -> dict[str, float]:
        alphas = self.dwa.weights.tolist() if self.config.loss.use_dwa and self.dwa else [1.0] * len(self.dwa_terms)
        return {f"alpha_{name}": float(a) for name, a in zip(self.dwa_terms, alphas)}

    def _check_finite(self, terms: dict[str, torch.Tensor], step: str) -> dict[str, float]:
        """Rank-averaged term values as floats; raise :class:`NonFiniteLossError` naming the bad term."""
        names = list(terms)
        values = distributed.all_reduce_mean(torch.stack([terms[n].detach().float() for n in names]))
        floats = dict(zip(names, values.tolist()))
        bad = [n for n in names if n != "loss" and not math.isfinite(floats[n])]
        if bad or not math.isfinite(floats["loss"]):
            what = ", ".join(f"L_{n} = {floats[n]}" for n in (bad or ["loss"]))
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step + 1} (epoch {self.step // self.steps_per_epoch}"
                f"{'' if step == 'joint' else f', {step} sub-step'}): {what}. Training stopped before the "
                f"optimiser step; the last good checkpoint {self.checkpoint_path} is untouched. "
                "Try a lower optim.lr, optim.grad_clip or runtime.precision=fp32."
            )
        return floats

    def _optimizer_step(self) -> None:
        if self.config.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.method.after_optimizer_step(unwrap(self.model), self.step, self.total_steps)

    def train_step(self, batches: tuple[Batch, ...]) -> dict[str, float]:
        """One iteration: the method's optimiser steps (one joint step, or the alternating sub-steps).

        Each optimiser step reads top to bottom: views from its own batch, one
        encoder pass and the method's loss terms, a finite-loss check, backward,
        clipping and the optimiser step.
        """
        self.objective.train()
        weights = self._weights()  # alpha_<term> of Dynamic Weight Average (fixed within an epoch)
        self.method.on_step_start(self.step, self.total_steps)
        steps = self.method.steps()
        values: dict[str, float] = {"loss": 0.0}
        for index, step in enumerate(steps):
            batch = batches[index]
            # a joint step keeps the seed stream of a one-step schedule; sub-steps get their own
            seed = step_seed(self.config.seed, self.step, self.dist.rank, 0 if len(steps) == 1 else index + 1)
            generator = torch.Generator(device=self.device).manual_seed(seed)
            views = self.views.build(batch.images, generator, step.view_parts, pose=batch.pose, factors=batch.factors,
                                     pose_bank=batch.pose_bank)
            with autocast(self.device, self.precision):
                terms = self.objective(views, weights, generator)  # {term: L_term, "loss": weighted sum}
            got = self._check_finite(terms, step.name)  # raises before the weights change
            terms["loss"].backward()
            self._optimizer_step()  # gradient clipping, optimiser step, zero_grad
            values["loss"] += got.pop("loss")
            values.update(got)
        self.scheduler.step()
        self.step += 1
        return {**values, **weights}

    # -- epochs --------------------------------------------------------------

    def _streams(self) -> int:
        return len(self.method.steps())

    def _end_epoch(self, epoch: int, epoch_seconds: float) -> None:
        means = self.meter.means()
        if self.config.loss.use_dwa and self.dwa is not None:
            self.dwa.update([means[name] for name in self.dwa_terms])
        if self.metrics is not None:
            record = {"kind": "epoch", "epoch": epoch, "step": self.step, "seconds": epoch_seconds}
            record.update({record_key(k): v for k, v in means.items()})
            self.log(record)
        self.meter = EpochMeter()

    def _log_step(self, values: dict[str, float], seconds: float, epoch: int) -> None:
        if self.metrics is None:
            return
        record: dict[str, Any] = {"kind": "step", "step": self.step, "epoch": epoch}
        for key, value in values.items():
            record[record_key(key)] = value
        record["lr"] = self.scheduler.get_last_lr()[0]
        record["img_per_s"] = self.config.optim.batch_size * self._streams() / max(seconds, 1e-9)
        self.log(record)

    # -- callbacks -------------------------------------------------------------

    def add_callback(self, callback: TrainerCallback | Callable[[dict[str, Any]], None]) -> TrainerCallback:
        """Register a :class:`pclkit.callbacks.TrainerCallback` (or a function of a record); returns it."""
        wrapped = as_callback(callback)
        self.callbacks.append(wrapped)
        return wrapped

    def log(self, record: dict[str, Any]) -> None:
        """Append ``record`` (``{"kind": ..., "step": ..., ...}``) to metrics.jsonl and pass it on.

        Every callback's ``on_record`` sees it, then every ``on_record`` function.
        Callbacks may log records of their own (a new ``kind``) from their hook:
        those are written at once and passed on after the current record, so
        callbacks see records in file order. Only the main rank writes;
        elsewhere this does nothing.
        """
        if self.metrics is None:
            return
        self.metrics.write(record)
        self._pending.append(record)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                self._dispatch(self._pending.popleft())
        finally:
            self._dispatching = False
            self._pending.clear()

    def _dispatch(self, record: dict[str, Any]) -> None:
        for callback in list(self.callbacks):
            hook = getattr(callback, "on_record", None)
            if hook is not None:
                hook(self, record)
        for function in list(self.on_record):
            function(record)

    def _close_callbacks(self) -> None:
        """Release what callbacks hold (e.g. a TensorBoard writer) when a fit stops on an error."""
        for callback in list(self.callbacks):
            close = getattr(callback, "close", None)
            if callable(close):
                close()

    def _notify(self, hook_name: str) -> None:
        """Call ``hook_name(trainer)`` (``on_fit_start`` / ``on_fit_end``) of every callback, main rank only."""
        if not self.dist.is_main:
            return
        for callback in list(self.callbacks):
            hook = getattr(callback, hook_name, None)
            if hook is not None:
                hook(self)

    def _progress(self) -> Any:
        from tqdm.auto import tqdm

        return tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=f"pretrain {self.config.method}",
            disable=not (self.dist.is_main and self.config.runtime.progress),
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def fit(self) -> Path:
        """Train to the end (or to ``optim.max_steps``); returns the path of ``last.pt``.

        ``runtime.threads`` applies while this runs (and while the data is built);
        torch's thread setting is restored afterwards.
        """
        with torch_threads(self.config.runtime.threads):
            return self._fit()

    def _fit(self) -> Path:
        cfg = self.config
        stop_at = self.total_steps if cfg.optim.max_steps is None else min(self.total_steps, cfg.optim.max_steps)
        self._notify("on_fit_start")
        bar = self._progress()
        snapshot_step = -1
        try:
            while self.step < stop_at:
                epoch, start = divmod(self.step, self.steps_per_epoch)
                epoch_start = time.perf_counter()
                for batches in self.batches.epoch(epoch, start, self._streams()):
                    tick = time.perf_counter()
                    values = self.train_step(batches)
                    seconds = time.perf_counter() - tick
                    self.meter.add(values)
                    if self.step % cfg.runtime.log_every == 0 or self.step == stop_at:
                        self._log_step(values, seconds, epoch)
                    bar.update(1)
                    bar.set_postfix(self._postfix(values, seconds), refresh=False)
                    epoch_done = self.step % self.steps_per_epoch == 0
                    if epoch_done:
                        self._end_epoch(epoch, time.perf_counter() - epoch_start)
                    keep = epoch_done and cfg.runtime.keep_every and (epoch + 1) % cfg.runtime.keep_every == 0
                    if epoch_done or (cfg.runtime.checkpoint_every and self.step % cfg.runtime.checkpoint_every == 0):
                        self.save(keep_as=self.kept_checkpoint_path(epoch + 1) if keep else None)
                    if epoch_done and cfg.runtime.snapshot_every and (epoch + 1) % cfg.runtime.snapshot_every == 0:
                        self.snapshot(f"epoch_{epoch + 1:03d}")
                        snapshot_step = self.step
                    if self.step >= stop_at:
                        break
        except NonFiniteLossError as err:
            self.log({"kind": "error", "step": self.step + 1, "message": str(err)})
            self._close_callbacks()
            raise
        except BaseException:
            self._close_callbacks()
            raise
        finally:
            bar.close()
        self.save()
        if self.dist.is_main and self.step == self.total_steps:
            if snapshot_step != self.step:
                self.snapshot("final")
            plot_curves(self.out_dir / "metrics.jsonl", self.out_dir / "curves.png",
                        title=f"{cfg.method} / preset {cfg.preset} / {self.out_dir.name}")
        self._notify("on_fit_end")
        return self.checkpoint_path

    def _postfix(self, values: dict[str, float], seconds: float) -> dict[str, str]:
        shown = {"loss": f"{values['loss']:.3f}"}
        for name in self.method.terms():  # every term of the method (PCL's options and ProS's proto too)
            if name in values:
                shown[name] = f"{values[name]:.3g}"
        for key, value in values.items():
            if key.startswith("alpha_"):
                shown["a_" + key[len("alpha_"):]] = f"{value:.2f}"
        shown["img/s"] = f"{self.config.optim.batch_size * self._streams() / max(seconds, 1e-9):.0f}"
        return shown

    # -- reconstruction snapshots ----------------------------------------------

    @torch.no_grad()
    def snapshot(self, name: str, count: int = 8) -> Path | None:
        """PNG grid of swap reconstructions of the first training images (PCL only).

        Rows: s, D(F_f,F_p), D(F_f,F_p̂), ŝ, D(F_f̂,F_p̂), D(F_f̂,F_p); features of
        the noisy inputs as in training; eval mode, so training is not affected.
        """
        if not self.dist.is_main or not self.method.has_decoder:
            return None
        model = unwrap(self.model)
        was_training = model.training
        model.eval()
        try:
            batch = next(iter(self.batches.epoch(0, 0, 1)))[0]
            images = batch.images[:count]
            generator = torch.Generator(device=self.device).manual_seed(self.config.seed)
            pose = batch.pose[:count] if batch.pose is not None else None
            factors = batch.factors[:count] if batch.factors is not None else None
            images_hat, _ = self.views.pose_change(images, pose, generator, factors=factors)
            # the encoder saw noisy reconstruction inputs in training (and its BatchNorm
            # statistics come from them): clean inputs would be out of distribution
            noisy = add_gaussian_noise(torch.cat([images, images_hat]), generator, sigma=self.config.views.recon_noise)
            with autocast(self.device, self.precision):
                both = noisy.contiguous(
                    memory_format=torch.channels_last if self.config.runtime.channels_last else torch.contiguous_format
                )
                features = model(both)
                face, face_hat = features["F_f"].chunk(2)
                pose_, pose_hat = features["F_p"].chunk(2)
                quad = swap_quad(model.decode, face, face_hat, pose_, pose_hat).float()  # SWAP_QUAD order
            rows = [images, quad[0], quad[1], images_hat, quad[3], quad[2]]
            assert len(rows) == len(SNAPSHOT_ROWS)
            return save_snapshot(rows, self.out_dir / "recon" / f"{name}.png", labels=SNAPSHOT_ROWS)
        finally:
            model.train(was_training)


def pretrain(config: TrainConfig, out_dir: str | Path, resume: bool = False) -> Path:
    """Python entry point: run (or resume) a pretraining run; returns the ``last.pt`` path."""
    return Trainer(config, out_dir, resume=resume).fit()
