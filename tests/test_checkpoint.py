"""Atomic checkpoints, weights_only loading, key checks, load_model (pclkit.checkpoint)."""

from __future__ import annotations

import os

import pytest
import torch

from pclkit.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    load_model,
    load_state_strict,
    save_checkpoint,
)
from pclkit.config import config_to_dict, resolve_config
from pclkit.models import build_model


def _payload(model: torch.nn.Module, step: int = 3) -> dict:
    cfg = resolve_config("smoke")
    return {"config": config_to_dict(cfg), "model": model.state_dict(), "step": step, "epoch": 0,
            "rng": {"torch_cpu": torch.get_rng_state()}}


@pytest.fixture()
def smoke_model():
    return build_model(resolve_config("smoke").model)


def test_roundtrip_is_exact_and_loads_weights_only(tmp_path, smoke_model):
    path = save_checkpoint(tmp_path / "last.pt", _payload(smoke_model))
    raw = torch.load(path, weights_only=True)  # what any reader may do
    assert raw["format"] == FORMAT
    payload = load_checkpoint(path)
    for key, value in smoke_model.state_dict().items():
        assert torch.equal(payload["model"][key], value), key
    assert payload["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, smoke_model, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", _payload(smoke_model, step=1))
    before = path.read_bytes()

    def dying_save(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _payload(smoke_model, step=2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


def test_objects_that_weights_only_cannot_load_are_refused_at_save(tmp_path, smoke_model):
    payload = _payload(smoke_model)
    payload["optimizer"] = {"fn": lambda x: x}
    with pytest.raises(CheckpointError, match=r"checkpoint\['optimizer'\]\['fn'\] is a function"):
        save_checkpoint(tmp_path / "bad.pt", payload)
    assert not (tmp_path / "bad.pt").exists()


def test_missing_required_keys_and_foreign_files_are_errors(tmp_path, smoke_model):
    with pytest.raises(CheckpointError, match=r"lacks required keys: \['step'"):
        save_checkpoint(tmp_path / "x.pt", {"config": {}, "model": {}})
    torch.save({"state_dict": smoke_model.state_dict()}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is not a pclkit-checkpoint/1 checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")


def test_key_mismatch_lists_missing_and_unexpected_keys(smoke_model):
    state = dict(smoke_model.state_dict())
    removed = sorted(state)[0]
    del state[removed]
    state["encoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        load_state_strict(smoke_model, state)
    message = str(err.value)
    assert f"missing keys ['{removed}']" in message
    assert "unexpected keys ['encoder.extra.weight']" in message


def test_load_model_rebuilds_the_model_in_eval_mode(tmp_path, smoke_model):
    with torch.no_grad():
        for p in smoke_model.parameters():
            p.add_(0.01)
    save_checkpoint(tmp_path / "last.pt", _payload(smoke_model))
    model, config = load_model(tmp_path)  # a run folder works as well as the file
    assert not model.training
    assert config["preset"] == "smoke"
    for key, value in smoke_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.rand(2, 3, 32, 32)
    smoke_model.eval()
    assert torch.allclose(model.forward_features(x)["F_s"], smoke_model.forward_features(x)["F_s"])


def test_load_model_refuses_a_checkpoint_of_another_architecture(tmp_path, smoke_model):
    payload = _payload(smoke_model)
    payload["config"]["model"]["width"] = 4  # config says a narrower model than the stored weights
    save_checkpoint(tmp_path / "last.pt", payload)
    with pytest.raises(CheckpointError, match="size mismatch"):
        load_model(tmp_path / "last.pt")
