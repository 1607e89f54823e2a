"""Pretrained models shipped in the package: export, manifest, SHA-256 check, loading, ``pretrained:NAME`` everywhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pclkit import pretrained as pt
from pclkit.checkpoint import checkpoint_path, load_checkpoint, load_model, model_state, save_checkpoint
from pclkit.cli import main
from pclkit.config import config_to_dict, resolve_config
from pclkit.models import build_model

REPO = Path(__file__).resolve().parents[1]
#: a tiny, fast run: 32 SynthFaces at 32 px, batch 16, two steps, one thread
TINY = ["data.n=32", "optim.batch_size=16", "model.width=4", "runtime.threads=1", "runtime.progress=false",
        "runtime.snapshot_every=0", "optim.max_steps=2"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """A PCL run trained for two steps on the smoke preset (a few seconds)."""
    from pclkit.trainer import Trainer

    threads = torch.get_num_threads()
    run = tmp_path_factory.mktemp("runs") / "smoke_pcl"
    try:
        Trainer(resolve_config("smoke", TINY), run).fit()
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    """An empty weights folder that ``pretrained:NAME`` resolves against."""
    folder = tmp_path / "weights"
    monkeypatch.setenv(pt.ENV_WEIGHTS_DIR, str(folder))
    return folder


def simclr_checkpoint(path: Path) -> Path:
    """A SimCLR checkpoint file with random weights (export takes files as well as run folders)."""
    config = resolve_config("smoke", {"method": "simclr", "model.width": 4})
    torch.manual_seed(1)
    save_checkpoint(path, {"config": config_to_dict(config), "model": model_state(build_model(config.model)),
                           "step": 7, "epoch": 1})
    return path


def export(run: Path, name: str, folder: Path, **options) -> dict:
    return pt.export_pretrained(run, name, weights_dir=folder, command="python -m pclkit pretrain --preset smoke",
                                **options)


# --------------------------------------------------------------------------- export


def test_export_writes_a_small_weights_only_file_and_its_manifest_entry(smoke_run, weights_dir):
    entry = export(smoke_run, "pcl_smoke", weights_dir, metrics={"expression_accuracy": 0.5})
    path = weights_dir / "pcl_smoke.pt"
    payload = torch.load(path, weights_only=True)
    original = load_checkpoint(smoke_run / "last.pt")
    assert payload["format"] == pt.FORMAT and payload["config"] == original["config"]
    assert set(payload) == {"format", "name", "dtype", "config", "model", "step", "epoch"}  # no optimizer state
    for key, value in original["model"].items():
        stored = payload["model"][key]
        if value.is_floating_point():
            assert stored.dtype == torch.bfloat16 and torch.equal(stored, value.to(torch.bfloat16)), key
        else:  # BatchNorm num_batches_tracked stays an integer
            assert stored.dtype == value.dtype and torch.equal(stored, value), key
    assert path.stat().st_size < (smoke_run / "last.pt").stat().st_size / 2

    manifest = json.loads((weights_dir / "manifest.json").read_text())
    assert manifest["format"] == pt.MANIFEST_FORMAT and list(manifest["models"]) == ["pcl_smoke"]
    assert manifest["models"]["pcl_smoke"] == entry
    from pclkit.features import file_sha256

    assert entry["sha256"] == file_sha256(path) and entry["bytes"] == path.stat().st_size
    assert entry["file"] == "pcl_smoke.pt" and entry["dtype"] == "bf16" and entry["step"] == 2
    assert entry["command"].startswith("python -m pclkit pretrain") and entry["metrics"] == {"expression_accuracy": 0.5}
    assert entry["config"]["model"] == original["config"]["model"]
    assert set(entry["config"]) == {"method", "preset", "seed", "model", "data", "views", "loss", "optim"}
    assert len(entry["created"]) == 10  # ISO date


def test_export_replaces_an_entry_of_the_same_name_and_keeps_the_others(smoke_run, weights_dir, tmp_path):
    export(smoke_run, "model_a", weights_dir)
    export(simclr_checkpoint(tmp_path / "simclr.pt"), "model_b", weights_dir)
    export(smoke_run, "model_a", weights_dir, dtype="fp16")
    assert pt.list_pretrained() == ["model_a", "model_b"]
    assert pt.pretrained_info("model_a")["dtype"] == "fp16"
    assert torch.load(weights_dir / "model_a.pt", weights_only=True)["model"]["encoder.trunk.0.0.weight"].dtype == torch.float16
    assert pt.pretrained_info("model_b")["config"]["method"] == "simclr"
    assert not list(weights_dir.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_export_refuses_files_over_the_size_limit(smoke_run, weights_dir):
    export(smoke_run, "kept", weights_dir)
    before = (weights_dir / "manifest.json").read_text()
    with pytest.raises(pt.PretrainedError, match=r"over the 0.001 MB limit"):
        export(smoke_run, "too_big", weights_dir, max_bytes=1000)
    assert not (weights_dir / "too_big.pt").exists()
    assert (weights_dir / "manifest.json").read_text() == before
    assert pt.MAX_BYTES == 25_000_000


def test_export_rejects_bad_names_and_dtypes(smoke_run, weights_dir):
    with pytest.raises(pt.PretrainedError, match="invalid pretrained model name"):
        export(smoke_run, "../escape", weights_dir)
    with pytest.raises(pt.PretrainedError, match="unknown storage dtype"):
        export(smoke_run, "ok", weights_dir, dtype="int8")


# --------------------------------------------------------------------------- load


def test_load_pretrained_gives_a_frozen_eval_model_with_the_runs_features(smoke_run, weights_dir):
    export(smoke_run, "pcl_smoke", weights_dir)
    model = pt.load_pretrained("pcl_smoke")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    original, _ = load_model(smoke_run)
    for key, value in original.state_dict().items():  # exactly the bf16-rounded weights, back in float32
        loaded = model.state_dict()[key]
        assert loaded.dtype == value.dtype, key
        expected = value.to(torch.bfloat16).float() if value.is_floating_point() else value
        assert torch.equal(loaded, expected), key
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, expected = model.forward_features(x), original.forward_features(x)
        assert set(got) == set(expected)
        for a, b in ((got[k], expected[k]) for k in expected):
            assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999
            assert (a - b).abs().max() <= 0.02 * b.abs().max()
    import pclkit

    assert pclkit.load_pretrained is pt.load_pretrained and pclkit.list_pretrained() == ["pcl_smoke"]


def test_a_corrupt_weights_file_is_refused_naming_both_digests(smoke_run, weights_dir):
    entry = export(smoke_run, "pcl_smoke", weights_dir)
    path = weights_dir / "pcl_smoke.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    from pclkit.features import file_sha256

    with pytest.raises(pt.PretrainedError, match="sha256") as err:
        pt.load_pretrained("pcl_smoke")
    assert entry["sha256"] in str(err.value) and file_sha256(path) in str(err.value)
    with pytest.raises(pt.PretrainedError, match="sha256"):  # every entry point checks
        load_model("pretrained:pcl_smoke")
    path.unlink()
    with pytest.raises(pt.PretrainedError, match="missing"):
        pt.load_pretrained("pcl_smoke")


def test_an_unknown_name_lists_the_known_ones(smoke_run, weights_dir):
    with pytest.raises(pt.PretrainedError, match="known: none shipped yet"):
        pt.load_pretrained("pcl_synthfaces")
    export(smoke_run, "pcl_smoke", weights_dir)
    export(smoke_run, "other", weights_dir)
    with pytest.raises(pt.PretrainedError, match=r"unknown pretrained model 'nope'; known: other, pcl_smoke"):
        pt.load_pretrained("nope")


def test_pretrained_references_work_wherever_checkpoints_do(smoke_run, weights_dir, tmp_path):
    from pclkit.evaluate import checkpoint_file, checkpoint_labels
    from pclkit.runs import describe_run, load_run

    export(smoke_run, "pcl_smoke", weights_dir)
    assert checkpoint_path("pretrained:pcl_smoke") == weights_dir / "pcl_smoke.pt"
    assert checkpoint_file(Path("pretrained:pcl_smoke")) == weights_dir / "pcl_smoke.pt"
    model, config = load_run("pretrained:pcl_smoke")
    assert not model.training and config["method"] == "pcl"
    line = describe_run("pretrained:pcl_smoke")
    assert line.startswith("pretrained:pcl_smoke: pcl / preset smoke") and line.endswith("(shipped weights, bf16)")
    assert checkpoint_labels(["pretrained:pcl_smoke", "runs/simclr/last.pt"], [{}, {}]) == ["pcl_smoke", "simclr"]
    explicit = tmp_path / "elsewhere"
    export(smoke_run, "x", explicit)
    assert pt.load_pretrained("x", weights_dir=explicit) is not None


# --------------------------------------------------------------------------- command line


def test_cli_exports_and_evaluates_pretrained_names(smoke_run, weights_dir, tmp_path, monkeypatch, capsys):
    import pclkit.evaluate as evaluate
    from pclkit.data.synthfaces import SynthConfig

    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"pose_mae_mean": 11.0}')
    assert main(["export-pretrained", str(smoke_run), "--name", "pcl_smoke", "--metrics-json", str(metrics)]) == 0
    entry = pt.pretrained_info("pcl_smoke")
    assert entry["metrics"] == {"pose_mae_mean": 11.0}
    # without --command: rebuilt from the run's config
    assert "--preset smoke --method pcl" in entry["command"] and "--set model.width=4" in entry["command"]
    assert "runtime." not in entry["command"]

    # a small SynthFaces (30/20/20 identities) and a record of what keys the feature cache
    real_parts = evaluate.synthfaces_parts
    small = SynthConfig(identities={"train": 30, "val": 20, "test": 20})
    monkeypatch.setattr(
        evaluate, "synthfaces_parts", lambda cfg, size, cache, synth_config=None: real_parts(cfg, size, cache, small)
    )
    identities = []

    class Recorded(evaluate.EncoderSource):
        def __init__(self, method, model, names, identity, *args, **kwargs):
            identities.append((method, dict(identity)))
            super().__init__(method, model, names, identity, *args, **kwargs)

    monkeypatch.setattr(evaluate, "EncoderSource", Recorded)
    out = tmp_path / "results"
    argv = ["evaluate", "pretrained:pcl_smoke", "--out", str(out), "--n-train", "60", "--n-val", "40", "--n-test", "100",
            "--seeds", "1", "--features", "F_s", "--no-baselines", "--quiet", "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    rows = (out / "results.csv").read_text()
    assert "pcl_smoke,F_s,expression,accuracy" in rows
    assert identities == [("pcl_smoke", {"checkpoint_sha256": entry["sha256"]})]
    assert json.loads((out / "meta.json").read_text())["checkpoints"] == ["pretrained:pcl_smoke"]
    assert main(argv + ["--names", "PCL"]) == 0
    assert "PCL,F_s,expression" in (out / "results.csv").read_text()

    # the headline metrics straight from evaluate's results: means over probe seeds, other methods ignored
    cmu = tmp_path / "cmu.csv"
    cmu.write_text("data,method,feature,task,metric,seed,value\n"
                   "cmu,PCL,F_s,verification,accuracy,0,0.75\ncmu,PCL,F_s,verification,accuracy,1,0.77\n"
                   "cmu,SimCLR,F_s,verification,accuracy,0,0.5\n")
    export = ["export-pretrained", str(smoke_run), "--name", "pcl_smoke", "--results", str(out / "results.csv"),
              "--results", str(cmu)]
    with pytest.raises(SystemExit, match="--method"):
        main(export)
    with pytest.raises(SystemExit, match="no results of method 'BYOL'"):
        main([*export, "--method", "BYOL"])
    assert main([*export, "--method", "PCL"]) == 0
    metrics = pt.pretrained_info("pcl_smoke")["metrics"]
    assert metrics["cmu_verification_accuracy"] == 0.76
    expression = [float(line.split(",")[-1]) for line in (out / "results.csv").read_text().splitlines()
                  if line.startswith("synthfaces,PCL,F_s,expression,accuracy,")]
    assert metrics["synthfaces_expression_accuracy"] == round(sum(expression) / len(expression), 4)
    assert "synthfaces_pose_r2_F_p" not in metrics  # only F_s was probed: nothing is made up


# --------------------------------------------------------------------------- notebooks' choice of model


def test_resolve_model_prefers_the_main_job_then_the_notebook_run_then_shipped_weights(
        smoke_run, weights_dir, tmp_path, capsys):
    from pclkit.runs import resolve_model

    runs = tmp_path / "runs"
    with pytest.raises(FileNotFoundError, match="no run of pcl"):
        resolve_model("pcl", "smoke", runs, train=False)
    export(smoke_run, "pcl_synthfaces", weights_dir)
    assert resolve_model("pcl", "smoke", runs, train=False) == "pretrained:pcl_synthfaces"
    assert "shipped in pclkit (pretrained:pcl_synthfaces)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        resolve_model("pcl", "smoke", runs, pretrained=False, train=False)

    own = runs / "smoke_pcl"
    own.mkdir(parents=True)
    shutil.copy(smoke_run / "last.pt", own / "last.pt")
    assert resolve_model("pcl", "smoke", runs, train=False) == own
    assert f"PCL: this notebook's run {own}" in capsys.readouterr().out

    main_job = runs / "reproduce" / "smoke_pcl_s0"
    main_job.mkdir(parents=True)
    assert resolve_model("pcl", "smoke", runs, train=False) == own  # a folder without last.pt does not count
    shutil.copy(smoke_run / "last.pt", main_job / "last.pt")
    assert resolve_model("pcl", "smoke", runs, train=False) == main_job
    assert f"PCL: the main job's run {main_job}" in capsys.readouterr().out
    assert resolve_model("pcl", "synth_cpu", runs, train=False) == "pretrained:pcl_synthfaces"  # runs are per preset


# --------------------------------------------------------------------------- packaging


def test_the_package_ships_its_weights_folder(monkeypatch):
    monkeypatch.delenv(pt.ENV_WEIGHTS_DIR, raising=False)
    folder = pt.default_weights_dir()
    assert folder == REPO / "pclkit" / "weights" and (folder / "README.md").is_file()
    manifest = pt.read_manifest()
    for name, entry in manifest["models"].items():  # whatever is shipped is intact and small
        assert entry["name"] == name and entry["bytes"] <= pt.MAX_BYTES
        assert pt.weights_file(name).stat().st_size == entry["bytes"]
        assert {"command", "config", "metrics", "sha256", "dtype", "created"} <= set(entry)
    # the folder's README lists each shipped file with the first 12 hex digits of its SHA-256
    rows = [[cell.strip(" `") for cell in line.split("|")]
            for line in (folder / "README.md").read_text().splitlines() if line.startswith("| `")]
    listed = {cells[1]: cells[-2] for cells in rows if re.fullmatch(r"[0-9a-f]{12}", cells[-2])}
    assert listed == {name: entry["sha256"][:12] for name, entry in manifest["models"].items()}
    package_data = next(line for line in (REPO / "pyproject.toml").read_text().splitlines() if line.startswith("pclkit = ["))
    assert '"weights/*.pt"' in package_data and '"weights/manifest.json"' in package_data
    if shutil.which("git") and (REPO / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "pclkit/weights/pcl_synthfaces.pt", "pclkit/weights/manifest.json"],
                                 cwd=REPO, capture_output=True, text=True)
        assert ignored.returncode == 1, f"git ignores shipped weights: {ignored.stdout}"


def test_import_pclkit_stays_light():
    code = ("import sys, pclkit; assert 'torch' not in sys.modules, 'import pclkit imported torch'; "
            "assert {'load_pretrained', 'list_pretrained'} <= set(pclkit.__all__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
