"""Plots and image helpers for the notebooks and the ``figures`` command (no widgets: :mod:`pclkit.widgets`).

Every figure builder returns a :class:`matplotlib.figure.Figure` drawn in the
paper style (:mod:`pclkit.style`), with no pyplot state. The modules:

* :mod:`~pclkit.viz.images` -- tensor <-> array conversion, PNG bytes, PSNR,
  labelled image grids (:func:`plot_image_rows`);
* :mod:`~pclkit.viz.swaps` -- a model's pose swaps as pictures: :func:`encode`,
  :func:`decode_swap`, :func:`render_swap`, the paper's grid :func:`swap_grid`,
  the SynthFaces ground truth :func:`ground_truth_swap`;
* :mod:`~pclkit.viz.embeddings` -- 2-D embeddings of features and their colourings
  (:func:`embed_2d`, :func:`plot_embedding_grid`);
* :mod:`~pclkit.viz.curves` -- training curves: the one loss-curve plotter
  :func:`draw_loss_curves`, DWA weights, the probe monitor, a run's ``curves.png``.

Images are float tensors ``(3, H, W)`` / ``(B, 3, H, W)`` in [0, 1] (the data
contract) and become numpy arrays ``(H, W, 3)`` float32 in [0, 1] for display.
"""

from __future__ import annotations

from pclkit.style import PALETTE
from pclkit.viz.curves import (
    FEATURE_COLOURS,
    RUN_LINESTYLES,
    draw_dwa_weights,
    draw_loss_curves,
    draw_monitor_curves,
    draw_monitor_panels,
    dwa_terms,
    has_monitor,
    legend_below,
    loss_keys,
    loss_label,
    plot_loss_curves,
    plot_monitor_curves,
    plot_training_curves,
)
from pclkit.viz.embeddings import (
    YAW_EDGES,
    Colouring,
    class_colours,
    embed_2d,
    knn_agreement,
    plot_embedding_grid,
    select_classes,
    yaw_bins,
)
from pclkit.viz.images import (
    annotate_image,
    as_float_batch,
    decode_png,
    figure_png,
    plot_image_rows,
    png_bytes,
    psnr,
    text_width_in,
    to_numpy_image,
)
from pclkit.viz.swaps import (
    SWAP_GRID_ROWS,
    decode_swap,
    decode_swaps,
    encode,
    eval_mode,
    feature_rows,
    ground_truth_swap,
    has_decoder,
    mix_pose,
    model_device,
    render_swap,
    require_decoder,
    swap_grid,
)

__all__ = [
    "FEATURE_COLOURS", "PALETTE", "RUN_LINESTYLES", "SWAP_GRID_ROWS", "YAW_EDGES", "Colouring", "annotate_image",
    "as_float_batch", "class_colours", "decode_png", "decode_swap", "decode_swaps", "draw_dwa_weights",
    "draw_loss_curves", "draw_monitor_curves", "draw_monitor_panels", "dwa_terms", "embed_2d", "encode", "eval_mode",
    "feature_rows", "figure_png", "ground_truth_swap", "has_decoder", "has_monitor", "knn_agreement", "legend_below", "loss_keys",
    "loss_label", "mix_pose", "model_device", "plot_embedding_grid", "plot_image_rows", "plot_loss_curves",
    "plot_monitor_curves", "plot_training_curves", "png_bytes", "psnr", "render_swap", "require_decoder",
    "select_classes", "swap_grid", "text_width_in", "to_numpy_image", "yaw_bins",
]
