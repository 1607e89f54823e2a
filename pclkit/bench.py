"""``python -m pclkit bench``: throughput benchmarks.

Speed targets of the project are checked here, never in unit tests.
Each ``--what`` section prints images/second and, with ``--json FILE``, writes
all figures to a JSON file.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pclkit.flops import measure_matmul_peak
from pclkit.methods import MAIN_COMPARISON
from pclkit.runtime import native_bf16


def time_it(fn: Callable[[], Any], n_images: int, repeats: int = 5, warmup: int = 1) -> float:
    """Median images/second of ``fn`` (which processes ``n_images`` per call)."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(n_images / (time.perf_counter() - start))
    rates.sort()
    return rates[len(rates) // 2]


def bench_render(quick: bool = False) -> dict[str, Any]:
    """SynthFaces rendering speed at 64x64 (target >= 2,000 img/s on 2 cores).

    Raw ray casting of a batch of 256 with the defaults (2x2 supersampling,
    mixed resolution, the ``auto`` backend), with full-resolution supersampling,
    without supersampling, and the defaults with the torch backend; each with
    torch's current thread count and with one thread
    (on a busy shared machine one thread is often faster). Then the in-memory
    cache that ``SynthFaces.tensors()`` builds (what training reads).
    """
    from pclkit.data.synthfaces import SynthFaces, fused, render, sample_factors

    batch = 256
    repeats = 2 if quick else 5
    factors = sample_factors("train", batch, seed=0)
    threads = torch.get_num_threads()
    result: dict[str, Any] = {"size": 64, "batch": batch, "threads": threads, "target_img_per_s": 2000}
    # the default backend ("auto": the fused numba loop on CPU where numba is installed), then the
    # torch code at the default quality beside it
    variants = {
        "default": {},  # supersample=2, mixed_resolution=True
        "ss2_full": {"mixed_resolution": False},
        "ss1": {"supersample": 1},
        "default_torch": {"backend": "torch"},
    }
    result["backend"] = "fused" if fused.available() else "torch"
    for thread_count in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(thread_count)
        try:
            for name, options in variants.items():
                rate = time_it(functools.partial(render, factors, 64, **options), batch, repeats=repeats)
                result[f"render_{name}_{thread_count}thr_img_per_s"] = round(rate, 1)
                print(f"  render 64x64 {name:13s} ({thread_count} thread(s)): {rate:,.0f} img/s")
        finally:
            torch.set_num_threads(threads)
    raw = [v for k, v in result.items() if k.startswith("render_default_") and "torch" not in k]
    result["render_default_best_img_per_s"] = max(raw)
    result["raw_meets_target"] = max(raw) >= 2000

    n_cached = 1024 if quick else 4096
    with tempfile.TemporaryDirectory() as empty:  # an empty cache folder: render, not read $PCLKIT_SYNTH_CACHE
        dataset = SynthFaces("train", n=n_cached, cache_dir=empty)
        start = time.perf_counter()
        images, _ = dataset.tensors()
        result["cache_build_img_per_s"] = round(n_cached / (time.perf_counter() - start), 1)

    def read_cached_batches() -> None:
        for first in range(0, n_cached, batch):
            images[first : first + batch].float().div_(255)

    rate = time_it(read_cached_batches, n_cached, repeats=repeats)
    result["cached_img_per_s"] = round(rate, 1)
    result["cached_meets_target"] = rate >= 2000
    print(f"  cache build (render {n_cached}): {result['cache_build_img_per_s']:,.0f} img/s; cached batches: {rate:,.0f} img/s")
    return result


def bench_augment(quick: bool = False) -> dict[str, Any]:
    """Appearance and pose augmentation families on 256 64x64 images (target >= 5,000 img/s)."""
    from pclkit.augment import AppearanceAugment, add_gaussian_noise, make_pose_change, quadrant_patches
    from pclkit.data.synthfaces import render, sample_factors

    batch, size, target = 256, 64, 5000.0
    repeats = 3 if quick else 15
    factors = sample_factors("train", batch, seed=0)
    images = render(factors, size=size)
    generator = torch.Generator().manual_seed(0)
    off = dict(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, gradient_p=0.0)
    reference = AppearanceAugment()
    flip, roll = make_pose_change("flip"), make_pose_change("roll")
    ops: dict[str, Callable[[], Any]] = {
        "appearance": lambda: reference(images, generator),
        "flip": lambda: flip(images, factors.pose, generator),
        "roll": lambda: roll(images, factors.pose, generator),
        # per-op breakdown of the appearance family (each op applied to every image)
        "appearance.colour": lambda: AppearanceAugment(**{**off, "jitter_p": 1.0, "grayscale_p": 0.2})(
            images, generator
        ),
        "appearance.blur": lambda: AppearanceAugment(**{**off, "blur_p": 1.0})(images, generator),
        "appearance.gradient": lambda: AppearanceAugment(**{**off, "gradient_p": 1.0})(images, generator),
        "appearance.noise": lambda: add_gaussian_noise(images, generator, sigma=0.4),
        "appearance.quadrant_patches": lambda: quadrant_patches(images, generator),
    }

    def cpu_rate(fn: Callable[[], Any]) -> float:
        # images per CPU-second of this process (all threads): less sensitive than wall time
        # to other processes on a shared machine
        start = time.process_time()
        for _ in range(repeats):
            fn()
        return batch * repeats / max(time.process_time() - start, 1e-9)

    rates: dict[str, Any] = {}
    cpu_rates: dict[str, float] = {}
    for name, fn in ops.items():
        rates[name] = round(time_it(fn, batch, repeats=repeats), 1)
        cpu_rates[name] = round(cpu_rate(fn), 1)
        verdict = "" if "." in name else (" ok" if rates[name] >= target else " BELOW TARGET")
        print(f"  {name:30s} {rates[name]:10.0f} img/s  ({cpu_rates[name]:8.0f} img per CPU-s){verdict}", flush=True)
    # on an oversubscribed machine two OpenMP threads mostly wait for each other; one thread
    # shows what a single core delivers (the trainer may run augmentation beside the model)
    single_thread: dict[str, float] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in ("appearance", "flip", "roll"):
            single_thread[name] = round(time_it(ops[name], batch, repeats=repeats), 1)
            print(f"  {name + ' (1 thread)':30s} {single_thread[name]:10.0f} img/s", flush=True)
    finally:
        torch.set_num_threads(threads)
    # render3d is one SynthFaces render (bench_render measures the renderer): a smaller batch, one pass
    small = 64
    render3d = make_pose_change("render3d")
    rates["render3d"] = round(
        time_it(lambda: render3d(images[:small], None, generator, factors=factors[:small]), small, repeats=1, warmup=0),
        1,
    )
    print(f"  {'render3d (64 images)':30s} {rates['render3d']:10.0f} img/s", flush=True)
    return {
        "batch": batch,
        "size": size,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "target_img_per_s": target,
        "img_per_s": rates,
        "img_per_cpu_s": cpu_rates,
        "img_per_s_1_thread": single_thread,
        "meets_target": {name: max(rates[name], single_thread[name]) >= target for name in single_thread},
    }


def bench_train(quick: bool = False) -> dict[str, Any]:
    """SimCLR and PCL step img/s, fp32 vs bf16, peak memory, model FLOP utilisation (MFU) and a
    profile by part (views, encoder, decoder, heads, losses, optimiser) for the synth_cpu and paper presets.

    MFU = counted FLOPs per step / seconds per step / the FLOP/s of a 2048^2
    matmul in the same precision measured here (:mod:`pclkit.flops`).

    Each case runs in a fresh Python process (so the CPU peak RSS is its own)
    through :func:`pclkit.stepbench.benchmark_case` on one fixed batch. Variants:
    ``fp32`` (NCHW), ``fp32_cl`` (channels_last) and ``bf16_cl`` (bf16
    autocast + channels_last). On a CPU the ``paper`` preset (FaceCycle,
    M = 100 negatives) runs with batch 4 (quick: also M = 16) instead of
    256, which would take minutes per step; img/s is per source image. Where
    bf16 is emulated (CPUs without AVX-512 BF16 / AMX) the bf16 cases are skipped.
    """
    import subprocess
    import sys

    cuda = torch.cuda.is_available()
    steps, warmup = (1, 1) if quick else (3, 1)
    paper_cpu = ["optim.batch_size=4", "views.num_negatives=16"] if quick else ["optim.batch_size=4"]
    presets = {"synth_cpu": [], "paper": ["data.source=synth", *([] if cuda else paper_cpu)]}
    variants = {
        "fp32": ["runtime.precision=fp32", "runtime.channels_last=false"],
        "fp32_cl": ["runtime.precision=fp32", "runtime.channels_last=true"],
        "bf16_cl": ["runtime.precision=bf16", "runtime.channels_last=true"],
    }
    if quick:
        del variants["fp32_cl"]
    device = "cuda" if cuda else "cpu"
    native = native_bf16(torch.device(device))
    if not native:
        # emulated bf16 runs 10-13x slower than fp32 on AVX2 CPUs (the paper step alone would take
        # ~20 minutes), 1.5x on AVX-512 without BF16
        del variants["bf16_cl"]
        print("  bf16 is emulated on this device (no AVX-512 BF16 / AMX): bf16 cases skipped", flush=True)
    code = (
        "import json, sys\n"
        "from pclkit.stepbench import benchmark_case\n"
        "print('RESULT ' + json.dumps(benchmark_case(*json.loads(sys.argv[1]))))\n"
    )
    report: dict[str, Any] = {"memory": "peak_cuda_alloc_mib (torch.cuda.max_memory_allocated)" if cuda
                              else "peak_rss_mib (resource.getrusage ru_maxrss, whole process)"}
    # the peak MFU is measured against: a 2048^2 matmul in each precision, on these threads / this GPU
    peaks = {"fp32": measure_matmul_peak(torch.float32, device)}
    if native:
        peaks["bf16"] = measure_matmul_peak(torch.bfloat16, device)
    report["bf16_native"] = native
    report["matmul_peak_gflops"] = {k: round(v / 1e9, 1) for k, v in peaks.items()}
    print(f"  matmul peak (2048^2, {torch.get_num_threads()} threads): "
          + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()), flush=True)
    for preset, extra in presets.items():
        for method in MAIN_COMPARISON:
            rates, cpu_rates = {}, {}
            for variant, options in variants.items():
                overrides = [*extra, f"method={method}", *options, "runtime.progress=false"]
                job = subprocess.run([sys.executable, "-c", code, json.dumps([preset, overrides, steps, warmup])],
                                     capture_output=True, text=True)
                lines = [line for line in job.stdout.splitlines() if line.startswith("RESULT ")]
                if job.returncode != 0 or not lines:
                    raise RuntimeError(f"bench case {preset}/{method}/{variant} failed:\n{job.stderr[-2000:]}")
                result = json.loads(lines[-1][len("RESULT "):])
                precision = "bf16" if variant.startswith("bf16") else "fp32"
                achieved = result["flops_per_step"] / result["seconds_per_step"]
                result["gflops_per_s"] = achieved / 1e9
                result["mfu"] = achieved / peaks[precision]
                report[f"{preset}.{method}.{variant}"] = result
                rates[variant] = result["img_per_s"]
                cpu_rates[variant] = result["img_per_cpu_s"]
                memory = result.get("peak_cuda_alloc_mib", result.get("peak_rss_mib"))
                chunks = f", {result['encoder_chunks']} encoder chunks" if result["encoder_chunks"] > 1 else ""
                print(f"  {preset:9s} {method:6s} {variant:7s} batch {result['batch']:3d}{chunks}: "
                      f"{result['img_per_s']:8.1f} img/s, {result['img_per_cpu_s']:7.1f} img/CPU-s "
                      f"({result['seconds_per_step']:.3f} s/step, {result['encoder_images_per_step']:.0f} "
                      f"encoder images)  peak {memory:,.0f} MiB", flush=True)
                parts = ", ".join(f"{k} {v * 1e3:.0f}" for k, v in result["seconds_by_part"].items())
                print(f"  {'':9s} {'':6s} {variant:7s} {result['flops_per_step'] / 1e9:.1f} GFLOP/step, "
                      f"{result['gflops_per_s']:.0f} GFLOP/s = MFU {100 * result['mfu']:.0f}% of the {precision} "
                      f"matmul peak; ms by part: {parts}", flush=True)
            for variant in rates:
                if variant != "fp32":
                    speedup = rates[variant] / rates["fp32"]
                    cpu_speedup = cpu_rates[variant] / cpu_rates["fp32"]
                    report[f"{preset}.{method}.speedup_{variant}_vs_fp32"] = round(speedup, 2)
                    report[f"{preset}.{method}.cpu_speedup_{variant}_vs_fp32"] = round(cpu_speedup, 2)
                    print(f"  {preset:9s} {method:6s} {variant} / fp32 = {speedup:.2f}x wall, "
                          f"{cpu_speedup:.2f}x CPU time")
    report["target_bf16_cl_vs_fp32_synth_cpu_pcl"] = 2.5
    if native:
        report["meets_target"] = report["synth_cpu.pcl.speedup_bf16_cl_vs_fp32"] >= 2.5
    report["target_mfu"] = {"synth_cpu": 0.60, "paper": 0.85}
    return report


SECTIONS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "render": bench_render,
    "augment": bench_augment,
    "train": bench_train,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--what", choices=[*SECTIONS, "all"], default="all", help="which benchmark to run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke check, numbers are noisy)")


def run(args: argparse.Namespace) -> int:
    names = list(SECTIONS) if args.what == "all" else [args.what]
    report: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }
    }
    for name in names:
        print(f"== bench {name} ==", flush=True)
        try:
            report[name] = SECTIONS[name](args.quick)
        except NotImplementedError as err:
            print(f"  skipped: {err}")
            report[name] = {"skipped": str(err)}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0
