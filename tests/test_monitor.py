"""Probes during pretraining: the callback interface, ProbeMonitor, its config, records and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pclkit import widgets
from pclkit.callbacks import RecordFunction, TrainerCallback
from pclkit.checkpoint import load_checkpoint
from pclkit.config import MIN_MONITOR_IMAGES, ConfigError, resolve_config
from pclkit.data.synthfaces import dataset as synthfaces_dataset
from pclkit.figures import pretraining_curves_figure
from pclkit.models import build_model
from pclkit.monitor import (
    MONITOR_TASKS,
    ProbeMonitor,
    alternate_within_groups,
    knn_accuracy,
    monitor_series,
    render_monitor_set,
    ridge_r2,
)
from pclkit.runlog import plot_curves
from pclkit.trainer import Trainer

#: a tiny run: 32 SynthFaces at 32 px, batch 16 (2 steps per epoch), one thread, the smallest monitor set
TINY = ["data.n=32", "optim.batch_size=16", "model.width=4", "runtime.threads=1", "runtime.progress=false",
        "runtime.snapshot_every=0", f"runtime.monitor_images={MIN_MONITOR_IMAGES}"]
KEYS = {f"{feature}/{task}" for feature in ("F_s", "F_f", "F_p") for task in MONITOR_TASKS}


def tiny(*overrides: str):
    return resolve_config("smoke", [*TINY, *overrides])


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory) -> tuple[Path, set[str]]:
    """A 3-epoch PCL run probed every 2 epochs, and the SynthFaces splits it asked for."""
    splits: set[str] = set()

    class Recording(synthfaces_dataset.SynthFaces):
        def __init__(self, split: str = "train", *args, **kwargs):
            splits.add(split)
            super().__init__(split, *args, **kwargs)

    run = tmp_path_factory.mktemp("monitor") / "pcl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synthfaces_dataset, "SynthFaces", Recording)
        Trainer(tiny("optim.epochs=3", "runtime.monitor_every=2"), run).fit()
    return run, splits


# --------------------------------------------------------------------------- config


def test_config_switches_and_rejects_bad_monitor_values():
    assert resolve_config("smoke").runtime.monitor_every == 0
    assert resolve_config("synth_cpu").runtime.monitor_every == 2
    assert resolve_config("paper", ["data.root=/frames"]).runtime.monitor_every == 0
    with pytest.raises(ConfigError, match="monitor_every must be >= 0"):
        resolve_config("smoke", ["runtime.monitor_every=-1"])
    with pytest.raises(ConfigError, match="monitor_every must be an integer"):
        resolve_config("smoke", ["runtime.monitor_every=1.5"])
    with pytest.raises(ConfigError, match=f"monitor_images must be >= {MIN_MONITOR_IMAGES}"):
        resolve_config("smoke", ["runtime.monitor_images=64"])
    with pytest.raises(ConfigError, match="needs data.source 'synth'"):
        resolve_config("paper", ["data.root=/frames", "runtime.monitor_every=1"])
    with pytest.raises(ValueError):
        ProbeMonitor(0)
    with pytest.raises(ValueError):
        ProbeMonitor(1, n_images=MIN_MONITOR_IMAGES - 1)


# --------------------------------------------------------------------------- the run's records


def test_monitor_records_follow_their_epochs_in_metrics(monitored_run):
    run, _ = monitored_run
    records = read_records(run)
    epochs = [r for r in records if r["kind"] == "epoch"]
    monitors = [r for r in records if r["kind"] == "monitor"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    assert [(r["epoch"], r["step"]) for r in monitors] == [(1, 4)]  # (epoch + 1) % 2 == 0, not the last epoch
    position = records.index(monitors[0])
    assert records[position - 1] == epochs[1]  # written right after the epoch it probes
    record = monitors[0]
    assert set(record) == {"kind", "epoch", "step", "seconds", "n_images", *KEYS}
    assert record["n_images"] == MIN_MONITOR_IMAGES and 0 < record["seconds"] < 30
    for key in KEYS:
        value = record[key]
        assert isinstance(value, float), key
        assert (0.0 <= value <= 1.0) if not key.endswith("yaw_r2") else value <= 1.0, (key, value)


def test_monitor_never_renders_the_test_split(monitored_run):
    _, splits = monitored_run
    assert splits == {"train", "val"}
    with pytest.raises(ValueError, match="never 'test'"):
        render_monitor_set(tiny(), MIN_MONITOR_IMAGES, split="test")


def test_monitoring_does_not_change_training(monitored_run, tmp_path):
    run, _ = monitored_run
    plain = tmp_path / "plain"
    Trainer(tiny("optim.epochs=3"), plain).fit()
    a, b = load_checkpoint(run / "last.pt"), load_checkpoint(plain / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert not [r for r in read_records(plain) if r["kind"] == "monitor"]


def test_monitor_call_keeps_modes_and_weights_and_logs_through_the_trainer(tmp_path):
    trainer = Trainer(tiny("runtime.monitor_every=1"), tmp_path / "run")
    monitors = [cb for cb in trainer.callbacks if isinstance(cb, ProbeMonitor)]
    assert len(monitors) == 1 and monitors[0].every_epochs == 1
    seen: list[dict] = []
    trainer.add_callback(seen.append)
    model = trainer.model
    model.train()
    model.decoder.eval()  # a mixed state must come back as it was
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}

    trainer.log({"kind": "epoch", "epoch": 0, "step": 2})
    assert [r["kind"] for r in seen] == ["epoch", "monitor"]
    assert {name: m.training for name, m in model.named_modules()} == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.is_grad_enabled()
    assert [r["kind"] for r in read_records(tmp_path / "run")] == ["epoch", "monitor"]


def test_simclr_is_probed_on_f_s_only():
    config = tiny("method=simclr")
    monitor = ProbeMonitor(1, n_images=MIN_MONITOR_IMAGES)
    scores = monitor.measure(build_model(config.model), config, "cpu")
    assert set(scores) == {f"F_s/{task}" for task in MONITOR_TASKS}


def test_callbacks_see_fit_start_records_and_fit_end(tmp_path):
    events: list[str] = []

    class Spy(TrainerCallback):
        def on_fit_start(self, trainer):
            events.append("start")

        def on_record(self, trainer, record):
            events.append(record["kind"])

        def on_fit_end(self, trainer):
            events.append("end")

    old_style: list[dict] = []
    trainer = Trainer(tiny("optim.epochs=1"), tmp_path / "run", callbacks=[Spy()])
    trainer.on_record.append(old_style.append)  # the older list of plain functions still works
    assert isinstance(trainer.add_callback(print), RecordFunction)
    trainer.callbacks.pop()
    trainer.fit()
    assert events == ["start", "step", "step", "epoch", "end"]
    assert [r["kind"] for r in old_style] == ["step", "step", "epoch"]


# --------------------------------------------------------------------------- probes


def test_reference_half_alternates_within_each_identity():
    identity = torch.arange(10).repeat(5)  # 10 identities x 5 images
    reference = alternate_within_groups(identity)
    for i in range(10):
        assert int(reference[identity == i].sum()) == 3
    assert int(reference.sum()) == 30


def test_probes_score_informative_and_uninformative_features():
    generator = torch.Generator().manual_seed(0)
    identity = torch.arange(20).repeat(10)
    reference = alternate_within_groups(identity)
    codes = torch.randn(20, 16, generator=generator)
    x = codes[identity] + 0.05 * torch.randn(200, 16, generator=generator)
    assert knn_accuracy(x, identity + 1000, reference, k=5, temperature=0.07) == 1.0
    yaw = torch.rand(200, generator=generator) * 180 - 90
    informative = torch.cat([yaw[:, None] / 90, torch.randn(200, 8, generator=generator)], dim=1)
    assert ridge_r2(informative, yaw, reference, (1.0, 1e-2, 1e-4)) > 0.95
    assert ridge_r2(torch.randn(200, 8, generator=generator), yaw, reference, (1.0, 1e-2, 1e-4)) < 0.2


# --------------------------------------------------------------------------- plots


def test_curves_show_the_monitor_and_plain_runs_plot_as_before(monitored_run, tmp_path):
    run, _ = monitored_run
    records = read_records(run)
    series = monitor_series(records)
    assert set(series) == set(MONITOR_TASKS) and series["identity"]["F_f"][0] == [2]  # epochs from 1
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "metrics.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records if r["kind"] != "monitor") + "\n")

    assert plot_curves(run / "metrics.jsonl", tmp_path / "monitored.png") is not None
    assert plot_curves(plain / "metrics.jsonl", tmp_path / "plain.png") is not None
    monitored_fig = pretraining_curves_figure({"PCL": run, "plain": plain})
    plain_fig = pretraining_curves_figure({"plain": plain})
    assert len(monitored_fig.axes) == 3 + len(MONITOR_TASKS)  # two loss panels, DWA, a monitor row
    assert len(plain_fig.axes) == 2 and not plain_fig.subfigs  # loss panel and DWA, as before
    identity_panels = [ax for ax in monitored_fig.axes if ax.get_title().startswith("identity")]
    assert len(identity_panels) == 1 and len(identity_panels[0].get_lines()) == 3  # F_s, F_f, F_p of "PCL"

    live = widgets.LiveLossPlot(title="live")
    live.extend([r for r in records if r["kind"] != "monitor"])
    loss_only = bytes(live.widget.value)
    live(next(r for r in records if r["kind"] == "monitor"))
    assert len(live.monitor) == 1 and bytes(live.widget.value) != loss_only
    assert len(live.figure().axes) == 1 + len(MONITOR_TASKS)
