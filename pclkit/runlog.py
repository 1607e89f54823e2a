"""What a pretraining run leaves in its folder besides checkpoints.

* ``metrics.jsonl``: one JSON object per line, ``{"kind": "step" | "epoch", ...}``
  with every loss term, the DWA weights, the learning rate and img/s; with
  ``runtime.monitor_every`` also ``{"kind": "monitor", "epoch", "step", "seconds",
  "F_s/expression", "F_f/identity", "F_p/yaw_r2", ...}`` (:mod:`pclkit.monitor`);
  ``{"kind": "error", ...}`` when a loss became non-finite.
* ``recon/epoch_XXX.png``: reconstruction snapshots of PCL (rows
  s / D(F_f,F_p) / D(F_f,F_p̂) / ŝ / D(F_f̂,F_p̂) / D(F_f̂,F_p), Liu et al.,
  CVPR 2023, Eq. 2 — each reconstruction takes its pose from the view it reproduces).
* ``curves.png``: loss terms, DWA weights and learning rate over training (and a
  second row with the probe-monitor values when the run logged them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

#: row labels of a reconstruction snapshot, top to bottom
SNAPSHOT_ROWS = ("s", "D(F_f,F_p)", "D(F_f,F_p^)", "s^", "D(F_f^,F_p^)", "D(F_f^,F_p)")


class MetricsLog:
    """Append-only JSON-lines file; each record is flushed so a crash loses nothing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        clean = {key: _plain(value) for key, value in record.items()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (resume: the steps after the checkpoint are redone)."""
        if not self.path.exists():
            return
        kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= step]
        with self.path.open("w") as handle:
            for record in kept:
                handle.write(json.dumps(record) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file (skipping a torn last line)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def save_snapshot(rows: Iterable[torch.Tensor], path: str | Path, labels: Sequence[str] = ()) -> Path:
    """Save a grid of images, one row per (N, 3, H, W) tensor in [0, 1], with optional row labels."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    rows = [r.detach().float().cpu().clamp(0, 1) for r in rows]
    grid = make_grid(torch.cat(rows, dim=0), nrow=rows[0].shape[0], padding=1, pad_value=1.0)
    image = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
    if labels:
        margin = 7 * max(len(text) for text in labels) + 6
        canvas = Image.new("RGB", (image.width + margin, image.height), "white")
        canvas.paste(image, (margin, 0))
        draw = ImageDraw.Draw(canvas)
        row_height = image.height / len(rows)
        for i, text in enumerate(labels):
            draw.text((3, int(i * row_height + row_height / 2 - 5)), text, fill="black")
        image = canvas
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def plot_curves(metrics_path: str | Path, out_path: str | Path, title: str = "") -> Path | None:
    """Save the run's training curves (:func:`pclkit.viz.plot_training_curves`) as a PNG; None if nothing to plot.

    Loss terms per step with epoch means, DWA weights and learning rate; when
    the run logged probe-monitor records, a second row with expression
    accuracy, identity accuracy and yaw R^2 per feature against epoch.
    """
    from pclkit.viz import plot_training_curves

    records = read_metrics(metrics_path)
    if not any(r.get("kind") == "step" for r in records):
        return None
    out_path = Path(out_path)
    plot_training_curves(records, title=title).savefig(out_path, dpi=200)
    return out_path
