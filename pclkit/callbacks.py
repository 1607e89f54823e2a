"""Callbacks of the pretraining loop (:class:`pclkit.trainer.Trainer`).

A callback is an object with three hooks, all optional (the base class
:class:`TrainerCallback` implements each as a no-op):

* ``on_fit_start(trainer)`` -- before the first step of :meth:`Trainer.fit`
  (also when a run is resumed);
* ``on_record(trainer, record)`` -- after ``record`` (a dict with ``"kind"``:
  ``"step"``, ``"epoch"``, ``"error"`` or a callback's own kind, such as
  ``"monitor"``) was appended to the run's ``metrics.jsonl``;
* ``on_fit_end(trainer)`` -- after the final checkpoint of :meth:`Trainer.fit`
  (not after an error).

Hooks run on the main rank only (the rank that writes ``metrics.jsonl``). A
callback writes a record of its own with :meth:`Trainer.log`, which passes it
on to every callback in turn, so a live plot sees it too. Callbacks use the
trainer's public attributes (``config``, ``model``, ``device``, ``step``,
``out_dir``, ``dist``) and nothing private.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pclkit.trainer import Trainer

#: a record of ``metrics.jsonl``: ``{"kind": ..., "step": ..., ...}``
Record = Mapping[str, Any]


class TrainerCallback:
    """Base class of the trainer's callbacks; override the hooks you need."""

    def on_fit_start(self, trainer: "Trainer") -> None:
        """Called once when :meth:`Trainer.fit` starts."""

    def on_record(self, trainer: "Trainer", record: Record) -> None:
        """Called for every record written to ``metrics.jsonl`` (after it was written)."""

    def on_fit_end(self, trainer: "Trainer") -> None:
        """Called once when :meth:`Trainer.fit` has finished and saved its checkpoint."""


class RecordFunction(TrainerCallback):
    """Adapter: a plain function of one record as a callback (e.g. ``records.append``)."""

    def __init__(self, function: Callable[[dict[str, Any]], None]) -> None:
        self.function = function

    def on_record(self, trainer: "Trainer", record: Record) -> None:
        self.function(dict(record))

    def __repr__(self) -> str:
        return f"RecordFunction({self.function!r})"


def as_callback(callback: TrainerCallback | Callable[[dict[str, Any]], None]) -> TrainerCallback:
    """A :class:`TrainerCallback` as it is; a plain function of a record wrapped in :class:`RecordFunction`."""
    if isinstance(callback, TrainerCallback):
        return callback
    hooks = ("on_fit_start", "on_record", "on_fit_end")
    if any(callable(getattr(callback, hook, None)) for hook in hooks):
        return callback  # type: ignore[return-value]  # duck-typed callback object
    if callable(callback):
        return RecordFunction(callback)
    raise TypeError(f"a trainer callback needs on_record/on_fit_start/on_fit_end or must be callable, got {callback!r}")
