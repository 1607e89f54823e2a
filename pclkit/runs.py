"""Run folders: how pretraining runs are named, found, trained when missing, loaded and described.

One naming scheme for every run folder, whoever trains it::

    <runs_dir>/reproduce/<preset>_<method>_s<seed>   the main job (python -m pclkit reproduce)
    <runs_dir>/<preset>_<method>_s<seed>             a run a notebook trained (ensure_run)

:func:`run_name` builds the name, :func:`find_run` looks for a finished
checkpoint (``last.pt``) in the main job's folder first, then in the notebook's,
so the notebooks show the main job's models instead of training them again.
Folders of the former notebook scheme, ``<runs_dir>/<preset>_<method>``, are
still found (seed 0), with a note saying how to rename them.

:func:`resolve_model` picks the model a notebook shows (a run, the weights
shipped in the package, or a new run), and :func:`default_cmu_root` finds the
CMU faces folder for everyone (``$PCLKIT_CMU`` or ``../shared/data/cmu_faces``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pclkit.methods import method_label

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from pclkit.callbacks import TrainerCallback

__all__ = [
    "CMU_ENV",
    "MAIN_JOB_DIR",
    "cmu_search_paths",
    "default_cmu_root",
    "describe_run",
    "ensure_run",
    "find_run",
    "legacy_run_folder",
    "load_run",
    "main_job_folder",
    "method_label",
    "pretrained_model_name",
    "resolve_model",
    "run_folder",
    "run_label",
    "run_name",
]

#: sub-folder of ``runs_dir`` that holds the main job's runs
MAIN_JOB_DIR = "reproduce"
#: environment variable naming the CMU faces folder
CMU_ENV = "PCLKIT_CMU"
#: file whose presence makes a folder a usable run
CHECKPOINT_NAME = "last.pt"


# --------------------------------------------------------------------------- names and folders


def run_name(preset: str, method: str, seed: int = 0, variant: str | None = None) -> str:
    """``<preset>_<method>_s<seed>``, or ``<preset>_<method>_<variant>_s<seed>`` for a variant.

    ``method`` is a method name or one of its ablation rows (``dis_orth``);
    ``variant`` tells runs of one method apart that differ in another setting
    (the main job's pose-changing view, e.g. ``render3d``).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"seed must be an integer >= 0, got {seed!r} (runs_dir is the argument after seed)")
    middle = f"{method}_{variant}" if variant else method
    return f"{preset}_{middle}_s{seed}"


def main_job_folder(preset: str, method: str, seed: int = 0, runs_dir: str | Path = "runs") -> Path:
    """The main job's folder of a run: ``<runs_dir>/reproduce/<run_name>``."""
    return Path(runs_dir) / MAIN_JOB_DIR / run_name(preset, method, seed)


def run_folder(preset: str, method: str, seed: int = 0, runs_dir: str | Path = "runs") -> Path:
    """The folder :func:`ensure_run` trains into: ``<runs_dir>/<run_name>``."""
    return Path(runs_dir) / run_name(preset, method, seed)


def legacy_run_folder(preset: str, method: str, runs_dir: str | Path = "runs") -> Path:
    """The former notebook folder ``<runs_dir>/<preset>_<method>`` (no seed in the name)."""
    return Path(runs_dir) / f"{preset}_{method}"


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a run's ``last.pt``."""
    return (folder / CHECKPOINT_NAME).is_file()


def _candidates(preset: str, method: str, seed: int, runs_dir: str | Path) -> list[tuple[Path, str]]:
    """``(folder, what it is)`` in the order :func:`find_run` tries them."""
    found = [(main_job_folder(preset, method, seed, runs_dir), "the main job's run"),
             (run_folder(preset, method, seed, runs_dir), "this notebook's run")]
    if seed == 0:  # the former scheme trained the presets' own seed, 0
        found.append((legacy_run_folder(preset, method, runs_dir), "this notebook's run"))
    return found


def _found(preset: str, method: str, seed: int, runs_dir: str | Path) -> tuple[Path, str] | None:
    for folder, what in _candidates(preset, method, seed, runs_dir):
        if has_checkpoint(folder):
            if folder == legacy_run_folder(preset, method, runs_dir):
                new = run_folder(preset, method, seed, runs_dir)
                print(f"note: {folder} has the former run-folder name; rename it with `mv {folder} {new}`")
            return folder, what
    return None


def find_run(preset: str, method: str, seed: int = 0, runs_dir: str | Path = "runs") -> Path | None:
    """The folder of a finished-or-resumable run of ``(preset, method, seed)``, or None.

    Tries the main job's ``<runs_dir>/reproduce/<name>``, then ``<runs_dir>/<name>``,
    then (seed 0) the former ``<runs_dir>/<preset>_<method>``; a folder counts
    when it holds ``last.pt``.
    """
    found = _found(preset, method, seed, runs_dir)
    return None if found is None else found[0]


# --------------------------------------------------------------------------- training and choosing


def method_preset(preset: str, method: str) -> str:
    """``<method>_<preset>`` when that preset exists (e.g. ``pros_synth_cpu``), else ``preset``.

    A method whose recipe differs from PCL's (ProS: AdamW, multi-crop views) ships its own
    variant of a preset; it inherits the preset, so the data and the budget stay the same.
    """
    from pclkit.config import preset_names

    variant = f"{method}_{preset}"
    return variant if variant in preset_names() else preset


def ensure_run(preset: str, method: str, seed: int = 0, runs_dir: str | Path = "runs",
               overrides: Mapping[str, Any] | None = None, live_plot: "TrainerCallback | None" = None) -> Path:
    """The run of ``(preset, method, seed)`` (:func:`find_run`); trains it into :func:`run_folder` when missing.

    A found run is used as it is, whatever ``overrides`` say (delete the folder
    to retrain, or finish an interrupted run with ``python -m pclkit pretrain
    --resume``). ``overrides`` are config keys of a new run; ``live_plot`` (e.g.
    :class:`pclkit.widgets.LiveLossPlot`) receives the training records.
    """
    found = find_run(preset, method, seed, runs_dir)
    if found is not None:
        return found
    from pclkit.config import resolve_config
    from pclkit.trainer import Trainer

    folder = run_folder(preset, method, seed, runs_dir)
    config = resolve_config(method_preset(preset, method), {"method": method, "seed": seed, **dict(overrides or {})})
    trainer = Trainer(config, folder)
    if live_plot is not None:
        trainer.add_callback(live_plot)
    trainer.fit()
    return folder


def pretrained_model_name(method: str) -> str:
    """The shipped model of ``method``: ``<method>_synthfaces``."""
    return f"{method}_synthfaces"


def resolve_model(method: str, preset: str, runs_dir: str | Path = "runs", *, pretrained: bool = True,
                  train: bool = True, overrides: Mapping[str, Any] | None = None,
                  live_plot: "TrainerCallback | None" = None, seed: int = 0) -> Path | str:
    """The model a notebook shows for ``method`` -- the first of these that exists -- and prints which:

    1. the main job's run ``<runs_dir>/reproduce/<preset>_<method>_s<seed>`` (``make reproduce``);
    2. the notebook's own run ``<runs_dir>/<preset>_<method>_s<seed>`` (or its former name);
    3. with ``pretrained``, the weights shipped in the package, ``pretrained:<method>_synthfaces``;
    4. with ``train``, a new run trained into 2 (:func:`ensure_run`); else a ``FileNotFoundError``.

    Returns a run folder or a ``pretrained:NAME`` string; both work with
    :func:`load_run`, :func:`describe_run` and :func:`pclkit.evaluate.evaluate_checkpoints`.
    """
    label = method_label(method)
    found = _found(preset, method, seed, runs_dir)
    if found is not None:
        folder, what = found
        print(f"{label}: {what} {folder}")
        return folder
    name = pretrained_model_name(method)
    if pretrained:
        from pclkit.pretrained import PREFIX, list_pretrained

        if name in list_pretrained():
            print(f"{label}: no local run; the pretrained weights shipped in pclkit ({PREFIX}{name})")
            return f"{PREFIX}{name}"
    folder = run_folder(preset, method, seed, runs_dir)
    if not train:
        tried = ", ".join(str(f) for f, _ in _candidates(preset, method, seed, runs_dir))
        raise FileNotFoundError(f"no run of {method} ({tried})" + (f" and no shipped weights {name!r}" if pretrained else ""))
    print(f"{label}: no local run{' or shipped weights' if pretrained else ''}; training {folder} (preset {preset})")
    return ensure_run(preset, method, seed, runs_dir, overrides, live_plot=live_plot)


# --------------------------------------------------------------------------- loading and describing


def load_run(ref: str | os.PathLike) -> "tuple[nn.Module, dict[str, Any]]":
    """``(model in eval mode, resolved config dict)`` of a run folder, checkpoint file or ``pretrained:NAME``."""
    from pclkit.checkpoint import load_model

    return load_model(ref)


def describe_run(ref: str | os.PathLike) -> str:
    """One line: method, preset, encoder, steps and epochs of a run, checkpoint or ``pretrained:NAME``."""
    from pclkit.checkpoint import read_model_payload

    payload = read_model_payload(ref)
    config = payload["config"]
    shipped = f" (shipped weights, {payload['dtype']})" if "dtype" in payload else ""
    return (f"{ref}: {config.get('method')} / preset {config.get('preset')} / encoder "
            f"{config.get('model', {}).get('encoder')} / {payload['step']} steps, {payload['epoch']} epochs{shipped}")


def training_cost(folder: str | os.PathLike) -> dict[str, float]:
    """What a run's pretraining cost, from its ``metrics.jsonl``: ``steps``, ``minutes`` (the sum of
    its epochs' wall time, probes during pretraining excluded) and ``img_per_s`` (the mean of the
    logged encoder-image rates). Raises ``FileNotFoundError`` when the run has no metrics."""
    import json

    steps, seconds, rates = 0, 0.0, []
    with open(Path(folder) / "metrics.jsonl") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") == "epoch":
                steps, seconds = max(steps, int(record["step"])), seconds + float(record["seconds"])
            elif record.get("kind") == "step" and "img_per_s" in record:
                rates.append(float(record["img_per_s"]))
    return {"steps": steps, "minutes": seconds / 60, "img_per_s": sum(rates) / len(rates) if rates else float("nan")}


def run_label(config: Mapping[str, Any]) -> str:
    """Display label of a loaded run's method (its config's ``method``, e.g. ``PCL``)."""
    return method_label(str(config.get("method")))


# --------------------------------------------------------------------------- data roots


def cmu_search_paths() -> list[Path]:
    """Where the CMU faces are looked for, in order.

    ``$PCLKIT_CMU`` alone when set; otherwise ``shared/data/cmu_faces`` beside
    the checkout that holds this package, then beside the working directory.
    """
    if os.environ.get(CMU_ENV):
        return [Path(os.environ[CMU_ENV])]
    checkout = Path(__file__).resolve().parents[1]
    paths = [checkout.parent / "shared" / "data" / "cmu_faces", Path.cwd().parent / "shared" / "data" / "cmu_faces"]
    return list(dict.fromkeys(paths))


def default_cmu_root() -> Path | None:
    """The first folder of :func:`cmu_search_paths` that exists, or None."""
    return next((path for path in cmu_search_paths() if path.is_dir()), None)
