"""Run folders (pclkit.runs) and the figures of a set of runs (pclkit.figures.make_all) -- no training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pclkit import runs
from pclkit.checkpoint import model_state, save_checkpoint
from pclkit.config import config_to_dict, resolve_config
from pclkit.models import build_model


def write_run(folder: Path, method: str, metrics: bool = True) -> Path:
    """A run folder holding an untrained smoke-preset ``last.pt`` (and a short ``metrics.jsonl``)."""
    config = resolve_config("smoke", {"method": method})
    torch.manual_seed(0)
    model = build_model(config.model)
    save_checkpoint(folder / "last.pt", {"config": config_to_dict(config), "model": model_state(model), "step": 8,
                                         "epoch": 2})
    if metrics:
        records = [{"kind": "step", "step": s, "loss": 2.0 / s, "loss_face": 1.0 / s, "lr": 1e-3} for s in range(1, 9)]
        records += [{"kind": "epoch", "epoch": e, "step": 4 * (e + 1), "loss_face": 0.5 / (e + 1),
                     "alpha_face": 1.0, "alpha_pose": 1.0} for e in range(2)]
        (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return folder


def touch_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "last.pt").write_bytes(b"")
    return folder


# --------------------------------------------------------------------------- names and finding


def test_one_naming_scheme_for_the_main_job_and_the_notebooks(tmp_path):
    assert runs.run_name("synth_cpu", "pcl") == "synth_cpu_pcl_s0"
    assert runs.run_name("synth_cpu", "dis_orth", 2) == "synth_cpu_dis_orth_s2"
    assert runs.run_name("synth_cpu", "pcl", 1, variant="render3d") == "synth_cpu_pcl_render3d_s1"
    assert runs.main_job_folder("smoke", "simclr", 1, tmp_path) == tmp_path / "reproduce" / "smoke_simclr_s1"
    assert runs.run_folder("smoke", "simclr", 1, tmp_path) == tmp_path / "smoke_simclr_s1"
    with pytest.raises(TypeError, match="runs_dir is the argument after seed"):
        runs.run_name("smoke", "pcl", tmp_path)  # type: ignore[arg-type]


def test_find_run_prefers_the_main_job_then_the_own_run_then_the_former_name(tmp_path, capsys):
    assert runs.find_run("smoke", "pcl", runs_dir=tmp_path) is None
    legacy = touch_checkpoint(tmp_path / "smoke_pcl")
    assert runs.find_run("smoke", "pcl", runs_dir=tmp_path) == legacy
    assert f"mv {legacy} {tmp_path / 'smoke_pcl_s0'}" in capsys.readouterr().out  # how to rename it
    assert runs.find_run("smoke", "pcl", seed=1, runs_dir=tmp_path) is None  # the former name was seed 0
    own = touch_checkpoint(runs.run_folder("smoke", "pcl", 0, tmp_path))
    assert runs.find_run("smoke", "pcl", runs_dir=tmp_path) == own
    main_job = runs.main_job_folder("smoke", "pcl", 0, tmp_path)
    main_job.mkdir(parents=True)
    assert runs.find_run("smoke", "pcl", runs_dir=tmp_path) == own  # a folder without last.pt does not count
    touch_checkpoint(main_job)
    assert runs.find_run("smoke", "pcl", runs_dir=tmp_path) == main_job
    assert runs.ensure_run("smoke", "pcl", runs_dir=tmp_path) == main_job  # found: nothing is trained
    assert runs.find_run("synth_cpu", "pcl", runs_dir=tmp_path) is None  # runs are per preset


def test_resolve_model_says_what_it_picked_and_what_it_tried(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no run of simclr") as error:
        runs.resolve_model("simclr", "smoke", tmp_path, pretrained=False, train=False)
    assert str(runs.main_job_folder("smoke", "simclr", 0, tmp_path)) in str(error.value)
    own = touch_checkpoint(runs.run_folder("smoke", "simclr", 0, tmp_path))
    assert runs.resolve_model("simclr", "smoke", tmp_path, pretrained=False, train=False) == own
    assert f"SimCLR: this notebook's run {own}" in capsys.readouterr().out
    assert runs.pretrained_model_name("pcl") == "pcl_synthfaces"


def test_load_and_describe_a_run(tmp_path):
    folder = write_run(tmp_path / "smoke_simclr_s0", "simclr", metrics=False)
    model, config = runs.load_run(folder)
    assert not model.training and config["method"] == "simclr" and runs.run_label(config) == "SimCLR"
    assert runs.describe_run(folder) == f"{folder}: simclr / preset smoke / encoder small / 8 steps, 2 epochs"


def test_the_cmu_root_is_resolved_in_one_place(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.CMU_ENV, str(tmp_path / "missing"))
    assert runs.cmu_search_paths() == [tmp_path / "missing"] and runs.default_cmu_root() is None
    monkeypatch.setenv(runs.CMU_ENV, str(tmp_path))
    assert runs.default_cmu_root() == tmp_path
    monkeypatch.delenv(runs.CMU_ENV)
    assert all(path.parts[-3:] == ("shared", "data", "cmu_faces") for path in runs.cmu_search_paths())


# --------------------------------------------------------------------------- figures of a set of runs


def test_make_all_writes_every_figure_the_runs_allow(tmp_path):
    from pclkit.figures import embedding_feature_sets, make_all
    from pclkit.style import FIGURE_FORMATS

    simclr = write_run(tmp_path / "runs" / "smoke_simclr_s0", "simclr")
    pcl = write_run(tmp_path / "runs" / "smoke_pcl_s0", "pcl")
    out = tmp_path / "figures"
    written = make_all([simclr, pcl / "last.pt"], out, embeddings="", cmu=None, seed=1)
    stems = ["synthfaces_factors", "pretraining_curves", "pose_swap_grid", "pose_swap_grid_render3d",
             "pose_swap_ground_truth", "pose_interpolation", "swap_margin_by_yaw_turn"]
    assert sorted(written) == sorted(out / f"{stem}.{fmt}" for stem in stems for fmt in FIGURE_FORMATS)
    # every feature each model exposes: SimCLR F_s alone, PCL F_s, F_f, F_p
    models = {"SimCLR": runs.load_run(simclr)[0], "PCL": runs.load_run(pcl)[0]}
    sets = embedding_feature_sets(models, torch.rand(6, 3, 32, 32))
    assert list(sets) == ["SimCLR", "PCL $F_s$", "PCL $F_f$", "PCL $F_p$"]
    assert all(values.shape[0] == 6 for values in sets.values())
