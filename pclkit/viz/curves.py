"""Training curves: loss terms, Dynamic Weight Average weights, learning rate, probe-monitor values.

:func:`draw_loss_curves` is the one function that draws loss curves: the run
folder's ``curves.png`` (:func:`plot_training_curves`, saved by
:func:`pclkit.runlog.plot_curves`), the ``pretraining_curves`` figure
(:func:`pclkit.figures.pretraining_curves_figure`) and the notebooks' live
plot (:class:`pclkit.widgets.LiveLossPlot`) all call it. Records are the
dicts of a run's ``metrics.jsonl`` (:mod:`pclkit.runlog`): ``{"kind": "step" |
"epoch" | "monitor", "step": ..., "loss": ..., "loss_face": ..., "alpha_face": ...}``.
DWA is Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from pclkit.style import PALETTE, figure_size, paper_style

__all__ = ["FEATURE_COLOURS", "RUN_LINESTYLES", "draw_dwa_weights", "draw_loss_curves", "draw_monitor_curves",
           "draw_monitor_panels", "dwa_terms", "has_monitor", "legend_below", "loss_keys", "loss_label", "plot_loss_curves",
           "plot_monitor_curves", "plot_training_curves"]

#: a record of ``metrics.jsonl``
Record = Mapping[str, Any]
#: prefix of the DWA weight keys in the records (``alpha_face``, ``alpha_pose``)
DWA_PREFIX = "alpha_"


def loss_keys(history: Sequence[Record], x_key: str) -> list[str]:
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


def draw_loss_curves(ax: Any, history: Sequence[Record], x_key: str = "step", keys: Sequence[str] | None = None,
                     epoch_means: Sequence[Record] = ()) -> None:
    """Draw the loss curves of ``history`` against ``x_key`` on ``ax``.

    ``keys`` defaults to every numeric key whose name contains "loss" (or
    starts with "L_"). The total (``loss``) is a black line, each term a colour
    of :data:`pclkit.style.PALETTE`. With ``epoch_means`` (the run's epoch
    records), the per-step curves are drawn faint and each epoch's mean as a
    dot on top, in the same colour. The y axis is logarithmic when the curves
    are positive and span more than a factor of 20.
    """
    chosen = list(keys) if keys is not None else loss_keys(history, x_key)
    values: list[float] = []
    terms = [key for key in chosen if key != "loss"]
    faint = {"alpha": 0.45, "linewidth": 0.7} if epoch_means else {}
    for key in chosen:
        points = [(r[x_key], r[key]) for r in history if x_key in r and isinstance(r.get(key), (int, float))]
        if not points:
            continue
        xs, ys = zip(*points)
        values += ys
        style = ({"color": "black", "linewidth": 1.3, "zorder": 3} if key == "loss"
                 else {"color": PALETTE[terms.index(key) % len(PALETTE)]})
        ax.plot(xs, ys, label=loss_label(key), marker="o" if len(xs) < 3 else None, **{**style, **faint})
        means = [(r[x_key], r[key]) for r in epoch_means if x_key in r and isinstance(r.get(key), (int, float))]
        if means:
            ax.plot(*zip(*means), marker="o", markersize=3, color=style["color"], label="_nolegend_")
    ax.set_xlabel(x_key)
    ax.set_ylabel("loss")
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    if values:
        legend_below(ax, ncol=min(3, len(chosen)))


def dwa_terms(records: Sequence[Record]) -> list[str]:
    """The DWA weight keys ``alpha_<term>`` found in ``records``, sorted."""
    return sorted({key for r in records for key in r if key.startswith(DWA_PREFIX)})


def draw_dwa_weights(ax: Any, runs: Mapping[str, Sequence[Record]]) -> int:
    """The DWA weights ``alpha_<term>`` of each run against epoch (from 1) on ``ax``; returns the number of lines.

    ``runs`` maps a run label to its epoch records; with one run the legend
    names only the terms.
    """
    from matplotlib.ticker import MaxNLocator

    lines = 0
    for label, records in runs.items():
        for key in dwa_terms(records):
            points = [(r["epoch"] + 1, r[key]) for r in records if key in r and "epoch" in r]
            if not points:
                continue
            name = f"$\\alpha_{{{key[len(DWA_PREFIX):]}}}$"
            ax.plot(*zip(*points), marker="o", color=PALETTE[lines % len(PALETTE)],
                    label=f"{label} {name}" if len(runs) > 1 else name)
            lines += 1
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight")
    ax.set_title("Dynamic Weight Average")
    if lines:
        legend_below(ax, ncol=lines)
    return lines


def plot_loss_curves(history: Sequence[Record], x_key: str = "step", keys: Sequence[str] | None = None,
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


def legend_below(ax: Any, ncol: int = 3) -> None:
    """A legend under the axis (below its x label), so it never covers data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=max(1, ncol), handlelength=1.5,
              columnspacing=1.0, borderaxespad=0.0)



#: line style of each run in the monitor panels (the colour is the feature)
RUN_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
#: colour of each probed feature in the monitor panels
FEATURE_COLOURS: dict[str, str] = {"F_s": PALETTE[0], "F_f": PALETTE[1], "F_p": PALETTE[2]}


def has_monitor(records: Sequence[Record]) -> bool:
    """Whether ``records`` hold probe-monitor values (:mod:`pclkit.monitor`)."""
    from pclkit.monitor import monitor_series

    return bool(monitor_series(records))


def draw_monitor_curves(ax: Any, task: str, runs: Mapping[str, Sequence[Record]], legend: bool = True) -> int:
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


def draw_monitor_panels(axes: Sequence[Any], runs: Mapping[str, Sequence[Record]]) -> None:
    """One panel per monitor task (expression acc., identity acc., yaw R^2) on ``axes``."""
    from pclkit.monitor import MONITOR_TASKS

    for ax, task in zip(axes, MONITOR_TASKS):
        draw_monitor_curves(ax, task, runs)


def plot_monitor_curves(runs: Mapping[str, Sequence[Record]], width: str | float = "text",
                        title: str | None = None) -> Figure:
    """The probe-monitor panels of one or more runs (``{label: metrics records}``) as a figure."""
    from pclkit.monitor import MONITOR_TASKS

    with paper_style():
        fig = Figure(figsize=figure_size(width, aspect=0.36), layout="constrained")
        draw_monitor_panels(fig.subplots(1, len(MONITOR_TASKS)), runs)
        if title:
            fig.suptitle(title)
    return fig


def plot_training_curves(records: Sequence[Record], title: str = "") -> Figure:
    """One run at a glance (its ``curves.png``): loss terms per step with epoch means, DWA weights, learning rate.

    When the run logged probe-monitor records, a second row shows them
    (expression accuracy, identity accuracy, yaw R^2 per feature against epoch).
    """
    from pclkit.monitor import MONITOR_TASKS

    steps = [r for r in records if r.get("kind") == "step"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    monitor = [r for r in records if r.get("kind") == "monitor"]
    if not steps:
        raise ValueError("no step records to plot")
    with paper_style():
        fig = Figure(figsize=figure_size("text", aspect=0.72 if monitor else 0.4), layout="constrained")
        top = fig
        if monitor:
            top, bottom = fig.subfigures(2, 1)
            draw_monitor_panels(bottom.subplots(1, len(MONITOR_TASKS)), {"run": monitor})
        ax_loss, ax_dwa, ax_lr = top.subplots(1, 3)
        draw_loss_curves(ax_loss, steps, "step", epoch_means=epochs)
        ax_loss.set_title("loss terms (dots: epoch means)")
        draw_dwa_weights(ax_dwa, {"run": epochs})
        lr = [(r["step"], r["lr"]) for r in steps if isinstance(r.get("lr"), (int, float))]
        if lr:
            ax_lr.plot(*zip(*lr), color=PALETTE[0])
        ax_lr.set_xlabel("step")
        ax_lr.set_title("learning rate")
        if title:
            fig.suptitle(title)
    return fig
