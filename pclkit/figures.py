"""The workbook's figures, and ``python -m pclkit figures`` to regenerate them headless.

Each ``*_figure`` function builds one figure of the notebooks from trained
runs and returns a :class:`matplotlib.figure.Figure` in the paper style; the
notebooks call the same functions, so a notebook and the command give the same
figure. :func:`make_all` builds and saves every figure of a set of runs: the
``figures`` command and the main job (:mod:`pclkit.reproduce`) both call it.
Runs are found, trained and loaded by :mod:`pclkit.runs`.

Figures (file stems under ``figures/``, each as PDF, SVG and PNG):

* ``synthfaces_factors`` -- SynthFaces: expressions x head poses of a few identities;
* ``pretraining_curves`` -- each run's loss terms, the DWA weights, and the probes
  during pretraining (expression / identity accuracy, yaw R^2) when the runs logged them;
* ``linear_eval_features`` -- F_s / F_f / F_p / F_f ⊕ F_p per task (needs an evaluation);
* ``embeddings_tsne``, ``embeddings_umap`` -- every feature of every run, by expression and yaw;
* ``embeddings_cmu_tsne``, ``embeddings_cmu_umap`` -- the same on CMU faces (pose, identity);
* with a model that has a decoder (PCL, Liu et al., CVPR 2023):
  ``pose_swap_grid`` (flip) and ``pose_swap_grid_render3d`` -- the paper's reconstruction grid;
  ``pose_swap_ground_truth`` -- D(F_f^A, F_p^B) beside render(face A, pose B), with PSNR;
  ``pose_interpolation`` -- D(F_f, (1-α) F_p + α F_p̂) against the re-render at the interpolated pose;
  ``swap_margin_by_yaw_turn`` -- how much closer a swap is to the truth than to face A, and its PSNR,
  by how far the head turns between A and B.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from pclkit import runs as run_folders
from pclkit import viz
from pclkit.methods import method_label
from pclkit.style import figure_size, paper_style, save_figure
from pclkit.swap import draw_swap_pairs, margin_by_yaw_turn

#: expression classes the paper's embedding figure contrasts
PAPER_EXPRESSIONS = ("neutral", "happy")
#: the embedding projections :func:`make_all` draws by default
EMBEDDING_METHODS: tuple[str, ...] = ("tsne", "umap")


# --------------------------------------------------------------------------- data helpers


def synthfaces(split: str, n: int, size: int, seed: int = 0, pose_limits: Sequence[float] | None = None,
               pose_prior: str | None = None) -> Any:
    """A SynthFaces ``split`` at ``size`` px, poses within ``pose_limits`` (None: the default ranges).

    The figures' name for :func:`pclkit.data.synthfaces.synthfaces_split`.
    """
    from pclkit.data.synthfaces import synthfaces_split

    return synthfaces_split(split, n, size, seed, pose_limits=pose_limits, prior=pose_prior)


def dataset_images(dataset: Any, indices: Sequence[int]) -> Tensor:
    """Images ``(len(indices), 3, S, S)`` float in [0, 1] of a dataset's items (SynthFaces: one batched render)."""
    if hasattr(dataset, "images"):
        return dataset.images(list(indices))
    return torch.stack([viz.as_float_batch(dataset[int(i)][0])[0] for i in indices])


def spread_by_yaw(factors: Any, count: int) -> list[int]:
    """Indices of ``count`` faces whose yaws spread over the range (for readable grids)."""
    yaw = factors.pose[:, 0]
    targets = torch.linspace(float(yaw.min()), float(yaw.max()), count)
    chosen: list[int] = []
    for target in targets:
        order = torch.argsort((yaw - target).abs())
        chosen.append(next(int(i) for i in order if int(i) not in chosen))
    return chosen


# --------------------------------------------------------------------------- figures: data


def synthfaces_factors_figure(identities: Sequence[int] = (0, 1, 2), size: int = 64,
                              yaws: Sequence[float] = (-90.0, -45.0, 0.0, 45.0, 90.0)) -> Figure:
    """SynthFaces at a glance: each identity's 7 expressions (frontal), then a yaw sweep (happy)."""
    from pclkit.data.synthfaces import EXPRESSIONS, make_factors, render

    rows: dict[str, Tensor] = {}
    for identity in identities:
        expressions = make_factors([identity] * len(EXPRESSIONS), list(range(len(EXPRESSIONS))))
        sweep = make_factors([identity] * len(yaws), [1], pose=torch.tensor([[y, 0.0, 0.0] for y in yaws]))
        rows[f"identity {identity}"] = torch.cat([render(expressions, size), render(sweep, size)])
    columns = [*EXPRESSIONS, *(f"yaw {y:+.0f}°" for y in yaws)]
    return viz.plot_image_rows(rows, max_columns=len(columns), column_titles=columns)


# --------------------------------------------------------------------------- figures: training


def pretraining_curves_figure(runs: Mapping[str, str | Path]) -> Figure:
    """Loss terms per step of each run (one panel per run) and the DWA weights per epoch of runs that adapt them.

    ``runs`` maps a label to a run folder. When a run logged probe-monitor
    records (``runtime.monitor_every``), a second row shows them: expression
    accuracy, identity accuracy and yaw R^2 against epoch, one line per
    feature (colour) and run (line style).
    """
    from pclkit.monitor import MONITOR_TASKS
    from pclkit.runlog import read_metrics

    histories = {label: read_metrics(Path(folder) / "metrics.jsonl") for label, folder in runs.items()}
    epochs = {label: [r for r in history if r.get("kind") == "epoch"] for label, history in histories.items()}
    # DWA adapts two or more weights; a run with one weighted term keeps it constant
    dwa_runs = {label: records for label, records in epochs.items() if len(viz.dwa_terms(records)) >= 2}
    n_panels = len(histories) + (1 if dwa_runs else 0)
    monitored = {label: history for label, history in histories.items() if viz.has_monitor(history)}
    with paper_style():
        fig = Figure(figsize=figure_size("text", aspect=0.72 if monitored else 0.36), layout="constrained")
        top = fig
        if monitored:
            top, bottom = fig.subfigures(2, 1)
            viz.draw_monitor_panels(bottom.subplots(1, len(MONITOR_TASKS)), monitored)
        axes = top.subplots(1, n_panels, squeeze=False)[0]
        for ax, (label, history) in zip(axes, histories.items()):
            viz.draw_loss_curves(ax, [r for r in history if r.get("kind") == "step"], x_key="step")
            ax.set_title(label)
        if dwa_runs:
            viz.draw_dwa_weights(axes[-1], dwa_runs)
    return fig


def detector_scores_by_epoch(history: Sequence[Mapping[str, Any]], branch: str, batch_size: int) -> dict[str, list[float]]:
    """Per epoch of a PCFRL run: precision, recall and chance precision of its false-negative detector.

    From the step records' ``diag_<branch>_fn_hits / _pairs / _true_pairs`` (pairs of one batch):
    precision = sum(hits) / sum(pairs), recall = sum(hits) / sum(true pairs), chance = the share
    of true pairs among all B (B - 1) / 2 pairs of a batch (what flagging pairs at random would score).
    Epochs without any step scored against ground truth are left out.
    """
    per_epoch: dict[int, list[float]] = {}
    key = f"diag_{branch}_fn_"
    for record in history:
        if record.get("kind") == "step" and f"{key}hits" in record:
            sums = per_epoch.setdefault(int(record["epoch"]), [0.0, 0.0, 0.0, 0.0])
            for i, name in enumerate(("hits", "pairs", "true_pairs")):
                sums[i] += float(record[key + name])
            sums[3] += 1
    all_pairs = batch_size * (batch_size - 1) / 2
    out: dict[str, list[float]] = {"epoch": [], "precision": [], "recall": [], "chance": []}
    for epoch, (hits, pairs, true, steps) in sorted(per_epoch.items()):
        out["epoch"].append(epoch + 1)
        out["precision"].append(hits / pairs if pairs else float("nan"))
        out["recall"].append(hits / true if true else float("nan"))
        out["chance"].append(true / (steps * all_pairs))
    return out


def false_negative_detector_figure(folder: str | Path) -> Figure:
    """PCFRL's false-negative detector scored against SynthFaces' ground truth, per epoch (one panel per branch).

    Face branch: a detected pair is right when both images show one identity; pose branch: when
    their yaw and pitch differ by less than the tolerance of :mod:`pclkit.methods.pcfrl`. A paper
    cannot draw this (real data has no such truth); the dashed line is the precision of chance.
    """
    from pclkit.config import load_config_file
    from pclkit.runlog import read_metrics

    folder = Path(folder)
    history = read_metrics(folder / "metrics.jsonl")
    batch = load_config_file(folder / "config.yaml").optim.batch_size
    branches = [b for b in ("pose", "face") if any(f"diag_{b}_fn_hits" in r for r in history)]
    if not branches:
        raise ValueError(f"{folder} logged no detector scores (a PCFRL run on SynthFaces logs diag_*_fn_hits)")
    with paper_style():
        fig = Figure(figsize=figure_size("text", aspect=0.36), layout="constrained")
        axes = fig.subplots(1, len(branches), squeeze=False)[0]
        for ax, branch in zip(axes, branches):
            scores = detector_scores_by_epoch(history, branch, batch)
            ax.plot(scores["epoch"], scores["precision"], marker="o", color=viz.PALETTE[0], label="precision")
            ax.plot(scores["epoch"], scores["recall"], marker="s", color=viz.PALETTE[1], label="recall")
            ax.plot(scores["epoch"], scores["chance"], linestyle="--", color="grey", label="chance precision")
            ax.set_title(f"{branch} false negatives")
            ax.set_xlabel("epoch")
            ax.set_ylim(0, 1)
        axes[0].set_ylabel("against ground truth")
        axes[-1].legend(loc="upper right")
    return fig


# --------------------------------------------------------------------------- figures: evaluation

#: (task, metric, axis label, scale) of the feature-comparison figure
FEATURE_PANELS: tuple[tuple[str, str, str, float], ...] = (
    ("expression", "accuracy", "expression acc. (%) ↑", 100.0),
    ("verification", "accuracy", "verification acc. (%) ↑", 100.0),
    ("au", "f1_mean", "AU F1 (%) ↑", 100.0),
    ("head_pose", "mae_mean", "head-pose MAE (°) ↓", 1.0),
)


#: the same for the CMU faces tasks
CMU_FEATURE_PANELS: tuple[tuple[str, str, str, float], ...] = (
    ("expression", "accuracy", "expression acc. (%) ↑", 100.0),
    ("verification", "accuracy", "verification acc. (%) ↑", 100.0),
    ("pose", "accuracy", "pose acc. (%) ↑", 100.0),
)


def linear_eval_features_figure(rows: Sequence[Mapping[str, Any]], data: str = "synthfaces",
                                panels: Sequence[tuple[str, str, str, float]] = FEATURE_PANELS) -> Figure:
    """Bars of F_s / F_f / F_p / F_f ⊕ F_p per learned method and task (mean ± std over seeds).

    Baselines (random init, raw pixels, when present) are drawn as horizontal lines.
    """
    from pclkit.evaluate import PIXELS, RANDOM_INIT, SUPERVISED
    from pclkit.features import FEATURE_KEYS, LATEX_NAMES
    from pclkit.tables import aggregate

    stats = aggregate([r for r in rows if r["data"] == data])
    methods = list(dict.fromkeys(key[1] for key in stats if key[1] not in (PIXELS, RANDOM_INIT, SUPERVISED)))
    panels = [p for p in panels if any(key[3] == p[0] and key[4] == p[1] for key in stats)]
    if not panels:
        raise ValueError(f"no rows of the tasks {[p[0] for p in FEATURE_PANELS]} for data {data!r}")
    bars = [(m, f) for m in methods for f in FEATURE_KEYS if any(k[1:3] == (m, f) for k in stats)]
    with paper_style():
        fig = Figure(figsize=figure_size("text", aspect=0.3), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (task, metric, label, scale) in zip(axes, panels):
            for i, (method, feature) in enumerate(bars):
                stat = stats.get((data, method, feature, task, metric))
                if stat is None or stat.n == 0:
                    continue
                err = stat.std * scale if stat.n > 1 else None
                colour = viz.PALETTE[FEATURE_KEYS.index(feature) % len(viz.PALETTE)]
                ax.bar(i, stat.mean * scale, yerr=err, color=colour, alpha=1.0 if method == methods[-1] else 0.55,
                       capsize=1.5, error_kw={"linewidth": 0.6})
            for style, (baseline, feature) in zip((":", "--"), ((PIXELS, "pixels"), (RANDOM_INIT, "F_s"))):
                stat = stats.get((data, baseline, feature, task, metric))
                if stat is not None and stat.n:
                    ax.axhline(stat.mean * scale, color="0.35", linestyle=style, linewidth=0.8, label=baseline)
            ax.set_xticks(range(len(bars)))
            ax.set_xticklabels([f"{method_label(m)}\n{LATEX_NAMES.get(f, f)}" for m, f in bars],
                               rotation=90, fontsize=5.5)
            ax.set_title(label)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncol=len(handles))
    return fig


# --------------------------------------------------------------------------- figures: embeddings


def embedding_feature_sets(runs: Mapping[str, nn.Module], images: Tensor) -> dict[str, Tensor]:
    """Frozen features to embed: every feature each model exposes (``model.feature_dims``), values ``(N, D)``.

    ``runs`` maps a label to a model (eval mode). A model with one feature
    (F_s) contributes ``label``; a model with several contributes
    ``"label $F_s$"``, ``"label $F_f$"``, ``"label $F_p$"``.
    """
    from pclkit.features import LATEX_NAMES, extract_features

    sets: dict[str, Tensor] = {}
    for label, model in runs.items():
        names = tuple(model.feature_dims)  # the keys of model.forward_features
        feats = extract_features(model, images, names, progress=False)
        if len(names) == 1:
            sets[label] = feats[names[0]]
        else:
            sets.update({f"{label} {LATEX_NAMES.get(name, name)}": feats[name] for name in names})
    return sets


def synthfaces_colourings(labels: Mapping[str, Tensor], expressions: Sequence[str] = PAPER_EXPRESSIONS) -> list[viz.Colouring]:
    """Colour SynthFaces points by expression (only ``expressions`` shown) and by yaw bin (−90/−45/0/45/90)."""
    from pclkit.data.synthfaces import EXPRESSIONS

    expression, names = viz.select_classes(labels["expression"].numpy(), EXPRESSIONS, expressions)
    yaw, yaw_names = viz.yaw_bins(labels["pose"][:, 0].numpy())
    return [viz.Colouring("expression", expression, names), viz.Colouring("yaw", yaw, yaw_names)]


def cmu_colourings(labels: Mapping[str, Tensor], class_names: Mapping[str, Sequence[str]]) -> list[viz.Colouring]:
    """Colour CMU points by head pose (4 classes) and by identity (20 people)."""
    return [viz.Colouring("head pose", labels["pose"].numpy(), list(class_names["pose"])),
            viz.Colouring("identity", labels["identity"].numpy(), list(class_names["identity"]))]


def embeddings_figure(feature_sets: Mapping[str, Tensor], colourings: Sequence[viz.Colouring], method: str = "tsne",
                      seed: int = 0) -> Figure:
    """2-D embeddings (``method`` "tsne" or "umap") of each feature set, one row per colouring."""
    points = {name: viz.embed_2d(features, method, seed=seed) for name, features in feature_sets.items()}
    return viz.plot_embedding_grid(points, colourings, suptitle={"tsne": "t-SNE", "umap": "UMAP"}[method])


# --------------------------------------------------------------------------- figures: reconstructions


def pose_changed_views(images: Tensor, pose_change: str = "flip", factors: Any = None, seed: int = 0) -> Tensor:
    """ŝ for each image ``(B, 3, S, S)`` with a pose change of :func:`pclkit.augment.make_pose_change`."""
    from pclkit.augment import make_pose_change

    pose = factors.pose.float() if factors is not None else None
    generator = torch.Generator().manual_seed(seed)
    views, _ = make_pose_change(pose_change)(images, pose, generator, factors=factors)
    return views.clamp(0, 1)


def pose_swap_grid_figure(model: nn.Module, dataset: Any, n_faces: int = 8, pose_change: str = "flip") -> Figure:
    """The paper's grid: (a) s, ŝ, (b) D(F_f,F_p), (c) D(F_f,F_p̂), (d) D(F_f,0), (e) D(0,F_p), (f) D(0,F_p̂)."""
    factors = getattr(dataset, "factors", None)
    indices = spread_by_yaw(factors, n_faces) if factors is not None else list(range(n_faces))
    images = dataset_images(dataset, indices)
    chosen = factors[torch.tensor(indices)] if factors is not None else None
    views = pose_changed_views(images, pose_change, chosen)
    rows = viz.swap_grid(model, images, views)
    return viz.plot_image_rows({viz.SWAP_GRID_ROWS[key]: batch for key, batch in rows.items()}, max_columns=n_faces)


def contrasting_pose_pairs(factors: Any, count: int, seed: int = 0) -> list[tuple[int, int]]:
    """``count`` pairs (A, B): random faces A, each with the face B whose yaw differs most from A's."""
    generator = torch.Generator().manual_seed(seed)
    yaw = factors.pose[:, 0]
    faces = torch.randperm(len(yaw), generator=generator)[:count]
    return [(int(a), int(torch.argmax((yaw - yaw[a]).abs()))) for a in faces]


def turning_pair(factors: Any, turn: float = 45.0, limit: float = 45.0, seed: int = 0,
                 candidates: int = 512) -> tuple[int, int]:
    """A pair (A, B) whose heads turn by about ``turn`` degrees of yaw, both within ±``limit``.

    Out of ``candidates`` random pairs A != B (:func:`pclkit.swap.draw_swap_pairs`, as the swap-fidelity
    protocol draws them), the one whose yaw turn |yaw_B - yaw_A| is nearest ``turn`` among those whose
    two yaws lie within ±``limit`` (the near-frontal prior's well-covered range; the most extreme
    pairs of :func:`contrasting_pose_pairs` sit in its tails, where the decoder has seen few faces).
    A swap can only look different from face A where the head turns (the ``swap_margin_by_yaw_turn``
    figure), so this is a pair where an explorer can show the method at work. Chosen by pose only.
    """
    yaw = factors.pose[:, 0]
    a, b = draw_swap_pairs(len(yaw), candidates, torch.Generator().manual_seed(seed))
    inside = (yaw[a].abs() <= limit) & (yaw[b].abs() <= limit)
    if not bool(inside.any()):
        raise ValueError(f"no pair of the {len(a)} drawn has both yaws within ±{limit}°")
    distance = ((yaw[b] - yaw[a]).abs() - turn).abs().masked_fill(~inside, float("inf"))
    best = int(distance.argmin())
    return int(a[best]), int(b[best])


def pose_swap_ground_truth_figure(model: nn.Module, dataset: Any, n_pairs: int = 8, seed: int = 0) -> Figure:
    """Face A, pose source B, D(F_f^A, F_p^B), the re-render of A at B's pose, and D(F_f^A, F_p^A).

    Pairs A != B are drawn with :func:`pclkit.swap.draw_swap_pairs`; the swap's
    PSNR against the ground truth is printed on each swap, and on each pose source
    how far its yaw is from A's (a swap can only look different from A where the
    head turns: docs/results/recipe_search.md, the margin by yaw turn).
    """
    from pclkit.data.synthfaces import Factors, render

    a, b = draw_swap_pairs(len(dataset), n_pairs, torch.Generator().manual_seed(seed))
    images_a, images_b = dataset_images(dataset, a.tolist()), dataset_images(dataset, b.tolist())
    feats_a, feats_b = viz.encode(model, images_a), viz.encode(model, images_b)
    swapped, own = viz.decode_swaps(model, [(feats_a["F_f"], feats_b["F_p"]), (feats_a["F_f"], feats_a["F_p"])])
    truth = render(Factors.combine(dataset.factors[a], dataset.factors[b]), size=images_a.shape[-1])
    rows = {"face A": images_a, "pose source B": images_b, "$D(F_f^A, F_p^B)$": swapped,
            "truth: A at B's pose": truth, "$D(F_f^A, F_p^A)$": own}
    shown = len(a)
    fig = viz.plot_image_rows(rows, max_columns=shown)
    yaw_turn = (dataset.factors.pose[b, 0] - dataset.factors.pose[a, 0]).abs()  # (n_pairs,) degrees
    for ax, turn in zip(fig.axes[shown: 2 * shown], yaw_turn.tolist()):
        viz.annotate_image(ax, f"yaw turn {turn:.0f}°")
    for ax, s, t in zip(fig.axes[2 * shown: 3 * shown], swapped, truth):
        viz.annotate_image(ax, f"{viz.psnr(viz.to_numpy_image(s), viz.to_numpy_image(t)):.1f} dB")
    return fig


def pose_interpolation_figure(model: nn.Module, dataset: Any, pairs: Sequence[tuple[int, int]] = ((0, 1),),
                              steps: int = 6, rerender: bool = True) -> Figure:
    """D(F_f^A, (1-α) F_p^A + α F_p^B) for α from 0 to 1, each above the re-render at the interpolated pose.

    With ``rerender`` the pose source is face A re-rendered at B's pose (a pure
    pose change, the ideal ŝ); otherwise it is image B itself. The ``steps``
    reconstructions of a pair are decoded in one call.
    """
    from pclkit.data.synthfaces import Factors, render

    alphas = np.linspace(0.0, 1.0, steps)
    rows: dict[str, Tensor] = {}
    size = int(dataset[0][0].shape[-1])
    for index_a, index_b in pairs:
        face, pose_from = dataset.factors[index_a:index_a + 1], dataset.factors[index_b:index_b + 1]
        image_a = dataset_images(dataset, [index_a])[0]
        image_b = (render(Factors.combine(face, pose_from), size)[0] if rerender
                   else dataset_images(dataset, [index_b])[0])
        feats = viz.encode(model, torch.stack([image_a, image_b]))
        face_feat, pose_a, pose_b = feats["F_f"][:1], feats["F_p"][:1], feats["F_p"][1:]
        swaps = [(face_feat, viz.mix_pose(pose_a, pose_b, float(alpha))) for alpha in alphas]
        recon = torch.cat(viz.decode_swaps(model, swaps))
        truth = torch.stack([torch.from_numpy(viz.ground_truth_swap(face, face, pose_from, float(alpha), size))
                             .permute(2, 0, 1) for alpha in alphas])
        suffix = f" ({index_a}→{index_b})" if len(pairs) > 1 else ""
        rows[f"$D(F_f, F_p^\\alpha)${suffix}"] = recon
        rows[f"re-render{suffix}"] = truth
    return viz.plot_image_rows(rows, max_columns=steps, column_titles=[f"α = {alpha:.1f}" for alpha in alphas])


#: the swap-fidelity bars of the "does it learn" checks (pclkit.learning), drawn on the margin figure
SWAP_MARGIN_BAR_DB, SWAP_PSNR_BAR_DB = 1.5, 20.0


def swap_margins(models: Mapping[str, nn.Module], dataset: Any, n_pairs: int = 512,
                 seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Per label of ``models``: :func:`pclkit.swap.margin_by_yaw_turn` on the same pairs A != B of a
    SynthFaces ``dataset``, with ``"all"`` (the protocol's mean, on these pairs). The pairs, their
    images and the ground truth render(face A, pose B) are made once for every model."""
    from pclkit.data.synthfaces import Factors, render

    a, b = draw_swap_pairs(len(dataset), n_pairs, torch.Generator().manual_seed(seed))
    images_a, images_b = dataset_images(dataset, a.tolist()), dataset_images(dataset, b.tolist())
    truth = render(Factors.combine(dataset.factors[a], dataset.factors[b]), size=images_a.shape[-1]).float()
    yaw_turn = (dataset.factors.pose[b, 0] - dataset.factors.pose[a, 0]).abs()  # (pairs,) degrees
    margins = {}
    for label, model in models.items():
        feats_a, feats_b = viz.encode(model, images_a), viz.encode(model, images_b)
        (swapped,) = viz.decode_swaps(model, [(feats_a["F_f"], feats_b["F_p"])])
        margins[label] = margin_by_yaw_turn(swapped.float().cpu(), truth, images_a.float(), yaw_turn, with_all=True)
    return margins


def _turn_label(key: str) -> str:
    """Tick label of a :func:`~pclkit.swap.margin_by_yaw_turn` bin: ``"10-20"`` -> ``10–20°``, the last bin ``40+°``."""
    if key == "all":
        return "all pairs"
    low, high = (float(edge) for edge in key.split("-"))
    return f"{low:g}+°" if high >= 180 else f"{low:g}–{high:g}°"


def swap_margin_figure(margins: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    """Two panels over the yaw-turn bins, one bar per model: the swap's margin over face A at its own pose
    (PSNR against render(face A, pose B) minus PSNR against image A) and its PSNR against the truth,
    with the "does it learn" bars (1.5 dB, 20 dB) dashed. ``margins`` maps a label to :func:`swap_margins`.

    A swap can only look different from A where the head turns: the left panel shows where the
    method visibly moves the pose, the protocol's mean over random pairs (the "all" group) how
    many pairs barely turn.
    """
    labels = list(margins)
    groups = [key for key in margins[labels[0]] if key != "all"] + ["all"]
    width = 0.8 / max(len(labels), 1)
    with paper_style():
        fig = Figure(figsize=figure_size("text", aspect=0.32), layout="constrained")
        axes = fig.subplots(1, 2)
        for panel, (ax, key, bar, unit) in enumerate(zip(
                axes, ("margin_over_a", "psnr_swap"), (SWAP_MARGIN_BAR_DB, SWAP_PSNR_BAR_DB), ("dB", "dB"))):
            for i, label in enumerate(labels):
                values = [margins[label].get(group, {}).get(key, np.nan) for group in groups]
                positions = np.arange(len(groups)) + (i - (len(labels) - 1) / 2) * width
                ax.bar(positions, values, width=width, label=label)
            ax.axhline(bar, linestyle="--", color="0.3", linewidth=0.8)
            ax.annotate(f"bar {bar:g} {unit}", (1.0, bar), xycoords=("axes fraction", "data"), ha="right",
                        va="bottom", fontsize="small", color="0.3")
            ax.set_xticks(np.arange(len(groups)))
            pairs = [margins[labels[0]].get(group, {}).get("pairs", 0) for group in groups]
            ax.set_xticklabels([f"{_turn_label(g)}\n{n} pairs" for g, n in zip(groups, pairs)])
            ax.set_xlabel("yaw turn |yaw$_B$ − yaw$_A$|")
            if panel == 0:
                ax.set_ylabel(f"swap margin over face A ({unit})")
                ax.set_title("closer to the truth than to A")
            else:
                low = min(np.nanmin([margins[label].get(g, {}).get(key, np.nan) for g in groups]) for label in labels)
                ax.set_ylim(max(low - 2.0, 0.0), bar + 1.0)
                ax.set_ylabel(f"swap PSNR vs truth ({unit})")
                ax.set_title("how close to the truth")
        axes[0].legend(frameon=False, loc="upper left")
    return fig


# --------------------------------------------------------------------------- all figures of a set of runs


def _saved(fig: Figure, name: str, out: Path) -> list[Path]:
    paths = save_figure(fig, name, out)
    print(f"  {name}: " + ", ".join(p.name for p in paths))
    return paths


def _unique(label: str, taken: Mapping[str, Any]) -> str:
    """``label``, primed until no key of ``taken`` has it (two runs of one method: ``PCL``, ``PCL'``)."""
    while label in taken:
        label += "'"
    return label


def make_all(runs: Sequence[str | Path], out: str | Path = "figures", *, n: int = 2000,
             embeddings: Sequence[str] | str = EMBEDDING_METHODS, cmu: str | Path | None = None,
             results: str | Path | None = None, seed: int = 0) -> list[Path]:
    """Build and save every figure of ``runs`` into ``out``; returns the files written.

    Args:
        runs: run folders, ``last.pt`` files or ``pretrained:NAME`` references
            (e.g. a baseline and a method; :func:`pclkit.runs.load_run`).
        out: output folder (each figure as PDF, SVG and PNG).
        n: SynthFaces test images of the embedding figures.
        embeddings: projections to draw, out of "tsne" and "umap" (a comma list
            is accepted too); empty: no embedding figures.
        cmu: CMU faces folder for the CMU embedding figures (None: none; the
            command line looks up :func:`pclkit.runs.default_cmu_root`).
        results: ``results.csv`` of ``pclkit evaluate`` for the feature-comparison figure.
        seed: seed of the embeddings and of the random face pairs.

    The loss curves need every run's ``metrics.jsonl`` (shipped weights have
    none); the reconstruction figures need a model with a decoder (the last such run).
    """
    from pclkit.evaluate import resolve_pose_limits, resolve_pose_prior
    from pclkit.pretrained import is_pretrained_ref

    projections = [m for m in (embeddings.split(",") if isinstance(embeddings, str) else embeddings) if m]
    models: dict[str, nn.Module] = {}
    folders: dict[str, Path] = {}
    configs = []
    for ref in runs:
        model, config = run_folders.load_run(ref)
        configs.append(config)
        label = _unique(run_folders.run_label(config), models)
        models[label] = model
        if not is_pretrained_ref(ref):  # shipped weights have no run folder (no loss curves)
            folders[label] = Path(ref) if Path(ref).is_dir() else Path(ref).parent
        print(run_folders.describe_run(ref))
    if not models:
        raise ValueError("make_all needs at least one run")
    # the test faces are drawn like the runs' training faces
    limits, prior = resolve_pose_limits(None, configs), resolve_pose_prior(None, configs)
    out = Path(out)
    written = _saved(synthfaces_factors_figure(), "synthfaces_factors", out)
    if len(folders) == len(models) and all((f / "metrics.jsonl").is_file() for f in folders.values()):
        written += _saved(pretraining_curves_figure(folders), "pretraining_curves", out)
    detectors = {label: folder for label, folder in folders.items()  # PCFRL runs score their detector
                 if (folder / "metrics.jsonl").is_file() and "_fn_hits" in (folder / "metrics.jsonl").read_text()}
    for label, folder in detectors.items():
        name = "false_negative_detector" + ("" if len(detectors) == 1 else f"_{label.lower()}")
        written += _saved(false_negative_detector_figure(folder), name, out)
    if results is not None:
        from pclkit.tables import read_csv

        written += _saved(linear_eval_features_figure(read_csv(results)), "linear_eval_features", out)

    sizes = {int(m.image_size) for m in models.values()}
    if len(sizes) != 1:
        print(f"runs take different image sizes {sorted(sizes)}: skipping the embedding figures")
    elif projections:
        written += _embedding_figures(models, sizes.pop(), projections, n, limits, prior, cmu, seed, out)

    decoders = [m for m in models.values() if viz.has_decoder(m)]
    if decoders:
        model = decoders[-1]
        dataset = synthfaces("test", 256, int(model.image_size), pose_limits=limits, pose_prior=prior)
        written += _saved(pose_swap_grid_figure(model, dataset, pose_change="flip"), "pose_swap_grid", out)
        written += _saved(pose_swap_grid_figure(model, dataset, pose_change="render3d"), "pose_swap_grid_render3d", out)
        written += _saved(pose_swap_ground_truth_figure(model, dataset, seed=seed), "pose_swap_ground_truth", out)
        pairs = contrasting_pose_pairs(dataset.factors, 2, seed)
        written += _saved(pose_interpolation_figure(model, dataset, pairs), "pose_interpolation", out)
        # more pairs than the picture grids need: the bins' means are what this figure shows
        pairs_set = synthfaces("test", 1024, int(model.image_size), pose_limits=limits, pose_prior=prior)
        with_decoder = {label: m for label, m in models.items() if viz.has_decoder(m)}
        margins = swap_margins(with_decoder, pairs_set, n_pairs=1024, seed=seed)
        written += _saved(swap_margin_figure(margins), "swap_margin_by_yaw_turn", out)
    print(f"wrote {len(written)} files to {out}")
    return written


def _embedding_figures(models: Mapping[str, nn.Module], size: int, projections: Sequence[str], n: int,
                       limits: Sequence[float], prior: str | None, cmu: str | Path | None, seed: int,
                       out: Path) -> list[Path]:
    """The SynthFaces (and, with ``cmu``, CMU faces) embedding figures of :func:`make_all`."""
    from pclkit.data import as_tensors

    written: list[Path] = []
    images, labels = as_tensors(synthfaces("test", n, size, pose_limits=limits, pose_prior=prior))
    feature_sets = embedding_feature_sets(models, images)
    for projection in projections:
        fig = embeddings_figure(feature_sets, synthfaces_colourings(labels), projection, seed)
        written += _saved(fig, f"embeddings_{projection}", out)
    if cmu is not None:
        from pclkit.data import CMUFaces

        faces = CMUFaces(cmu, scale=2, size=size)
        cmu_images, cmu_labels = as_tensors(faces)
        cmu_sets = embedding_feature_sets(models, cmu_images)
        for projection in projections:
            fig = embeddings_figure(cmu_sets, cmu_colourings(cmu_labels, faces.class_names), projection, seed)
            written += _saved(fig, f"embeddings_cmu_{projection}", out)
    return written


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, action="append", required=True, metavar="RUN_DIR",
                        help="a run folder (or last.pt, or pretrained:NAME); repeat for each run (baseline and method)")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default figures/)")
    parser.add_argument("--n", type=int, default=2000, help="SynthFaces test images for the embeddings")
    parser.add_argument("--embeddings", default=",".join(EMBEDDING_METHODS),
                        help="comma list of tsne,umap ('' to skip)")
    parser.add_argument("--cmu", type=Path, default=None,
                        help=f"CMU faces folder (default: ${run_folders.CMU_ENV} or ../shared/data/cmu_faces when present)")
    parser.add_argument("--no-cmu", action="store_true", help="no CMU faces figures")
    parser.add_argument("--results", type=Path, default=None,
                        help="results.csv of `pclkit evaluate` for the feature-comparison figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of embeddings and random pairs")


def run(args: argparse.Namespace) -> int:
    cmu = None if args.no_cmu else (args.cmu or run_folders.default_cmu_root())
    make_all(args.run, args.out, n=args.n, embeddings=args.embeddings, cmu=cmu, results=args.results, seed=args.seed)
    return 0
