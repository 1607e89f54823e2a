"""``python -m pclkit gallery``: the SynthFaces gallery figure.

Rows: one identity swept over yaw, over pitch and over roll; the seven
expressions of one face; a row of different identities. Shows the images at
the dataset resolution, so the figure is what a model sees.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch

from pclkit.data.synthfaces import EXPRESSIONS, Factors, make_factors, render


@dataclass(frozen=True)
class GalleryRow:
    """One labelled row of the gallery."""

    title: str
    column_labels: list[str]
    factors: Factors


def _sweep(values: list[float], axis: int) -> torch.Tensor:
    pose = torch.zeros(len(values), 3)
    pose[:, axis] = torch.tensor(values)
    return pose


def gallery_rows(identity: int = 3, columns: int = 9, other_identities: int = 9, first_other: int = 10) -> list[GalleryRow]:
    """The factors of each gallery row (train-split identities, canonical light)."""
    rows = []
    for axis, (name, limit) in enumerate([("yaw", 90.0), ("pitch", 40.0), ("roll", 30.0)]):
        values = torch.linspace(-limit, limit, columns).tolist()
        factors = make_factors([identity] * columns, pose=_sweep(values, axis))
        rows.append(GalleryRow(f"{name} sweep", [f"{v:+.0f}°" for v in values], factors))
    expressions = make_factors([identity] * len(EXPRESSIONS), expression=list(range(len(EXPRESSIONS))))
    rows.append(GalleryRow("expressions", list(EXPRESSIONS), expressions))
    others = list(range(first_other, first_other + other_identities))
    rows.append(
        GalleryRow(
            "identities",
            [f"id {i}" for i in others],
            make_factors(others, pose=_sweep([0.0] * len(others), 0) + torch.tensor([15.0, 0.0, 0.0])),
        )
    )
    return rows


def make_gallery_figure(size: int = 64, rows: list[GalleryRow] | None = None) -> "matplotlib.figure.Figure":
    """A labelled grid of rendered faces (one matplotlib Figure)."""
    import matplotlib.pyplot as plt

    rows = gallery_rows() if rows is None else rows
    n_cols = max(len(r.column_labels) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.0 * n_cols + 0.9, 1.18 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        images = render(row.factors, size).permute(0, 2, 3, 1).numpy()
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(images):
                ax.axis("off")
                continue
            ax.imshow(images[c], interpolation="nearest")
            ax.set_title(row.column_labels[c], fontsize=7, pad=2)
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r][0].set_ylabel(row.title, fontsize=8)
    fig.suptitle(f"SynthFaces ({size}×{size}): pose sweeps, expressions, identities", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.4, w_pad=0.2)
    return fig


def save_gallery(out: Path, size: int = 64, dpi: int = 200) -> list[Path]:
    """Write ``out``.png and ``out``.pdf (deterministic PDF: Type-42 fonts, no creation date)."""
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
        fig = make_gallery_figure(size)
        png, pdf = out.parent / f"{out.name}.png", out.parent / f"{out.name}.pdf"
        fig.savefig(png, dpi=dpi, metadata={"Software": None})
        fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None})
        plt.close(fig)
    return [png, pdf]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("figures/synthfaces_gallery"), help="output path without suffix")
    parser.add_argument("--size", type=int, default=64, help="rendered image size in pixels")
    parser.add_argument("--dpi", type=int, default=200, help="PNG resolution")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix in {".png", ".pdf"}:
        out = out.with_suffix("")
    for path in save_gallery(out, size=args.size, dpi=args.dpi):
        print(f"wrote {path}")
    return 0
