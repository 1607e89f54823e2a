"""Pretrained models shipped inside the package (``pclkit/weights/``), and ``python -m pclkit export-pretrained``.

A shipped model is one file ``<name>.pt`` in the weights folder plus its entry
in ``manifest.json`` there (name, file, sha256, bytes, dtype, created, the
command and config that trained it, its headline metrics). The file is a plain
dict loadable with ``torch.load(weights_only=True)``::

    {"format": "pclkit-pretrained/1", "name": str, "dtype": "bf16" | "fp16" | "fp32",
     "config": <resolved training config, plain dict>, "model": state_dict, "step": int, "epoch": int}

Floating-point tensors are stored in ``dtype`` (integer buffers such as
BatchNorm's ``num_batches_tracked`` keep theirs) and cast back to float32 on load.

* :func:`load_pretrained` -- the model in eval mode, frozen, after checking the file's SHA-256;
* :func:`list_pretrained`, :func:`pretrained_info` -- what is shipped;
* :func:`export_pretrained` -- write (or replace) a shipped model from a run;
* ``pretrained:NAME`` is accepted wherever a checkpoint path is
  (:func:`pclkit.checkpoint.checkpoint_path` resolves it), e.g.
  ``python -m pclkit evaluate pretrained:pcl_synthfaces pretrained:simclr_synthfaces --out results/x``.

``$PCLKIT_WEIGHTS_DIR`` replaces the package's weights folder (tests, staging new weights).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pclkit.checkpoint import CheckpointError, atomic_write

FORMAT = "pclkit-pretrained/1"
MANIFEST_FORMAT = "pclkit-weights-manifest/1"
MANIFEST = "manifest.json"
PREFIX = "pretrained:"
ENV_WEIGHTS_DIR = "PCLKIT_WEIGHTS_DIR"
#: the largest weights file shipped in the package (25 MB)
MAX_BYTES = 25_000_000
DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
#: config entries copied into the manifest (the full config is in the weights file)
MANIFEST_CONFIG_KEYS = ("method", "preset", "seed", "model", "data", "views", "loss", "optim")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class PretrainedError(CheckpointError):
    """A shipped model is unknown, missing, corrupt (SHA-256 mismatch), too large or of another format."""


# --------------------------------------------------------------------------- names and folders


def default_weights_dir() -> Path:
    """``$PCLKIT_WEIGHTS_DIR`` when set, else the package's ``pclkit/weights`` folder."""
    override = os.environ.get(ENV_WEIGHTS_DIR)
    return Path(override) if override else Path(__file__).resolve().parent / "weights"


def _folder(weights_dir: str | os.PathLike | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else default_weights_dir()


def is_pretrained_ref(ref: Any) -> bool:
    """Whether ``ref`` is a ``pretrained:NAME`` reference (a str or a Path made from one)."""
    return isinstance(ref, (str, os.PathLike)) and os.fspath(ref).startswith(PREFIX)


def pretrained_name(ref: str | os.PathLike) -> str:
    """``"pretrained:pcl_synthfaces"`` -> ``"pcl_synthfaces"``."""
    text = os.fspath(ref)
    if not text.startswith(PREFIX):
        raise PretrainedError(f"{text!r} is not a {PREFIX}NAME reference")
    return text[len(PREFIX):]


def check_name(name: str) -> str:
    """``name`` when it is a valid file stem (letters, digits, ``_ . -``), else a :class:`PretrainedError`."""
    if not _NAME.fullmatch(name):
        raise PretrainedError(f"invalid pretrained model name {name!r}: use letters, digits, '_', '.' and '-'")
    return name


# --------------------------------------------------------------------------- manifest


def read_manifest(weights_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"format": ..., "models": {name: entry}}`` of a weights folder (empty when it has no manifest)."""
    path = _folder(weights_dir) / MANIFEST
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "models": {}}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PretrainedError(f"cannot read {path}: {err}") from err
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("models"), dict)
    ):
        raise PretrainedError(f"{path} is not a {MANIFEST_FORMAT} manifest")
    return manifest


def list_pretrained(weights_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the shipped models, sorted."""
    return sorted(read_manifest(weights_dir)["models"])


def pretrained_info(name: str, weights_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest entry of ``name``; an unknown name is an error that lists the known ones."""
    models = read_manifest(weights_dir)["models"]
    if name not in models:
        known = ", ".join(sorted(models)) or "none shipped yet"
        raise PretrainedError(f"unknown pretrained model {name!r}; known: {known} (folder {_folder(weights_dir)})")
    return dict(models[name])


def weights_file(name: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """The weights file of ``name`` after checking its SHA-256 against the manifest."""
    from pclkit.features import file_sha256

    entry = pretrained_info(name, weights_dir)
    path = _folder(weights_dir) / entry["file"]
    if not path.is_file():
        raise PretrainedError(f"pretrained model {name!r}: its file {path} is missing")
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        raise PretrainedError(f"pretrained model {name!r}: {path} has sha256 {digest}, "
                              f"the manifest expects {entry['sha256']} (corrupt or replaced file; re-export it)")
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`pclkit.checkpoint.atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(data))


def write_manifest(manifest: Mapping[str, Any], weights_dir: str | os.PathLike | None = None) -> Path:
    """Write ``manifest.json`` atomically, models sorted by name."""
    models = {name: manifest["models"][name] for name in sorted(manifest["models"])}
    text = json.dumps({"format": MANIFEST_FORMAT, "models": models}, indent=2) + "\n"
    path = _folder(weights_dir) / MANIFEST
    _write_atomic(path, text.encode())
    return path


# --------------------------------------------------------------------------- weights files


def storage_state(state: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``state`` with floating-point tensors cast to ``dtype``; other tensors (integer buffers) kept; own storage each."""
    return {key: (value.detach().to(dtype) if value.is_floating_point() else value.detach()).contiguous().clone()
            for key, value in state.items()}


def weights_payload(payload: Any, path: str | os.PathLike) -> dict[str, Any]:
    """A read weights file (``torch.load`` result) checked, with its floating-point tensors cast to float32."""
    missing = [key for key in ("format", "config", "model") if not isinstance(payload, dict) or key not in payload]
    if missing or payload.get("format") != FORMAT:
        raise PretrainedError(f"{path} is not a {FORMAT} weights file (missing {missing or 'nothing'}, "
                              f"format {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    state = {key: value.float() if value.is_floating_point() else value for key, value in payload["model"].items()}
    return {**payload, "model": state, "step": int(payload.get("step", 0)), "epoch": int(payload.get("epoch", 0))}


def _serialize(payload: Mapping[str, Any]) -> bytes:
    """``torch.save`` into bytes, verified to load back with ``weights_only=True``."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    data = buffer.getvalue()
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise PretrainedError(f"the weights payload would not load with weights_only=True: {err}") from err
    return data


def manifest_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config entries recorded in the manifest (method, preset, seed, model/data/views/loss/optim)."""
    return {key: config[key] for key in MANIFEST_CONFIG_KEYS if key in config}


def export_pretrained(
    run_or_checkpoint: str | os.PathLike,
    name: str,
    *,
    weights_dir: str | os.PathLike | None = None,
    dtype: str = "bf16",
    command: str,
    metrics: Mapping[str, Any] | None = None,
    max_bytes: int = MAX_BYTES,
) -> dict[str, Any]:
    """Write ``<weights_dir>/<name>.pt`` from a run folder or checkpoint and add/replace its manifest entry.

    Only the model's tensors (floats cast to ``dtype``), the config, step and
    epoch are kept. A file larger than ``max_bytes`` (25 MB) is refused before
    anything is written. ``command`` is the command line that trained the
    run; ``metrics`` its headline numbers. Returns the manifest entry.
    """
    from pclkit.checkpoint import checkpoint_path, model_from_config, read_model_payload

    check_name(name)
    if dtype not in DTYPES:
        raise PretrainedError(f"unknown storage dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    source = checkpoint_path(run_or_checkpoint)
    payload = read_model_payload(source)
    model_from_config(payload["config"], payload["model"], where=str(source))  # refuse a state that does not fit
    data = _serialize({"format": FORMAT, "name": name, "dtype": dtype, "config": payload["config"],
                       "model": storage_state(payload["model"], DTYPES[dtype]),
                       "step": int(payload["step"]), "epoch": int(payload["epoch"])})
    if len(data) > max_bytes:
        raise PretrainedError(f"{name}: the weights take {len(data) / 1e6:.1f} MB in {dtype}, over the "
                              f"{max_bytes / 1e6:g} MB limit for models shipped in the package "
                              "(store them in bf16/fp16 or ship a smaller model)")
    folder = _folder(weights_dir)
    manifest = read_manifest(folder)  # fail on a broken manifest before writing anything
    entry = {"name": name, "file": f"{name}.pt", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
             "dtype": dtype, "created": datetime.date.today().isoformat(), "command": command,
             "step": int(payload["step"]), "epoch": int(payload["epoch"]),
             "config": manifest_config(payload["config"]), "metrics": dict(metrics or {})}
    _write_atomic(folder / entry["file"], data)
    manifest["models"][name] = entry
    write_manifest(manifest, folder)
    return entry


def load_pretrained(name: str, device: str | torch.device = "cpu",
                    weights_dir: str | os.PathLike | None = None) -> nn.Module:
    """The shipped model ``name`` (e.g. ``"pcl_synthfaces"``) in eval mode, frozen, on ``device``.

    The file's SHA-256 is checked against the manifest (a mismatch is a
    :class:`PretrainedError` naming both digests); it is read with
    ``torch.load(weights_only=True)`` and its state loaded strictly in float32.
    """
    from pclkit.checkpoint import load_model

    model, _ = load_model(weights_file(name, weights_dir), device)
    return model.requires_grad_(False)


def pretrain_command(config: Mapping[str, Any], out: str | os.PathLike) -> str:
    """A ``python -m pclkit pretrain`` command that reproduces ``config``: its preset plus ``--set`` differences.

    Runtime settings (threads, device, logging) are left out. Falls back to the
    preset alone when the preset is not available here.
    """
    import shlex

    from pclkit.config import ConfigError, config_to_dict, resolve_config

    preset, method = str(config.get("preset")), str(config.get("method"))
    words = ["python", "-m", "pclkit", "pretrain", "--preset", preset, "--method", method]
    try:
        base = config_to_dict(resolve_config(preset, {"method": method}))
    except (ConfigError, OSError):
        base = None
    if base is not None:
        for key, value in _differences(base, config):
            if not key.startswith("runtime.") and key != "model.method":
                words += ["--set", f"{key}={json.dumps(value)}"]
    words += ["--out", os.fspath(out)]
    return " ".join(shlex.quote(w) for w in words)


def _differences(base: Mapping[str, Any], config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of every leaf of ``config`` that differs from ``base``."""
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping) and value:
            out += _differences(base[key], value, f"{dotted}.")
        elif key in ("method", "preset") and not prefix:
            continue
        elif base.get(key) != value:
            out.append((dotted, value))
    return out


# --------------------------------------------------------------------------- headline metrics

#: manifest key -> (data, feature, task, metric) of ``pclkit evaluate``'s results.csv rows
HEADLINE_METRICS: dict[str, tuple[str, str, str, str]] = {
    "synthfaces_expression_accuracy": ("synthfaces", "F_s", "expression", "accuracy"),
    "synthfaces_verification_accuracy": ("synthfaces", "F_s", "verification", "accuracy"),
    "synthfaces_cross_pose_verification_accuracy": ("synthfaces", "F_s", "verification_cross_pose", "accuracy"),
    "synthfaces_au_f1_mean": ("synthfaces", "F_s", "au", "f1_mean"),
    "synthfaces_pose_mae_mean_deg": ("synthfaces", "F_s", "head_pose", "mae_mean"),
    "cmu_verification_accuracy": ("cmu", "F_s", "verification", "accuracy"),
    "synthfaces_swap_psnr_db": ("synthfaces", "decoder", "swap", "psnr_swap"),
    "synthfaces_swap_ssim": ("synthfaces", "decoder", "swap", "ssim_swap"),
    "synthfaces_pose_r2_F_p": ("synthfaces", "F_p", "head_pose", "r2_mean"),
    "synthfaces_pose_r2_F_f": ("synthfaces", "F_f", "head_pose", "r2_mean"),
}


def headline_metrics(rows: Sequence[Mapping[str, Any]], method: str) -> dict[str, Any]:
    """The manifest's ``metrics`` of ``method`` (its label in the rows) from ``pclkit evaluate`` results rows:
    the mean over probe seeds of each :data:`HEADLINE_METRICS` entry the rows hold."""
    from pclkit.tables import aggregate

    stats = aggregate(rows)
    if not any(key[1] == method for key in stats):
        methods = sorted({key[1] for key in stats})
        raise ValueError(f"no results of method {method!r}; the rows hold {methods}")
    metrics: dict[str, Any] = {}
    for name, (data, feature, task, metric) in HEADLINE_METRICS.items():
        stat = stats.get((data, method, feature, task, metric))
        if stat is not None:
            metrics[name] = round(float(stat.mean), 4)
    seeds = sorted({int(row["seed"]) for row in rows if row["method"] == method})
    metrics["evaluation"] = (f"{' and '.join(sorted({key[0] for key in stats if key[1] == method}))}, "
                             f"{len(seeds)} probe seed(s), linear probes; python -m pclkit evaluate")
    return metrics


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m pclkit export-pretrained``."""
    parser.add_argument("run", type=Path, metavar="RUN_DIR", help="run folder (or its last.pt) to ship")
    parser.add_argument("--name", required=True, help="model name, e.g. pcl_synthfaces (the file is NAME.pt)")
    parser.add_argument("--metrics-json", type=Path, default=None, metavar="FILE",
                        help="JSON object of headline metrics to record in the manifest")
    parser.add_argument("--results", type=Path, action="append", default=[], metavar="CSV",
                        help="results.csv of `pclkit evaluate` (repeat for SynthFaces and CMU): the headline "
                             "metrics of --method are read from them")
    parser.add_argument("--method", default=None, metavar="LABEL",
                        help="the run's method label in the --results files (e.g. PCL)")
    parser.add_argument("--command", default=None, metavar="TEXT",
                        help="the command that trained the run (default: rebuilt from its config)")
    parser.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="storage dtype (default bf16)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help=f"weights folder (default: ${ENV_WEIGHTS_DIR} or pclkit/weights)")


def run(args: argparse.Namespace) -> int:
    from pclkit.checkpoint import checkpoint_path, read_model_payload

    metrics = None
    if args.metrics_json is not None and args.results:
        raise SystemExit("give the headline metrics either as --metrics-json or as --results, not both")
    if args.metrics_json is not None:
        metrics = json.loads(args.metrics_json.read_text())
        if not isinstance(metrics, dict):
            raise SystemExit(f"{args.metrics_json}: metrics must be a JSON object")
    if args.results:
        from pclkit.tables import read_csv

        if args.method is None:
            raise SystemExit("--results needs --method: the run's label in those files (e.g. PCL)")
        try:
            metrics = headline_metrics([row for path in args.results for row in read_csv(path)], args.method)
        except ValueError as err:
            raise SystemExit(str(err)) from err
    command = args.command
    if command is None:
        folder = checkpoint_path(args.run).parent
        command = pretrain_command(read_model_payload(args.run)["config"], folder)
    entry = export_pretrained(args.run, args.name, weights_dir=args.weights_dir, dtype=args.dtype,
                              command=command, metrics=metrics)
    folder = _folder(args.weights_dir)
    print(f"wrote {folder / entry['file']} ({entry['bytes'] / 1e6:.2f} MB, {entry['dtype']}, "
          f"sha256 {entry['sha256'][:12]}…) and its entry in {folder / MANIFEST}")
    print(f"command: {entry['command']}")
    return 0
