"""Plots and widgets for the notebooks (and the ``figures`` command).

Three layers, each testable without a browser:

* pure functions on a model: :func:`encode`, :func:`decode_swap`,
  :func:`render_swap`, :func:`swap_grid`, :func:`ground_truth_swap`, :func:`psnr`;
* figure builders that return a :class:`matplotlib.figure.Figure` drawn in the
  paper style (no pyplot state): :func:`plot_image_rows`,
  :func:`plot_embedding_grid`, :func:`plot_loss_curves`, :func:`plot_monitor_curves`;
* widgets (ipywidgets 8, imported lazily): :class:`PoseSwapExplorer`,
  :class:`SynthFacesExplorer`, :class:`LiveLossPlot`. Each keeps one
  ``ipywidgets.Image`` per picture and replaces its PNG bytes in place, so
  nothing flickers; tests drive them by setting ``slider.value``.

Images are float tensors ``(3, H, W)`` / ``(B, 3, H, W)`` in [0, 1] (the data
contract) and become numpy arrays ``(H, W, 3)`` float32 in [0, 1] for display.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from pclkit.callbacks import TrainerCallback
from pclkit.style import figure_size, paper_style

#: colour-blind friendly categorical palette (Okabe-Ito, then greys)
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#999999",
)
#: default yaw bin edges in degrees: four bins -90..-45, -45..0, 0..45, 45..90
YAW_EDGES: tuple[float, ...] = (-90.0, -45.0, 0.0, 45.0, 90.0)

# ---------------------------------------------------------------------------
# image conversions


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


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) of two ``(H, W, 3)`` images in [0, 1] with :func:`pclkit.image_metrics.psnr` (capped at 100 dB)."""
    from pclkit.image_metrics import psnr as batch_psnr

    if prediction.shape != target.shape:
        raise ValueError(f"psnr needs equal shapes, got {prediction.shape} and {target.shape}")

    def as_batch(image: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]

    return float(batch_psnr(as_batch(prediction), as_batch(target))[0])


# ---------------------------------------------------------------------------
# pure model functions


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode without gradients; its train/eval flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameterless module)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


@dataclass(frozen=True)
class Features:
    """Features of a batch: ``F_s (B, D_s)``, ``F_f (B, D)``, ``F_p (B, D)`` (float32, on the model's device)."""

    F_s: Tensor
    F_f: Tensor
    F_p: Tensor

    def __getitem__(self, rows: slice | int) -> "Features":
        """The features of some rows (an int keeps its batch dimension: ``(1, D)``)."""
        index = slice(rows, rows + 1) if isinstance(rows, int) else rows
        return Features(self.F_s[index], self.F_f[index], self.F_p[index])


def encode(model: nn.Module, images: Tensor) -> Features:
    """``model.forward_features`` on ``(B, 3, H, W)`` or ``(3, H, W)`` images, eval mode, no grad."""
    batch = as_float_batch(images).to(model_device(model))
    with eval_mode(model):
        shared, face, pose = model.forward_features(batch)
    return Features(shared.float(), face.float(), pose.float())


def decode(model: nn.Module, face: Tensor, pose: Tensor) -> Tensor:
    """``D(F_f, F_p)`` in eval mode without gradients: ``(B, D), (B, D) -> (B, 3, H, W)`` on CPU."""
    with eval_mode(model):
        return model.decode(face, pose).float().cpu()


def mix_pose(pose_a: Tensor, pose_b: Tensor, alpha: float) -> Tensor:
    """Linear interpolation ``(1 - alpha) * pose_a + alpha * pose_b``; shapes ``(B, D)`` or ``(B, 3)``."""
    return torch.lerp(pose_a, pose_b, float(alpha))


def decode_swap(model: nn.Module, feats_a: Features, feats_b: Features, alpha: float, swap_face: bool = False) -> Tensor:
    """``D(F_f, (1 - alpha) F_p^a + alpha F_p^b)`` with ``F_f`` of ``a`` (of ``b`` when ``swap_face``).

    Features of batch size B -> images ``(B, 3, H, W)`` on CPU.
    """
    face = feats_b.F_f if swap_face else feats_a.F_f
    return decode(model, face, mix_pose(feats_a.F_p, feats_b.F_p, alpha))


def render_swap(model: nn.Module, image_a: Tensor, image_b: Tensor, alpha: float, swap_face: bool = False) -> np.ndarray:
    """Reconstruction with the pose feature moved from image ``a`` towards image ``b``.

    ``image_a``, ``image_b``: ``(3, H, W)`` in [0, 1] (or uint8). ``alpha = 0``
    gives ``D(F_f^a, F_p^a)``, ``alpha = 1`` gives ``D(F_f^a, F_p^b)``;
    ``swap_face`` takes ``F_f`` from ``b`` instead. Pure: inputs and the model's
    train/eval flag are left unchanged. Returns ``(H, W, 3)`` float32 in [0, 1].
    """
    feats = encode(model, torch.stack([as_float_batch(image_a)[0], as_float_batch(image_b)[0]]))
    feats_a, feats_b = feats[0], feats[1]
    return to_numpy_image(decode_swap(model, feats_a, feats_b, alpha, swap_face)[0])


#: row keys of :func:`swap_grid`, in the paper's order, with their figure labels
SWAP_GRID_ROWS: dict[str, str] = {
    "s": "(a) $s$",
    "s_hat": "$\\hat{s}$",
    "ff_fp": "(b) $D(F_f, F_p)$",
    "ff_fphat": "(c) $D(F_f, \\hat{F}_p)$",
    "ff": "(d) $D(F_f, 0)$",
    "fp": "(e) $D(0, F_p)$",
    "fphat": "(f) $D(0, \\hat{F}_p)$",
}


def swap_grid(model: nn.Module, images: Tensor, images_hat: Tensor) -> dict[str, Tensor]:
    """The paper's reconstruction grid for faces ``s`` and their pose-changed views ``ŝ``.

    ``images``, ``images_hat``: ``(B, 3, H, W)`` in [0, 1]. Returns the rows of
    :data:`SWAP_GRID_ROWS` (same keys, same order), each ``(B, 3, H, W)`` on CPU:
    s, ŝ, D(F_f, F_p), D(F_f, F_p̂), D(F_f, 0), D(0, F_p), D(0, F_p̂).
    """
    views = as_float_batch(images)
    views_hat = as_float_batch(images_hat)
    if views.shape != views_hat.shape:
        raise ValueError(f"images {tuple(views.shape)} and images_hat {tuple(views_hat.shape)} differ in shape")
    feats = encode(model, views)
    feats_hat = encode(model, views_hat)
    zeros = torch.zeros_like(feats.F_f)
    return {
        "s": views.cpu(),
        "s_hat": views_hat.cpu(),
        "ff_fp": decode(model, feats.F_f, feats.F_p),
        "ff_fphat": decode(model, feats.F_f, feats_hat.F_p),
        "ff": decode(model, feats.F_f, zeros),
        "fp": decode(model, zeros, feats.F_p),
        "fphat": decode(model, zeros, feats_hat.F_p),
    }


def ground_truth_swap(face_from: Any, pose_a: Any, pose_b: Any, alpha: float, size: int = 64) -> np.ndarray:
    """SynthFaces re-render of one face at an interpolated head pose.

    ``face_from``, ``pose_a``, ``pose_b``: single-sample
    :class:`pclkit.data.synthetic.Factors`. Renders identity, expression, AUs
    and nuisance of ``face_from`` at pose ``(1 - alpha) pose_a + alpha pose_b``
    (degrees) via ``render(Factors.combine(...))``. Returns ``(size, size, 3)``.
    """
    from pclkit.data.synthetic import Factors, render

    pose = mix_pose(pose_a.pose.float(), pose_b.pose.float(), alpha)
    target = Factors.combine(face_from, pose_a.with_pose(pose))
    return to_numpy_image(render(target, size=size)[0])


# ---------------------------------------------------------------------------
# embeddings


def yaw_bins(yaw: np.ndarray | Tensor, edges: Sequence[float] = YAW_EDGES) -> tuple[np.ndarray, list[str]]:
    """Bin yaw angles (degrees, shape ``(N,)``) -> ``(labels (N,) int, names)``; outside the edges: -1."""
    values = np.asarray(yaw, dtype=np.float64).reshape(-1)
    bounds = np.asarray(edges, dtype=np.float64)
    labels = np.searchsorted(bounds, values, side="right") - 1
    labels[values == bounds[-1]] = len(bounds) - 2  # the top edge belongs to the last bin
    labels[(values < bounds[0]) | (values > bounds[-1])] = -1
    names = [f"{lo:g}° to {hi:g}°" for lo, hi in zip(bounds[:-1], bounds[1:])]
    return labels.astype(np.int64), names


def select_classes(labels: np.ndarray | Tensor, names: Sequence[str], keep: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Keep only the classes named in ``keep`` (relabelled 0..len(keep)-1); others become -1."""
    values = np.asarray(labels).reshape(-1)
    missing = [name for name in keep if name not in names]
    if missing:
        raise ValueError(f"unknown classes {missing}; known: {list(names)}")
    out = np.full(values.shape, -1, dtype=np.int64)
    for new, name in enumerate(keep):
        out[values == list(names).index(name)] = new
    return out, list(keep)


def embed_2d(features: np.ndarray | Tensor, method: str = "tsne", seed: int = 0, max_pca_dims: int = 50,
             threads: int | None = 1) -> np.ndarray:
    """2-D embedding of features ``(N, D)`` -> ``(N, 2)`` float32, with ``method`` in {"tsne", "umap"}.

    Rows are L2-normalised (cosine geometry, as the contrastive losses use) and
    reduced to ``max_pca_dims`` with PCA first. ``threads`` caps the OpenMP/BLAS
    threads (None: the libraries' default); one thread is the default because
    spin-waiting OpenMP threads make sklearn's t-SNE ~10x slower on a shared
    CPU. ``umap`` is imported only here (it takes ~13 s to import).
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    x = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, dtype=np.float32)
    if x.ndim != 2 or len(x) < 5:
        raise ValueError(f"embed_2d needs features (N >= 5, D), got shape {x.shape}")
    if method not in ("tsne", "umap"):
        raise ValueError(f"method must be 'tsne' or 'umap', got {method!r}")
    with threadpool_limits(limits=threads):
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        dims = min(max_pca_dims, x.shape[0] - 1, x.shape[1])
        if x.shape[1] > dims:
            x = PCA(n_components=dims, random_state=seed).fit_transform(x)
        if method == "tsne":
            from sklearn.manifold import TSNE

            perplexity = float(min(30.0, (len(x) - 1) / 3.0))
            reducer = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        else:
            import umap  # noqa: PLC0415 -- slow import, only when asked for

            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), min_dist=0.1, random_state=seed,
                                n_jobs=1)
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def class_colours(n: int) -> list[str]:
    """``n`` distinguishable colours: :data:`PALETTE` up to 9 classes, matplotlib's tab20 up to 20, then hsv."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n <= len(PALETTE):
        return list(PALETTE[:n])
    cmap = colormaps["tab20"] if n <= 20 else colormaps["hsv"]
    return [to_hex(cmap(i / (20 if n <= 20 else n))) for i in range(n)]


@dataclass(frozen=True)
class Colouring:
    """Categorical colouring of N points: ``labels (N,)`` in ``0..len(names)-1``, ``-1`` = not shown."""

    title: str
    labels: np.ndarray
    names: list[str]


def knn_agreement(points: np.ndarray, labels: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Leave-one-out k-NN accuracy of ``labels`` (N,) in a 2-D embedding ``points`` (N, 2), and its chance level.

    The number printed beside each embedding panel: how well the colouring
    label can be read from a point's k nearest neighbours in the picture
    (points labelled -1 are left out). Chance = the majority-class share.
    """
    from sklearn.neighbors import NearestNeighbors

    keep = np.asarray(labels) >= 0
    points, labels = np.asarray(points)[keep], np.asarray(labels)[keep]
    if len(labels) <= k:
        return float("nan"), float("nan")
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    votes = labels[index[:, 1:]]  # drop each point itself
    n_classes = int(labels.max()) + 1
    counts = np.stack([(votes == c).sum(1) for c in range(n_classes)], 1)
    accuracy = float((counts.argmax(1) == labels).mean())
    chance = float(np.bincount(labels, minlength=n_classes).max() / len(labels))
    return accuracy, chance


def plot_embedding_grid(
    embeddings: Mapping[str, np.ndarray],
    colourings: Sequence[Colouring],
    suptitle: str | None = None,
    point_size: float = 3.0,
    neighbours: int = 10,
) -> Figure:
    """Scatter grid: one column per feature set (``embeddings[name]`` is ``(N, 2)``), one row per colouring.

    Each row gets its own legend on the right. Points labelled -1 are hidden.
    Each panel shows the leave-one-out k-NN accuracy (k = ``neighbours``) of
    its colouring label in the 2-D embedding and the chance level
    (:func:`knn_agreement`).
    """
    if not embeddings or not colourings:
        raise ValueError("need at least one embedding and one colouring")
    n_rows, n_cols = len(colourings), len(embeddings)
    with paper_style():
        width, _ = figure_size("text")
        fig = Figure(figsize=(width, width / n_cols * n_rows * 0.95 + 0.3), layout="constrained")
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        for row, colouring in enumerate(colourings):
            colours = class_colours(len(colouring.names))
            for col, (name, points) in enumerate(embeddings.items()):
                if len(points) != len(colouring.labels):
                    raise ValueError(f"{name}: {len(points)} points but {len(colouring.labels)} labels")
                ax = axes[row, col]
                for k, class_name in enumerate(colouring.names):
                    mask = colouring.labels == k
                    ax.scatter(points[mask, 0], points[mask, 1], s=point_size, color=colours[k],
                               label=class_name, linewidths=0, alpha=0.85, rasterized=True)
                accuracy, chance = knn_agreement(points, colouring.labels, neighbours)
                ax.text(0.02, 0.02, f"{neighbours}-NN {accuracy:.2f} (chance {chance:.2f})", transform=ax.transAxes,
                        fontsize="x-small", va="bottom", ha="left",
                        bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 0.5})
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_linewidth(0.4)
                if row == 0:
                    ax.set_title(name)
                if col == 0:
                    ax.set_ylabel(colouring.title)
            axes[row, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), markerscale=2.5,
                                 handletextpad=0.2, borderaxespad=0.0, ncol=1 if len(colouring.names) <= 10 else 2,
                                 columnspacing=0.6)
        if suptitle:
            fig.suptitle(suptitle)
    return fig


# ---------------------------------------------------------------------------
# image grids and curves


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


def plot_loss_curves(history: Sequence[Mapping[str, float]], x_key: str = "step", keys: Sequence[str] | None = None,
                     width: str | float = "column", title: str | None = None) -> Figure:
    """Training curves from a list of metric records (``{x_key: ..., "loss": ..., ...}``), log-scale y when positive.

    ``keys`` defaults to every numeric key whose name contains "loss" (or starts with "L_").
    """
    with paper_style():
        fig = Figure(figsize=figure_size(width, aspect=0.62), layout="constrained")
        ax = fig.subplots()
        draw_loss_curves(ax, history, x_key=x_key, keys=keys)
        if title:
            ax.set_title(title)
    return fig


def loss_keys(history: Sequence[Mapping[str, Any]], x_key: str) -> list[str]:
    """Numeric keys that look like losses, in first-seen order."""
    keys: list[str] = []
    for record in history:
        for key, value in record.items():
            is_loss = "loss" in key.lower() or key.startswith("L_")
            if key != x_key and is_loss and isinstance(value, (int, float)) and key not in keys:
                keys.append(key)
    return keys


def loss_label(key: str) -> str:
    """Legend label of a metrics key: ``loss`` -> "total", ``loss_face`` -> "$L_{face}$"."""
    if key == "loss":
        return "total"
    name = key[len("loss_"):] if key.startswith("loss_") else key[len("L_"):] if key.startswith("L_") else key
    return f"$L_{{{name}}}$"


def draw_loss_curves(ax: Any, history: Sequence[Mapping[str, Any]], x_key: str = "step",
                     keys: Sequence[str] | None = None) -> None:
    """Draw loss curves of ``history`` on ``ax`` (see :func:`plot_loss_curves`).

    The total (``loss``) is a black line; the y axis is logarithmic when the
    curves are positive and span more than a factor of 20.
    """
    chosen = list(keys) if keys is not None else loss_keys(history, x_key)
    values: list[float] = []
    terms = [key for key in chosen if key != "loss"]
    for key in chosen:
        points = [(r[x_key], r[key]) for r in history if x_key in r and isinstance(r.get(key), (int, float))]
        if not points:
            continue
        xs, ys = zip(*points)
        values += ys
        style = ({"color": "black", "linewidth": 1.3, "zorder": 3} if key == "loss"
                 else {"color": PALETTE[terms.index(key) % len(PALETTE)]})
        ax.plot(xs, ys, label=loss_label(key), marker="o" if len(xs) < 3 else None, **style)
    ax.set_xlabel(x_key)
    ax.set_ylabel("loss")
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    if values:
        legend_below(ax, ncol=min(3, len(chosen)))


def legend_below(ax: Any, ncol: int = 3) -> None:
    """A legend under the axis (below its x label), so it never covers data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=max(1, ncol), handlelength=1.5,
              columnspacing=1.0, borderaxespad=0.0)


#: line style of each run in the monitor panels (the colour is the feature)
RUN_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
#: colour of each probed feature in the monitor panels
FEATURE_COLOURS: dict[str, str] = {"F_s": PALETTE[0], "F_f": PALETTE[1], "F_p": PALETTE[2]}


def has_monitor(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``records`` hold probe-monitor values (:mod:`pclkit.monitor`)."""
    from pclkit.monitor import monitor_series

    return bool(monitor_series(records))


def draw_monitor_curves(ax: Any, task: str, runs: Mapping[str, Sequence[Mapping[str, Any]]], legend: bool = True) -> int:
    """Draw the monitor values of ``task`` against epoch for each run on ``ax``; returns the number of lines.

    ``runs`` maps a run label to its ``metrics.jsonl`` records. Colour = feature
    (F_s, F_f, F_p), line style = run; accuracies are drawn on [0, 1], R^2 up to 1.
    """
    from matplotlib.ticker import MaxNLocator

    from pclkit.monitor import TASK_LABELS, monitor_series

    lines, lowest = 0, 0.0
    for index, (label, records) in enumerate(runs.items()):
        for feature, (epochs, values) in monitor_series(records).get(task, {}).items():
            name = f"{label} {feature}" if len(runs) > 1 else feature
            ax.plot(epochs, values, marker="o", markersize=3, color=FEATURE_COLOURS.get(feature, PALETTE[-1]),
                    linestyle=RUN_LINESTYLES[index % len(RUN_LINESTYLES)], label=name)
            lines += 1
            lowest = min([lowest, *values])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_title(TASK_LABELS.get(task, task))
    if task == "yaw_r2":
        ax.set_ylim(max(lowest, -1.0) - 0.05, 1.02)
    else:
        ax.set_ylim(0.0, 1.0)
    if legend and lines:
        legend_below(ax, ncol=min(3, lines))
    return lines


def draw_monitor_panels(axes: Sequence[Any], runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """One panel per monitor task (expression acc., identity acc., yaw R^2) on ``axes``."""
    from pclkit.monitor import MONITOR_TASKS

    for ax, task in zip(axes, MONITOR_TASKS):
        draw_monitor_curves(ax, task, runs)


def plot_monitor_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], width: str | float = "text",
                        title: str | None = None) -> Figure:
    """The probe-monitor panels of one or more runs (``{label: metrics records}``) as a figure."""
    from pclkit.monitor import MONITOR_TASKS

    with paper_style():
        fig = Figure(figsize=figure_size(width, aspect=0.36), layout="constrained")
        draw_monitor_panels(fig.subplots(1, len(MONITOR_TASKS)), runs)
        if title:
            fig.suptitle(title)
    return fig


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of a figure (for widgets)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# widgets (ipywidgets 8; imported lazily so the CLI never needs them)


def _captioned(image: Any, caption: Any) -> Any:
    """A caption above an image widget."""
    import ipywidgets as widgets

    return widgets.VBox([caption, image], layout=widgets.Layout(align_items="center", margin="0 6px"))


@dataclass(frozen=True)
class SwapState:
    """What the pose-swap explorer shows: images ``(H, W, 3)`` in [0, 1], PSNR in dB (None without ground truth)."""

    image_a: np.ndarray
    image_b: np.ndarray
    reconstruction: np.ndarray
    truth: np.ndarray | None
    psnr: float | None


class PoseSwapExplorer:
    """Pick faces A and B, slide the pose feature from ``F_p`` (A) to ``F_p̂`` (the pose source), see ``D``.

    The reconstruction is ``D(F_f, (1 - α) F_p^A + α F_p^B)`` (:func:`decode_swap`),
    with ``F_f`` from A, or from the pose source when "swap face" is on. The pose
    source is face B, the flip of A, or (SynthFaces) A re-rendered at B's head
    pose. On SynthFaces the ground truth beside it is the re-render of the face
    at the interpolated head pose (:func:`ground_truth_swap`) with its PSNR; for
    the flip it is approximate (a flip also mirrors light and hair).

    ``explorer.widget`` is the UI; ``explorer.state`` the last :class:`SwapState`.
    Sliders that need a decoder pass use ``continuous_update=False``.

    Args:
        model: a PCL :class:`pclkit.models.PCLModel` (SimCLR has no decoder).
        dataset: items ``(image (3, S, S), labels)``; SynthFaces (with ``factors``) adds the ground truth.
        face_a, face_b: initial indices.
        display_scale: nearest-neighbour enlargement of the displayed images.
    """

    def __init__(self, model: nn.Module, dataset: Any, face_a: int = 0, face_b: int = 1, display_scale: int = 3) -> None:
        import ipywidgets as widgets

        if getattr(model, "decoder", True) is None:
            raise ValueError("the pose-swap explorer needs a PCL model with a decoder (got a SimCLR model)")
        self.model = model
        self.dataset = dataset
        self.factors = getattr(dataset, "factors", None)
        self.display_scale = display_scale
        last = len(dataset) - 1
        self.face_a = widgets.IntSlider(value=min(face_a, last), min=0, max=last, description="face A",
                                        continuous_update=False)
        self.face_b = widgets.IntSlider(value=min(face_b, last), min=0, max=last, description="face B",
                                        continuous_update=False)
        sources = [("face B", "face_b"), ("flip of A", "flip")]
        if self.factors is not None:
            sources.append(("A at B's pose (re-render)", "rerender"))
        self.pose_source = widgets.ToggleButtons(options=sources, value="face_b", description="pose from",
                                                 style={"button_width": "auto"})
        self.alpha = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="α: F_p → F_p̂",
                                         continuous_update=False, readout_format=".2f",
                                         style={"description_width": "initial"})
        self.swap_face = widgets.Checkbox(value=False, description="take F_f from the pose source", indent=False,
                                          layout=widgets.Layout(width="auto", margin="0 0 0 24px"))
        self.image_a = widgets.Image(format="png")
        self.image_b = widgets.Image(format="png")
        self.reconstruction_image = widgets.Image(format="png")
        self.truth_image = widgets.Image(format="png")
        for image, name in ((self.image_a, "a"), (self.image_b, "b"), (self.reconstruction_image, "reconstruction"),
                            (self.truth_image, "truth")):
            image.add_class(f"pclkit-{name}")  # stable hooks for browser tests and custom CSS
        self.readout = widgets.HTML()
        self._captions = {name: widgets.HTML() for name in ("a", "b", "recon", "truth")}
        self._cache_key: tuple[int, int, str] | None = None
        self._cache: tuple[Tensor, Tensor, Features, Features, Any, Any] | None = None
        self.state: SwapState | None = None
        self._widget = self._layout()
        for control in (self.face_a, self.face_b, self.pose_source, self.alpha, self.swap_face):
            control.observe(self.update, names="value")
        self.update()

    @property
    def widget(self) -> Any:
        """The explorer's UI (an ``ipywidgets.VBox``)."""
        return self._widget

    def _layout(self) -> Any:
        import ipywidgets as widgets

        controls = widgets.VBox([widgets.HBox([self.face_a, self.face_b]), self.pose_source,
                                 widgets.HBox([self.alpha, self.swap_face])])
        pictures = widgets.HBox([
            _captioned(self.image_a, self._captions["a"]),
            _captioned(self.image_b, self._captions["b"]),
            _captioned(self.reconstruction_image, self._captions["recon"]),
            _captioned(self.truth_image, self._captions["truth"]),
        ])
        return widgets.VBox([controls, pictures, self.readout])

    def _views(self) -> tuple[Tensor, Tensor, Features, Features, Any, Any]:
        """Images A and pose source ``(3, S, S)``, their features, and their SynthFaces factors (or None)."""
        key = (self.face_a.value, self.face_b.value, self.pose_source.value)
        if key != self._cache_key or self._cache is None:
            self._cache = self._compute_views(*key)
            self._cache_key = key
        return self._cache

    def _compute_views(self, index_a: int, index_b: int, source: str) -> tuple[Tensor, Tensor, Features, Features, Any, Any]:
        image_a = as_float_batch(self.dataset[index_a][0])[0]
        factors_a = self.factors[index_a:index_a + 1] if self.factors is not None else None
        factors_b = self.factors[index_b:index_b + 1] if self.factors is not None else None
        if source == "face_b":
            image_b = as_float_batch(self.dataset[index_b][0])[0]
        elif source == "flip":
            image_b, factors_b = self._flip(image_a, factors_a)
        elif source == "rerender":
            from pclkit.data.synthetic import Factors, render

            factors_b = Factors.combine(factors_a, factors_b)
            image_b = render(factors_b, size=image_a.shape[-1])[0]
        else:
            raise ValueError(f"unknown pose source {source!r}")
        feats = encode(self.model, torch.stack([image_a, image_b]))
        feats_a, feats_b = feats[0], feats[1]
        return image_a, image_b, feats_a, feats_b, factors_a, factors_b

    @staticmethod
    def _flip(image: Tensor, factors: Any) -> tuple[Tensor, Any]:
        """Horizontal flip of ``image (3, S, S)`` and its mirrored SynthFaces factors (None without factors)."""
        from pclkit.augment import make_pose_change

        flipped, _ = make_pose_change("flip")(image[None], None, torch.Generator().manual_seed(0))
        return flipped[0], (factors.mirrored() if factors is not None else None)

    def compute(self) -> SwapState:
        """The images and PSNR for the current control values (no widget is touched)."""
        image_a, image_b, feats_a, feats_b, factors_a, factors_b = self._views()
        alpha, swap = float(self.alpha.value), bool(self.swap_face.value)
        reconstruction = to_numpy_image(decode_swap(self.model, feats_a, feats_b, alpha, swap)[0])
        truth = None
        if factors_a is not None and factors_b is not None:
            face_from = factors_b if swap and self.pose_source.value == "face_b" else factors_a
            truth = ground_truth_swap(face_from, factors_a, factors_b, alpha, size=image_a.shape[-1])
        score = psnr(reconstruction, truth) if truth is not None else None
        return SwapState(to_numpy_image(image_a), to_numpy_image(image_b), reconstruction, truth, score)

    def update(self, change: Any = None) -> None:
        """Recompute and replace the PNG bytes of the image widgets in place."""
        state = self.compute()
        scale = self.display_scale
        self.image_a.value = png_bytes(state.image_a, scale)
        self.image_b.value = png_bytes(state.image_b, scale)
        self.reconstruction_image.value = png_bytes(state.reconstruction, scale)
        if state.truth is not None:
            self.truth_image.value = png_bytes(state.truth, scale)
        self.truth_image.layout.visibility = "visible" if state.truth is not None else "hidden"
        self._set_captions(state)
        self.state = state

    def _set_captions(self, state: SwapState) -> None:
        source = self.pose_source.value
        alpha = float(self.alpha.value)
        face = "F_f of the pose source" if self.swap_face.value else "F_f of A"
        self._captions["a"].value = f"<b>A</b> (face {self.face_a.value})"
        self._captions["b"].value = {"face_b": f"<b>pose source</b>: face {self.face_b.value}",
                                     "flip": "<b>pose source</b>: flip of A",
                                     "rerender": "<b>pose source</b>: A at B's pose"}[source]
        self._captions["recon"].value = f"<b>D</b>({face}, F_p at α={alpha:.2f})"
        approx = " (approx.)" if source == "flip" else ""
        self._captions["truth"].value = f"<b>ground truth</b>{approx}" if state.truth is not None else ""
        self.readout.value = (f"PSNR vs ground truth: <b>{state.psnr:.2f} dB</b>" if state.psnr is not None
                              else "no ground truth for this dataset")


class LiveLossPlot(TrainerCallback):
    """A loss plot that redraws in place (one ``ipywidgets.Image``) as metric records arrive.

    Call the object with each record (``{"step": 10, "loss": 1.2, ...}``);
    ``widget`` shows the curves, ``history`` holds the step records and
    ``monitor`` the probe-monitor records (:mod:`pclkit.monitor`). Once a
    monitor record has arrived, the picture also shows its panels (expression
    and identity accuracy, yaw R^2 per feature). It is a
    :class:`pclkit.callbacks.TrainerCallback` (see :meth:`follow`).
    """

    def __init__(self, title: str = "", x_key: str = "step", keys: Sequence[str] | None = None, every: int = 1) -> None:
        import ipywidgets as widgets

        self.title, self.x_key, self.keys, self.every = title, x_key, keys, max(1, every)
        self.history: list[dict[str, Any]] = []
        self.monitor: list[dict[str, Any]] = []
        self.image = widgets.Image(format="png")

    @property
    def widget(self) -> Any:
        return self.image

    def __call__(self, record: Mapping[str, Any]) -> None:
        """Add one record and redraw: step records every ``every``, monitor records at once (others are ignored)."""
        kind = record.get("kind", "step")
        if kind == "monitor":
            self.monitor.append(dict(record))
            self.redraw()
        elif kind == "step":
            self.history.append(dict(record))
            if len(self.history) % self.every == 0:
                self.redraw()

    def on_record(self, trainer: Any, record: Mapping[str, Any]) -> None:
        """The trainer-callback hook: same as calling the plot with ``record``."""
        self(record)

    def extend(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add many records (e.g. a finished run's ``metrics.jsonl``) and redraw once."""
        self.history.extend(dict(r) for r in records if r.get("kind", "step") == "step")
        self.monitor.extend(dict(r) for r in records if r.get("kind") == "monitor")
        self.redraw()

    def follow(self, trainer: Any) -> None:
        """Draw every record a :class:`pclkit.train.Trainer` writes to its ``metrics.jsonl``.

        Registers this plot with ``trainer.add_callback`` (records are written to
        the file first). Only the main rank logs, so elsewhere nothing is drawn.
        """
        trainer.add_callback(self)

    def figure(self) -> Figure:
        """The loss curves; beside them the monitor panels once monitor records exist."""
        if not self.monitor:
            return plot_loss_curves(self.history, x_key=self.x_key, keys=self.keys, title=self.title)
        from pclkit.monitor import MONITOR_TASKS

        with paper_style():
            fig = Figure(figsize=figure_size("text", aspect=0.34), layout="constrained")
            axes = fig.subplots(1, 1 + len(MONITOR_TASKS), width_ratios=[1.4] + [1.0] * len(MONITOR_TASKS))
            draw_loss_curves(axes[0], self.history, x_key=self.x_key, keys=self.keys)
            draw_monitor_panels(axes[1:], {self.title or "run": self.monitor})
            if self.title:
                fig.suptitle(self.title)
        return fig

    def redraw(self) -> None:
        """Render the current history into the image widget."""
        self.image.value = figure_png(self.figure())


class SynthFacesExplorer:
    """Sliders over the SynthFaces factors of one face, re-rendered on release.

    Identity, expression (sets the AU sliders to its prototype), the 8 AU
    intensities, yaw, pitch and roll; canonical light and background. Rendering
    one face takes a fraction of a second on a CPU, so sliders use
    ``continuous_update=False``. ``widget`` is the UI, ``image`` the picture,
    :meth:`factors` the current :class:`pclkit.data.synthetic.Factors`.
    """

    def __init__(self, split: str = "train", size: int = 96, display_scale: int = 2) -> None:
        import ipywidgets as widgets

        from pclkit.data import synthetic as synth

        self.size, self.display_scale = size, display_scale
        ids = synth.DEFAULT_CONFIG.identity_range(split)
        (yaw_lo, yaw_hi), (pitch_lo, pitch_hi), (roll_lo, roll_hi) = synth.DEFAULT_CONFIG.pose_range
        self.identity = widgets.IntSlider(value=ids.start, min=ids.start, max=ids.stop - 1, description="identity",
                                          continuous_update=False)
        self.expression = widgets.Dropdown(options=[(name, i) for i, name in enumerate(synth.EXPRESSIONS)], value=0,
                                           description="expression")
        self.aus = [widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, continuous_update=False,
                                        description=f"{name} {text}", style={"description_width": "150px"})
                    for name, text in zip(synth.AU_NAMES, synth.AU_DESCRIPTIONS)]
        self.yaw = widgets.FloatSlider(value=0.0, min=yaw_lo, max=yaw_hi, step=5.0, description="yaw °",
                                       continuous_update=False)
        self.pitch = widgets.FloatSlider(value=0.0, min=pitch_lo, max=pitch_hi, step=5.0, description="pitch °",
                                         continuous_update=False)
        self.roll = widgets.FloatSlider(value=0.0, min=roll_lo, max=roll_hi, step=5.0, description="roll °",
                                        continuous_update=False)
        self.image = widgets.Image(format="png")
        self.image.add_class("pclkit-synthface")
        self._holding = False
        self._widget = widgets.HBox([
            widgets.VBox([self.identity, self.expression, self.yaw, self.pitch, self.roll]),
            widgets.VBox(self.aus),
            self.image,
        ])
        self.expression.observe(self._set_prototype, names="value")
        for control in (self.identity, self.yaw, self.pitch, self.roll, *self.aus):
            control.observe(self.update, names="value")
        self.update()

    @property
    def widget(self) -> Any:
        return self._widget

    def factors(self) -> Any:
        """The face on screen as a one-row :class:`Factors` (canonical nuisance)."""
        from pclkit.data.synthetic import make_factors

        aus = torch.tensor([[slider.value for slider in self.aus]], dtype=torch.float32)
        pose = torch.tensor([[self.yaw.value, self.pitch.value, self.roll.value]], dtype=torch.float32)
        return make_factors([self.identity.value], [self.expression.value], aus=aus, pose=pose)

    def render(self) -> np.ndarray:
        """The current face, ``(size, size, 3)`` in [0, 1]."""
        from pclkit.data.synthetic import render

        return to_numpy_image(render(self.factors(), size=self.size)[0])

    def _set_prototype(self, change: Any = None) -> None:
        from pclkit.data.synthetic import EXPRESSION_PROTOTYPES

        self._holding = True  # one render for the whole prototype, not one per AU slider
        try:
            for slider, value in zip(self.aus, EXPRESSION_PROTOTYPES[self.expression.value].tolist()):
                slider.value = round(value, 2)
        finally:
            self._holding = False
        self.update()

    def update(self, change: Any = None) -> None:
        """Re-render and replace the image bytes in place."""
        if self._holding:
            return
        self.image.value = png_bytes(self.render(), self.display_scale)
