"""Images for display: tensor <-> array conversion, PNG bytes, PSNR, and labelled image grids.

Images are float tensors ``(3, H, W)`` / ``(B, 3, H, W)`` in [0, 1] (the data
contract) and become numpy arrays ``(H, W, 3)`` float32 in [0, 1] for display.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from pclkit.style import figure_size, paper_style

__all__ = ["annotate_image", "as_float_batch", "decode_png", "figure_png", "plot_image_rows", "png_bytes", "psnr",
           "text_width_in", "to_numpy_image"]


def to_numpy_image(image: Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` tensor (float in [0, 1] or uint8) -> ``(H, W, 3)`` float32 array in [0, 1]."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
            array = array.transpose(1, 2, 0)
    else:
        tensor = image.detach().cpu()
        if tensor.dim() != 3:
            raise ValueError(f"expected one image (3, H, W), got shape {tuple(tensor.shape)}")
        array = tensor.permute(1, 2, 0).numpy()
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.asarray(array, dtype=np.float32)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.clip(array, 0.0, 1.0)


def as_float_batch(images: Tensor) -> Tensor:
    """``(3, H, W)`` or ``(B, 3, H, W)``, uint8 or float -> float32 ``(B, 3, H, W)`` in [0, 1] (a new tensor)."""
    batch = images.unsqueeze(0) if images.dim() == 3 else images
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W) or (3, H, W), got {tuple(images.shape)}")
    if batch.dtype == torch.uint8:
        return batch.float() / 255.0
    return batch.float().clone()


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG encoding of an ``(H, W, 3)`` float image in [0, 1], enlarged ``scale``x with nearest neighbour."""
    from PIL import Image as PILImage

    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of :func:`png_bytes` (without the enlargement): ``(H, W, 3)`` float32 in [0, 1]."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of a figure (for widgets)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) of two ``(H, W, 3)`` images in [0, 1] with :func:`pclkit.image_metrics.psnr` (capped at 100 dB)."""
    from pclkit.image_metrics import psnr as batch_psnr

    if prediction.shape != target.shape:
        raise ValueError(f"psnr needs equal shapes, got {prediction.shape} and {target.shape}")

    def as_batch(image: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]

    return float(batch_psnr(as_batch(prediction), as_batch(target))[0])


# --------------------------------------------------------------------------- image grids


def text_width_in(text: str, fontsize: float) -> float:
    """Rendered width of ``text`` (mathtext allowed) in inches at ``fontsize`` points."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(10, 10, 72)
    width, _, _ = renderer.get_text_width_height_descent(text, FontProperties(size=fontsize), ismath="$" in text)
    return width / 72.0


def plot_image_rows(
    rows: Mapping[str, Tensor | np.ndarray],
    max_columns: int = 8,
    width: str | float = "text",
    column_titles: Sequence[str] | None = None,
    gap: float = 0.04,
) -> Figure:
    """Grid of square images: one row per entry, its label on the left; columns optionally titled.

    ``rows[label]`` is ``(B, 3, H, W)``; at most ``max_columns`` images per row.
    The figure is ``width`` wide ("text", "column" or inches) and as tall as the
    grid needs; ``gap`` is the space between images as a fraction of one image.
    """
    if not rows:
        raise ValueError("no rows to plot")
    n_cols = min(max_columns, min(len(batch) for batch in rows.values()))
    n_rows = len(rows)
    with paper_style():
        import matplotlib

        fontsize = float(matplotlib.rcParams["font.size"])
        title_size = fontsize - 1.5
        fig_width, _ = figure_size(width)
        label_room = max(text_width_in(label, fontsize) for label in rows) + 0.1
        title_room = 0.05 + (title_size / 72.0 * 1.5 if column_titles else 0.0)
        cell = (fig_width - label_room - 0.02) / (n_cols + (n_cols - 1) * gap)
        fig_height = cell * (n_rows + (n_rows - 1) * gap) + title_room + 0.02
        fig = Figure(figsize=(fig_width, fig_height), layout="none")
        fig.subplots_adjust(left=label_room / fig_width, right=1 - 0.02 / fig_width, top=1 - title_room / fig_height,
                            bottom=0.02 / fig_height, wspace=gap, hspace=gap)
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        for r, (label, batch) in enumerate(rows.items()):
            for c in range(n_cols):
                ax = axes[r, c]
                ax.imshow(to_numpy_image(batch[c]), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", labelpad=4)
        for ax, title in zip(axes[0], column_titles or ()):
            ax.set_title(title, fontsize=title_size, pad=2)
    return fig


def annotate_image(ax: Any, text: str) -> None:
    """Small white text on a dark box in the lower-left corner of an image axis (e.g. a PSNR)."""
    with paper_style():
        ax.text(0.03, 0.03, text, transform=ax.transAxes, color="white", fontsize=5, ha="left", va="bottom",
                bbox={"facecolor": "black", "alpha": 0.55, "pad": 0.8, "linewidth": 0})
