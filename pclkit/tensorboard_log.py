"""Optional TensorBoard logging of a pretraining run: ``runtime.tensorboard=true``.

:class:`TensorBoardLogger` is a :class:`pclkit.callbacks.TrainerCallback`
that the trainer adds on the main rank. It writes every ``metrics.jsonl``
record as scalars to ``<run>/tensorboard`` (``tensorboard --logdir runs``), at
the record's ``step``:

* ``step`` records -> ``train/<key>`` (``train/loss``, ``train/loss_face``,
  ``train/alpha_pose``, ``train/lr``, ``train/img_per_s``, ...);
* ``epoch`` records -> ``epoch/<key>`` (per-epoch means, ``epoch/seconds``);
* ``monitor`` records -> ``monitor/<feature>/<task>`` (``monitor/F_f/identity``, ...);
* other kinds -> ``<kind>/<key>``; ``error`` records -> a text entry.

A resumed run opens its writer with ``purge_step = <checkpoint step> + 1``, so
TensorBoard drops what the interrupted run logged past its checkpoint (the
same steps are trained again), as ``metrics.jsonl`` is truncated.

TensorBoard is not a requirement of pclkit: without it, asking for it fails
at once with a message that says ``pip install tensorboard``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pclkit.callbacks import Record, TrainerCallback
from pclkit.config import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pclkit.trainer import Trainer

__all__ = ["LOG_SUBDIR", "TensorBoardMissing", "TensorBoardLogger", "scalar_tags", "summary_writer_class"]

#: sub-folder of the run folder that holds the event files
LOG_SUBDIR = "tensorboard"
#: record keys that are coordinates, not values
_COORDINATES = frozenset({"kind", "step", "epoch"})
#: tag prefix of each record kind (others use the kind itself)
_PREFIX = {"step": "train", "epoch": "epoch", "monitor": "monitor"}


class TensorBoardMissing(ConfigError):
    """``runtime.tensorboard=true`` but the optional ``tensorboard`` package is not installed."""


def summary_writer_class() -> type:
    """``torch.utils.tensorboard.SummaryWriter``, or :class:`TensorBoardMissing` saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise TensorBoardMissing(
            "runtime.tensorboard=true needs the optional 'tensorboard' package, which is not installed "
            f"({err}); install it with `pip install tensorboard`, or set runtime.tensorboard=false"
        ) from err
    return SummaryWriter


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def scalar_tags(record: Mapping[str, Any]) -> dict[str, float]:
    """``{tag: value}`` of a record's finite numeric entries (``train/loss``, ``monitor/F_s/identity``, ...)."""
    kind = str(record.get("kind", "record"))
    prefix = _PREFIX.get(kind, kind)
    return {f"{prefix}/{key}": float(value) for key, value in record.items()
            if key not in _COORDINATES and _is_number(value)}


class TensorBoardLogger(TrainerCallback):
    """Writes the trainer's records to TensorBoard event files (main rank only).

    Args:
        log_dir: where the event files go (default ``<run>/tensorboard``).
        writer_class: the SummaryWriter class (default torch's; looked up now,
            so a missing package fails before training starts).
    """

    def __init__(self, log_dir: str | Path | None = None, writer_class: type | None = None) -> None:
        self.writer_class = writer_class or summary_writer_class()
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.writer: Any = None

    def on_fit_start(self, trainer: "Trainer") -> None:
        if self.writer is not None:
            return
        log_dir = self.log_dir or Path(trainer.out_dir) / LOG_SUBDIR
        # a resumed run redoes the steps after its checkpoint: drop what an earlier writer logged for them
        purge_step = trainer.step + 1 if trainer.step > 0 else None
        self.writer = self.writer_class(log_dir=str(log_dir), purge_step=purge_step)

    def on_record(self, trainer: "Trainer", record: Record) -> None:
        if self.writer is None:
            return
        step = int(record.get("step", trainer.step))
        if record.get("kind") == "error":
            self.writer.add_text("error", str(record.get("message", "")), global_step=step)
        for tag, value in scalar_tags(record).items():
            self.writer.add_scalar(tag, value, global_step=step)
        if record.get("kind") in ("epoch", "error"):
            self.writer.flush()

    def on_fit_end(self, trainer: "Trainer") -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (also safe when never opened)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
