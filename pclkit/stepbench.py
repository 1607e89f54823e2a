"""Timing of one training step (used by ``python -m pclkit bench --what train``).

Speed figures are measured here, never asserted in unit tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from pclkit import distributed
from pclkit.batches import MemoryBatches
from pclkit.config import TrainConfig, resolve_config
from pclkit.flops import PartTimer, count_step_flops, module_part
from pclkit.runtime import select_device
from pclkit.trainer import Trainer, build_pose_bank


def upper_median(values: list[float]) -> float:
    """The upper median of timings (the middle one, or the larger of the two middle ones)."""
    return sorted(values)[len(values) // 2]


def image_entry_points(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules every encoded image passes through once: the encoder's trunk (SimCLR, PCL,
    PCFRL), or the top-level children :func:`pclkit.flops.module_part` counts as encoder (ProS's
    student and teacher networks, so the teacher's global crops count too)."""
    if hasattr(model, "encoder"):
        return [model.encoder.trunk]
    entries = [child for name, child in model.named_children() if module_part(name) == "encoder"]
    if not entries:
        raise ValueError(f"no encoder to count images through in {type(model).__name__}")
    return entries


def benchmark_step(config: TrainConfig, steps: int = 5, warmup: int = 2, profile: bool = True,
                   prepare: Callable[[Trainer], None] | None = None) -> dict[str, Any]:
    """Time the training step of ``config`` on one fixed batch (no data loading, no I/O in the loop).

    The batch is random images, or SynthFaces faces with their factors when the
    pose change re-renders them (``render3d``, the ``synth_cpu`` recipe; with
    ``views.render3d_bank`` their pose bank is rendered first, outside the timing).

    Runs the exact :meth:`Trainer.train_step` (views, one encoder pass,
    backward, optimiser) ``warmup + steps`` times on one fixed batch and
    returns medians: ``seconds_per_step``, ``img_per_s`` (source images of
    the batch per wall second), ``cpu_seconds_per_step`` / ``img_per_cpu_s``
    (process CPU time, all threads) and ``encoder_images_per_step`` (all views),
    plus ``first_step_seconds`` (where one-off costs such as compilation land).
    ``prepare`` is called with the trainer before the first step (e.g. to wrap
    its modules in ``torch.compile``; ``benchmarks/compile_step.py``).

    With ``profile``, after the timed steps: ``flops_per_step`` (matmuls and
    convolutions, forward + backward, counted by :func:`pclkit.flops.count_step_flops`) and ``seconds_by_part`` (mean of
    ``steps`` more steps timed part by part with :class:`pclkit.flops.PartTimer`;
    the hooks do not touch the headline timing).
    """
    import tempfile

    device = select_device(config.runtime.device)
    size, batch = config.model.image_size, config.optim.batch_size
    factors = pose = bank = None
    if config.views.pose_change == "render3d":  # re-renders ŝ: needs SynthFaces images and their factors
        from pclkit.data.synthfaces import synthfaces_split

        faces = synthfaces_split("train", batch, size, config.data.seed, config.data.pose_limits, config.data.pose_prior)
        images, labels = faces.tensors(progress=False)
        factors, pose = faces.factors, labels["pose"]
        # with views.render3d_bank the step picks from it, as in training
        bank = build_pose_bank(config, faces)
    else:
        images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        source = MemoryBatches(images, batch, distributed.DistInfo(), config.seed, device, pose=pose, factors=factors,
                               pose_bank=bank)
        trainer = Trainer(config, tmp, batches=source)
        if prepare is not None:
            prepare(trainer)
        batches = next(trainer.batches.epoch(0, 0, trainer._streams()))
        encoded: list[int] = []
        for entry in image_entry_points(trainer.model):
            entry.register_forward_hook(lambda m, inputs, out: encoded.append(inputs[0].shape[0]))
        times, cpu_times = [], []
        for _ in range(warmup + steps):
            encoded.clear()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            trainer.train_step(batches)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        encoder_images = float(sum(encoded))  # of the last timed step
        profiled: dict[str, Any] = {}
        if profile:
            flops = count_step_flops(lambda: trainer.train_step(batches))
            timer = PartTimer(trainer.model, trainer.optimizer)
            with timer.attached(trainer.views, "build"):
                for _ in range(steps):
                    with timer.step():
                        trainer.train_step(batches)
            profiled = {"flops_per_step": flops, "seconds_by_part": timer.mean_seconds()}

    def median(values: list[float]) -> float:
        return upper_median(values[warmup:])

    return {
        "seconds_per_step": median(times),
        "img_per_s": batch / median(times),
        # CPU seconds of all threads: on a shared machine wall time depends on the neighbours
        "cpu_seconds_per_step": median(cpu_times),
        "img_per_cpu_s": batch / median(cpu_times),
        "encoder_images_per_step": encoder_images,
        "first_step_seconds": times[0],
        **profiled,
    }


def benchmark_case(preset: str, overrides: list[str], steps: int = 3, warmup: int = 1) -> dict[str, Any]:
    """:func:`benchmark_step` of a preset plus peak memory; meant to run in a fresh process.

    Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of this step
    (``peak_cuda_alloc_mib``); on CPU the process's peak resident set size from
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (``peak_rss_mib``; it includes
    the ~0.5 GB of imported libraries, reported alone as ``rss_before_mib``).
    """
    import resource

    config = resolve_config(preset, overrides)
    device = select_device(config.runtime.device)
    result: dict[str, Any] = {"batch": config.optim.batch_size, "num_negatives": config.views.num_negatives,
                              "encoder_chunks": config.runtime.encoder_chunks,
                              "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        result["rss_before_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.update(benchmark_step(config, steps=steps, warmup=warmup))
    if device.type == "cuda":
        result["peak_cuda_alloc_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result
