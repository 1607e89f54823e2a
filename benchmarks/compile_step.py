"""Does ``torch.compile`` pay for the main job's training steps? Eager beside compiled.

Times :meth:`pclkit.trainer.Trainer.train_step` of a preset (default ``synth_cpu``, the
main job) for SimCLR and PCL, once eager and once with the model's convolutional parts
(the encoder's trunk and branches, PCL's swap decoder) wrapped in ``torch.compile``
(inductor; the losses, views and optimiser stay eager). Each case runs in a fresh
process, cases alternate over ``--rounds`` because speed on a shared machine drifts,
and each reports the median step after ``--warmup`` steps plus the first step, where the
compilation lands::

    python benchmarks/compile_step.py --rounds 2 --json docs/results/compile_step_xeon.json

Prints seconds per step per round and the ratio of the medians (eager / compiled: above
1 means compiling pays).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from pclkit.trainer import Trainer

CASES = ("eager", "compiled")


def compile_parts(trainer: Trainer) -> None:
    """Wrap the encoder's trunk and branches and the swap decoder (if any) in ``torch.compile``."""
    encoder = trainer.model.encoder
    for name in ("trunk", "face_branch", "pose_branch"):
        part = getattr(encoder, name, None)
        if part is not None:
            setattr(encoder, name, torch.compile(part))
    if getattr(trainer.model, "decoder", None) is not None:
        trainer.model.decoder = torch.compile(trainer.model.decoder)


def one_case(preset: str, method: str, case: str, steps: int, warmup: int) -> dict[str, float]:
    """Time one (method, case) in this process."""
    from pclkit.config import resolve_config
    from pclkit.stepbench import benchmark_step

    config = resolve_config(preset, [f"method={method}"])
    result = benchmark_step(config, steps=steps, warmup=warmup, profile=False,
                            prepare=compile_parts if case == "compiled" else None)
    return {"seconds_per_step": result["seconds_per_step"], "first_step_seconds": result["first_step_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="synth_cpu")
    parser.add_argument("--methods", nargs="+", default=["simclr", "pcl"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (the first compiles)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child process
        print("RESULT", json.dumps(one_case(args.preset, *args.one, args.steps, args.warmup)), flush=True)
        return
    timings: dict[str, dict[str, list[float]]] = {}
    for round_index in range(args.rounds):
        for method in args.methods:
            for case in CASES:
                command = [sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--one", method, case]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT"))[7:])
                entry = timings.setdefault(f"{method}_{case}", {"seconds_per_step": [], "first_step_seconds": []})
                for key, value in result.items():
                    entry[key].append(round(value, 4))
                print(f"round {round_index + 1}, {method:6s} {case:8s}: {result['seconds_per_step']:.3f} s/step "
                      f"(first step {result['first_step_seconds']:.1f} s)", flush=True)
    report: dict[str, object] = {"preset": args.preset, "threads": torch.get_num_threads(),
                                 "torch": torch.__version__, "timings": timings}
    for method in args.methods:
        eager, compiled = (statistics.median(timings[f"{method}_{case}"]["seconds_per_step"]) for case in CASES)
        report[f"{method}_eager_over_compiled"] = round(eager / compiled, 3)
        print(f"{method}: eager / compiled = {eager / compiled:.2f}x (medians; above 1: compiling pays)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
