"""What subnormal Gaussian taps cost: the face views' blur and the main job's steps, with and without them.

At 64 px SimCLR's blur sigma range [0.1, 2.0] (scaled by 64 / 224) gives sigmas of 0.03-0.57 px,
whose outer taps of the 7-tap kernel are subnormal float32 numbers (sigma 0.22: exp(-93) ~ 4e-41).
x86 cores compute with subnormals many times slower than with normal floats. Since this round
:func:`pclkit.augment.filters.gaussian_weights` sets taps below ``NEGLIGIBLE_TAP`` (1e-12) to 0;
this script times the blur (256 images, 3 x 64 x 64, sigmas as in training) and the `synth_cpu`
SimCLR and PCL steps with that threshold and with 0 (the old taps), in alternation, one process::

    python benchmarks/blur_denormals.py --json benchmarks/results/blur_denormals.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from pclkit.augment import filters
from pclkit.config import resolve_config
from pclkit.stepbench import benchmark_step


def blur_ms(images: torch.Tensor, sigma: torch.Tensor, repeats: int = 7) -> float:
    """Median milliseconds of one :func:`gaussian_blur` call on ``images`` (7 taps, 64 px)."""
    filters.gaussian_blur(images, sigma, 7)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        filters.gaussian_blur(images, sigma, 7)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(256, 3, 64, 64, generator=generator)
    scale = 64 / 224
    sigma = (0.1 + 1.9 * torch.rand(256, generator=generator)) * scale
    shipped = filters.NEGLIGIBLE_TAP
    results: dict[str, dict[str, list[float]]] = {"blur_ms": {}, "simclr_step_s": {}, "pcl_step_s": {}}
    try:
        for _ in range(args.rounds):
            for label, threshold in (("subnormal taps kept", 0.0), ("taps below 1e-12 zeroed", shipped)):
                filters.NEGLIGIBLE_TAP = threshold
                results["blur_ms"].setdefault(label, []).append(blur_ms(images, sigma))
                for method in ("simclr", "pcl"):
                    config = resolve_config("synth_cpu", [f"method={method}"])
                    step = benchmark_step(config, steps=3, warmup=1, profile=False)
                    results[f"{method}_step_s"].setdefault(label, []).append(step["seconds_per_step"])
                print(label, {name: round(values[label][-1], 3) for name, values in results.items()}, flush=True)
    finally:
        filters.NEGLIGIBLE_TAP = shipped
    summary = {name: {label: statistics.median(v) for label, v in values.items()} for name, values in results.items()}
    for name, values in summary.items():
        old, new = values["subnormal taps kept"], values["taps below 1e-12 zeroed"]
        print(f"{name}: {old:.3f} -> {new:.3f} ({old / new:.2f}x)")
    if args.json:
        payload = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rounds": results, "median": summary}
        with open(args.json, "w") as handle:
            json.dump(payload, handle, indent=1)


if __name__ == "__main__":
    main()
