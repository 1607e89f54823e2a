"""Run outputs: optional TensorBoard logging (``runtime.tensorboard``) and kept checkpoints (``runtime.keep_every``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from pclkit.checkpoint import load_checkpoint
from pclkit.cli import main
from pclkit.config import ConfigError, load_config_file, resolve_config
from pclkit.tensorboard_log import TensorBoardMissing, scalar_tags
from pclkit.trainer import Trainer

#: 32 SynthFaces at 32 px, batch 16: two steps per epoch, one thread
TINY = ["data.n=32", "optim.batch_size=16", "model.width=4", "runtime.threads=1", "runtime.progress=false",
        "runtime.snapshot_every=0"]


def tiny(*overrides: str):
    return resolve_config("smoke", [*TINY, *overrides])


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def read_records(run: Path, kind: str) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == kind]


def test_keep_every_keeps_epoch_checkpoints_beside_last(tmp_path):
    with pytest.raises(ConfigError, match="keep_every must be >= 0"):
        tiny("runtime.keep_every=-1")
    run = tmp_path / "run"
    Trainer(tiny("optim.epochs=3", "runtime.keep_every=2"), run).fit()
    assert sorted(p.name for p in run.glob("*.pt")) == ["epoch_002.pt", "last.pt"]
    kept, last = load_checkpoint(run / "epoch_002.pt"), load_checkpoint(run / "last.pt")
    assert (kept["epoch"], kept["step"], last["step"]) == (2, 4, 6)
    assert not list(run.glob(".*.tmp"))  # written atomically, no leftovers


def test_missing_tensorboard_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were absent
    with pytest.raises(TensorBoardMissing, match=r"pip install tensorboard"):
        Trainer(tiny("runtime.tensorboard=true"), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before any work
    assert main(["pretrain", "--preset", "smoke", "--set", "runtime.tensorboard=true", "--out", str(tmp_path / "cli")]) == 1
    assert "`pip install tensorboard`" in capsys.readouterr().err


def test_scalar_tags_by_record_kind():
    assert scalar_tags({"kind": "step", "step": 3, "epoch": 0, "loss": 1.5, "lr": 1e-3}) == {"train/loss": 1.5,
                                                                                           "train/lr": 1e-3}
    assert scalar_tags({"kind": "monitor", "epoch": 1, "step": 4, "F_s/identity": 0.5, "ok": True,
                        "bad": float("nan")}) == {"monitor/F_s/identity": 0.5}
    assert scalar_tags({"kind": "epoch", "step": 4, "epoch": 1, "seconds": 2}) == {"epoch/seconds": 2.0}


def test_tensorboard_logs_every_record_and_a_resume_purges_the_steps_past_the_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional: pip install tensorboard")
    pytest.importorskip("torch.utils.tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    Trainer(tiny("optim.epochs=2", "runtime.keep_every=1", "runtime.tensorboard=true"), run).fit()

    def scalars(tag: str) -> list[tuple[int, float]]:
        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        return [(e.step, e.value) for e in events.Scalars(tag)]

    steps = read_records(run, "step")
    assert scalars("train/loss") == [(r["step"], pytest.approx(r["loss"])) for r in steps]
    assert [s for s, _ in scalars("train/loss")] == [1, 2, 3, 4]
    assert [s for s, _ in scalars("epoch/loss")] == [2, 4]
    # interrupted after epoch 1: its checkpoint is the last one; the resumed run redoes steps 3 and 4
    shutil.copy(run / "epoch_001.pt", run / "last.pt")
    Trainer(load_config_file(run / "config.yaml"), run, resume=True).fit()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert [s for s, _ in scalars("train/loss")] == [1, 2, 3, 4]  # without the purge: 1, 2, 3, 4, 3, 4
    assert scalars("train/loss") == [(r["step"], pytest.approx(r["loss"])) for r in read_records(run, "step")]
    assert [s for s, _ in scalars("epoch/loss")] == [2, 4]
