"""``import-reference``: PCL reference checkpoints (github.com/DreamMr/PCL) as pclkit runs.

The reference state dicts here are built from an independent description of
the reference model (``Models/networks.py``: ``ExpPoseModel`` =
``FaceCycleBackbone`` + ``exp_fc`` / ``pose_fc`` + ``Generator(2048)``), saved
as the reference saves them (``{"epoch", "state_dict"}`` of a DataParallel
model, so every key starts with ``module.``), and the imported model is
compared with a functional forward pass over the raw reference tensors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pclkit import reference_import as ri
from pclkit.checkpoint import load_model, read_model_payload
from pclkit.cli import main
from pclkit.models import build_model
from pclkit.runs import describe_run

# --------------------------------------------------------------------------- the reference's names and shapes


def conv(name: str, cin: int, cout: int, k: int = 3) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (cout, cin, k, k), f"{name}.bias": (cout,)}


def attention(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {**conv(f"{name}.g", c, c, 1), **conv(f"{name}.theta", c, c, 1), **conv(f"{name}.phi", c, c, 1)}


def linear(name: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (cout, cin), f"{name}.bias": (cout,)}


def batchnorm(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
            f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()}


#: FaceCycleBackbone (Models/networks.py)
BACKBONE_SHAPES = {
    **conv("conv1.0", 3, 64, 7), **conv("conv1.2", 64, 64),
    **conv("layer1.0", 64, 64), **attention("layer1.2", 64), **conv("layer1.3", 64, 64),
    **conv("layer2_1.0", 64, 128), **attention("layer2_1.2", 128), **conv("layer2_1.3", 128, 128),
    **conv("resblock1.conv1", 128, 128), **conv("resblock1.conv2", 128, 128),
    **conv("resblock2.conv1", 128, 128), **conv("resblock2.conv2", 128, 128),
    **conv("layer2_2.0", 128, 128), **conv("layer2_2.2", 128, 128),
    **conv("layer3_1.0", 128, 256), **conv("layer3_1.2", 256, 128),
    **conv("layer3_2_exp.0", 128, 128), **conv("layer3_2_exp.2", 128, 128),
    **conv("layer3_2_pose.0", 128, 128), **conv("layer3_2_pose.2", 128, 128),
}
#: Projection of exp_fc / pose_fc: Sequential(Linear(2048, 2048), ReLU, Linear(2048, 512), BatchNorm1d(512))
HEAD_SHAPES = {
    **{k: v for head in ("exp_fc", "pose_fc")
       for k, v in {**linear(f"{head}.0", 2048, 2048), **linear(f"{head}.2", 2048, 512),
                    **batchnorm(f"{head}.3", 512)}.items()},
}
#: Generator(d_model=2048): fc, then (conv, BN) at Sequential positions 2/3, 6/7, ..., 18/19 and conv 22
DECODER_CHANNELS = ((2, 512, 256), (6, 256, 256), (10, 256, 256), (14, 256, 256), (18, 256, 128))
DECODER_SHAPES = {
    **linear("decoder.fc", 2048, 512),
    **{k: v for i, cin, cout in DECODER_CHANNELS
       for k, v in {**conv(f"decoder.model.{i}", cin, cout), **batchnorm(f"decoder.model.{i + 1}", cout)}.items()},
    **conv("decoder.model.22", 128, 3),
}
#: ExpPoseModel
MODEL_SHAPES = {**{f"encoder.{k}": v for k, v in BACKBONE_SHAPES.items()}, **HEAD_SHAPES, **DECODER_SHAPES}


def random_tensor(name: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """He-scaled weights, small non-zero biases, plausible BatchNorm statistics."""
    if name.endswith("num_batches_tracked"):
        return torch.tensor(1234)
    if name.endswith("running_var"):
        return torch.rand(shape, generator=generator) + 0.5
    if len(shape) > 1:
        fan_in = int(torch.tensor(shape[1:]).prod())
        return torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
    return torch.randn(shape, generator=generator) * 0.1 + (1.0 if name.endswith(".3.weight") else 0.0)


def reference_state(shapes: dict[str, tuple[int, ...]], prefix: str = "module.", seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {prefix + name: random_tensor(name, shape, generator) for name, shape in shapes.items()}


# --------------------------------------------------------------------------- the reference forward, functional


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def conv2d(sd: dict, name: str, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    weight = sd[f"{name}.weight"]
    return F.conv2d(x, weight, sd[f"{name}.bias"], stride=stride, padding=weight.shape[-1] // 2)


def self_attention(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    g = F.softmax(conv2d(sd, f"{name}.g", x).view(b, c, -1), dim=1)
    theta = F.softmax(conv2d(sd, f"{name}.theta", x).view(b, c, -1), dim=-1).permute(0, 2, 1)
    phi = conv2d(sd, f"{name}.phi", x).view(b, c, -1)
    return lrelu(x + torch.bmm(torch.bmm(phi, theta), g).view(b, c, h, w))


def residual(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return lrelu(conv2d(sd, f"{name}.conv2", lrelu(conv2d(sd, f"{name}.conv1", x))) + x)


def reference_features(sd: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FaceCycleBackbone.forward over tensors named ``encoder.*``: (out_3, out_3_exp, out_3_pose)."""
    e = "encoder."
    x = lrelu(conv2d(sd, e + "conv1.2", lrelu(conv2d(sd, e + "conv1.0", x, stride=2))))
    x = lrelu(conv2d(sd, e + "layer1.3", self_attention(sd, e + "layer1.2", lrelu(conv2d(sd, e + "layer1.0", x)))))
    x = lrelu(conv2d(sd, e + "layer2_1.0", x, stride=2))
    x = lrelu(conv2d(sd, e + "layer2_1.3", self_attention(sd, e + "layer2_1.2", x)))
    x = residual(sd, e + "resblock2", residual(sd, e + "resblock1", x))
    x = lrelu(conv2d(sd, e + "layer2_2.2", lrelu(conv2d(sd, e + "layer2_2.0", x, stride=2))))
    shared = lrelu(conv2d(sd, e + "layer3_1.2", lrelu(conv2d(sd, e + "layer3_1.0", x, stride=2))))
    face = lrelu(conv2d(sd, e + "layer3_2_exp.2", lrelu(conv2d(sd, e + "layer3_2_exp.0", shared))))
    pose = lrelu(conv2d(sd, e + "layer3_2_pose.2", lrelu(conv2d(sd, e + "layer3_2_pose.0", shared))))
    return shared.flatten(1), face.flatten(1), pose.flatten(1)


def batch_norm(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], training=False, eps=1e-5)


def reference_projection(sd: dict, head: str, x: torch.Tensor) -> torch.Tensor:
    hidden = F.relu(F.linear(x, sd[f"{head}.0.weight"], sd[f"{head}.0.bias"]))
    return batch_norm(sd, f"{head}.3", F.linear(hidden, sd[f"{head}.2.weight"], sd[f"{head}.2.bias"]))


def reference_decoder_preactivation(sd: dict, face: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Generator(normalize(F_f + F_p)) before its final tanh."""
    x = F.linear(F.normalize(face + pose, dim=1), sd["decoder.fc.weight"], sd["decoder.fc.bias"])[:, :, None, None]
    for index in (2, 6, 10, 14, 18, 22):
        x = F.interpolate(F.relu(x), scale_factor=2, mode="bilinear", align_corners=False)
        x = conv2d(sd, f"decoder.model.{index}", x)
        if index != 22:
            x = batch_norm(sd, f"decoder.model.{index + 1}", x)
    return x


def canonical(state: dict) -> dict:
    """Reference names without ``module.`` (and with ``encoder.`` on a bare backbone state)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        out[key if key.split(".")[0] not in ri.BACKBONE_MODULES else f"encoder.{key}"] = value
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory) -> tuple[Path, dict]:
    """A pretraining checkpoint as the reference's main.py saves it (DataParallel keys)."""
    state = reference_state(MODEL_SHAPES)
    path = tmp_path_factory.mktemp("reference") / "50.pth"
    torch.save({"epoch": 51, "state_dict": state}, path)
    return path, canonical(state)


@pytest.fixture(scope="module")
def imported(full_checkpoint, tmp_path_factory) -> tuple[Path, ri.ImportSummary]:
    out = tmp_path_factory.mktemp("runs") / "pcl_reference"
    return out, ri.import_reference(full_checkpoint[0], out)


@pytest.fixture(scope="module")
def paper_model():
    return build_model(ri.reference_config().model)


# --------------------------------------------------------------------------- tests


def test_key_map_covers_the_paper_model_one_to_one(paper_model):
    ours = set(paper_model.state_dict())
    mapped = {ri.reference_to_pclkit_key(name) for name in MODEL_SHAPES}
    assert None not in mapped and mapped == ours and len(mapped) == len(MODEL_SHAPES)
    for name in MODEL_SHAPES:
        assert ri.pclkit_to_reference_key(ri.reference_to_pclkit_key(name)) == name
        assert tuple(paper_model.state_dict()[ri.reference_to_pclkit_key(name)].shape) == MODEL_SHAPES[name]
    assert ri.reference_to_pclkit_key("encoder.layer1.2.theta.weight") == "encoder.trunk.6.theta.weight"
    assert ri.reference_to_pclkit_key("decoder.model.22.bias") == "decoder.stages.22.bias"
    assert ri.reference_to_pclkit_key("exp_fc.3.running_var") == "face_head.bn.running_var"


def test_imported_run_computes_the_reference_features(full_checkpoint, imported):
    _, reference = full_checkpoint
    out, summary = imported
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "last.pt", "import.json"}
    assert summary.layout == "pretraining" and summary.tensors == len(MODEL_SHAPES) and not summary.random_init
    model, config = load_model(out)
    assert config["preset"] == "paper" and config["model"]["encoder"] == "facecycle" and config["method"] == "pcl"
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model.forward_features(images)
        theirs = reference_features(reference, images)
        for mine, expected in zip(ours.values(), theirs):
            assert mine.shape == (3, 2048)
            torch.testing.assert_close(mine, expected, rtol=1e-4, atol=1e-5)
        face, pose = theirs[1], theirs[2]
        torch.testing.assert_close(model.project_face(face), reference_projection(reference, "exp_fc", face),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.project_pose(pose), reference_projection(reference, "pose_fc", pose),
                                   rtol=1e-4, atol=1e-5)
        # same pre-activation; pclkit's decoder ends in a sigmoid where the reference has tanh
        torch.testing.assert_close(model.decode(face, pose),
                                   torch.sigmoid(reference_decoder_preactivation(reference, face, pose)),
                                   rtol=1e-4, atol=1e-5)


def test_imported_run_reads_like_any_run(imported):
    out, _ = imported
    payload = read_model_payload(out)
    assert payload["epoch"] == 50 and payload["step"] == 0  # the reference saved "epoch": epochs done + 1
    assert payload["imported_from"]["layout"] == "pretraining"
    assert "facecycle" in describe_run(out) and "50 epochs" in describe_run(out)
    record = json.loads((out / "import.json").read_text())
    assert record["reference_epoch"] == 51 and len(record["sha256"]) == 64


def test_encoder_only_checkpoint_needs_the_flag_and_keeps_exact_features(tmp_path):
    # linear evaluation's best.pth: FaceCycleBackbone keys (no prefix) + the RAF-DB linear probe
    state = reference_state(BACKBONE_SHAPES, prefix="")
    state.update({"linear_classifier.weight": torch.randn(7, 6272), "linear_classifier.bias": torch.randn(7)})
    path = tmp_path / "best.pth"
    torch.save({"epoch": 12, "state_dict": state}, path)
    with pytest.raises(ri.ReferenceImportError, match="--encoder-only") as err:
        ri.import_reference(path, tmp_path / "refused")
    assert "exp_fc.* (all 8 tensors)" in str(err.value) and not (tmp_path / "refused" / "last.pt").exists()
    summary = ri.import_reference(path, tmp_path / "enc", encoder_only=True)
    assert summary.layout == "encoder" and summary.random_init == ["face_head", "pose_head", "decoder"]
    assert summary.dropped == ["linear_classifier.bias", "linear_classifier.weight"]
    model, _ = load_model(tmp_path / "enc")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for mine, expected in zip(model.forward_features(images).values(), reference_features(canonical(state), images)):
            torch.testing.assert_close(mine, expected, rtol=1e-4, atol=1e-5)
    assert json.loads((tmp_path / "enc" / "import.json").read_text())["random_init"] == summary.random_init


def test_every_tensor_must_fit(paper_model):
    good = canonical(reference_state(MODEL_SHAPES))
    bad_shape = dict(good, **{"encoder.layer3_1.2.weight": torch.zeros(64, 256, 3, 3)})
    with pytest.raises(ri.ReferenceImportError, match=r"encoder\.layer3_1\.2\.weight has shape \(64, 256, 3, 3\), "
                                                      r"the paper model needs \(128, 256, 3, 3\)"):
        ri.convert_reference_state(bad_shape, paper_model)
    extra = dict(good, **{"encoder.layer3_2.0.weight": torch.zeros(1)})
    with pytest.raises(ri.ReferenceImportError, match=r"no place for: encoder\.layer3_2\.0\.weight"):
        ri.convert_reference_state(extra, paper_model)
    missing = {k: v for k, v in good.items() if k != "encoder.resblock2.conv1.bias"}
    with pytest.raises(ri.ReferenceImportError, match=r"lacks: encoder\.resblock2\.conv1\.bias"):
        ri.convert_reference_state(missing, paper_model)
    # old torch saved no num_batches_tracked: filled with 0, nothing else is
    no_counters = {k: v for k, v in good.items() if not k.endswith("num_batches_tracked")}
    state, notes = ri.convert_reference_state(no_counters, paper_model)
    assert len(notes["filled"]) == 7 and int(state["decoder.stages.3.num_batches_tracked"]) == 0


class Trap:
    """Records being unpickled: weights_only loading must never get that far."""

    unpickled: list = []

    def __setstate__(self, state):
        Trap.unpickled.append(state)


def test_pickled_objects_are_named_never_unpickled(tmp_path):
    path = tmp_path / "with_args.pth"
    state = reference_state(BACKBONE_SHAPES, prefix="module.encoder.")
    torch.save({"epoch": 3, "state_dict": state, "args": argparse.Namespace(lr=1e-4), "trap": Trap()}, path)
    with pytest.raises(ri.ReferenceImportError) as err:
        ri.import_reference(path, tmp_path / "out")
    message = str(err.value)
    assert "argparse.Namespace" in message and "Trap" in message and "weights_only=True" in message
    assert ri.resave_script(["argparse.Namespace", f"{__name__}.Trap"]) in message and Trap.unpickled == []


def test_resave_script_output_imports(tmp_path, full_checkpoint):
    """The documented re-save script (run here on a trusted file) gives a file that imports."""
    source = tmp_path / "IN.pth"
    torch.save({"epoch": 51, "state_dict": reference_state(MODEL_SHAPES), "args": argparse.Namespace()}, source)
    script = (
        ri.resave_script(["argparse.Namespace"])
        .replace("IN.pth", str(source))
        .replace("IN.tensors.pth", str(tmp_path / "IN.tensors.pth"))
    )
    exec(compile(script, "resave", "exec"), {})
    summary = ri.import_reference(tmp_path / "IN.tensors.pth", tmp_path / "out")
    assert summary.reference_epoch is None and summary.layout == "pretraining"


def test_other_files_are_refused_clearly(tmp_path):
    cases = {
        "facecycle.pth": ({"codegeneration": {"a": torch.zeros(1)}}, "FaceCycle checkpoint"),
        "list.pth": ([torch.zeros(1)], "not a dict of tensors"),
        "nested.pth": ({"state_dict": {"a": {"b": torch.zeros(1)}}}, "not tensors: \\['a'\\]"),
    }
    for name, (payload, message) in cases.items():
        torch.save(payload, tmp_path / name)
        with pytest.raises(ri.ReferenceImportError, match=message):
            ri.import_reference(tmp_path / name, tmp_path / "out")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ri.ReferenceImportError, match="cannot read"):
        ri.import_reference(tmp_path / "garbage.pth", tmp_path / "out")
    with pytest.raises(ri.ReferenceImportError, match="no checkpoint at"):
        ri.import_reference(tmp_path / "absent.pth", tmp_path / "out")


def test_cli(full_checkpoint, imported, capsys):
    path, _ = full_checkpoint
    out, _ = imported
    assert main(["import-reference", str(path), "--out", str(out)]) == 1
    assert "already holds a checkpoint" in capsys.readouterr().err
    assert main(["import-reference", str(path), "--out", str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    assert f"imported {len(MODEL_SHAPES)} tensors (pretraining checkpoint, reference epoch 51" in printed
