"""Why do linear expression probes sit at chance on SynthFaces? A controlled diagnosis.

The main job (issue 8) found every method, raw pixels included, at chance on
7-class expression. This script separates the possible causes by re-rendering
the *same* sampled faces (same identities, expressions, AU intensities) under
progressively removed nuisances and fitting the project's own linear probe
(:func:`pclkit.probes.classification_probe`, L2 chosen on ``val``) each time:

1. ``AU oracle``: the 8 ground-truth AU intensities as features. Bounds how
   much the labels themselves allow (prototype jitter and extra AUs blur them).
2. ``pixels, as sampled``: PCA of raw pixels, poses as in the dataset.
3. ``pixels, frontal``: the same faces rendered at yaw = pitch = roll = 0.
4. ``pixels, frontal, fixed nuisance``: also fixed light, background, scale.
5. ``pixels, frontal, fixed nuisance, minus neutral``: the same image minus the
   same identity's neutral face; what remains is the expression alone.
6. ``pixels, |yaw| < 30`` / ``30-60`` / ``> 60``: the as-sampled images probed
   within yaw bands (train, val and test restricted to the band).
7. ``pose limits``: faces re-sampled with narrower uniform pose ranges
   (``data.pose_limits``), scored on **validation** only: this is how the
   near-frontal setting of the main job's pose-range experiment was picked
   without looking at test labels.

It also measures the pixel effect of each factor on frontal faces: the mean
absolute change when only the expression, only the identity, or only the yaw
(+15°) changes. With ``--checkpoint NAME=PATH`` (repeatable) the frozen
encoders' F_s and F_f are probed under conditions 2-4 as well, which tells
whether a trained encoder carries expression at all once pose is held fixed.
Run::

    python benchmarks/expression_difficulty.py --json benchmarks/results/expression_difficulty.json \
        --checkpoint SimCLR=runs/reproduce/synth_cpu_simclr_s0 --checkpoint PCL=runs/reproduce/synth_cpu_pcl_s0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pclkit.checkpoint import load_model
from pclkit.data.synthfaces import (
    EXPRESSION_PROTOTYPES,
    Factors,
    canonical_nuisance,
    render,
    sample_factors,
    symmetric_pose_config,
)
from pclkit.evaluate import random_init_model
from pclkit.features import PCA, extract_features, pixel_vectors
from pclkit.probes import Split, classification_probe

SIZES = {"train": 3000, "val": 1000, "test": 2000}  # the main job's probe sizes (EvalConfig)
PCA_DIM = 256
YAW_BANDS = ((0.0, 30.0), (30.0, 60.0), (60.0, 91.0))
POSE_LIMITS_SWEEP = ((15.0, 8.0, 5.0), (30.0, 15.0, 10.0), (30.0, 20.0, 15.0), (45.0, 20.0, 15.0))


def frontal(f: Factors, fixed_nuisance: bool = False) -> Factors:
    """The faces of ``f`` at pose (0, 0, 0), optionally with the canonical light/background/scale."""
    nuisance = canonical_nuisance(len(f)) if fixed_nuisance else f.nuisance
    return Factors(f.identity, f.expression, f.aus, torch.zeros_like(f.pose), nuisance)


def neutral(f: Factors) -> Factors:
    """The faces of ``f`` with the neutral expression (class 0, its AU prototype)."""
    zero = torch.zeros_like(f.expression)
    return f.with_expression(zero, EXPRESSION_PROTOTYPES[zero])


def pixel_splits(images: dict[str, Tensor], labels: dict[str, Tensor], rows: dict[str, Tensor] | None = None) -> dict[str, Split]:
    """PCA-``PCA_DIM`` pixel features per split, the PCA fitted on ``train`` only."""
    x = {s: pixel_vectors(im) for s, im in images.items()}
    if rows is not None:
        x = {s: v[rows[s]] for s, v in x.items()}
        labels = {s: y[rows[s]] for s, y in labels.items()}
    pca = PCA.fit(x["train"], PCA_DIM)
    return {s: Split(pca(v), labels[s]) for s, v in x.items()}


def probe(splits: dict[str, Split]) -> dict[str, float]:
    result = classification_probe(splits["train"], splits["val"], splits["test"], n_classes=7)
    return {"accuracy": 100 * result.metrics["accuracy"], "n_train": len(splits["train"]), "n_test": len(splits["test"])}


def encoder_probes(model: torch.nn.Module, conditions: dict[str, dict[str, Tensor]], labels: dict[str, Tensor]) -> dict[str, Any]:
    """Expression accuracy of the frozen ``model``'s F_s and F_f under each image condition."""
    out: dict[str, Any] = {}
    for condition, images in conditions.items():
        feats = {s: extract_features(model, im, names=("F_s", "F_f"), bf16=True, progress=False) for s, im in images.items()}
        for name in ("F_s", "F_f"):
            out[f"{name}, {condition}"] = probe({s: Split(feats[s][name], labels[s]) for s in images})
    return out


def pose_limits_sweep(threads: int, seed: int) -> dict[str, float]:
    """Pixel-probe expression accuracy on ``val`` (L2 chosen on ``val`` too: optimistic) per pose limits."""
    out = {}
    for limits in POSE_LIMITS_SWEEP:
        config = symmetric_pose_config(limits)
        factors = {s: sample_factors(s, SIZES[s], seed=seed, config=config) for s in ("train", "val")}
        images = {s: (render(f, threads=threads) * 255).round().to(torch.uint8) for s, f in factors.items()}
        splits = pixel_splits(images, {s: f.expression for s, f in factors.items()})
        result = classification_probe(splits["train"], splits["val"], splits["val"], n_classes=7)
        out[f"yaw/pitch/roll within ±{limits[0]:g}/{limits[1]:g}/{limits[2]:g}"] = 100 * result.metrics["accuracy"]
    return out


def effect_sizes(f: Factors, threads: int) -> dict[str, float]:
    """Mean |Δpixel| (0-255 scale) on frontal, fixed-nuisance faces when one factor changes."""
    base = frontal(f, fixed_nuisance=True)
    other = torch.roll(torch.arange(len(f)), 1)
    changes = {
        "expression -> neutral": neutral(base),
        "identity -> another": Factors(base.identity[other], base.expression, base.aus, base.pose, base.nuisance),
        "yaw +15 deg": base.with_pose(torch.tensor([15.0, 0.0, 0.0])),
    }
    ref = render(base, threads=threads)
    keep = base.expression != 0  # neutral faces do not change when made neutral
    out = {}
    for name, changed in changes.items():
        diff = (render(changed, threads=threads) - ref).abs() * 255
        out[name] = float(diff[keep].mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/expression_difficulty.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads for rendering (1 is fastest on a busy box)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (the main job's EvalConfig.data_seed is 0)")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                        help="also probe this checkpoint's F_s and F_f (repeatable); a random-init copy of the first is added")
    args = parser.parse_args()
    torch.manual_seed(0)
    t0 = time.time()

    factors = {s: sample_factors(s, n, seed=args.seed) for s, n in SIZES.items()}
    labels = {s: f.expression for s, f in factors.items()}
    results: dict[str, Any] = {"sizes": SIZES, "pca_dim": PCA_DIM, "chance_majority": None}
    counts = torch.bincount(labels["train"], minlength=7)
    majority = int(counts.argmax())
    results["chance_majority"] = 100 * float((labels["test"] == majority).float().mean())

    probes: dict[str, Any] = {}
    probes["AU oracle (8 true AU intensities)"] = probe({s: Split(f.aus, labels[s]) for s, f in factors.items()})
    print(probes, flush=True)

    sampled = {s: (render(f, threads=args.threads) * 255).round().to(torch.uint8) for s, f in factors.items()}
    probes["pixels, as sampled"] = probe(pixel_splits(sampled, labels))
    for lo, hi in YAW_BANDS:
        rows = {s: ((f.pose[:, 0].abs() >= lo) & (f.pose[:, 0].abs() < hi)).nonzero().squeeze(1) for s, f in factors.items()}
        probes[f"pixels, as sampled, {lo:.0f} <= |yaw| < {min(hi, 90):.0f}"] = probe(pixel_splits(sampled, labels, rows))
    print(probes, flush=True)

    def rendered(make) -> dict[str, Tensor]:
        return {s: (render(make(f), threads=args.threads) * 255).round().to(torch.uint8) for s, f in factors.items()}

    front = rendered(frontal)
    probes["pixels, frontal"] = probe(pixel_splits(front, labels))
    front_fixed = rendered(lambda f: frontal(f, fixed_nuisance=True))
    probes["pixels, frontal, fixed nuisance"] = probe(pixel_splits(front_fixed, labels))
    front_neutral = rendered(lambda f: neutral(frontal(f, fixed_nuisance=True)))
    residual = {s: (front_fixed[s].float() - front_neutral[s].float()) / 255.0 for s in SIZES}
    probes["pixels, frontal, fixed nuisance, minus the identity's neutral face"] = probe(pixel_splits(residual, labels))
    results["probes"] = probes
    conditions = {"as sampled": sampled, "frontal": front, "frontal, fixed nuisance": front_fixed}
    encoders: dict[str, Any] = {}
    for item in args.checkpoint:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--checkpoint needs NAME=PATH, got {item!r}")
        model, config = load_model(path)
        if not encoders:
            encoders["random init"] = encoder_probes(random_init_model(config, 0, "cpu"), conditions, labels)
        encoders[name] = encoder_probes(model, conditions, labels)
        print(name, json.dumps(encoders[name]), flush=True)
    results["encoders"] = encoders
    results["effect_mean_abs_pixel_change_0_255"] = effect_sizes(factors["test"][:500], args.threads)
    results["pose_limits_sweep_pixels_val_accuracy"] = pose_limits_sweep(args.threads, args.seed)
    results["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(results, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
