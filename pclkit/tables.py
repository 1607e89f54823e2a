"""Result tables: tidy rows -> mean ± std over seeds -> CSV, Markdown and LaTeX (booktabs).

A *row* is one measurement: ``{"data", "method", "feature", "task", "metric",
"seed", "value"}`` (tidy format, Wickham 2014). Tables aggregate rows over
seeds (mean and sample standard deviation, ddof = 1) and lay them out like
the PCL paper's tables: one line per method (or method and feature), one
column per task metric.

Generic layout: :class:`TableSpec` -> :func:`layout_table` -> :func:`to_markdown`
/ :func:`to_latex`. The evaluation report's tables (:func:`result_tables`,
:func:`summary_table`, :func:`write_results`) use the column sets
:data:`SYNTH_COLUMNS`, :data:`CMU_COLUMNS`, :data:`SWAP_COLUMNS` and
:data:`REAL_COLUMNS` (one per real benchmark).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pclkit.features import DISPLAY_NAMES, FEATURE_KEYS, LATEX_NAMES
from pclkit.protocols import BRANCH_FEATURES, CHANCE, DATA_INFO, PIXELS, RANDOM_INIT, REFERENCE_LABELS, SUPERVISED
from pclkit.protocols_real import TAR_FARS, describe_info, tar_metric_name

ROW_FIELDS: tuple[str, ...] = ("data", "method", "feature", "task", "metric", "seed", "value")


def check_rows(rows: Iterable[Mapping]) -> list[dict]:
    """Rows as dicts; a row without one of :data:`ROW_FIELDS` raises ``ValueError``."""
    checked = []
    for i, row in enumerate(rows):
        missing = [key for key in ROW_FIELDS if key not in row]
        if missing:
            raise ValueError(f"result row {i} lacks fields {missing}: {dict(row)}")
        checked.append(dict(row))
    return checked


def write_csv(rows: Iterable[Mapping], path: str | Path) -> Path:
    """Write tidy rows (columns :data:`ROW_FIELDS`) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(check_rows(rows))
    return path


def read_csv(path: str | Path) -> list[dict]:
    """Read rows written by :func:`write_csv` (``seed`` as int, ``value`` as float)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["seed"] = int(row["seed"])
        row["value"] = float(row["value"])
    return check_rows(rows)


# --------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Stat:
    """Mean and sample std of the finite values of one cell; ``n`` values (NaN when none)."""

    mean: float
    std: float
    n: int

    @staticmethod
    def of(values: Sequence[float]) -> Stat:
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not finite:
            return Stat(float("nan"), float("nan"), 0)
        mean = sum(finite) / len(finite)
        if len(finite) < 2:
            return Stat(mean, float("nan"), len(finite))
        var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
        return Stat(mean, math.sqrt(var), len(finite))


def aggregate(rows: Iterable[Mapping]) -> dict[tuple[str, str, str, str, str], Stat]:
    """``{(data, method, feature, task, metric): Stat over seeds}``."""
    groups: dict[tuple[str, str, str, str, str], list[float]] = {}
    for row in check_rows(rows):
        key = (str(row["data"]), str(row["method"]), str(row["feature"]), str(row["task"]), str(row["metric"]))
        groups.setdefault(key, []).append(row["value"])
    return {key: Stat.of(values) for key, values in groups.items()}


# --------------------------------------------------------------------------- table layout


@dataclass(frozen=True)
class Column:
    """A table column: the ``metric`` of ``task``, shown ×``scale`` with ``digits`` decimals.

    ``higher_is_better`` marks the best cell (bold); None marks nothing.
    """

    task: str
    metric: str
    header: str
    scale: float = 1.0
    digits: int = 1
    higher_is_better: bool | None = True
    latex_header: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """Which rows and columns a table shows.

    ``lines`` are ``(method, feature)`` pairs in display order; None = every
    pair present in the rows (methods in first-seen order). ``label_by``
    decides what the line label shows: ``"method"``, ``"feature"`` or ``"both"``.
    """

    title: str
    columns: tuple[Column, ...]
    lines: tuple[tuple[str, str], ...] | None = None
    label_by: str = "both"
    note: str = ""


@dataclass
class Table:
    """A laid-out table: line labels, column headers and cells (``None`` where nothing was measured)."""

    title: str
    headers: list[str]
    latex_headers: list[str]
    labels: list[str]
    cells: list[list[Stat | None]]
    columns: list[Column] = field(default_factory=list)
    note: str = ""
    latex_labels: list[str] = field(default_factory=list)

    def _repr_markdown_(self) -> str:  # rendered as a table in Jupyter
        return to_markdown(self)


def layout_table(
    rows: Iterable[Mapping],
    spec: TableSpec,
    data: str | None = None,
    labels: Mapping[str, str] | None = None,
    latex_labels: Mapping[str, str] | None = None,
) -> Table:
    """Aggregate ``rows`` (of dataset ``data``, if given) into the layout of ``spec``.

    ``labels`` renames methods/features for display, ``latex_labels`` gives
    ready LaTeX for them (others are escaped). Lines with no measured cell are dropped.
    """
    rows = [r for r in check_rows(rows) if data is None or r["data"] == data]
    stats = aggregate(rows)
    rename = dict(labels or {})
    candidates = spec.lines if spec.lines is not None else ((str(r["method"]), str(r["feature"])) for r in rows)
    lines = list(dict.fromkeys(candidates))  # each (method, feature) once, first position wins
    data_names = sorted({key[0] for key in stats})
    out_labels, out_latex, cells = [], [], []
    latex = dict(latex_labels or {})
    for method, feature in lines:
        line = []
        for col in spec.columns:
            found = [stats[key] for d in data_names if (key := (d, method, feature, col.task, col.metric)) in stats]
            line.append(found[0] if found else None)
        if all(cell is None or cell.n == 0 for cell in line):
            continue
        m, f = rename.get(method, method), rename.get(feature, feature)
        lm, lf = latex.get(method, latex_escape(m)), latex.get(feature, latex_escape(f))
        both = f in m  # "pixels (PCA)" needs no "(pixels)"
        out_labels.append({"method": m, "feature": f}.get(spec.label_by, m if both else f"{m} ({f})"))
        out_latex.append({"method": lm, "feature": lf}.get(spec.label_by, lm if both else f"{lm} ({lf})"))
        cells.append(line)
    return Table(
        title=spec.title,
        headers=[c.header for c in spec.columns],
        latex_headers=[c.latex_header or latex_escape(c.header) for c in spec.columns],
        labels=out_labels,
        cells=cells,
        columns=list(spec.columns),
        note=spec.note,
        latex_labels=out_latex,
    )


def _best_rows(table: Table) -> list[set[int]]:
    """Per column, the line indices holding the best mean (ties all marked)."""
    best: list[set[int]] = []
    for j, col in enumerate(table.columns):
        values = [(i, line[j].mean * col.scale) for i, line in enumerate(table.cells) if line[j] is not None and line[j].n]
        if col.higher_is_better is None or len(values) < 2:
            best.append(set())
            continue
        pick = max if col.higher_is_better else min
        target = round(pick(v for _, v in values), col.digits)
        best.append({i for i, v in values if round(v, col.digits) == target})
    return best


def format_stat(stat: Stat | None, col: Column, plus_minus: str = " ± ") -> str:
    """``"83.2 ± 1.1"`` (std shown only with 2+ seeds); ``"–"`` when nothing was measured."""
    if stat is None or stat.n == 0:
        return "–"
    text = f"{stat.mean * col.scale:.{col.digits}f}"
    if stat.n > 1:
        text += f"{plus_minus}{stat.std * col.scale:.{col.digits}f}"
    return text


# --------------------------------------------------------------------------- rendering


def to_markdown(table: Table, bold_best: bool = True) -> str:
    """GitHub-flavoured Markdown with a ``### title`` heading; best cells in bold."""
    best = _best_rows(table) if bold_best else [set() for _ in table.columns]
    lines = [f"### {table.title}", "", "| | " + " | ".join(table.headers) + " |", "|---|" + "---:|" * len(table.headers)]
    for i, (label, line) in enumerate(zip(table.labels, table.cells)):
        texts = []
        for j, (cell, col) in enumerate(zip(line, table.columns)):
            text = format_stat(cell, col)
            texts.append(f"**{text}**" if i in best[j] else text)
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
#: symbols written as LaTeX math
_LATEX_MATH = {"⊕": r"$\oplus$", "±": r"$\pm$", "°": r"$^\circ$", "²": r"$^2$", "↑": r"$\uparrow$", "↓": r"$\downarrow$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters; ``⊕``, ``±``, ``°``, ``²``, ``↑``, ``↓`` become math."""
    return "".join(_LATEX_SPECIAL.get(ch, _LATEX_MATH.get(ch, ch)) for ch in text)


def to_latex(table: Table, label: str | None = None, bold_best: bool = True) -> str:
    """A booktabs ``table`` environment; cells ``mean $\\pm$ std``, best cells in bold."""
    best = _best_rows(table) if bold_best else [set() for _ in table.columns]
    names = table.latex_labels or [latex_escape(name) for name in table.labels]
    out = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
    ]
    if label:
        out.append(rf"\label{{{label}}}")
    out += [
        rf"\begin{{tabular}}{{l{'r' * len(table.headers)}}}",
        r"\toprule",
        " & " + " & ".join(table.latex_headers) + r" \\",
        r"\midrule",
    ]
    for i, (name, line) in enumerate(zip(names, table.cells)):
        texts = []
        for j, (cell, col) in enumerate(zip(line, table.columns)):
            text = format_stat(cell, col, plus_minus=r" $\pm$ ").replace("–", "--")
            texts.append(rf"\textbf{{{text}}}" if i in best[j] else text)
        out.append(name + " & " + " & ".join(texts) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if table.note:
        out.append(rf"\par\smallskip{{\footnotesize {latex_escape(table.note)}}}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the evaluation report's tables


def percent(task: str, metric: str, header: str, higher_is_better: bool | None = True) -> Column:
    """A fraction shown in % with one decimal."""
    return Column(task, metric, header, scale=100.0, digits=1, higher_is_better=higher_is_better)


def degrees(task: str, metric: str, header: str, digits: int = 1) -> Column:
    """An angle error in degrees (lower is better)."""
    return Column(task, metric, header, scale=1.0, digits=digits, higher_is_better=False)


SYNTH_COLUMNS = (
    percent("expression", "accuracy", "Expr. acc ↑"),
    percent("verification", "accuracy", "Verif. acc ↑"),
    percent("verification_cross_pose", "accuracy", "Cross-pose verif. ↑"),
    percent("au", "f1_mean", "AU F1 ↑"),
    degrees("head_pose", "mae_yaw", "Yaw MAE ↓"),
    degrees("head_pose", "mae_pitch", "Pitch MAE ↓"),
    degrees("head_pose", "mae_roll", "Roll MAE ↓"),
    degrees("head_pose", "mae_mean", "Pose MAE ↓"),
    percent("expression_knn", "accuracy", "kNN expr. ↑"),
)
CMU_COLUMNS = (
    percent("expression", "accuracy", "Expr. acc ↑"),
    percent("verification", "accuracy", "Verif. acc ↑"),
    percent("pose", "accuracy", "Pose acc ↑"),
    percent("expression_knn", "accuracy", "kNN expr. ↑"),
)
SWAP_COLUMNS = (
    Column("swap", "psnr_swap", "Swap PSNR (dB) ↑", digits=2),
    Column("swap", "ssim_swap", "Swap SSIM ↑", digits=3),
    Column("swap", "psnr_swap_vs_a", "Swap vs face A, pose A (dB)", digits=2, higher_is_better=None),
    Column("swap", "psnr_swap_vs_b", "Swap vs face B, pose B (dB)", digits=2, higher_is_better=None),
    Column("swap", "psnr_noswap", "No-swap PSNR (dB)", digits=2, higher_is_better=None),
    Column("swap", "ssim_noswap", "No-swap SSIM", digits=3, higher_is_better=None),
    Column("swap", "psnr_recon", "Recon. PSNR (dB) ↑", digits=2),
    Column("swap", "ssim_recon", "Recon. SSIM ↑", digits=3),
)


def disentanglement_columns(data: str) -> tuple[Column, ...]:
    """Pose, identity and expression decodability; no "best" marking: high pose decodability is wanted
    from F_p and unwanted from F_f."""
    pose = (Column("head_pose", "r2_mean", "Pose R²", digits=3, higher_is_better=None) if data == "synthfaces"
            else Column("pose", "accuracy", "Pose acc", scale=100.0, higher_is_better=None))
    return (pose,
            Column("identity", "accuracy", "Identity acc", scale=100.0, higher_is_better=None),
            Column("expression", "accuracy", "Expr. acc", scale=100.0, higher_is_better=None))


def au_columns(rows: Iterable[Mapping[str, Any]]) -> tuple[Column, ...]:
    """F1 of every AU present in ``rows`` (task ``au``), then their mean."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows if r["task"] == "au" and str(r["metric"]).startswith("f1_AU")))
    return tuple(percent("au", m, m[3:]) for m in metrics) + (percent("au", "f1_mean", "Mean"),)


_EXPRESSION = (percent("expression", "accuracy", "Acc ↑"), percent("expression", "mean_class_accuracy", "Mean class acc ↑"),
               percent("expression_knn", "accuracy", "kNN acc ↑"))
_VERIFICATION = (
    percent("verification", "accuracy", "Acc ↑"),
    percent("verification", "accuracy_fold_std", "± over folds", higher_is_better=None),
    percent("verification", "auc", "ROC-AUC ↑"),
    percent("verification", tar_metric_name(TAR_FARS[0]), "TAR@FAR=1e-3 ↑"),
)
#: the main columns of each real benchmark's tables
REAL_COLUMNS: dict[str, tuple[Column, ...]] = {
    "rafdb": _EXPRESSION,
    "fer2013": _EXPRESSION,
    "lfw": _VERIFICATION,
    "cplfw": _VERIFICATION,
    "disfa": (
        *(percent("au", f"f1_AU{au}", f"AU{au}") for au in (1, 2, 4, 6, 9, 12, 25, 26)),
        percent("au", "f1_mean", "Mean F1 ↑"),
    ),
    "aflw2000": (
        degrees("head_pose", "mae_yaw", "Yaw ↓", 2),
        degrees("head_pose", "mae_pitch", "Pitch ↓", 2),
        degrees("head_pose", "mae_roll", "Roll ↓", 2),
        degrees("head_pose", "mae_mean", "MAE ↓", 2),
    ),
    "folder": (
        percent("classification", "accuracy", "Acc ↑"),
        percent("classification", "mean_class_accuracy", "Mean class acc ↑"),
        percent("classification_knn", "accuracy", "kNN acc ↑"),
    ),
}
REAL_TITLES = {"rafdb": "RAF-DB expression, 7 classes, test list", "fer2013": "FER-2013 expression, 7 classes, PrivateTest",
               "lfw": "LFW verification, 10-fold", "cplfw": "CPLFW verification, 10-fold",
               "disfa": "DISFA AU detection F1, subject-exclusive 3-fold", "aflw2000": "300W-LP -> AFLW2000 head-pose MAE (°)",
               "folder": "classification of a class folder"}
#: the task whose per-class accuracies a classification benchmark reports
REAL_CLASS_TASKS = {"rafdb": "expression", "fer2013": "expression", "folder": "classification"}


def seeds_note(rows: Sequence[Mapping[str, Any]], learned: Sequence[str]) -> str:
    """Table footer saying what mean ± std pools: probe seeds, times pretraining runs of one label.

    Runs of several pretraining seeds share a method label, so a learned
    method's cell pools (runs x probe seeds) values while baselines pool probe
    seeds only.
    """
    n_probe = len({r["seed"] for r in rows})
    cells = Counter((r["method"], r["feature"], r["task"], r["metric"]) for r in rows if r["method"] in learned)
    n_runs = max(cells.values(), default=n_probe) // max(n_probe, 1)
    if n_runs > 1:
        return (f"Mean ± std (sample, ddof = 1) over {n_runs} pretraining runs × {n_probe} probe seed(s) "
                f"for learned methods; baselines over the {n_probe} probe seed(s).")
    return f"Mean ± std (sample, ddof = 1) over {n_probe} probe seed(s)." if n_probe > 1 else "One seed."


def real_note(rows: Sequence[Mapping[str, Any]], data: str, note: str) -> str:
    """Table footer of a real benchmark: what ± means for it (else ``note``), and the data counts."""
    info = {r["metric"]: r["value"] for r in rows if r["method"] == DATA_INFO and r["data"] == data}
    if data in ("lfw", "cplfw"):
        spread = "Deterministic (cosine similarity, fixed pair list): one run; '± over folds' is the std over the folds."
    elif data == "fer2013":
        spread = "Official splits and deterministic probes: one run (seed 0)."
    else:
        spread = note
    return f"{spread} Data: {describe_info(data, info)}." if info else spread


def real_table_specs(rows: Sequence[Mapping[str, Any]], data: str, main_lines: tuple[tuple[str, str], ...],
                     feature_lines: tuple[tuple[str, str], ...], note: str) -> dict[str, TableSpec]:
    """``main`` (methods on the main feature and baselines), ``features`` (per feature), ``per_class`` (classification)."""
    columns = REAL_COLUMNS[data]
    note = real_note(rows, data, note)
    specs = {"main": TableSpec(f"{data}: linear evaluation, {REAL_TITLES[data]}", columns, main_lines, "method", note),
             "features": TableSpec(f"{data}: feature comparison", columns, feature_lines, "both", note)}
    task = REAL_CLASS_TASKS.get(data)
    if task:
        metrics = dict.fromkeys(
            r["metric"] for r in rows if r["data"] == data and r["task"] == task and str(r["metric"]).startswith("acc_")
        )
        # without the chance line: a constant guess scores 100 % on one class
        lines = tuple(line for line in dict.fromkeys(main_lines + feature_lines) if line[0] != CHANCE)
        specs["per_class"] = TableSpec(
            f"{data}: accuracy per class (linear probe)", tuple(percent(task, m, m[4:]) for m in metrics), lines, "both", note
        )
    return specs


def result_tables(rows: Sequence[Mapping[str, Any]], data: str | None = None, main_feature: str = "F_s") -> dict[str, Table]:
    """The report's tables, laid out like the paper's: ``{name: Table}``.

    ``main`` -- methods and baselines on ``main_feature`` (pixels for the pixel
    baseline); ``features`` -- F_s / F_f / F_p / F_f ⊕ F_p per method;
    ``disentanglement`` -- F_f vs F_p; ``swap`` (SynthFaces); ``au`` per-AU F1.
    Real benchmarks: ``main``, ``features`` and ``per_class`` (classification)
    in the benchmark's own columns (:data:`REAL_COLUMNS`).
    """
    rows = [r for r in rows if data is None or r["data"] == data]
    if not rows:
        raise ValueError(f"no result rows{' for ' + data if data else ''}")
    data = data or rows[0]["data"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    learned = [m for m in methods if m not in REFERENCE_LABELS]
    present = {(r["method"], r["feature"]) for r in rows}
    columns = SYNTH_COLUMNS if data == "synthfaces" else CMU_COLUMNS

    def lines(candidates: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        return tuple(line for line in candidates if line in present)

    supervised = sorted((m, f) for m, f in present if m == SUPERVISED)
    main_lines = [(m, main_feature) for m in learned] + supervised + [(RANDOM_INIT, "F_s"), (PIXELS, "pixels"), (CHANCE, CHANCE)]
    feature_lines = [(m, f) for m in learned for f in FEATURE_KEYS]
    note = seeds_note([r for r in rows if r["method"] != DATA_INFO], learned)
    main_name = DISPLAY_NAMES.get(main_feature, main_feature)
    specs = {
        "main": TableSpec(
            f"{data}: linear evaluation ({main_name}; pixel baseline: PCA of raw pixels)",
            columns,
            lines(main_lines),
            "method",
            note,
        ),
        "features": TableSpec(f"{data}: feature comparison", columns, lines(feature_lines), "both", note),
        "disentanglement": TableSpec(
            f"{data}: disentanglement (F_f vs F_p)",
            disentanglement_columns(data),
            lines((m, f) for m in learned for f in BRANCH_FEATURES),
            "both",
            note,
        ),
    }
    if data in REAL_COLUMNS:  # each benchmark's own columns; main, features, per-class accuracy
        specs = real_table_specs(rows, data, lines(main_lines), lines(feature_lines), note)
    if data == "synthfaces":
        specs["swap"] = TableSpec("synthfaces: swap fidelity, D(F_f^A, F_p^B) vs render(face A, pose B)", SWAP_COLUMNS,
                                  lines((m, "decoder") for m in learned), "method", note)
        specs["au"] = TableSpec("synthfaces: AU detection, F1 per AU", au_columns(rows),
                                lines([*main_lines, *feature_lines]), "both", note)
    tables = {name: layout_table(rows, spec, data, DISPLAY_NAMES, LATEX_NAMES) for name, spec in specs.items()}
    return {name: table for name, table in tables.items() if table.labels}


def summary_table(rows: Sequence[Mapping[str, Any]], data: str | None = None, name: str = "main") -> Table:
    """One table of :func:`result_tables` (``main``, ``features``, ``disentanglement``, ``swap``, ``au``, ``per_class``).

    A :class:`Table` shows itself as Markdown in Jupyter.
    """
    tables = result_tables(rows, data)
    if name not in tables:
        raise KeyError(f"no {name!r} table for these rows; available: {', '.join(tables)}")
    return tables[name]


def write_results(rows: Sequence[Mapping[str, Any]], out: str | Path, meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.csv`` (tidy), ``results.md``, ``results.tex`` (booktabs) and ``meta.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": write_csv(rows, out / "results.csv")}
    markdown, latex = ["# Linear evaluation\n"], ["% generated by python -m pclkit evaluate; needs \\usepackage{booktabs}\n"]
    for data in dict.fromkeys(r["data"] for r in rows):
        for name, table in result_tables(rows, data).items():
            markdown.append(to_markdown(table))
            latex.append(to_latex(table, label=f"tab:{data}-{name}"))
    (out / "results.md").write_text("\n".join(markdown))
    (out / "results.tex").write_text("\n".join(latex))
    files.update(md=out / "results.md", tex=out / "results.tex")
    if meta is not None:
        (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        files["meta"] = out / "meta.json"
    return files
