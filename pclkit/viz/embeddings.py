"""Embeddings of frozen features, as pictures: 2-D projections and the colourings that read them.

:func:`embed_2d` projects features ``(N, D)`` to ``(N, 2)`` with t-SNE (van der
Maaten & Hinton, JMLR 2008) or UMAP (McInnes et al., 2018);
:func:`plot_embedding_grid` draws one panel per feature set and colouring, with
the k-NN agreement of the colouring label in each panel (:func:`knn_agreement`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from pclkit.style import PALETTE, figure_size, paper_style

__all__ = ["Colouring", "YAW_EDGES", "class_colours", "embed_2d", "knn_agreement", "plot_embedding_grid",
           "select_classes", "yaw_bins"]

#: default yaw bin edges in degrees: four bins -90..-45, -45..0, 0..45, 45..90
YAW_EDGES: tuple[float, ...] = (-90.0, -45.0, 0.0, 45.0, 90.0)


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
             threads: int | None = None) -> np.ndarray:
    """2-D embedding of features ``(N, D)`` -> ``(N, 2)`` float32, with ``method`` in {"tsne", "umap"}.

    Rows are L2-normalised (cosine geometry, as the contrastive losses use) and
    reduced to ``max_pca_dims`` with PCA first. ``threads`` caps the OpenMP/BLAS
    threads (None: the libraries' default, every core: sklearn's t-SNE of 2,000
    points takes 8 s on 2 cores against 13 s on one, also right after torch
    work in the same process). Pass ``threads=1`` while another heavy job
    shares the cores: spin-waiting OpenMP threads then slow both down several
    times. ``umap`` is imported only here (it takes ~13 s to import).
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
            from sklearn.metrics import pairwise_distances

            # below 4,096 points UMAP computes exact distances through its numba metric, which
            # sklearn calls once per pair from Python (~11 s for 2,000 points); the same
            # Euclidean matrix from BLAS takes milliseconds
            x = pairwise_distances(x, metric="euclidean")
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), min_dist=0.1, random_state=seed,
                                n_jobs=1, metric="precomputed")
        with warnings.catch_warnings():  # "using precomputed metric; inverse_transform will be unavailable"
            warnings.filterwarnings("ignore", message="using precomputed metric")
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
