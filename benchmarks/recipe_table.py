"""Markdown table of ``benchmarks/results/recipe_search.jsonl`` (validation-identity scores of each recipe run).

    python benchmarks/recipe_table.py [NAME_PREFIX ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (
    ("verif", "F_s/verification/accuracy", 100), ("x-pose", "F_s/verification_cross_pose/accuracy", 100),
    ("expr", "F_s/expression/accuracy", 100), ("AU F1", "F_s/au/f1_mean", 100), ("MAE°", "F_s/head_pose/mae_mean", 1),
    ("F_f expr", "F_f/expression/accuracy", 100), ("F_f id", "F_f/identity/accuracy", 100),
    ("F_p id", "F_p/identity/accuracy", 100), ("F_f R²", "F_f/head_pose/r2_mean", 1), ("F_p R²", "F_p/head_pose/r2_mean", 1),
    ("F_f yaw R²", "F_f/head_pose/r2_yaw", 1), ("F_p yaw R²", "F_p/head_pose/r2_yaw", 1),
    ("F_f pitch R²", "F_f/head_pose/r2_pitch", 1), ("F_p pitch R²", "F_p/head_pose/r2_pitch", 1),
    ("F_f roll R²", "F_f/head_pose/r2_roll", 1), ("F_p roll R²", "F_p/head_pose/r2_roll", 1),
    ("swap dB", "decoder/swap/psnr_swap", 1), ("vs A", "decoder/swap/psnr_swap_vs_a", 1),
    ("vs B", "decoder/swap/psnr_swap_vs_b", 1), ("SSIM", "decoder/swap/ssim_swap", 1),
)


def fmt(value: float | None, scale: float) -> str:
    if value is None:
        return "–"
    return f"{value * scale:.1f}" if scale == 100 else f"{value:.2f}"


def main() -> None:
    prefixes = sys.argv[1:]
    lines = Path("benchmarks/results/recipe_search.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    # a run scored again (e.g. after a metric was added) keeps its place and shows its latest scores
    key = lambda record: (record["name"], record.get("renderer", 3))  # noqa: E731
    latest = {key(record): record for record in records}
    records = [latest[k] for k in dict.fromkeys(key(record) for record in records)]
    print("| run | train s | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    shown_baselines: set[int] = set()
    for record in records:
        if prefixes and not any(record["name"].startswith(p) for p in prefixes):
            continue
        version = record.get("renderer", 3)
        if version not in shown_baselines and "random_init" in record:
            for label in ("random_init", "pixels"):
                print(
                    f"| *{label}* (v{version}) | | " + " | ".join(fmt(record[label].get(key), s) for _, key, s in COLUMNS) + " |"
                )
            shown_baselines.add(version)
        metrics = record["metrics"]
        print(f"| {record['name']} (v{record.get('renderer', 3)}) | {record['train_seconds']:.0f} | "
              + " | ".join(fmt(metrics.get(key), s) for _, key, s in COLUMNS) + " |")


if __name__ == "__main__":
    main()
