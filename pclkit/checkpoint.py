"""Checkpoints: plain dicts of tensors and primitives, saved atomically.

Format (docs/architecture.md)::

    {"format": "pclkit-checkpoint/1", "config": <resolved config, plain dict>,
     "model": state_dict, "optimizer": ..., "scheduler": ..., "dwa": ...,
     "rng": ..., "step": int, "epoch": int}

Only tensors, numbers, strings, bools, None and lists/tuples/dicts of them are
stored, so every checkpoint loads with ``torch.load(weights_only=True)``: a
checkpoint from somebody else cannot run code on load.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "pclkit-checkpoint/1"
REQUIRED_KEYS = ("format", "config", "model", "step", "epoch")

_PRIMITIVES = (bool, int, float, str, type(None))


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, of another format or does not fit the model."""


def _check_plain(obj: Any, where: str) -> None:
    """Refuse anything ``weights_only=True`` could not load (fail at save, not at load)."""
    if isinstance(obj, (torch.Tensor, *_PRIMITIVES)):
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"checkpoint key {where}[{key!r}] is a {type(key).__name__}, not str/int")
            _check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"checkpoint entry {where} is a {type(obj).__name__}; only tensors, numbers, strings, "
        "None and lists/dicts of them can be stored"
    )


def save_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically and return the path.

    The dict is written to a temporary file in the same folder and moved over
    ``path`` with ``os.replace``, so a crash mid-write leaves the previous
    checkpoint intact and a reader never sees half a file.
    """
    payload = dict(payload)
    payload.setdefault("format", FORMAT)
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint payload lacks required keys: {missing}")
    _check_plain(payload, "checkpoint")
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it over ``path``.

    A crash mid-write leaves the previous file intact and a reader never sees
    half a file (``os.replace`` is atomic on one file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; package data and run files are world-readable
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def read_payload(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with a :class:`CheckpointError` for absent or unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"cannot load checkpoint {path}: {err}") from err


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its format and keys."""
    path = Path(path)
    payload = read_payload(path, map_location)
    return check_checkpoint(payload, path)


def check_checkpoint(payload: Any, path: Path) -> dict[str, Any]:
    """``payload`` when it is a training checkpoint with every required key, else a :class:`CheckpointError`."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (format: {found!r})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks keys {missing}")
    return payload


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str = "model") -> None:
    """``module.load_state_dict(state)`` with an error that lists every key mismatch."""
    expected = set(module.state_dict())
    given = set(state)
    missing = sorted(expected - given)
    unexpected = sorted(given - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{what} state does not match the model: "
            f"missing keys {missing or 'none'}; unexpected keys {unexpected or 'none'}"
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:  # same keys, other shapes: a different architecture
        raise CheckpointError(f"{what} state does not fit the model: {err}") from err


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict of the unwrapped model, detached, on CPU (stable keys under DDP)."""
    return {key: value.detach().cpu() for key, value in unwrap(model).state_dict().items()}


def checkpoint_path(ref: str | os.PathLike) -> Path:
    """The file behind a checkpoint reference, the one place that resolves references.

    * ``pretrained:NAME`` -- the weights shipped in the package
      (:func:`pclkit.pretrained.weights_file`; its SHA-256 is checked against the manifest);
    * a run folder -- its ``last.pt``;
    * anything else -- the file itself.
    """
    from pclkit.pretrained import is_pretrained_ref, pretrained_name, weights_file

    if is_pretrained_ref(ref):
        return weights_file(pretrained_name(ref))
    path = Path(ref)
    return path / "last.pt" if path.is_dir() else path


def read_model_payload(ref: str | os.PathLike) -> dict[str, Any]:
    """``config``, float ``model`` state, ``step`` and ``epoch`` of any checkpoint reference.

    Reads training checkpoints (``last.pt``, run folders) and shipped weights
    (``pretrained:NAME`` or their ``.pt`` file; stored in bf16/fp16, returned as float32).
    """
    from pclkit.pretrained import FORMAT as WEIGHTS_FORMAT
    from pclkit.pretrained import weights_payload

    path = checkpoint_path(ref)
    payload = read_payload(path, map_location="cpu")
    if isinstance(payload, dict) and payload.get("format") == WEIGHTS_FORMAT:
        return weights_payload(payload, path)
    return check_checkpoint(payload, path)


def model_from_config(config: Mapping[str, Any], state: Mapping[str, torch.Tensor], where: str) -> nn.Module:
    """The network of a stored config's ``model`` section with ``state`` loaded strictly (train mode, CPU)."""
    from pclkit.config import model_config_from_dict
    from pclkit.models import build_model

    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        raise CheckpointError(f"{where} has no model section in its config")
    # only the model section: a run's other settings need not be valid on the reading machine
    model = build_model(model_config_from_dict(dict(config["model"])))
    load_state_strict(model, upgraded_state(model, state), what=f"model in {where}")
    return model


def upgraded_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """``state`` in ``model``'s current layout: a model class that changed its layout defines
    ``upgrade_state(state)`` to read older checkpoints (e.g. :meth:`pclkit.models.SimCLRModel.upgrade_state`)."""
    upgrade = getattr(unwrap(model), "upgrade_state", None)
    return upgrade(state) if upgrade is not None else state


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint (a ``last.pt`` file, its run folder, or ``pretrained:NAME``).

    Returns ``(model in eval mode on device, resolved config dict)``; the
    evaluation code calls this. References are resolved by :func:`checkpoint_path`.
    """
    payload = read_model_payload(path)
    model = model_from_config(payload["config"], payload["model"], where=str(path))
    return model.to(device).eval(), payload["config"]
