"""The main job end to end on the smoke preset (small evaluation sizes)."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from pclkit.claims import (
    MAIN_CLAIMS,
    ablation_labels,
    ablation_markdown,
    ablation_study,
    check_claims,
    successor_claims,
    verdict,
)
from pclkit.cli import main
from pclkit.config import resolve_config
from pclkit.methods import MAIN_COMPARISON, method_label
from pclkit.reproduce import ReproducePlan, cost_markdown, plan_from_args
from pclkit.runs import method_preset, training_cost
from pclkit.tables import Stat


def test_plan_lists_the_ablation_rows_and_pose_views_per_seed(tmp_path):
    plan = ReproducePlan(seeds=2, ablation=True, pose_views=("flip", "render3d"), runs_dir=tmp_path)
    runs = plan.runs()
    assert [r.label for r in runs[:6]] == ["SimCLR", "+L_dis", "+L_orth", "+L_pose", "PCL", "PCL (render3d)"]
    assert [r.seed for r in runs] == [0] * 6 + [1] * 6
    assert len({r.folder for r in runs}) == len(runs)
    assert runs[5].overrides()["views.pose_change"] == "render3d"
    assert runs[5].overrides()["views.pose_change_options"] == {}  # the preset's options belong to its own view
    assert runs[0].overrides()["method"] == "simclr"
    default = ReproducePlan(runs_dir=tmp_path).runs()
    assert [r.label for r in default] == ["SimCLR", "PCL"]
    assert "views.pose_change" not in default[1].overrides()  # the preset's own pose change
    assert default[1].folder.name == "synth_cpu_pcl_s0"


def test_methods_option_adds_successors_with_their_own_preset_variant_on_the_same_data_and_budget(tmp_path):
    plan = ReproducePlan(methods=("simclr", "pcl", "pcfrl", "pros"), seeds=2, runs_dir=tmp_path)
    runs = plan.runs()
    assert [r.label for r in runs[:4]] == ["SimCLR", "PCL", "PCFRL", "ProS"]
    assert [r.folder.name for r in runs[2:4]] == ["synth_cpu_pcfrl_s0", "synth_cpu_pros_s0"]
    assert method_preset("synth_cpu", "pros") == "pros_synth_cpu"
    assert method_preset("synth_cpu", "pcfrl") == "synth_cpu"  # PCFRL keeps PCL's recipe
    base, pros = resolve_config("synth_cpu"), resolve_config("pros_synth_cpu")
    assert pros.method == "pros" and pros.data == base.data
    # the same budget in images (8 epochs of the same faces); the batch is each recipe's own choice
    assert pros.optim.epochs == base.optim.epochs and pros.data.n == base.data.n
    args = plan_from_args(_parse(["reproduce", "--methods", "pcl", "pros", "pcl"]))
    assert args.methods == ("pcl", "pros")


def _parse(argv):
    import argparse

    from pclkit.reproduce import add_arguments

    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_successor_claims_compare_with_pcl_only_when_both_ran():
    assert successor_claims(("simclr", "pcl")) == [] and successor_claims(("pcfrl", "pros")) == []
    claims = successor_claims(("simclr", "pcl", "pros"))
    assert {c.method for c in claims} == {"ProS"} and {c.baseline for c in claims} == {"PCL"}
    assert len(claims) == len(MAIN_CLAIMS) and all("reconstruction" in c.text for c in claims)


def test_training_cost_reads_epoch_time_and_image_rate(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    records = [{"kind": "step", "step": 4, "img_per_s": 100.0}, {"kind": "epoch", "step": 8, "seconds": 30.0},
               {"kind": "step", "step": 12, "img_per_s": 50.0}, {"kind": "monitor", "step": 16, "seconds": 5.0},
               {"kind": "epoch", "step": 16, "seconds": 90.0}]
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    assert training_cost(folder) == {"steps": 16, "minutes": 2.0, "img_per_s": 75.0}
    plan = ReproducePlan(runs_dir=tmp_path)
    spec = plan.runs()[0]
    table = cost_markdown([spec.__class__(spec.label, spec.row, 0, spec.pose_view, folder), plan.runs()[1]])
    assert "| SimCLR | 16 | 2.0 | 75 |" in table and "| PCL |" not in table  # PCL has not run: no row


def test_verdict_needs_a_difference_beyond_the_spread():
    assert verdict(0.05, 0.01) == "confirmed"
    assert verdict(-0.05, 0.01) == "refuted"
    assert verdict(0.005, 0.01) == "unclear"
    assert verdict(0.05, math.nan) == "unclear"  # one value: no spread, no verdict
    assert verdict(0.05, 0.01, above_chance=False) == "uninformative (at chance)"


def test_claims_compare_pcl_with_simclr_and_respect_the_metric_direction():
    def row(method: str, task: str, metric: str, seed: int, value: float, feature: str = "F_s") -> dict:
        return dict(data="synthfaces", method=method, feature=feature, task=task, metric=metric, seed=seed, value=value)

    rows = []
    for seed, (pcl, simclr) in enumerate([(0.60, 0.50), (0.62, 0.52)]):
        rows.append(row("PCL", "expression", "accuracy", seed, pcl))
        rows.append(row("SimCLR", "expression", "accuracy", seed, simclr))
        rows.append(row("PCL", "head_pose", "mae_mean", seed, 20.0 + seed))
        rows.append(row("SimCLR", "head_pose", "mae_mean", seed, 10.0 + seed))
    rows.append(row("chance", "expression", "accuracy", 0, 0.15, feature="chance"))
    claims = {c["claim"].split(" on ")[1]: c for c in check_claims(rows, "synthfaces")}
    assert claims["expression recognition (F_s)"]["verdict"] == "confirmed"
    assert claims["head pose, mean MAE (F_s)"]["verdict"] == "refuted"  # PCL's MAE is higher: worse
    assert isinstance(claims["expression recognition (F_s)"]["ours"], Stat)
    # the same gap with both methods at chance level decides nothing
    at_chance = [dict(r, value=r["value"] - 0.45) if r["task"] == "expression" and r["method"] != "chance" else r for r in rows]
    claims = {c["claim"].split(" on ")[1]: c for c in check_claims(at_chance, "synthfaces")}
    assert claims["expression recognition (F_s)"]["verdict"] == "uninformative (at chance)"


@pytest.mark.slow
def test_reproduce_smoke_trains_evaluates_and_reuses_finished_runs(tmp_path, capsys, monkeypatch):
    args = ["reproduce", "--preset", "smoke", "--quick", "--eval-seeds", "1", "--no-cmu", "--no-figures",
            "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
            "--synth-cache", str(tmp_path / "synth")]
    monkeypatch.delenv("PCLKIT_SYNTH_CACHE", raising=False)
    assert main(args) == 0
    assert list((tmp_path / "synth").glob("synthfaces_train_*.pt"))  # the runs share one rendering
    assert "PCLKIT_SYNTH_CACHE" not in os.environ  # and the variable is restored
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "## Paper claims" in summary and "PCL beats SimCLR on expression" in summary
    with open(tmp_path / "results" / "synthfaces" / "results.csv") as handle:
        methods = {row["method"] for row in csv.DictReader(handle)}
    assert {"PCL", "SimCLR", "random init", "pixels (PCA)"} <= methods
    for run in ("smoke_simclr_s0", "smoke_pcl_s0"):
        assert (tmp_path / "runs" / run / "last.pt").is_file()
    capsys.readouterr()

    # a second call finds both runs finished and does not train again
    assert main(args) == 0
    assert capsys.readouterr().out.count("reusing finished run") == 2


def test_ablation_study_follows_each_metric_and_flags_chance():
    rows = []
    for i, label in enumerate(ablation_labels().values()):
        for seed in range(2):
            rows.append(dict(data="synthfaces", method=label, feature="F_s", task="expression", metric="accuracy",
                             seed=seed, value=0.15 + 0.001 * seed))  # flat, at chance
            rows.append(dict(data="synthfaces", method=label, feature="F_s", task="head_pose", metric="mae_mean",
                             seed=seed, value=20.0 - i + 0.1 * seed))  # falls row by row: better
            rows.append(dict(data="synthfaces", method=label, feature="F_s", task="verification", metric="accuracy",
                             seed=seed, value=0.6 + 0.01 * (i % 2)))  # zig-zag
    for seed in range(2):
        rows.append(dict(data="synthfaces", method="chance", feature="chance", task="expression", metric="accuracy",
                         seed=seed, value=0.153))
    study = ablation_study(rows)
    by_task = {m["task"]: m for m in study["metrics"]}
    assert set(by_task) == {"expression", "verification", "head_pose"}  # unmeasured metrics are left out
    assert by_task["head_pose"]["monotone"] and not by_task["head_pose"]["at_chance"]
    assert not by_task["verification"]["monotone"]
    assert by_task["expression"]["at_chance"]
    text = ablation_markdown(study)
    assert "| +L_orth |" in text and "Pose MAE (°): monotone" in text and "uninformative" in text
    assert ablation_study([r for r in rows if r["method"] != "+L_dis"]) is None


def test_ablation_labels_and_claims_come_from_the_method_registry():
    labels = ablation_labels()
    assert list(labels) == ["simclr", "dis", "dis_orth", "dis_orth_pose", "pcl"]  # PCL's Table 5 rows, in order
    assert labels["dis_orth_pose"] == "+L_pose" and labels["pcl"] == method_label("pcl")
    ours, baseline = (method_label(name) for name in (MAIN_COMPARISON[-1], MAIN_COMPARISON[0]))
    assert all(c.method == ours and c.baseline == baseline for c in MAIN_CLAIMS)
    assert MAIN_CLAIMS[0].text.startswith(f"{ours} beats {baseline} on ")


def test_set_options_become_overrides_of_every_run(tmp_path):
    import argparse

    from pclkit.reproduce import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--no-cmu", "--runs", str(tmp_path), "--set", "optim.epochs=2",
                              "--set", "data.pose_limits=[30, 15, 10]"])
    plan = plan_from_args(args)
    assert plan.overrides == {"optim.epochs": 2, "data.pose_limits": [30, 15, 10]}
    assert plan.cmu_root is None
