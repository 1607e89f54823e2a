"""How strongly each SynthFaces factor moves pixels, and what raw pixels can read (validation only).

For the current renderer and a pose prior (``--prior normal|uniform``,
``--limits`` half-ranges) it reports

* the mean absolute pixel change (0-255) on frontal faces with fixed
  nuisance when only the expression (-> neutral), the identity (-> another)
  or the yaw (+15 deg) changes (:func:`expression_difficulty.effect_sizes`);
* pixel-PCA linear probes (the project's :func:`pclkit.probes.classification_probe`)
  of expression and of yaw-sign-free pose (R^2 of a ridge on |yaw|) trained on
  ``train`` and scored on ``val`` (L2 chosen on ``val`` too, so optimistic:
  a ceiling, never a test number);
* the fraction of faces within |yaw| < 45 deg.

Run::

    python benchmarks/factor_proportions.py --prior normal --json benchmarks/results/factor_proportions_normal.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from expression_difficulty import effect_sizes, pixel_splits  # noqa: E402

from pclkit.data.synthfaces import render, sample_factors, symmetric_pose_config  # noqa: E402
from pclkit.probes import classification_probe  # noqa: E402

SIZES = {"train": 3000, "val": 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prior", choices=("normal", "uniform"), default="normal")
    parser.add_argument("--limits", type=float, nargs=3, default=(90.0, 40.0, 30.0))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    t0 = time.time()
    config = symmetric_pose_config(args.limits, prior=args.prior)
    factors = {s: sample_factors(s, n, seed=0, config=config) for s, n in SIZES.items()}
    images = {s: (render(f, threads=args.threads) * 255).round().to(torch.uint8) for s, f in factors.items()}
    splits = pixel_splits(images, {s: f.expression for s, f in factors.items()})
    expression = classification_probe(splits["train"], splits["val"], splits["val"], n_classes=7).metrics["accuracy"]
    yaw = factors["val"].pose[:, 0].abs()
    result = {
        "prior": args.prior,
        "limits": list(args.limits),
        "pixel_expression_val_accuracy": round(100 * expression, 1),
        "fraction_abs_yaw_below_45": round(float((yaw < 45).float().mean()), 3),
        "pose_std_val": [round(v, 1) for v in factors["val"].pose.std(0).tolist()],
        "effect_mean_abs_pixel_change_0_255": {
            k: round(v, 2) for k, v in effect_sizes(factors["val"][:500], args.threads).items()
        },
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
