"""SynthFaces rendering speed of this checkout beside another one (e.g. an older commit).

Speed on a shared machine drifts by tens of percent within minutes, so the two
renderers are timed in alternation: each round runs one fresh process per
checkout and thread count, each rendering the same 256 train-split
faces at 64 px (default quality) and reporting the best of ``--repeats``.

Make the other checkout with ``git worktree add /tmp/old <commit>``, then::

    python benchmarks/render_side_by_side.py /tmp/old --rounds 3 --json benchmarks/results/render_side_by_side.json

Prints img/s per round and the ratio of the medians (this / other).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

TIMING = """
import sys, time, torch
from pclkit.data.synthfaces import render, sample_factors
torch.set_num_threads(int(sys.argv[1]))
faces = sample_factors("train", 256, seed=0)
render(faces[:32])  # warm-up
best = float("inf")
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    render(faces)
    best = min(best, time.perf_counter() - start)
print("RATE", 256 / best)
"""


def rate(tree: Path, threads: int, repeats: int) -> float:
    """img/s of the renderer in ``tree`` (its ``pclkit`` package first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    job = subprocess.run([sys.executable, "-c", TIMING, str(threads), str(repeats)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    return float(next(line for line in job.stdout.splitlines() if line.startswith("RATE")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="the other checkout (a folder holding its pclkit/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    this = Path(__file__).resolve().parent.parent
    if not (args.other / "pclkit").is_dir():
        parser.error(f"{args.other} holds no pclkit/ package")
    rates: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        for threads in args.threads:
            for label, tree in (("other", args.other), ("this", this)):
                value = rate(tree, threads, args.repeats)
                rates.setdefault(f"{label}_{threads}thr", []).append(round(value, 1))
                print(f"round {round_index + 1}, {threads} thread(s), {label:5s}: {value:6.0f} img/s", flush=True)
    report = {"rates_img_per_s": rates}
    for threads in args.threads:
        ratio = statistics.median(rates[f"this_{threads}thr"]) / statistics.median(rates[f"other_{threads}thr"])
        report[f"ratio_of_medians_{threads}thr"] = round(ratio, 2)
        print(f"{threads} thread(s): this / other = {ratio:.2f}x (medians)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
