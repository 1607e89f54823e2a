"""Recipe search for the main job, scored on SynthFaces **validation** identities only.

Each call pretrains one run (preset ``synth_cpu`` plus ``--set`` overrides)
and evaluates it with the project's protocols (:func:`pclkit.evaluate.evaluate_sources`),
but on parts built from the *validation* split: probes train on the
``train`` split, select their L2 on the even validation identities and are
scored on the odd ones; verification, swap fidelity and the identity probe
use the odd validation identities. The test split is never rendered, so
choosing a recipe here cannot tune on test. One line per run is appended
to ``benchmarks/results/recipe_search.jsonl``; ``--baselines`` scores the
random-init and raw-pixel references on the same parts.

    python benchmarks/recipe_search.py crop_noaug --method simclr --set views.face_view=crop
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from pclkit.checkpoint import load_model
from pclkit.config import config_to_dict, load_config_file, resolve_config
from pclkit.data.synthfaces import RENDERER_VERSION, SynthFaces, symmetric_pose_config
from pclkit.evaluate import PIXELS, RANDOM_INIT, EvalConfig, evaluate_sources, random_init_model
from pclkit.features import EncoderSource, FeatureCache, ImageSet, PixelSource, file_sha256, model_features
from pclkit.trainer import Trainer

LOG = Path("benchmarks/results/recipe_search.jsonl")
#: (task, metric, feature) shown in the one-line summary
SUMMARY = (
    ("verification", "accuracy", "F_s"), ("verification_cross_pose", "accuracy", "F_s"),
    ("expression", "accuracy", "F_s"), ("au", "f1_mean", "F_s"), ("head_pose", "mae_mean", "F_s"),
    ("verification", "accuracy", "F_f"), ("expression", "accuracy", "F_f"), ("identity", "accuracy", "F_f"),
    ("identity", "accuracy", "F_p"), ("expression", "accuracy", "F_p"),
    ("head_pose", "r2_mean", "F_f"), ("head_pose", "r2_mean", "F_p"),
    ("head_pose", "r2_yaw", "F_s"), ("head_pose", "r2_yaw", "F_f"), ("head_pose", "r2_yaw", "F_p"),
    ("head_pose", "r2_pitch", "F_f"), ("head_pose", "r2_pitch", "F_p"), ("head_pose", "r2_roll", "F_f"),
    ("head_pose", "r2_roll", "F_p"),
    ("swap", "psnr_swap", "decoder"), ("swap", "psnr_swap_vs_a", "decoder"), ("swap", "psnr_swap_vs_b", "decoder"),
    ("swap", "ssim_swap", "decoder"), ("swap", "psnr_recon", "decoder"),
)


def validation_parts(
    limits: tuple[float, ...], prior: str, size: int, n_train: int = 3000, n_val: int = 2000
) -> dict[str, ImageSet]:
    """``train`` = SynthFaces train; ``val`` / ``test`` = even / odd validation identities (disjoint)."""
    config = symmetric_pose_config(limits, prior=prior)
    parts = {}
    train = SynthFaces("train", n=n_train, size=size, config=config)
    val = SynthFaces("val", n=n_val, size=size, config=config)
    odd = (val.factors.identity % 2).bool()
    for name, dataset, rows in (("train", train, None), ("val", val, ~odd), ("test", val, odd)):
        index = torch.arange(len(dataset)) if rows is None else rows.nonzero().squeeze(1)
        labels = {**{k: v[index] for k, v in dataset.factors.labels().items()}, "index": torch.arange(len(index))}
        ident = {"data": "synthfaces-recipe", "part": name, "n": len(index), "size": size, "config": repr(config),
                 "renderer": RENDERER_VERSION}
        load = lambda dataset=dataset, index=index: dataset.tensors()[0][index]  # noqa: E731
        parts[name] = ImageSet(name, labels, ident, load, factors=dataset.factors[index])
    return parts


def summarise(rows: list[dict[str, Any]], method: str) -> dict[str, float]:
    out = {}
    for task, metric, feature in SUMMARY:
        values = [r["value"] for r in rows if r["method"] == method and r["task"] == task
                  and r["metric"] == metric and r["feature"] == feature]
        if values:
            out[f"{feature}/{task}/{metric}"] = round(sum(values) / len(values), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("--method", default="pcl")
    parser.add_argument("--preset", default="synth_cpu")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--runs", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--baselines", action="store_true", help="also score random init and raw pixels")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    config = resolve_config(args.preset, [f"method={args.method}", "runtime.progress=false", *args.overrides])
    out = args.runs / args.name
    t0 = time.time()
    if not (out / "last.pt").is_file():
        Trainer(config, out).fit()
    elif config_to_dict(load_config_file(out / "config.yaml")) != config_to_dict(config):
        raise SystemExit(f"{out} holds a run with another config; delete it or choose another name")
    train_s = time.time() - t0
    model, cfg = load_model(out / "last.pt")
    parts = validation_parts(config.data.pose_limits, config.data.pose_prior, config.model.image_size)
    ecfg = EvalConfig(seeds=args.seeds, progress=False, baselines=False, n_swap=256)
    cache = FeatureCache(Path(".cache/features"))
    sources: list[Any] = [EncoderSource(args.name, model, model_features(config.method),
                                        {"checkpoint_sha256": file_sha256(out / "last.pt")}, cache)]
    if args.baselines:
        sources.append(
            EncoderSource(RANDOM_INIT, random_init_model(cfg, 0, "cpu"), ("F_s",), {"random": repr(cfg["model"])}, cache)
        )
        sources.append(PixelSource(PIXELS, int(model.feature_dims["F_s"])))
    rows = evaluate_sources(sources, parts, ecfg)
    metrics_path = out / "metrics.jsonl"
    last_epoch = [
        json.loads(line) for line in metrics_path.read_text().splitlines() if '"epoch"' in line and '"kind": "epoch"' in line
    ]
    record = {
        "name": args.name,
        "method": args.method,
        "renderer": RENDERER_VERSION,
        "overrides": args.overrides,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(time.time() - t0 - train_s, 1),
        "final_losses": {k: round(v, 4) for k, v in (last_epoch[-1] if last_epoch else {}).items() if k.startswith("loss")},
        "metrics": summarise(rows, args.name),
    }
    if args.baselines:
        record["random_init"] = summarise(rows, RANDOM_INIT)
        record["pixels"] = summarise([{**r, "feature": "F_s"} for r in rows if r["method"] == PIXELS], PIXELS)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
