"""Result tables: tidy rows -> mean ± std over seeds -> CSV, Markdown and LaTeX (booktabs).

A *row* is one measurement: ``{"data", "method", "feature", "task", "metric",
"seed", "value"}`` (tidy format, Wickham 2014). Tables aggregate rows over
seeds (mean and sample standard deviation, ddof = 1) and lay them out like
the PCL paper's tables: one line per method (or method and feature), one
column per task metric.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

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


def summary_table(
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


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters; ``⊕``, ``±``, ``°``, ``²`` become math."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return out.replace("⊕", r"$\oplus$").replace("±", r"$\pm$").replace("°", r"$^\circ$").replace("²", r"$^2$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")


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
    out += [rf"\begin{{tabular}}{{l{'r' * len(table.headers)}}}", r"\toprule", " & " + " & ".join(table.latex_headers) + r" \\", r"\midrule"]
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
