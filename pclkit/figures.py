"""The workbook's figures, and ``python -m pclkit figures`` to regenerate them headless.

Each ``*_figure`` function builds one figure of the notebooks from trained
runs and returns a :class:`matplotlib.figure.Figure` in the paper style; the
notebooks call the same functions, so a notebook and the command give the same
figure. Run folders are ``<runs>/<preset>_<method>`` as written by
``python -m pclkit pretrain`` (:func:`run_folder`); :func:`ensure_run` trains
one when it is missing, and :func:`resolve_model` picks the model a notebook
shows (the main job's run, the notebook's own run, the weights shipped in the
package, or a new run).

Figures (file stems under ``figures/``, each as PDF, SVG and PNG):

* ``synthfaces_factors`` -- SynthFaces: expressions x head poses of a few identities;
* ``pretraining_curves`` -- loss terms of SimCLR and PCL, DWA weights, and the probes
  during pretraining (expression / identity accuracy, yaw R^2) when the runs logged them;
* ``linear_eval_features`` -- F_s / F_f / F_p / F_f ⊕ F_p per task (needs an evaluation);
* ``embeddings_tsne``, ``embeddings_umap`` -- SimCLR vs F_s / F_f / F_p, by expression and yaw;
* ``embeddings_cmu_tsne``, ``embeddings_cmu_umap`` -- the same on CMU faces (pose, identity);
* ``pose_swap_grid`` (flip) and ``pose_swap_grid_render3d`` -- the paper's reconstruction grid;
* ``pose_swap_ground_truth`` -- D(F_f^A, F_p^B) beside render(face A, pose B), with PSNR;
* ``pose_interpolation`` -- D(F_f, (1-α) F_p + α F_p̂) against the re-render at the interpolated pose.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from pclkit import viz
from pclkit.data.synth_factors import DEFAULT_POSE_LIMITS
from pclkit.style import figure_size, paper_style, save_figure

METHOD_LABELS = {"simclr": "SimCLR", "pcl": "PCL"}
#: expression classes the paper's embedding figure contrasts
PAPER_EXPRESSIONS = ("neutral", "happy")


# --------------------------------------------------------------------------- runs


def run_folder(runs_dir: str | Path, preset: str, method: str) -> Path:
    """``<runs_dir>/<preset>_<method>``: the pretrain command's default ``--out``."""
    return Path(runs_dir) / f"{preset}_{method}"


def ensure_run(preset: str, method: str, runs_dir: str | Path = "runs", overrides: Mapping[str, Any] | None = None,
               live_plot: Any = None) -> Path:
    """The run folder of ``(preset, method)``; trains it first when it holds no ``last.pt``.

    A cached run is used as it is (delete the folder to retrain, or finish an
    interrupted run with ``python -m pclkit pretrain --resume``). ``live_plot``
    (a :class:`pclkit.viz.LiveLossPlot`) follows the training losses.
    """
    folder = run_folder(runs_dir, preset, method)
    if (folder / "last.pt").is_file():
        return folder
    from pclkit.config import resolve_config
    from pclkit.train import Trainer

    config = resolve_config(preset, {"method": method, **dict(overrides or {})})
    trainer = Trainer(config, folder)
    if live_plot is not None:
        live_plot.follow(trainer)
    trainer.fit()
    return folder


def reproduce_run_folder(runs_dir: str | Path, preset: str, method: str, seed: int = 0) -> Path:
    """The main job's run of ``(preset, method, seed)``: ``<runs_dir>/reproduce/<preset>_<method>_s<seed>``."""
    from pclkit.reproduce import ReproducePlan

    plan = ReproducePlan(preset=preset, seeds=seed + 1, runs_dir=Path(runs_dir) / "reproduce")
    return next(spec.folder for spec in plan.runs() if spec.row == method and spec.seed == seed)


def pretrained_model_name(method: str) -> str:
    """The shipped model of ``method``: ``<method>_synthfaces``."""
    return f"{method}_synthfaces"


def resolve_model(method: str, preset: str, runs_dir: str | Path = "runs", *, pretrained: bool = True,
                  train: bool = True, overrides: Mapping[str, Any] | None = None, live_plot: Any = None) -> Path | str:
    """The model a notebook shows for ``method`` -- the first of these that exists -- and prints which:

    1. the main job's run ``<runs_dir>/reproduce/<preset>_<method>_s0`` (``make reproduce``);
    2. the notebook's own run ``<runs_dir>/<preset>_<method>``;
    3. with ``pretrained``, the weights shipped in the package, ``pretrained:<method>_synthfaces``;
    4. with ``train``, a new run trained into 2 (:func:`ensure_run`); else a ``FileNotFoundError``.

    Returns a run folder or a ``pretrained:NAME`` string; both work with
    :func:`load_run`, :func:`describe_run` and :func:`pclkit.evaluate.evaluate_checkpoints`.
    """
    label = METHOD_LABELS.get(method, method)
    for folder, what in ((reproduce_run_folder(runs_dir, preset, method), "the main job's run"),
                         (run_folder(runs_dir, preset, method), "this notebook's run")):
        if (folder / "last.pt").is_file():
            print(f"{label}: {what} {folder}")
            return folder
    name = pretrained_model_name(method)
    if pretrained:
        from pclkit.pretrained import PREFIX, list_pretrained

        if name in list_pretrained():
            print(f"{label}: no local run; the pretrained weights shipped in pclkit ({PREFIX}{name})")
            return f"{PREFIX}{name}"
    folder = run_folder(runs_dir, preset, method)
    if not train:
        raise FileNotFoundError(f"no run of {method} ({reproduce_run_folder(runs_dir, preset, method)}, {folder})"
                                + (f" and no shipped weights {name!r}" if pretrained else ""))
    print(f"{label}: no local run{' or shipped weights' if pretrained else ''}; training {folder} (preset {preset})")
    return ensure_run(preset, method, runs_dir, overrides, live_plot=live_plot)


def load_run(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode, resolved config dict)`` of a run folder, checkpoint file or ``pretrained:NAME``."""
    from pclkit.checkpoint import load_model

    return load_model(folder)


def describe_run(folder: str | Path) -> str:
    """One line: method, preset, steps and epochs of a run, checkpoint or ``pretrained:NAME``."""
    from pclkit.checkpoint import read_model_payload

    payload = read_model_payload(folder)
    config = payload["config"]
    shipped = f" (shipped weights, {payload['dtype']})" if "dtype" in payload else ""
    return (f"{folder}: {config.get('method')} / preset {config.get('preset')} / encoder "
            f"{config.get('model', {}).get('encoder')} / {payload['step']} steps, {payload['epoch']} epochs{shipped}")


# --------------------------------------------------------------------------- data helpers


def synthfaces(split: str, n: int, size: int, seed: int = 0,
               pose_limits: Sequence[float] = DEFAULT_POSE_LIMITS, pose_prior: str | None = None) -> Any:
    """A :class:`pclkit.data.synthetic.SynthFaces` split rendered at ``size`` px, poses within ``pose_limits``."""
    from pclkit.data.synthetic import SynthFaces, symmetric_pose_config

    return SynthFaces(split, n=n, size=size, seed=seed, config=symmetric_pose_config(pose_limits, prior=pose_prior))


def dataset_images(dataset: Any, indices: Sequence[int]) -> Tensor:
    """Images ``(len(indices), 3, S, S)`` float in [0, 1] of a dataset's items."""
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
    from pclkit.data.synthetic import EXPRESSIONS, make_factors, render

    rows: dict[str, Tensor] = {}
    for identity in identities:
        expressions = make_factors([identity] * len(EXPRESSIONS), list(range(len(EXPRESSIONS))))
        sweep = make_factors([identity] * len(yaws), [1], pose=torch.tensor([[y, 0.0, 0.0] for y in yaws]))
        rows[f"identity {identity}"] = torch.cat([render(expressions, size), render(sweep, size)])
    columns = [*EXPRESSIONS, *(f"yaw {y:+.0f}°" for y in yaws)]
    return viz.plot_image_rows(rows, max_columns=len(columns), column_titles=columns)


# --------------------------------------------------------------------------- figures: training


def pretraining_curves_figure(runs: Mapping[str, str | Path]) -> Figure:
    """Loss terms per step of each run (one panel per run) and the DWA weights per epoch of PCL runs.

    When a run logged probe-monitor records (``runtime.monitor_every``), a
    second row shows them: expression accuracy, identity accuracy and yaw R^2
    against epoch, one line per feature (colour) and run (line style).
    """
    from pclkit.monitor import MONITOR_TASKS
    from pclkit.runlog import read_metrics

    histories = {label: read_metrics(Path(folder) / "metrics.jsonl") for label, folder in runs.items()}
    epochs = {label: [r for r in history if r.get("kind") == "epoch"] for label, history in histories.items()}
    # DWA weights are only meaningful with two or more weighted terms (PCL, not SimCLR)
    dwa_keys = {label: sorted({k for r in records for k in r if k.startswith("alpha_")}) for label, records in epochs.items()}
    dwa_runs = [label for label, keys in dwa_keys.items() if len(keys) >= 2]
    n_panels = len(histories) + (1 if dwa_runs else 0)
    monitored = {label: history for label, history in histories.items() if viz.has_monitor(history)}
    with paper_style():
        from matplotlib.ticker import MaxNLocator

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
            ax = axes[-1]
            colour = 0
            for label in dwa_runs:
                for key in dwa_keys[label]:
                    points = [(r["epoch"] + 1, r[key]) for r in epochs[label] if key in r]
                    name = key[len("alpha_"):]
                    ax.plot(*zip(*points), marker="o", color=viz.PALETTE[colour % len(viz.PALETTE)],
                            label=f"{label} $\\alpha_{{{name}}}$" if len(dwa_runs) > 1 else f"$\\alpha_{{{name}}}$")
                    colour += 1
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("weight")
            ax.set_title("Dynamic Weight Average")
            viz.legend_below(ax, ncol=colour)
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
            ax.set_xticklabels([f"{METHOD_LABELS.get(m, m)}\n{LATEX_NAMES.get(f, f)}" for m, f in bars],
                               rotation=90, fontsize=5.5)
            ax.set_title(label)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncol=len(handles))
    return fig


# --------------------------------------------------------------------------- figures: embeddings


def embedding_feature_sets(runs: Mapping[str, nn.Module], images: Tensor) -> dict[str, Tensor]:
    """Frozen features to embed: ``"SimCLR"`` (F_s of a SimCLR model) and ``F_s``, ``F_f``, ``F_p`` of PCL.

    ``runs`` maps a method label to a model (eval mode); a SimCLR model
    contributes only F_s (its branches are untrained). Values ``(N, D)``.
    """
    from pclkit.features import extract_features

    sets: dict[str, Tensor] = {}
    for label, model in runs.items():
        if getattr(model, "method", "pcl") == "simclr":
            sets[label] = extract_features(model, images, ("F_s",), progress=False)["F_s"]
        else:
            feats = extract_features(model, images, ("F_s", "F_f", "F_p"), progress=False)
            sets.update({f"{label} $F_s$": feats["F_s"], f"{label} $F_f$": feats["F_f"],
                         f"{label} $F_p$": feats["F_p"]})
    return sets


def synthfaces_colourings(labels: Mapping[str, Tensor], expressions: Sequence[str] = PAPER_EXPRESSIONS) -> list[viz.Colouring]:
    """Colour SynthFaces points by expression (only ``expressions`` shown) and by yaw bin (−90/−45/0/45/90)."""
    from pclkit.data.synthetic import EXPRESSIONS

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


def swap_pairs(n: int, count: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """``count`` random pairs (A, B) of distinct indices below ``n``."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randperm(n, generator=generator)[:count]
    b = torch.randperm(n, generator=generator)[:count]
    b = torch.where(a == b, (b + 1) % n, b)
    return a.tolist(), b.tolist()


def contrasting_pose_pairs(factors: Any, count: int, seed: int = 0) -> list[tuple[int, int]]:
    """``count`` pairs (A, B): random faces A, each with the face B whose yaw differs most from A's."""
    generator = torch.Generator().manual_seed(seed)
    yaw = factors.pose[:, 0]
    faces = torch.randperm(len(yaw), generator=generator)[:count]
    return [(int(a), int(torch.argmax((yaw - yaw[a]).abs()))) for a in faces]


def pose_swap_ground_truth_figure(model: nn.Module, dataset: Any, n_pairs: int = 8, seed: int = 0) -> Figure:
    """Face A, pose source B, D(F_f^A, F_p^B), the re-render of A at B's pose, and D(F_f^A, F_p^A).

    The swap's PSNR against the ground truth is printed on each swap.
    """
    from pclkit.data.synthetic import Factors, render

    a, b = swap_pairs(len(dataset), n_pairs, seed)
    images_a, images_b = dataset_images(dataset, a), dataset_images(dataset, b)
    feats_a, feats_b = viz.encode(model, images_a), viz.encode(model, images_b)
    swapped = viz.decode(model, feats_a.F_f, feats_b.F_p)
    own = viz.decode(model, feats_a.F_f, feats_a.F_p)
    truth = render(Factors.combine(dataset.factors[torch.tensor(a)], dataset.factors[torch.tensor(b)]),
                   size=images_a.shape[-1])
    rows = {"face A": images_a, "pose source B": images_b, "$D(F_f^A, F_p^B)$": swapped,
            "truth: A at B's pose": truth, "$D(F_f^A, F_p^A)$": own}
    fig = viz.plot_image_rows(rows, max_columns=n_pairs)
    for ax, s, t in zip(fig.axes[2 * n_pairs: 3 * n_pairs], swapped, truth):
        viz.annotate_image(ax, f"{viz.psnr(viz.to_numpy_image(s), viz.to_numpy_image(t)):.1f} dB")
    return fig


def pose_interpolation_figure(model: nn.Module, dataset: Any, pairs: Sequence[tuple[int, int]] = ((0, 1),),
                              steps: int = 6, rerender: bool = True) -> Figure:
    """D(F_f^A, (1-α) F_p^A + α F_p^B) for α from 0 to 1, each above the re-render at the interpolated pose.

    With ``rerender`` the pose source is face A re-rendered at B's pose (a pure
    pose change, the ideal ŝ); otherwise it is image B itself.
    """
    from pclkit.data.synthetic import Factors, render

    alphas = np.linspace(0.0, 1.0, steps)
    rows: dict[str, Tensor] = {}
    size = int(dataset[0][0].shape[-1])
    for index_a, index_b in pairs:
        face, pose_from = dataset.factors[index_a:index_a + 1], dataset.factors[index_b:index_b + 1]
        image_a = dataset_images(dataset, [index_a])[0]
        image_b = (render(Factors.combine(face, pose_from), size)[0] if rerender
                   else dataset_images(dataset, [index_b])[0])
        feats = viz.encode(model, torch.stack([image_a, image_b]))
        feats_a, feats_b = feats[0], feats[1]
        recon = torch.cat([viz.decode_swap(model, feats_a, feats_b, float(alpha)) for alpha in alphas])
        truth = torch.stack([torch.from_numpy(viz.ground_truth_swap(face, face, pose_from, float(alpha), size))
                             .permute(2, 0, 1) for alpha in alphas])
        suffix = f" ({index_a}→{index_b})" if len(pairs) > 1 else ""
        rows[f"$D(F_f, F_p^\\alpha)${suffix}"] = recon
        rows[f"re-render{suffix}"] = truth
    return viz.plot_image_rows(rows, max_columns=steps, column_titles=[f"α = {alpha:.1f}" for alpha in alphas])


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, action="append", required=True, metavar="RUN_DIR",
                        help="a run folder (or last.pt, or pretrained:NAME); repeat for SimCLR and PCL runs")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default figures/)")
    parser.add_argument("--n", type=int, default=2000, help="SynthFaces test images for the embeddings")
    parser.add_argument("--embeddings", default="tsne,umap", help="comma list of tsne,umap ('' to skip)")
    parser.add_argument("--cmu", type=Path, default=None,
                        help="CMU faces folder (default: $PCLKIT_CMU or ../shared/data/cmu_faces when present)")
    parser.add_argument("--results", type=Path, default=None,
                        help="results.csv of `pclkit evaluate` for the feature-comparison figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of embeddings and random pairs")


def default_cmu_root() -> Path | None:
    """``$PCLKIT_CMU`` or ``../shared/data/cmu_faces`` (beside the working directory), when it exists."""
    candidate = Path(os.environ.get("PCLKIT_CMU", Path.cwd().parent / "shared" / "data" / "cmu_faces"))
    return candidate if candidate.is_dir() else None


def _saved(fig: Figure, name: str, out: Path) -> list[Path]:
    paths = save_figure(fig, name, out)
    print(f"  {name}: " + ", ".join(p.name for p in paths))
    return paths


def run(args: argparse.Namespace) -> int:
    from pclkit.evaluate import resolve_pose_limits, resolve_pose_prior
    from pclkit.pretrained import is_pretrained_ref

    models: dict[str, nn.Module] = {}
    folders: dict[str, Path] = {}
    configs = []
    for folder in args.run:
        model, config = load_run(folder)
        configs.append(config)
        label = METHOD_LABELS.get(str(config.get("method")), str(config.get("method")))
        while label in models:
            label += "'"
        models[label] = model
        if not is_pretrained_ref(folder):  # shipped weights have no run folder (no loss curves)
            folders[label] = folder if folder.is_dir() else folder.parent
        print(describe_run(folder))
    # the test faces are drawn like the runs' training faces
    limits = resolve_pose_limits(None, configs) if configs else DEFAULT_POSE_LIMITS
    prior = resolve_pose_prior(None, configs) if configs else None
    out: Path = args.out
    written: list[Path] = []
    written += _saved(synthfaces_factors_figure(), "synthfaces_factors", out)
    if len(folders) == len(models) and all((f / "metrics.jsonl").is_file() for f in folders.values()):
        written += _saved(pretraining_curves_figure(folders), "pretraining_curves", out)
    if args.results is not None:
        from pclkit.tables import read_csv

        written += _saved(linear_eval_features_figure(read_csv(args.results)), "linear_eval_features", out)

    sizes = {int(m.image_size) for m in models.values()}
    if len(sizes) != 1:
        print(f"runs take different image sizes {sorted(sizes)}: skipping the embedding figures")
    methods = [m for m in args.embeddings.split(",") if m]
    if len(sizes) == 1 and methods:
        size = sizes.pop()
        from pclkit.data import as_tensors

        test = synthfaces("test", args.n, size, pose_limits=limits, pose_prior=prior)
        images, labels = as_tensors(test)
        feature_sets = embedding_feature_sets(models, images)
        for method in methods:
            fig = embeddings_figure(feature_sets, synthfaces_colourings(labels), method, args.seed)
            written += _saved(fig, f"embeddings_{method}", out)
        cmu_root = args.cmu or default_cmu_root()
        if cmu_root is not None:
            from pclkit.data import CMUFaces

            cmu = CMUFaces(cmu_root, scale=2, size=size)
            cmu_images, cmu_labels = as_tensors(cmu)
            cmu_sets = embedding_feature_sets(models, cmu_images)
            for method in methods:
                fig = embeddings_figure(cmu_sets, cmu_colourings(cmu_labels, cmu.class_names), method, args.seed)
                written += _saved(fig, f"embeddings_cmu_{method}", out)

    pcl = [(label, m) for label, m in models.items() if getattr(m, "decoder", None) is not None]
    if pcl:
        model = pcl[-1][1]
        dataset = synthfaces("test", 256, int(model.image_size), pose_limits=limits, pose_prior=prior)
        written += _saved(pose_swap_grid_figure(model, dataset, pose_change="flip"), "pose_swap_grid", out)
        written += _saved(pose_swap_grid_figure(model, dataset, pose_change="render3d"), "pose_swap_grid_render3d", out)
        written += _saved(pose_swap_ground_truth_figure(model, dataset, seed=args.seed), "pose_swap_ground_truth", out)
        pairs = contrasting_pose_pairs(dataset.factors, 2, args.seed)
        written += _saved(pose_interpolation_figure(model, dataset, pairs), "pose_interpolation", out)
    print(f"wrote {len(written)} files to {out}")
    return 0
