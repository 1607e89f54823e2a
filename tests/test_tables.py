"""Result tables: aggregation over seeds and CSV / Markdown / LaTeX export."""

from __future__ import annotations

import math

import pytest

from pclkit.tables import (
    Column,
    Stat,
    TableSpec,
    aggregate,
    latex_escape,
    layout_table,
    read_csv,
    summary_table,
    to_latex,
    to_markdown,
    write_csv,
)


def row(method, feature, task, metric, seed, value, data="synthfaces"):
    return dict(data=data, method=method, feature=feature, task=task, metric=metric, seed=seed, value=value)


ROWS = [
    row("pcl", "F_s", "expression", "accuracy", 0, 0.80),
    row("pcl", "F_s", "expression", "accuracy", 1, 0.84),
    row("pcl", "F_s", "head_pose", "mae_mean", 0, 10.0),
    row("pcl", "F_s", "head_pose", "mae_mean", 1, 12.0),
    row("simclr", "F_s", "expression", "accuracy", 0, 0.70),
    row("simclr", "F_s", "expression", "accuracy", 1, 0.72),
    row("simclr", "F_s", "head_pose", "mae_mean", 0, 8.0),
    row("simclr", "F_s", "head_pose", "mae_mean", 1, 8.0),
    row("pcl", "F_fp", "expression", "accuracy", 0, 0.9),
]
COLUMNS = (
    Column("expression", "accuracy", "Expr. acc ↑", scale=100.0),
    Column("head_pose", "mae_mean", "Pose MAE ↓", higher_is_better=False),
)


def test_stat_is_mean_and_sample_std_of_finite_values():
    s = Stat.of([1.0, 2.0, 3.0, float("nan")])
    assert (s.mean, s.n) == (2.0, 3) and s.std == pytest.approx(1.0)
    one = Stat.of([5.0])
    assert one.mean == 5.0 and math.isnan(one.std)
    assert Stat.of([float("nan")]).n == 0


def test_aggregate_groups_over_seeds():
    stats = aggregate(ROWS)
    s = stats[("synthfaces", "pcl", "F_s", "expression", "accuracy")]
    assert s.mean == pytest.approx(0.82) and s.std == pytest.approx(math.sqrt(0.0008)) and s.n == 2


def test_csv_round_trip(tmp_path):
    path = write_csv(ROWS, tmp_path / "r.csv")
    assert path.read_text().splitlines()[0] == "data,method,feature,task,metric,seed,value"
    assert read_csv(path) == ROWS


def test_rows_missing_fields_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="lacks fields"):
        write_csv([{"method": "pcl", "value": 1.0}], tmp_path / "bad.csv")


def test_markdown_layout_and_best_marking():
    table = layout_table(ROWS, TableSpec("main", COLUMNS, (("pcl", "F_s"), ("simclr", "F_s"), ("absent", "F_s")), "method"))
    assert table.labels == ["pcl", "simclr"]  # lines without measurements are dropped
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0] == "### main"
    assert lines[2] == "| | Expr. acc ↑ | Pose MAE ↓ |"
    # accuracy: higher is better -> pcl bold; MAE: lower is better -> simclr bold; std of equal seeds is 0
    assert lines[4] == "| pcl | **82.0 ± 2.8** | 11.0 ± 1.4 |"
    assert lines[5] == "| simclr | 71.0 ± 1.4 | **8.0 ± 0.0** |"


def test_missing_cells_and_single_seed():
    table = layout_table(ROWS, TableSpec("f", COLUMNS, (("pcl", "F_fp"),), "feature"), labels={"F_fp": "F_f ⊕ F_p"})
    assert to_markdown(table).splitlines()[4] == "| F_f ⊕ F_p | 90.0 | – |"


def test_latex_is_booktabs_with_escaping():
    table = layout_table(ROWS, TableSpec("50% of runs_x", COLUMNS, None, "both"), latex_labels={"F_fp": r"$F_f \oplus F_p$"})
    tex = to_latex(table, label="tab:main")
    for piece in (r"\toprule", r"\midrule", r"\bottomrule", r"\label{tab:main}", r"\caption{50\% of runs\_x}"):
        assert piece in tex
    assert r"pcl (F\_s) & 82.0 $\pm$ 2.8 & 11.0 $\pm$ 1.4 \\" in tex
    assert r"pcl ($F_f \oplus F_p$) & \textbf{90.0} & -- \\" in tex
    assert r"Expr. acc $\uparrow$" in tex
    assert latex_escape("a_b & 5%") == r"a\_b \& 5\%"


def test_data_filter():
    rows = ROWS + [row("pcl", "F_s", "expression", "accuracy", 0, 0.1, data="cmu")]
    table = layout_table(rows, TableSpec("cmu", COLUMNS, None, "method"), data="cmu")
    assert table.labels == ["pcl"] and table.cells[0][0].mean == pytest.approx(0.1)


def test_summary_table_picks_one_table_of_the_report():
    rows = [row("PCL", "F_s", "expression", "accuracy", seed, 0.5 + seed / 10) for seed in range(2)]
    table = summary_table(rows, "synthfaces")
    assert table.labels == ["PCL"] and table.title.startswith("synthfaces: linear evaluation")
    assert "over 2 probe seed(s)" in table.note
    with pytest.raises(KeyError, match="available: main, features"):
        summary_table(rows, "synthfaces", "swap")
