"""The method interface: what a self-supervised method declares, in one place.

A method (in the spirit of solo-learn's ``solo/methods``) is a small class that
says, for a :class:`pclkit.config.TrainConfig`:

* which **model** it trains (:meth:`Method.build_model`) and which **features**
  that model exposes for evaluation (``features``: a subset of F_s, F_f, F_p, F_fp);
* which **loss terms** are on (:meth:`Method.terms`), which **view families**
  each optimiser step needs (:meth:`Method.steps`), and how the terms are
  computed from one encoder pass over those views (:meth:`Method.loss_terms`);
* how the terms are weighted into the loss (:meth:`Method.term_scales`).

Nothing outside :mod:`pclkit.methods` compares method names: the trainer,
the objective, the evaluation and the figures ask the method object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # the config module imports this package lazily (validation)
    from pclkit.config import TrainConfig
    from pclkit.models import ModelConfig
    from pclkit.views import StepViews

__all__ = ["Method", "Step", "encode_in_chunks"]


def encode_in_chunks(model: nn.Module, images: Tensor, chunks: int = 1) -> dict[str, Tensor]:
    """``model(images)`` with the batch (N, 3, S, S) split into ``chunks`` interleaved ghost batches.

    Chunk c holds rows c, c + chunks, c + 2 chunks, ..., so every chunk mixes the step's view groups
    in the same proportions (contiguous chunks would give the two views of a positive pair different
    BatchNorm statistics, a shortcut for a contrastive loss). Outputs come back in the rows' order;
    autograd runs each chunk's backward on its own. With ``chunks`` = 1 or no BatchNorm in training
    mode the result equals one pass up to summation order; with BatchNorm each chunk is normalised by
    its own statistics ("ghost batch normalisation", Hoffer, Hubara & Soudry, NeurIPS 2017), as the
    reference code's ``nn.DataParallel`` replicas normalise per GPU. A batch of fewer than
    2 x ``chunks`` rows runs as one pass (a chunk of one row has no batch statistics).

    Returns ``{name: (N, D_name)}``.
    """
    if chunks <= 1 or images.shape[0] < 2 * chunks:
        return model(images)
    layout = torch.channels_last if images.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    rows = torch.arange(images.shape[0], device=images.device)
    order = torch.cat([rows[c::chunks] for c in range(chunks)])  # (N,): the input rows, chunk by chunk
    parts = [model(images[c::chunks].contiguous(memory_format=layout)) for c in range(chunks)]
    back = order.argsort()  # input row i sits at position back[i] of the concatenation
    return {name: torch.cat([part[name] for part in parts]).index_select(0, back) for name in parts[0]}


@dataclass(frozen=True)
class Step:
    """One optimiser step of a training iteration.

    name: ``joint`` (the whole objective at once) or a sub-step of an
        alternating schedule (``recon``, ``face``, ``pose`` for PCL).
    view_parts: the view families :class:`pclkit.views.ViewBuilder` builds for it.
    """

    name: str
    view_parts: tuple[str, ...]


class Method:
    """Base class of a pretraining method; subclasses set the class attributes.

    Class attributes:
        name: registry key (``method:`` in a config).
        label: display name in tables and figures.
        features: features the trained model exposes for evaluation, in display order.
        has_decoder: the model has ``decode(F_f, F_p)`` (pose swaps, swap fidelity).
        ablations: named config overrides (the paper's ablation rows), or empty.
        successor_of: the registered method whose paper this one claims to improve on (its
            claims are checked against it when both run), or None.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    features: ClassVar[tuple[str, ...]] = ("F_s",)
    has_decoder: ClassVar[bool] = False
    ablations: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    successor_of: ClassVar[str | None] = None
    #: a dataclass of the method's own knobs, read from the config's ``method_options`` (None: it has none)
    options_type: ClassVar[type | None] = None

    def __init__(self, config: "TrainConfig") -> None:
        self.config = config
        #: the parsed ``method_options`` (an ``options_type`` instance), or None
        self.options = self.parse_options(config.method_options)

    @classmethod
    def parse_options(cls, values: Mapping[str, Any]) -> Any:
        """``method_options`` of a config as an ``options_type`` instance; unknown keys list the valid ones."""
        if cls.options_type is None:
            if values:
                raise ValueError(f"method {cls.name!r} takes no method_options, got {sorted(values)}")
            return None
        valid = [f.name for f in dataclasses.fields(cls.options_type)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"unknown method_options {unknown} for method {cls.name!r}; valid: {', '.join(valid)}")
        return cls.options_type(**values)

    # -- model -------------------------------------------------------------

    @classmethod
    def build_model(cls, model_cfg: "ModelConfig") -> nn.Module:
        """A randomly initialised model for ``model_cfg`` (already resolved)."""
        raise NotImplementedError

    @classmethod
    def validate_model(cls, model_cfg: "ModelConfig") -> None:
        """Raise ``ValueError`` when the model config does not suit this method."""

    @classmethod
    def validate(cls, config: "TrainConfig") -> str | None:
        """A message saying why ``config`` does not suit this method, or None."""
        return None

    # -- objective -----------------------------------------------------------

    def terms(self) -> tuple[str, ...]:
        """The loss terms this run optimises, in logging order."""
        raise NotImplementedError

    def weighted_terms(self) -> tuple[str, ...]:
        """Terms whose weights Dynamic Weight Average adapts (none by default)."""
        return ()

    def steps(self) -> tuple[Step, ...]:
        """The optimiser steps of one iteration (one ``joint`` step by default)."""
        return (Step("joint", self.view_parts(self.terms())),)

    @staticmethod
    def view_parts(terms: tuple[str, ...]) -> tuple[str, ...]:
        """View families needed by ``terms``: face views for L_face, pose views for
        L_pose, noisy inputs + clean targets for L_dis / L_orth / L_inv / L_cyc / L_adv / L_pred, mirrors
        of the pose positives for L_flip."""
        parts = []
        if "face" in terms:
            parts.append("face")
        if "pose" in terms:
            parts.append("pose")
        if {"dis", "orth", "inv", "cyc", "adv", "pred"} & set(terms):
            parts.append("recon")
        if "flip" in terms:
            parts.append("flip")
        return tuple(parts)

    def leaves_parameters_unused(self) -> bool:
        """True when some trainable parameters get no gradient in a step (DDP needs to know)."""
        return len(self.steps()) > 1

    def term_scales(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Multiplier of each term in the loss; ``weights`` holds the DWA ``alpha_<term>``."""
        return {name: float(weights.get(f"alpha_{name}", 1.0)) for name in self.terms()}

    def compute_terms(self, model: nn.Module, views: "StepViews", generator: torch.Generator | None,
                      channels_last: bool = False) -> dict[str, Tensor]:
        """The unweighted loss terms (and any ``diag_*`` diagnostics) of one step's ``views``.

        By default: ONE encoder pass over every view group of the step
        (``views.encoder_input()``), then :meth:`loss_terms`. A method whose
        views do not fit one pass (several resolutions, a teacher network)
        overrides this instead.
        """
        images, spans = views.encoder_input()  # (N, 3, S, S): every view group of the step
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # {"F_s": (N, D_s), ...}: the method's features
        features = encode_in_chunks(model, images, self.config.runtime.encoder_chunks)
        return self.loss_terms(model, views, features, spans, generator)

    def on_step_start(self, step: int, total_steps: int) -> None:
        """Called at the start of every iteration with its 0-based index and the run's total
        iterations (also the first iteration after a resume), e.g. for a warm-up. Nothing by default."""

    def after_optimizer_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called after every optimiser step with the (unwrapped) model, the 0-based index of the
        current iteration and the run's total iterations (e.g. a teacher's EMA update with a
        momentum schedule, a warm-up that ends). Nothing by default."""

    def loss_terms(
        self,
        model: nn.Module,
        views: "StepViews",
        features: Mapping[str, Tensor],
        spans: Mapping[str, tuple[int, int]],
        generator: torch.Generator | None,
    ) -> dict[str, Tensor]:
        """The unweighted loss terms of one step.

        ``features`` holds the model's features of ``views.encoder_input()``
        (one encoder pass; ``spans`` gives each view group's rows).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(terms={self.terms()})"
