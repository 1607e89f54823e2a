"""Paper figure style and export.

The shipped style (``pclkit/styles/paper.mplstyle``) targets CVPR's two-column
layout: a single column is :data:`COLUMN_WIDTH_IN` wide, the full text block
:data:`TEXT_WIDTH_IN`. Fonts are embedded as TrueType (Type 42) and the PDF/SVG
metadata carries no dates, so re-exporting an unchanged figure gives identical
bytes (figures can be diffed in git).

The style is applied through context managers only; importing this module
changes no global matplotlib state::

    with paper_style():
        fig, ax = plt.subplots(figsize=figure_size("column"))
        ...
        save_figure(fig, "loss_curves")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import matplotlib
from matplotlib.figure import Figure

#: CVPR single-column width (inches)
COLUMN_WIDTH_IN = 3.25
#: CVPR full text width, both columns (inches)
TEXT_WIDTH_IN = 6.875
#: the shipped matplotlib style sheet
STYLE_PATH = Path(__file__).resolve().parent / "styles" / "paper.mplstyle"
#: formats written by :func:`save_figure`, in order
FIGURE_FORMATS: tuple[str, ...] = ("pdf", "svg", "png")
#: colour-blind friendly categorical palette (Okabe & Ito, "Color Universal Design", 2008), then greys
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#999999",
)

#: rcParams enforced while saving, whatever style the figure was drawn under
_EXPORT_RC = {
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.hashsalt": "pclkit-paper",
    "svg.fonttype": "path",
}
#: per-format metadata that removes timestamps (and the PNG software tag)
_DETERMINISTIC_METADATA: dict[str, dict[str, None]] = {
    "pdf": {"CreationDate": None, "ModDate": None},
    "svg": {"Date": None},
    "png": {"Software": None},
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Apply the paper style inside a ``with`` block; restores rcParams afterwards."""
    with matplotlib.rc_context(fname=str(STYLE_PATH)):
        yield


def figure_size(width: Literal["column", "text"] | float = "column", aspect: float = 0.75) -> tuple[float, float]:
    """``(width, height)`` in inches: a CVPR column or text width (or inches), height = width * aspect."""
    if width == "column":
        inches = COLUMN_WIDTH_IN
    elif width == "text":
        inches = TEXT_WIDTH_IN
    elif isinstance(width, (int, float)) and width > 0:
        inches = float(width)
    else:
        raise ValueError(f"width must be 'column', 'text' or a positive number of inches, got {width!r}")
    if aspect <= 0:
        raise ValueError(f"aspect must be positive, got {aspect}")
    return inches, inches * aspect


def save_figure(
    fig: Figure,
    name: str,
    out_dir: str | Path = "figures",
    formats: Sequence[str] = FIGURE_FORMATS,
    dpi: int = 300,
) -> list[Path]:
    """Write ``fig`` to ``out_dir/name.{pdf,svg,png}`` and return the paths written.

    PDF and PS embed Type-42 fonts; PDF and SVG metadata carry no dates and SVG
    ids use a fixed salt, so saving the same figure twice gives identical bytes.
    ``name`` is a file stem (no suffix, no directories).
    """
    if not name or Path(name).name != name or Path(name).suffix in {f".{f}" for f in FIGURE_FORMATS}:
        raise ValueError(f"name must be a bare file stem like 'pose_swap_grid', got {name!r}")
    unknown = [f for f in formats if f not in _DETERMINISTIC_METADATA]
    if unknown:
        raise ValueError(f"unsupported formats {unknown}; choose from {list(_DETERMINISTIC_METADATA)}")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with matplotlib.rc_context(_EXPORT_RC):
        for fmt in formats:
            path = directory / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=dpi, metadata=_DETERMINISTIC_METADATA[fmt])
            written.append(path)
    return written
