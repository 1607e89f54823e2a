"""The method registry and the one place that decides a method's terms, views and steps."""

from __future__ import annotations

import re

import pytest
import torch

from pclkit.config import ConfigError, resolve_config
from pclkit.methods import (
    MAIN_COMPARISON,
    Method,
    ablation_rows,
    get_method,
    label_to_name,
    method_label,
    method_names,
    register,
)
from pclkit.methods.base import encode_in_chunks
from pclkit.models import build_model
from pclkit.objective import PretrainObjective
from pclkit.views import ViewBuilder


def test_an_unknown_method_lists_the_known_ones():
    known = re.escape(", ".join(method_names()))  # every registered method, sorted
    with pytest.raises(ValueError, match=rf"unknown method 'byol'; known methods: {known}$"):
        get_method("byol")
    with pytest.raises(ConfigError, match=rf"unknown method 'byol'; known methods: {known}"):
        resolve_config("smoke", {"method": "byol"})


def test_registry_names_labels_and_main_comparison():
    assert {"pcl", "simclr", "pcfrl"} <= set(method_names()) and method_names() == tuple(sorted(method_names()))
    assert label_to_name("PCFRL") == "pcfrl" and get_method("pcfrl").features == get_method("pcl").features
    assert "pros" in method_names() and label_to_name("ProS") == "pros"
    assert get_method("pros").features == ("F_s",) and not get_method("pros").has_decoder
    assert [method_label(m) for m in MAIN_COMPARISON] == ["SimCLR", "PCL"]
    assert label_to_name("PCL") == "pcl" and label_to_name("pixels (PCA)") is None
    assert method_label("random init") == "random init"  # baselines pass through
    assert get_method("simclr").features == ("F_s",) and not get_method("simclr").has_decoder
    assert get_method("pcl").features == ("F_s", "F_f", "F_p", "F_fp") and get_method("pcl").has_decoder


def test_a_registered_name_cannot_be_taken_twice_and_needs_a_label():
    class Another(Method):
        name = "pcl"
        label = "PCL again"

    with pytest.raises(ValueError, match="already registered"):
        register(Another)

    class Nameless(Method):
        pass

    with pytest.raises(ValueError, match="must set the class attributes name and label"):
        register(Nameless)


@pytest.mark.parametrize("row, terms, parts, unused", [
    ("simclr", ("face",), ("face",), False),
    ("dis", ("dis", "face"), ("face", "recon"), True),
    ("dis_orth", ("dis", "orth", "face"), ("face", "recon"), True),
    ("dis_orth_pose", ("dis", "orth", "pose", "face"), ("face", "pose", "recon"), False),
    ("pcl", ("dis", "orth", "pose", "face"), ("face", "pose", "recon"), False),
])
def test_each_ablation_row_declares_its_terms_views_and_unused_parameters(row, terms, parts, unused):
    config = resolve_config("smoke", ablation_rows()[row])
    method = get_method(config.method)(config)
    assert method.terms() == terms
    assert [step.view_parts for step in method.steps()] == [parts]
    assert method.leaves_parameters_unused() == unused


def test_alternating_schedule_is_three_steps_with_their_own_views():
    config = resolve_config("smoke", {"loss.schedule": "alternating"})
    method = get_method("pcl")(config)
    assert [(s.name, s.view_parts) for s in method.steps()] == [
        ("recon", ("recon",)), ("face", ("face",)), ("pose", ("pose",))]
    assert method.leaves_parameters_unused()


def test_term_scales_weight_the_objective():
    config = resolve_config("smoke", {"loss.orth_weight": 0.25})
    method = get_method("pcl")(config)
    assert method.term_scales({"alpha_pose": 0.5, "alpha_face": 1.5}) == {
        "dis": 1.0, "orth": 0.25, "pose": 0.5, "face": 1.5}
    heavier = get_method("pcl")(resolve_config("smoke", {"loss.dis_weight": 4.0}))
    assert heavier.term_scales({"alpha_pose": 0.5, "alpha_face": 1.5})["dis"] == 4.0
    with pytest.raises(ConfigError, match="dis_weight"):
        resolve_config("smoke", {"loss.dis_weight": 0.0})


def test_the_face_invariance_option_adds_its_term_with_its_weight_and_recon_views():
    config = resolve_config("smoke", {"loss.face_invariance_weight": 0.5, "loss.use_dis": False, "loss.use_orth": False})
    method = get_method("pcl")(config)
    assert method.terms() == ("pose", "face", "inv")
    assert method.steps()[0].view_parts == ("face", "pose", "recon")  # L_inv reads s and ŝ
    assert method.term_scales({})["inv"] == 0.5


def test_the_swap_cycle_option_adds_its_term_with_its_weight():
    method = get_method("pcl")(resolve_config("smoke", {"loss.cycle_weight": 0.3}))
    assert method.terms() == ("dis", "orth", "pose", "face", "cyc")
    assert method.term_scales({})["cyc"] == 0.3
    with pytest.raises(ConfigError, match="cycle_weight"):
        resolve_config("smoke", {"loss.cycle_weight": -1.0})


def test_a_detached_cycle_decoder_sends_l_cyc_to_the_encoder_only():
    config = resolve_config("smoke", {"model.width": 4, "model.image_size": 32, "loss.cycle_weight": 1.0,
                                      "loss.cycle_decoder": "detached"})
    torch.manual_seed(0)
    model, method = build_model(config.model), get_method("pcl")(config)
    generator = torch.Generator().manual_seed(0)
    views = ViewBuilder(config).build(torch.rand(4, 3, 32, 32, generator=generator), generator,
                                      method.steps()[0].view_parts)
    method.compute_terms(model, views, generator)["cyc"].backward()
    assert all(param.grad is None or param.grad.abs().sum() == 0 for param in model.decoder.parameters())
    assert any(param.grad is not None and param.grad.abs().sum() > 0 for param in model.encoder.parameters())


def test_the_predictability_option_adds_its_term_with_its_weight():
    method = get_method("pcl")(resolve_config("smoke", {"loss.predictability_weight": 2.0}))
    assert method.terms() == ("dis", "orth", "pose", "face", "pred")
    assert method.term_scales({})["pred"] == 2.0
    with pytest.raises(ConfigError, match="predictability_ridge"):
        resolve_config("smoke", {"loss.predictability_ridge": 0.0})
    assert method.pred_memory is None  # the batch alone unless loss.predictability_memory > 0
    with pytest.raises(ConfigError, match="predictability_memory"):
        resolve_config("smoke", {"loss.predictability_memory": -1})


def test_the_flip_option_mirrors_the_pose_positives_and_adds_its_term():
    config = resolve_config("smoke", {"loss.flip_weight": 0.5, "loss.flip_odd_dims": 2})
    method = get_method("pcl")(config)
    assert method.terms() == ("dis", "orth", "pose", "face", "flip")
    assert method.term_scales({})["flip"] == 0.5
    assert method.steps()[0].view_parts == ("face", "pose", "recon", "flip")
    views = ViewBuilder(config).build(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0),
                                      method.steps()[0].view_parts)
    torch.testing.assert_close(views.pose_flip, views.pose_a.flip(-1))
    images, spans = views.encoder_input()
    assert spans["pose_flip"] == (len(images) - 4, len(images))
    terms = method.compute_terms(build_model(config.model), views, torch.Generator().manual_seed(0))
    assert terms["flip"].ndim == 0 and torch.isfinite(terms["flip"])
    with pytest.raises(ValueError, match="together with 'pose'"):
        ViewBuilder(config).build(torch.rand(4, 3, 32, 32), torch.Generator(), ("face", "flip"))
    for bad in ({"loss.flip_weight": -1.0}, {"loss.flip_odd_dims": 0},
                {"loss.flip_weight": 1.0, "loss.use_pose": False}):
        with pytest.raises(ConfigError, match="flip"):
            resolve_config("smoke", bad)


def test_the_pose_adversary_option_needs_its_head_and_adds_its_term():
    config = resolve_config("smoke", {"loss.adversary_weight": 0.5, "model.pose_adversary_hidden": 8})
    method = get_method("pcl")(config)
    assert method.terms() == ("dis", "orth", "pose", "face", "adv")
    assert method.term_scales({})["adv"] == 0.5
    model = build_model(config.model)
    assert model.pose_adversary is not None and build_model(resolve_config("smoke").model).pose_adversary is None
    for one_knob in ({"loss.adversary_weight": 0.5}, {"model.pose_adversary_hidden": 8}):
        with pytest.raises(ConfigError, match="L_adv needs both"):
            resolve_config("smoke", one_knob)


@pytest.mark.parametrize("name, options", [
    ("simclr", {}), ("pcl", {}), ("pcfrl", {}), ("pros", {}),
    # this project's options: a narrow pose code, L_inv on F_f, L_cyc
    ("pcl", {"model.pose_dim": 3, "model.decoder_fusion": "concat", "loss.face_invariance_weight": 1.0}),
    ("pcl", {"loss.cycle_weight": 0.5, "loss.dis_terms": "swaps"}),
    ("pcl", {"loss.cycle_weight": 0.5, "loss.cycle_decoder": "detached"}),
    ("pcl", {"loss.adversary_weight": 1.0, "model.pose_adversary_hidden": 8}),
    ("pcl", {"loss.predictability_weight": 2.0}),
    ("pcl", {"loss.predictability_weight": 2.0, "loss.predictability_memory": 2}),
])
def test_the_objective_gives_exactly_the_methods_terms_and_their_weighted_sum(name, options):
    config = resolve_config("smoke", {"method": name, "model.width": 4, "model.image_size": 32,
                                      "views.num_negatives": 2, **options})
    torch.manual_seed(0)
    model = build_model(config.model)
    method = get_method(name)(config)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=generator)
    views = ViewBuilder(config).build(images, generator, method.steps()[0].view_parts)
    weights = {"alpha_pose": 0.7, "alpha_face": 1.3}
    terms = PretrainObjective(model, method)(views, weights, generator)
    # besides the terms and the loss, only diagnostics (diag_*: logged, not optimised)
    assert {name for name in terms if not name.startswith("diag_")} == {*method.terms(), "loss"}
    scales = method.term_scales(weights)
    expected = sum(scales[t] * terms[t] for t in method.terms())
    torch.testing.assert_close(terms["loss"], expected)
    terms["loss"].backward()
    # every trainable parameter is reached by the full objective
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_no_module_outside_methods_names_a_method():
    """Method names and labels appear as string literals only in pclkit/methods/ (docstrings aside)."""
    import ast
    from pathlib import Path

    import pclkit

    root = Path(pclkit.__file__).parent
    names = {*method_names(), *(method_label(m) for m in method_names())}
    hits = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "methods":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        hits += [f"{path.relative_to(root)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings]
    assert not hits, "ask pclkit.methods instead of naming a method:\n" + "\n".join(hits)


def test_a_frozen_cycle_encoder_judges_without_learning_or_updating_statistics():
    config = resolve_config("smoke", {"model.width": 4, "model.image_size": 32, "model.pose_dim": 3,
                                      "model.decoder_fusion": "concat", "loss.cycle_weight": 1.0,
                                      "loss.cycle_encoder": "frozen"})
    model, method = build_model(config.model), get_method("pcl")(config)
    model.train()
    statistics = {name: buffer.clone() for name, buffer in model.named_buffers()}
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    face, pose = method._branches(model, images)
    (face.sum() + pose.sum()).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # the judge passes gradient to the images
    assert all(param.grad is None for param in model.parameters())  # but learns nothing itself
    assert all(torch.equal(buffer, statistics[name]) for name, buffer in model.named_buffers())
    assert model.encoder.training and all(param.requires_grad for param in model.parameters())  # restored
    with pytest.raises(ConfigError, match="cycle_encoder"):
        resolve_config("smoke", {"loss.cycle_encoder": "sometimes"})
    with pytest.raises(ConfigError, match="cycle_decoder"):
        resolve_config("smoke", {"loss.cycle_decoder": "frozen"})


# ---------------------------------------------------------------------------
# ghost batches (runtime.encoder_chunks)


def _smoke_model(*overrides: str) -> torch.nn.Module:
    config = resolve_config("smoke", list(overrides))
    torch.manual_seed(0)
    return build_model(config.model)


def test_encoder_chunks_without_batch_statistics_equal_one_pass_in_the_rows_order():
    model = _smoke_model().eval()
    images = torch.rand(10, 3, 32, 32)
    with torch.no_grad():
        whole, chunked = model(images), encode_in_chunks(model, images, chunks=3)
    assert set(chunked) == set(whole)
    for name in whole:
        assert torch.allclose(chunked[name], whole[name], atol=1e-5), name


def test_encoder_chunks_normalise_each_interleaved_chunk_by_its_own_batch_statistics():
    """Ghost batches: row i of the output is what the model gives for i's chunk (rows i mod k) alone."""
    model = _smoke_model().train()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    images = torch.rand(12, 3, 32, 32)
    chunked = encode_in_chunks(model, images, chunks=3)
    whole = model(images)
    for c in range(3):
        alone = model(images[c::3])
        for name in alone:
            assert torch.allclose(chunked[name][c::3], alone[name], atol=1e-5), (name, c)
    # and it is not the one-pass result: BatchNorm saw other statistics
    assert not torch.allclose(chunked["F_s"], whole["F_s"], atol=1e-4)
    # gradients reach every chunk's rows
    images.requires_grad_(True)
    encode_in_chunks(model, images, chunks=3)["F_s"].sum().backward()
    assert images.grad is not None and bool((images.grad.abs().sum((1, 2, 3)) > 0).all())


def test_encoder_chunks_must_be_positive():
    with pytest.raises(ConfigError, match="encoder_chunks"):
        resolve_config("smoke", ["runtime.encoder_chunks=0"])
