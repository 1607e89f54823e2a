"""The `paper` joint step with its encoder pass split into ghost batches (``runtime.encoder_chunks``).

One encoder pass over all views of a step is the default. On a CPU whose last-level cache a large
bf16 pass overflows, the same work in interleaved chunks runs faster; BatchNorm then normalises each
chunk by its own statistics (:func:`pclkit.methods.base.encode_in_chunks`). This times
:func:`pclkit.stepbench.benchmark_step` of the ``paper`` preset at batch B with M pose negatives (the
equal-work case of ``benchmarks/reference_side_by_side.py``: 704 encoder images at B 32, M 16) for
each chunk count, alternating the counts over ``--rounds`` rounds in one process:

    python benchmarks/encoder_chunks.py --chunks 1 2 4 8 --json benchmarks/results/encoder_chunks.json

A quick sweep only: in one long-lived process the later rounds favour the chunked pass (a warm
allocator and cache; 1.7x here against 1.19x in fresh processes). For a figure to quote, time fresh
processes beside the reference: ``benchmarks/reference_side_by_side.py --encoder-chunks K``.
"""

from __future__ import annotations

import argparse
import json

import torch

from pclkit.config import resolve_config
from pclkit.stepbench import benchmark_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--negatives", type=int, default=16)
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: dict[int, list[dict[str, float]]] = {k: [] for k in args.chunks}
    for round_ in range(args.rounds):
        for chunks in args.chunks:
            config = resolve_config("paper", [
                "data.source=synth", "runtime.device=cpu", f"optim.batch_size={args.batch}",
                f"views.num_negatives={args.negatives}", f"runtime.precision={args.precision}",
                f"runtime.encoder_chunks={chunks}", f"runtime.threads={args.threads}"])
            result = benchmark_step(config, steps=args.steps, warmup=1)
            rate = result["encoder_images_per_step"] / result["seconds_per_step"]
            rows[chunks].append({"seconds_per_step": result["seconds_per_step"], "encoder_img_per_s": rate})
            print(f"round {round_ + 1}: chunks {chunks}: {result['seconds_per_step']:.2f} s/step, "
                  f"{rate:.1f} encoder img/s ({int(result['encoder_images_per_step'])} images)", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"batch": args.batch, "negatives": args.negatives, "precision": args.precision,
                       "threads": args.threads, "rounds": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
