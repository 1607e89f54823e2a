"""``import-reference``: the authors' released PCL weights as a pclkit run folder.

The public PCL code (github.com/DreamMr/PCL; Liu et al., CVPR 2023) trains
``ExpPoseModel`` (``Models/networks.py``) and saves, every ``save_epoch``
epochs, ``torch.save({"epoch": epoch + 1, "state_dict": model.model.state_dict()},
"<checkpoint_dir>/<experiment>/<epoch>.pth")`` (``main.py``,
``utils.save_checkpoint``). ``model.model`` is wrapped in
``torch.nn.DataParallel``, so every key starts with ``module.``. Its linear
evaluation (``main.py --config_file configs/remote_PCL_linear_eval.yaml``)
saves ``best.pth``: the state of ``FaceCycleBackbone`` alone (no ``module.``,
no ``encoder.``), plus its linear probe ``linear_classifier.weight/bias``.

This module reads either layout with ``torch.load(weights_only=True)``,
renames every tensor to our ``paper`` model (``facecycle`` encoder, 2048-d
F_s / F_f / F_p, 2048->2048->512 heads, reference decoder), checks that every
tensor is used and every shape matches, and writes ``config.yaml`` + ``last.pt``
(+ ``import.json``) so ``evaluate``, ``figures`` and ``load_model`` read it
like any run::

    python -m pclkit import-reference PCL_CKPT.pth --out runs/pcl_reference
    python -m pclkit import-reference best.pth --out runs/pcl_reference_enc --encoder-only

Key map (reference names after dropping ``module.``; suffixes such as
``weight``, ``bias``, ``running_mean``, ``g.weight`` carry over unchanged)::

    reference (ExpPoseModel)          pclkit (PCLModel)            what
    encoder.conv1.0                   encoder.trunk.0              conv 7x7/2, 3 -> 64
    encoder.conv1.2                   encoder.trunk.2              conv 3x3, 64 -> 64
    encoder.layer1.0                  encoder.trunk.4              conv 3x3, 64 -> 64
    encoder.layer1.2.{g,theta,phi}    encoder.trunk.6.{g,theta,phi}  channel self-attention (64)
    encoder.layer1.3                  encoder.trunk.7              conv 3x3, 64 -> 64
    encoder.layer2_1.0                encoder.trunk.9              conv 3x3/2, 64 -> 128
    encoder.layer2_1.2.{g,theta,phi}  encoder.trunk.11.{g,theta,phi} channel self-attention (128)
    encoder.layer2_1.3                encoder.trunk.12             conv 3x3, 128 -> 128
    encoder.resblock1.conv{1,2}       encoder.trunk.14.conv{1,2}   residual block
    encoder.resblock2.conv{1,2}       encoder.trunk.15.conv{1,2}   residual block
    encoder.layer2_2.0                encoder.trunk.16             conv 3x3/2, 128 -> 128
    encoder.layer2_2.2                encoder.trunk.18             conv 3x3, 128 -> 128
    encoder.layer3_1.0                encoder.trunk.20             conv 3x3/2, 128 -> 256
    encoder.layer3_1.2                encoder.trunk.22             conv 3x3, 256 -> 128 (F_s = 128x4x4)
    encoder.layer3_2_exp.{0,2}        encoder.face_branch.{0,2}    F_f branch, 2 convs 3x3
    encoder.layer3_2_pose.{0,2}       encoder.pose_branch.{0,2}    F_p branch, 2 convs 3x3
    exp_fc.{0,2,3}                    face_head.{fc1,fc2,bn}       2048 -> 2048 -> 512, BN1d
    pose_fc.{0,2,3}                   pose_head.{fc1,fc2,bn}       2048 -> 2048 -> 512, BN1d
    decoder.fc                        decoder.fc                   Linear 2048 -> 512
    decoder.model.{2,6,10,14,18,22}   decoder.stages.{same}        convs 3x3 (512->256->...->128->3)
    decoder.model.{3,7,11,15,19}      decoder.stages.{same}        BatchNorm2d

A ``FaceCycleBackbone`` state (``best.pth``) has the encoder names without
``encoder.``; with ``--encoder-only`` its heads and decoder are initialised
randomly (seed 0; listed in ``import.json``) and ``linear_classifier.*`` (the
reference's RAF-DB probe, not part of the model) is dropped. F_s / F_f / F_p
are exact either way.

One difference remains: the reference decoder ends in ``tanh``, ours in a
sigmoid (a choice of pclkit: its targets lie in [0, 1]), so an imported decoder's images are ``sigmoid(z)``
where the reference shows ``tanh(z)`` of the same pre-activation ``z``;
features, projections and ``z`` are the same.

A file that holds pickled objects besides tensors (``argparse.Namespace``,
numpy scalars, ...) is refused by ``weights_only=True``; the error names those
objects and gives a three-line script that re-saves only the tensors
(:func:`resave_script`). Nothing here ever unpickles arbitrary objects.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pclkit.checkpoint import FORMAT, CheckpointError, load_state_strict, save_checkpoint
from pclkit.features import file_sha256

__all__ = [
    "KEY_MAP",
    "resave_script",
    "ReferenceImportError",
    "ImportSummary",
    "reference_to_pclkit_key",
    "convert_reference_state",
    "import_reference",
]

#: FaceCycleBackbone module (DreamMr/PCL Models/networks.py) -> module of pclkit's facecycle encoder
ENCODER_MAP: tuple[tuple[str, str], ...] = (
    ("conv1.0", "trunk.0"),
    ("conv1.2", "trunk.2"),
    ("layer1.0", "trunk.4"),
    ("layer1.2", "trunk.6"),
    ("layer1.3", "trunk.7"),
    ("layer2_1.0", "trunk.9"),
    ("layer2_1.2", "trunk.11"),
    ("layer2_1.3", "trunk.12"),
    ("resblock1", "trunk.14"),
    ("resblock2", "trunk.15"),
    ("layer2_2.0", "trunk.16"),
    ("layer2_2.2", "trunk.18"),
    ("layer3_1.0", "trunk.20"),
    ("layer3_1.2", "trunk.22"),
    ("layer3_2_exp.0", "face_branch.0"),
    ("layer3_2_exp.2", "face_branch.2"),
    ("layer3_2_pose.0", "pose_branch.0"),
    ("layer3_2_pose.2", "pose_branch.2"),
)
#: projection heads: nn.Sequential(Linear, ReLU, Linear, BatchNorm1d) -> ProjectionHead(fc1, act, fc2, bn)
HEAD_MAP: tuple[tuple[str, str], ...] = tuple(
    (f"{ref}.{index}", f"{ours}.{name}")
    for ref, ours in (("exp_fc", "face_head"), ("pose_fc", "pose_head"))
    for index, name in ((0, "fc1"), (2, "fc2"), (3, "bn"))
)
#: Generator(d_model=2048): fc, then model = [ReLU, Upsample, conv, BN] x 5 + [ReLU, Upsample, conv, tanh]
DECODER_LAYERS: tuple[int, ...] = (2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22)
DECODER_MAP: tuple[tuple[str, str], ...] = (("decoder.fc", "decoder.fc"),) + tuple(
    (f"decoder.model.{i}", f"decoder.stages.{i}") for i in DECODER_LAYERS
)
#: reference module name (ExpPoseModel, no "module.") -> pclkit module name (PCLModel)
KEY_MAP: dict[str, str] = {
    **{f"encoder.{ref}": f"encoder.{ours}" for ref, ours in ENCODER_MAP},
    **dict(HEAD_MAP),
    **dict(DECODER_MAP),
}
#: pclkit module name -> reference module name
INVERSE_MAP: dict[str, str] = {ours: ref for ref, ours in KEY_MAP.items()}
#: first-level modules of FaceCycleBackbone (a state saved without the "encoder." prefix)
BACKBONE_MODULES = frozenset(ref.split(".")[0] for ref, _ in ENCODER_MAP)
#: keys of the reference's linear probe (linear evaluation's best.pth), not part of the model
PROBE_PREFIX = "linear_classifier."
#: pclkit modules an encoder-only import initialises randomly
HEAD_MODULES = ("face_head", "pose_head", "decoder")
#: what the imported run's config says about its (unavailable) training data
REFERENCE_DATA_ROOT = "<reference: VoxCeleb1 frames of DreamMr/PCL, not on this machine>"
#: seed of the random heads/decoder of an encoder-only import
HEAD_SEED = 0

def resave_script(names: Sequence[str]) -> str:
    """A script that re-saves only the tensors of ``IN.pth`` as ``IN.tensors.pth``, still with ``weights_only=True``.

    It allow-lists exactly the pickled globals ``names`` that the refusal named
    (``torch.serialization.add_safe_globals``, torch >= 2.4) instead of turning
    the safe loader off; run it where the reference code is installed.
    """
    modules = sorted({name.rsplit(".", 1)[0] for name in names if "." in name})
    return "\n".join([
        "import torch  # run where the reference code (DreamMr/PCL) is installed",
        *(f"import {module}" for module in modules),
        f"torch.serialization.add_safe_globals([{', '.join(names)}])  # only the objects named above",
        'ckpt = torch.load("IN.pth", map_location="cpu", weights_only=True)',
        'sd = ckpt.get("state_dict", ckpt); torch.save({k: v for k, v in sd.items() if torch.is_tensor(v)}, "IN.tensors.pth")',
    ]) + "\n"


class ReferenceImportError(CheckpointError):
    """A file is not a PCL reference checkpoint, or its tensors do not fit the ``paper`` model."""


@dataclass
class ImportSummary:
    """What :func:`import_reference` did (also written to ``import.json``)."""

    source: str
    sha256: str
    layout: str
    reference_epoch: int | None
    tensors: int
    parameters: int
    random_init: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "sha256": self.sha256, "layout": self.layout,
            "reference_epoch": self.reference_epoch, "tensors": self.tensors, "parameters": self.parameters,
            "random_init": list(self.random_init), "dropped": list(self.dropped), "filled": list(self.filled),
            "reference_code": "https://github.com/DreamMr/PCL (Models/networks.py: ExpPoseModel)",
            "decoder_note": "reference decoder ends in tanh, pclkit's in a sigmoid (same pre-activation)",
        }


# --------------------------------------------------------------------------- reading


def _unsafe_globals(path: Path, error: Exception) -> list[str]:
    """Names of the pickled globals ``weights_only=True`` refuses in ``path`` (without unpickling them)."""
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # legacy (non-zip) files: fall back on torch's message, which names the first one
        names = []
    if not names:
        names = re.findall(r"GLOBAL ([\w.]+)", str(error))
    return sorted(dict.fromkeys(names))


def read_reference_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)``; pickled objects give an error that names them and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceImportError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        names = _unsafe_globals(path, err)
        if not names:  # not refused objects: a corrupt or foreign file
            raise ReferenceImportError(f"cannot read {path} as a torch checkpoint: {err}") from err
        listed = ", ".join(names)
        raise ReferenceImportError(
            f"{path} holds pickled Python objects besides tensors ({listed}); pclkit reads checkpoints with "
            "torch.load(weights_only=True) and never unpickles them, because unpickling can run code. "
            "Re-save only the tensors where the reference code runs (replace IN.pth):\n\n"
            f"{resave_script(names)}\nthen import IN.tensors.pth."
        ) from err
    except Exception as err:  # truncated, not a torch file, ...
        raise ReferenceImportError(f"cannot read {path} as a torch checkpoint: {err}") from err


def extract_state_dict(payload: Any, where: str) -> tuple[dict[str, Tensor], int | None]:
    """``(state dict, reference epoch or None)`` of a reference checkpoint payload.

    Accepts ``{"state_dict": ..., "epoch": ...}`` (the reference's format) and a
    bare state dict of tensors (e.g. re-saved with :func:`resave_script`).
    """
    if not isinstance(payload, Mapping):
        raise ReferenceImportError(f"{where} holds a {type(payload).__name__}, not a dict of tensors")
    if payload.get("format") == FORMAT or str(payload.get("format", "")).startswith("pclkit-"):
        raise ReferenceImportError(f"{where} is already a pclkit checkpoint ({payload['format']}); use it as it is")
    if "codegeneration" in payload:
        raise ReferenceImportError(
            f"{where} is a FaceCycle checkpoint (key 'codegeneration'; Chang et al., ICCV 2021), not PCL's; "
            "import a checkpoint saved by the PCL code (a dict with 'state_dict')"
        )
    epoch = payload.get("epoch")
    epoch = int(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) else None
    state = payload.get("state_dict", payload)
    if not isinstance(state, Mapping) or not state:
        raise ReferenceImportError(f"{where}: 'state_dict' is empty or not a dict")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    if not_tensors:
        top = ", ".join(map(str, list(payload)[:10]))
        raise ReferenceImportError(
            f"{where} is not a PCL reference checkpoint: expected {{'state_dict': {{name: tensor}}, 'epoch': int}} "
            f"or a dict of tensors; entries that are not tensors: {not_tensors[:10]} (top-level keys: {top})"
        )
    return {str(k): v for k, v in state.items()}, epoch


def canonical_names(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Reference names without ``module.`` and with ``encoder.`` on backbone keys; and the layout.

    Layout ``"pretraining"`` (ExpPoseModel: encoder, heads, decoder) or
    ``"encoder"`` (a FaceCycleBackbone state, e.g. linear evaluation's ``best.pth``).
    """
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if name.split(".")[0] in BACKBONE_MODULES:
            name = f"encoder.{name}"
        renamed[name] = value
    has_heads = any(name.startswith(("exp_fc.", "pose_fc.", "decoder.")) for name in renamed)
    return renamed, ("pretraining" if has_heads else "encoder")


# --------------------------------------------------------------------------- renaming and checks


def reference_to_pclkit_key(name: str) -> str | None:
    """pclkit name of a reference tensor name (``encoder.layer1.2.g.weight`` -> ``encoder.trunk.6.g.weight``).

    The longest mapped module prefix wins; None when no prefix is mapped.
    """
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        target = KEY_MAP.get(".".join(parts[:cut]))
        if target is not None:
            return ".".join([target, *parts[cut:]])
    return None


def pclkit_to_reference_key(name: str) -> str | None:
    """Inverse of :func:`reference_to_pclkit_key` (for error messages)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        source = INVERSE_MAP.get(".".join(parts[:cut]))
        if source is not None:
            return ".".join([source, *parts[cut:]])
    return None


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", and {len(names) - limit} more" if len(names) > limit else "")


def _module_of(name: str) -> str:
    """Top-level reference module of a tensor name: ``exp_fc``, ``decoder``, ``encoder.layer1``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "encoder" else parts[0]


def _missing_listing(missing_reference_names: list[str], expected_reference_names: list[str]) -> str:
    """Whole modules as ``exp_fc.* (all 8 tensors)``, single tensors by name (BN counters aside)."""
    missing = set(missing_reference_names)
    whole, single = [], []
    for module in dict.fromkeys(_module_of(n) for n in sorted(missing)):
        members = [n for n in expected_reference_names
                   if _module_of(n) == module and not n.endswith("num_batches_tracked")]
        if all(n in missing for n in members):
            whole.append(f"{module}.* (all {len(members)} tensors)")
        else:
            single += [n for n in members if n in missing]
    return _listing(whole + single)


def _rename(state: Mapping[str, Tensor], encoder_only: bool) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """``(pclkit-named tensors, dropped probe keys, unmapped keys)``."""
    renamed: dict[str, Tensor] = {}
    dropped: list[str] = []
    unmapped: list[str] = []
    for name, value in state.items():
        if encoder_only and name.startswith(PROBE_PREFIX):
            dropped.append(name)
            continue
        target = reference_to_pclkit_key(name)
        if target is None:
            unmapped.append(name)
        else:
            renamed[target] = value
    return renamed, dropped, unmapped


def _shape_errors(renamed: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> list[str]:
    return [
        f"{pclkit_to_reference_key(k)} has shape {tuple(v.shape)}, the paper model needs {tuple(expected[k].shape)}"
        for k, v in renamed.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]


def _missing(
    renamed: Mapping[str, Tensor], expected: Mapping[str, Tensor], encoder_only: bool
) -> tuple[list[str], list[str], list[str]]:
    """``(missing, filled BN counters, randomly initialised)`` pclkit keys."""
    missing, filled, random_init = [], [], []
    for key in expected:
        if key in renamed:
            continue
        if encoder_only and key.split(".")[0] in HEAD_MODULES:
            random_init.append(key)
        elif key.endswith("num_batches_tracked"):  # not saved by old torch; eval never reads it
            filled.append(key)
        else:
            missing.append(key)
    return missing, filled, random_init


def convert_reference_state(
    state: Mapping[str, Tensor], model: nn.Module, encoder_only: bool = False, where: str = "checkpoint"
) -> tuple[dict[str, Tensor], dict[str, list[str]]]:
    """Reference tensors (canonical names, :func:`canonical_names`) -> a complete state of ``model``.

    Every reference tensor must map to a model tensor of the same shape and
    every model tensor must be given, except BatchNorm's ``num_batches_tracked``
    (filled with 0) and, with ``encoder_only``, the heads and decoder (kept from
    ``model``'s initialisation). Returns ``(state, notes)`` with ``notes`` =
    ``{"dropped", "filled", "random_init"}``; anything else is a
    :class:`ReferenceImportError` naming each key.
    """
    expected = model.state_dict()
    renamed, dropped, unmapped = _rename(state, encoder_only)
    unexpected = unmapped + [pclkit_to_reference_key(k) or k for k in renamed if k not in expected]
    missing, filled, random_init = _missing(renamed, expected, encoder_only)
    problems = []
    if unexpected:
        hint = (" (the reference's linear probe: add --encoder-only to drop it)"
                if any(k.startswith(PROBE_PREFIX) for k in unexpected) else "")
        problems.append(f"tensors the paper model has no place for{hint}: {_listing(sorted(unexpected))}")
    if missing:
        names = [pclkit_to_reference_key(k) or k for k in missing]
        heads_only = all(k.split(".")[0] in HEAD_MODULES for k in missing)
        hint = (" (this looks like an encoder-only checkpoint: add --encoder-only to import it with random "
                "projection heads and decoder; F_s/F_f/F_p stay exact)" if heads_only else "")
        listing = _missing_listing(names, [pclkit_to_reference_key(k) or k for k in expected])
        problems.append(f"tensors the paper model needs but the file lacks{hint}: {listing}")
    problems += _shape_errors(renamed, expected)
    if problems:
        raise ReferenceImportError(f"{where} does not fit the PCL reference model (facecycle, paper preset): "
                                   + "; ".join(problems))
    full = {key: value.detach().clone() for key, value in expected.items()}
    for key, value in renamed.items():
        full[key] = value.detach().to(expected[key].dtype)
    for key in filled:
        full[key] = torch.zeros_like(expected[key])
    heads = sorted({k.split(".")[0] for k in random_init}, key=HEAD_MODULES.index)
    return full, {"dropped": sorted(dropped), "filled": filled, "random_init": heads}


# --------------------------------------------------------------------------- writing the run


def reference_config() -> Any:
    """The ``paper`` preset's config for an imported model (method pcl, data root a placeholder)."""
    from pclkit.config import resolve_config
    from pclkit.methods.pcl import PCL

    return resolve_config("paper", {"method": PCL.name, "data.root": REFERENCE_DATA_ROOT})


def _check_out(out_dir: Path, force: bool) -> None:
    if (out_dir / "last.pt").exists() and not force:
        raise FileExistsError(f"{out_dir} already holds a checkpoint (last.pt); choose another --out or pass --force")


def import_reference(
    path: str | Path, out_dir: str | Path, encoder_only: bool = False, force: bool = False
) -> ImportSummary:
    """Convert a PCL reference checkpoint into ``out_dir/{config.yaml,last.pt,import.json}``.

    Returns an :class:`ImportSummary`. Raises :class:`ReferenceImportError`
    for a file that is not a PCL reference checkpoint or does not fit, and
    ``FileExistsError`` when ``out_dir`` holds a run (unless ``force``).
    """
    from pclkit.checkpoint import model_from_config
    from pclkit.config import config_to_dict, save_config
    from pclkit.models import build_model, count_parameters

    path, out_dir = Path(path), Path(out_dir)
    _check_out(out_dir, force)
    state, epoch = extract_state_dict(read_reference_file(path), str(path))
    canonical, layout = canonical_names(state)
    config = reference_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(HEAD_SEED)
        model = build_model(config.model)
    converted, notes = convert_reference_state(canonical, model, encoder_only=encoder_only, where=str(path))
    load_state_strict(model, converted, what=f"imported model from {path}")
    summary = ImportSummary(
        source=str(path), sha256=file_sha256(path), layout=layout,
        reference_epoch=epoch, tensors=len(state) - len(notes["dropped"]),
        parameters=count_parameters(model), random_init=notes["random_init"], dropped=notes["dropped"],
        filled=notes["filled"],
    )
    payload = {
        "config": config_to_dict(config), "model": converted, "step": 0,
        # the reference saves "epoch": <epochs done> + 1 after pretraining epochs
        "epoch": max(epoch - 1, 0) if (epoch is not None and layout == "pretraining") else 0,
        "imported_from": summary.to_dict(),
    }
    model_from_config(payload["config"], converted, where=str(path))  # the saved run rebuilds as evaluate will
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    save_checkpoint(out_dir / "last.pt", payload)
    (out_dir / "import.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m pclkit import-reference``."""
    parser.add_argument("checkpoint", type=Path, metavar="PCL_CKPT",
                        help="checkpoint of the public PCL code (github.com/DreamMr/PCL), e.g. 6000.pth")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR",
                        help="run folder to write (config.yaml, last.pt, import.json)")
    parser.add_argument("--encoder-only", action="store_true",
                        help="accept a FaceCycleBackbone state (e.g. linear evaluation's best.pth): random heads "
                             "and decoder, the linear probe dropped")
    parser.add_argument("--force", action="store_true", help="overwrite a run already in --out")


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when the file cannot be imported or --out holds a run."""
    try:
        summary = import_reference(args.checkpoint, args.out, encoder_only=args.encoder_only, force=args.force)
    except (ReferenceImportError, CheckpointError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    epoch = "" if summary.reference_epoch is None else f", reference epoch {summary.reference_epoch}"
    print(f"imported {summary.tensors} tensors ({summary.layout} checkpoint{epoch}, "
          f"{summary.parameters / 1e6:.2f} M parameters) into {args.out}/last.pt")
    if summary.random_init:
        print(f"randomly initialised (not in the file): {', '.join(summary.random_init)}")
    if summary.dropped:
        print(f"dropped (the reference's linear probe): {', '.join(summary.dropped)}")
    print(f"next: python -m pclkit evaluate {args.out} --out results/pcl_reference")
    return 0
