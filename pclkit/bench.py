"""``python -m pclkit bench``: throughput benchmarks.

Speed targets of the project are checked here, never in unit tests.
Each ``--what`` section prints images/second and, with ``--json FILE``, writes
all figures to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch


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
    """SynthFaces rendering speed at 64x64 (target >= 2,000 img/s on 2 cores)."""
    raise NotImplementedError("render benchmark lands with SynthFaces (issue 2)")


def bench_augment(quick: bool = False) -> dict[str, Any]:
    """Appearance and pose augmentation families on 256 64x64 images (target >= 5,000 img/s)."""
    raise NotImplementedError("augment benchmark lands with the augmentations (issue 3)")


def bench_train(quick: bool = False) -> dict[str, Any]:
    """SimCLR and PCL step img/s, fp32 vs bf16, peak memory, for synth_cpu and paper presets."""
    raise NotImplementedError("training benchmark lands with the trainer (issue 5)")


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
