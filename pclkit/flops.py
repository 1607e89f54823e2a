"""Model FLOP utilisation (MFU) of a training step, and where its time goes.

MFU = (FLOPs of one step) x (steps per second) / (peak FLOP/s of the machine),
as in the PaLM paper (Chowdhery et al., 2022, App. B), with two differences
that suit a workbook that runs on laptops:

* the FLOPs are *counted*, not derived from a formula:
  :class:`torch.utils.flop_counter.FlopCounterMode` records every matmul and
  convolution of the step, forward and backward (element-wise work such as
  activations, normalisation, augmentation and the optimiser is not counted);
* the peak is *measured* on the machine itself: the FLOP/s of a large square
  matmul in the step's precision (:func:`measure_matmul_peak`), so the ratio
  says how close the step comes to what these cores do in practice, not to a
  datasheet number.

:class:`PartTimer` splits the wall time of a step into views, encoder,
decoder, heads (projection heads), optimiser and the rest (losses, glue),
timing each top-level module's forward *and* backward with module hooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["PARTS", "PartTimer", "count_step_flops", "measure_matmul_peak", "module_part", "timed_modules"]

#: the parts of a step, in display order
PARTS = ("views", "encoder", "decoder", "heads", "losses+other", "optimiser")


def module_part(name: str) -> str | None:
    """The part of a top-level model child: ``encoder``, ``decoder``, ``heads`` (projection heads), or None.

    ProS's ``student`` and ``teacher`` networks (ViT + prototype head, :mod:`pclkit.models.vit`)
    count as encoder: their small prototype heads are timed with the ViTs.
    """
    if name in ("encoder", "student", "teacher"):
        return "encoder"
    if name == "decoder":
        return "decoder"
    if name.endswith("_head") or name == "projector":
        return "heads"
    return None


def timed_modules(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(path, module, part)`` of the modules whose calls make up the encoder, decoder and heads.

    The encoder is a container whose pieces the model calls one by one
    (trunk, pools, branches), so its children are listed instead of itself.
    """
    found = []
    for name, child in model.named_children():
        part = module_part(name)
        if name == "encoder":
            found += [(f"{name}.{sub}", grandchild, part) for sub, grandchild in child.named_children()]
        elif part is not None:
            found.append((name, child, part))
    return found


def measure_matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", size: int = 2048,
                        min_seconds: float = 1.0) -> float:
    """FLOP/s of repeated ``(size x size) @ (size x size)`` matmuls in ``dtype`` on ``device``.

    2 * size**3 FLOPs per matmul; the best of several timed rounds of at
    least ``min_seconds / 4`` each (after one warm-up call).
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.mm(a, b)
    sync()
    best = 0.0
    deadline = time.perf_counter() + min_seconds
    while time.perf_counter() < deadline or best == 0.0:
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < min_seconds / 4:
            torch.mm(a, b)
            calls += 1
            sync()
        best = max(best, 2 * size**3 * calls / (time.perf_counter() - start))
    return best


def count_step_flops(step: Callable[[], Any]) -> float:
    """FLOPs of one call of ``step`` (e.g. a training step): every matmul and convolution, forward and backward.

    Only the total: FlopCounterMode's per-module split attributes some
    backward work to more than one module, so the profile by part is in time
    (:class:`PartTimer`).
    """
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


class PartTimer:
    """Wall seconds per part of training steps (see :data:`PARTS`), accumulated over steps.

    Times the forward and the backward of each top-level child of ``model``
    (module forward hooks and full backward hooks; the encoder's input is
    made to require a gradient while attached, so that the first encoder
    module's backward has an end to time: one small extra gradient), the view building
    (``views_fn`` is wrapped) and the optimiser step (optimiser hooks). The
    rest of the step is ``losses+other``. Synchronous devices only (CPU); on
    CUDA every hook synchronises, which slows the step a little.

    Example::

        timer = PartTimer(trainer.model, trainer.optimizer)
        with timer.attached(trainer.views, "build"):
            for _ in range(3):
                with timer.step():
                    trainer.train_step(batches)
        timer.mean_seconds()   # {"views": ..., "encoder": ..., ...}
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.steps = 0
        self._total = 0.0
        self._starts: dict[tuple[str, str], float] = {}
        self._device = next(model.parameters()).device

    def _now(self) -> float:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        return time.perf_counter()

    def _open(self, key: tuple[str, str]) -> None:
        self._starts[key] = self._now()

    def _close(self, key: tuple[str, str], part: str) -> None:
        start = self._starts.pop(key, None)
        if start is not None:
            self.seconds[part] += self._now() - start

    @contextmanager
    def attached(self, views_owner: Any, views_method: str = "build") -> Iterator[PartTimer]:
        """Install the hooks (and wrap ``views_owner.views_method``) for the duration of the block."""
        handles = []
        modules = timed_modules(self.model)
        if modules:
            # without an input that needs a gradient, a module's full backward hook fires before its backward
            handles.append(modules[0][1].register_forward_pre_hook(self._input_needs_grad))
        for name, child, part in modules:
            handles.append(child.register_forward_pre_hook(lambda m, a, n=name: self._open((n, "fwd"))))
            handles.append(child.register_forward_hook(lambda m, a, o, n=name, p=part: self._close((n, "fwd"), p)))
            handles.append(child.register_full_backward_pre_hook(lambda m, g, n=name: self._open((n, "bwd"))))
            handles.append(child.register_full_backward_hook(
                lambda m, gi, go, n=name, p=part: self._close((n, "bwd"), p)))
        handles.append(self.optimizer.register_step_pre_hook(lambda *a: self._open(("optim", "step"))))
        handles.append(self.optimizer.register_step_post_hook(lambda *a: self._close(("optim", "step"), "optimiser")))
        original = getattr(views_owner, views_method)

        def timed_views(*args: Any, **kwargs: Any) -> Any:
            start = self._now()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds["views"] += self._now() - start

        setattr(views_owner, views_method, timed_views)
        try:
            yield self
        finally:
            setattr(views_owner, views_method, original)
            for handle in handles:
                handle.remove()

    @staticmethod
    def _input_needs_grad(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.detach().requires_grad_(True) if torch.is_tensor(a) and a.is_floating_point()
                     and not a.requires_grad else a for a in args)

    @contextmanager
    def step(self) -> Iterator[None]:
        """Time one whole step (its parts come from the hooks)."""
        start = self._now()
        yield
        self._total += self._now() - start
        self.steps += 1

    def mean_seconds(self) -> dict[str, float]:
        """Mean seconds per step of each part; ``losses+other`` is the step's remaining time."""
        steps = max(self.steps, 1)
        timed = {part: value / steps for part, value in self.seconds.items() if part != "losses+other"}
        timed["losses+other"] = max(self._total / steps - sum(timed.values()), 0.0)
        return {part: timed[part] for part in PARTS}
