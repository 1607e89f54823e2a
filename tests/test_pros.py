"""ProS (Di et al., WACV 2024) as a DINO-style reconstruction: prototype loss, EMA teacher,
centring, multi-crop views, the ViT around torchvision, and a smoke training run."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import pytest
import torch

from pclkit.checkpoint import load_checkpoint, load_model
from pclkit.config import resolve_config
from pclkit.features import extract_features
from pclkit.losses import prototype_matching, teacher_targets, updated_center
from pclkit.methods import get_method
from pclkit.methods.pros import ProSSettings, ema_momentum_at
from pclkit.models import build_model
from pclkit.models.vit import (
    StudentTeacherViT,
    interpolate_position_embedding,
    resampled_class_token,
    vit_backbone,
    vit_class_token,
)
from pclkit.optim import build_optimizer
from pclkit.trainer import Trainer
from pclkit.views import MultiCrop, ViewBuilder

#: a tiny, fast ProS run: 32 SynthFaces at 32 px, batch 16, one thread
TINY = ["data.n=32", "optim.batch_size=16", "runtime.threads=1", "runtime.progress=false"]


def tiny(*overrides: str):
    return resolve_config("pros_smoke", [*TINY, *overrides])


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def small_model(num_prototypes: int = 16, head_batch_norm: bool = False) -> StudentTeacherViT:
    torch.manual_seed(0)
    return StudentTeacherViT(image_size=32, patch_size=8, hidden_dim=24, depth=2, heads=2, mlp_dim=48,
                             head_hidden_dim=32, bottleneck_dim=8, num_prototypes=num_prototypes,
                             head_batch_norm=head_batch_norm)


# ---------------------------------------------------------------------------
# the prototype matching loss


def naive_prototype_loss(student, teacher, center, tau_s, tau_t):
    """Mean over (teacher view v, student view w != v) pairs and images of -sum_k P_t log P_s, by loops."""
    total, pairs = 0.0, 0
    n_teacher, batch, k = teacher.shape
    for v in range(n_teacher):
        for w in range(student.shape[0]):
            if v == w:
                continue
            pair = 0.0
            for b in range(batch):
                exp_t = [math.exp((teacher[v, b, j].item() - center[j].item()) / tau_t) for j in range(k)]
                exp_s = [math.exp(student[w, b, j].item() / tau_s) for j in range(k)]
                p_t = [e / sum(exp_t) for e in exp_t]
                log_p_s = [math.log(e / sum(exp_s)) for e in exp_s]
                pair += -sum(p * q for p, q in zip(p_t, log_p_s))
            total += pair / batch
            pairs += 1
    return total / pairs


def test_prototype_loss_equals_the_naive_per_pair_formula():
    generator = torch.Generator().manual_seed(0)
    student = torch.rand(5, 3, 7, generator=generator) * 2 - 1  # 2 global + 3 local views, B = 3, K = 7
    teacher = torch.rand(2, 3, 7, generator=generator) * 2 - 1
    center = torch.rand(7, generator=generator) * 0.2
    got = prototype_matching(student, teacher, center, student_temperature=0.1, teacher_temperature=0.04)
    assert got.item() == pytest.approx(naive_prototype_loss(student, teacher, center, 0.1, 0.04), rel=1e-5)
    # the same-view pairs are left out: a student equal to the teacher on its own view changes nothing there
    only_globals = prototype_matching(student[:2], teacher, center, 0.1, 0.04)
    assert only_globals.item() == pytest.approx(naive_prototype_loss(student[:2], teacher, center, 0.1, 0.04), rel=1e-5)


def test_prototype_loss_gradient_reaches_the_student_only_and_a_uniform_student_gives_log_k():
    student = torch.zeros(4, 2, 9, requires_grad=True)
    teacher = torch.randn(2, 2, 9, requires_grad=True)
    loss = prototype_matching(student, teacher, torch.zeros(9))
    assert loss.item() == pytest.approx(math.log(9), rel=1e-6)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None  # the targets are detached
    with pytest.raises(ValueError, match="at least one pair"):
        prototype_matching(torch.zeros(1, 2, 9), torch.zeros(1, 2, 9), torch.zeros(9))
    with pytest.raises(ValueError, match="V_s >= 2"):
        prototype_matching(torch.zeros(1, 2, 9), torch.zeros(2, 2, 9), torch.zeros(9))


def test_teacher_targets_are_centred_and_sharpened():
    scores = torch.tensor([[0.5, 0.3, 0.1]])
    center = torch.tensor([0.2, 0.0, 0.0])
    targets = teacher_targets(scores, center, 0.04)
    torch.testing.assert_close(targets, torch.softmax((scores - center) / 0.04, dim=-1))
    # a lower temperature sharpens: the largest centred score takes more mass
    assert teacher_targets(scores, center, 0.01)[0, 1] > targets[0, 1] > teacher_targets(scores, center, 0.5)[0, 1]


def test_center_update_is_an_ema_of_the_batch_mean():
    center, mean = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(updated_center(center, mean, 0.9), torch.tensor([0.9, -0.8]))
    torch.testing.assert_close(updated_center(center, mean, 0.0), mean)
    with pytest.raises(ValueError, match="momentum"):
        updated_center(center, mean, 1.5)


# ---------------------------------------------------------------------------
# the model: torchvision's ViT, prototypes, the EMA teacher


def test_the_backbone_is_torchvisions_vit_and_other_sides_resample_its_position_embeddings():
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    vit = vit_backbone(32, 8, hidden_dim=24, depth=2, heads=2, mlp_dim=48).eval()
    assert isinstance(vit, VisionTransformer)
    images = torch.rand(3, 3, 32, 32)
    # at the model side the resampling path is exactly torchvision's forward
    torch.testing.assert_close(resampled_class_token(vit, images), vit(images))
    torch.testing.assert_close(vit_class_token(vit, images), vit(images))
    # a 16 px crop: a 2x2 token grid with interpolated position embeddings
    assert vit_class_token(vit, torch.rand(5, 3, 16, 16)).shape == (5, 24)
    with pytest.raises(ValueError, match="multiple of the patch"):
        vit_class_token(vit, torch.rand(2, 3, 12, 12))
    pos = vit.encoder.pos_embedding
    assert interpolate_position_embedding(pos, 4) is pos
    resampled = interpolate_position_embedding(pos, 2)
    assert resampled.shape == (1, 1 + 4, 24)
    torch.testing.assert_close(resampled[:, 0], pos[:, 0])  # the class token's embedding is kept
    constant = torch.ones(1, 17, 3)
    torch.testing.assert_close(interpolate_position_embedding(constant, 6), torch.ones(1, 37, 3))


def test_prototype_scores_are_cosines_and_features_come_from_the_teacher():
    model = small_model().eval()
    images = torch.rand(4, 3, 32, 32)
    scores = model.student_scores(images)
    assert scores.shape == (4, 16) and scores.abs().max() <= 1.0 + 1e-6
    # the teacher starts as a copy of the student
    torch.testing.assert_close(model.teacher_scores(images), scores)
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.1)
    features = model.forward_features(images)
    assert set(features) == {"F_s"} == set(model.feature_dims) and features["F_s"].shape == (4, 24)
    torch.testing.assert_close(features["F_s"], vit_class_token(model.teacher.backbone, images))
    assert not torch.allclose(features["F_s"], vit_class_token(model.student.backbone, images))
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        model.forward_features(torch.rand(2, 3, 16, 16))


def test_ema_update_moves_the_teacher_toward_the_student_by_exactly_the_momentum():
    model = small_model(head_batch_norm=True)
    with torch.no_grad():
        for p in model.student.parameters():
            p.normal_()
    model.student(torch.rand(4, 3, 32, 32))  # train mode: the student's BatchNorm statistics move
    before = {name: p.clone() for name, p in model.teacher.named_parameters()}
    student = dict(model.student.named_parameters())
    model.update_teacher(0.7)
    for name, p in model.teacher.named_parameters():
        torch.testing.assert_close(p, 0.7 * before[name] + 0.3 * student[name])
    # buffers (the head's BatchNorm running statistics) are copied from the student
    student_buffers = dict(model.student.named_buffers())
    assert student_buffers and all(torch.equal(b, student_buffers[n]) for n, b in model.teacher.named_buffers())
    model.update_teacher(0.0)  # m = 0: the teacher becomes the student
    for name, p in model.teacher.named_parameters():
        torch.testing.assert_close(p, student[name])


def test_momentum_schedule_rises_from_the_base_to_one_on_a_cosine():
    assert ema_momentum_at(0, 100, 0.99) == pytest.approx(0.99)
    assert ema_momentum_at(50, 100, 0.99) == pytest.approx(0.995)
    assert ema_momentum_at(100, 100, 0.99) == pytest.approx(1.0)
    values = [ema_momentum_at(s, 100, 0.99) for s in range(101)]
    assert values == sorted(values)


def test_the_method_applies_the_scheduled_momentum_after_each_optimiser_step():
    config = tiny()
    method = get_method("pros")(config)
    model = small_model()
    with torch.no_grad():
        for p in model.student.parameters():
            p.normal_()
    teacher = [p.clone() for p in model.teacher.parameters()]
    method.after_optimizer_step(model, step=3, total_steps=10)
    m = ema_momentum_at(3, 10, method.settings.ema_momentum)
    for t_new, t_old, s in zip(model.teacher.parameters(), teacher, model.student.parameters()):
        torch.testing.assert_close(t_new, m * t_old + (1 - m) * s)


# ---------------------------------------------------------------------------
# views and the objective


def test_multicrop_views_have_two_sizes_and_shard_by_image():
    config = tiny()
    spec = MultiCrop.from_config(config)
    assert spec == MultiCrop() and spec.side(32) == 16
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    views = ViewBuilder(config).build(images, torch.Generator().manual_seed(1), ("multicrop",))
    assert views.global_views.shape == (6, 2, 3, 32, 32)
    assert views.local_views.shape == (6, spec.local_crops, 3, 16, 16)
    for crops in (views.global_views, views.local_views):
        assert crops.min() >= 0 and crops.max() <= 1
    assert not torch.allclose(views.global_views[:, 0], views.global_views[:, 1])
    assert not torch.allclose(views.local_views[:, 0], views.local_views[:, 1])
    assert views.batch_size == 6
    half = views.shard(1, 2)
    torch.testing.assert_close(half.global_views, views.global_views[3:])
    torch.testing.assert_close(half.local_views, views.local_views[3:])
    # the two sizes never go into the one-pass encoder input
    with pytest.raises(ValueError, match="none of the view groups"):
        views.encoder_input()
    with pytest.raises(ValueError, match="multicrop"):
        ViewBuilder(config).build(images, torch.Generator(), ("crops",))


def test_local_crops_are_crops_of_the_image_at_the_local_side():
    from pclkit.augment import AppearanceAugment

    config = tiny()
    builder = ViewBuilder(config)
    builder.appearance = AppearanceAugment(jitter_p=0, grayscale_p=0, blur_p=0, gradient_p=0)
    images = torch.zeros(4, 3, 32, 32)
    images[:, 0] = 1.0  # pure red: every crop of it is pure red at any size
    views = builder.build(images, torch.Generator().manual_seed(2), ("multicrop",))
    torch.testing.assert_close(views.local_views, torch.zeros(4, 4, 3, 16, 16).index_fill_(2, torch.tensor([0]), 1.0))


def test_the_step_gives_proto_and_diagnostics_and_the_teacher_gets_no_gradient():
    config = tiny()
    method = get_method("pros")(config)
    assert method.terms() == ("proto",) and method.weighted_terms() == ()
    assert [s.view_parts for s in method.steps()] == [("multicrop",)] and not method.leaves_parameters_unused()
    torch.manual_seed(0)
    model = build_model(config.model)
    optimizer = build_optimizer(model, config)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.student.parameters()}
    assert not optimised & {id(p) for p in model.teacher.parameters()}
    views = ViewBuilder(config).build(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0), ("multicrop",))
    terms = method.compute_terms(model, views, None)
    assert set(terms) == {"proto", "diag_teacher_entropy", "diag_batch_entropy"}
    assert 0 <= terms["diag_teacher_entropy"] <= 1 and 0 <= terms["diag_batch_entropy"] <= 1
    terms["proto"].backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())


def test_the_centre_moves_toward_the_teachers_batch_mean_in_training_only():
    config = tiny()
    method = get_method("pros")(config)
    torch.manual_seed(0)
    model = build_model(config.model)
    views = ViewBuilder(config).build(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0), ("multicrop",))
    global_crops = views.global_views.transpose(0, 1).flatten(0, 1)
    expected = (1 - method.settings.center_momentum) * model.teacher_scores(global_crops).mean(0)
    assert torch.equal(model.center, torch.zeros(method.settings.num_prototypes))
    model.eval()
    method.compute_terms(model, views, None)
    assert torch.equal(model.center, torch.zeros_like(model.center))  # evaluation leaves it alone
    model.train()
    method.compute_terms(model, views, None)
    torch.testing.assert_close(model.center, expected)
    assert "center" in model.state_dict()


def test_settings_and_validation_read_config_keys_where_they_exist():
    assert ProSSettings.read() == ProSSettings()
    settings = ProSSettings.read(SimpleNamespace(vit_dim=32, vit_heads=2, image_size=64),
                                 SimpleNamespace(teacher_temperature=0.07, temperature=0.5))
    assert (settings.vit_dim, settings.vit_heads, settings.teacher_temperature) == (32, 2, 0.07)
    assert settings.mlp_dim == 128
    with pytest.raises(ValueError, match="vit_heads"):
        ProSSettings(vit_dim=30, vit_heads=4)
    config = tiny()
    pros = get_method("pros")

    def with_views(**views):  # the config validates through the method when it is built
        return dataclasses.replace(config, views=dataclasses.replace(config.views, **views))

    assert pros.validate(config) is None
    with pytest.raises(ValueError, match="multiple of the ViT patch"):
        with_views(local_size=12)
    assert pros.validate(with_views(local_crops=0, local_size=12)) is None  # no local crops, no constraint
    with pytest.raises(ValueError, match="local_scale"):
        with_views(local_scale=(0.5, 0.2))


# ---------------------------------------------------------------------------
# a training run


def test_a_two_step_run_logs_proto_and_its_checkpoint_gives_teacher_features(tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny("optim.max_steps=2"), run)
    initial_teacher = [p.clone() for p in trainer.model.teacher.parameters()]
    trainer.fit()
    steps = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "step"]
    assert [r["step"] for r in steps] == [1, 2]
    for record in steps:
        assert math.isfinite(record["loss_proto"]) and record["loss"] == pytest.approx(record["loss_proto"])
        assert 0 <= record["diag_teacher_entropy"] <= 1 and 0 <= record["diag_batch_entropy"] <= 1
    # the teacher moved (EMA) but is not the student
    teacher = list(trainer.model.teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(teacher, initial_teacher))
    assert any(not torch.equal(a, b) for a, b in zip(teacher, trainer.model.student.parameters()))
    payload = load_checkpoint(run / "last.pt")
    assert payload["step"] == 2 and payload["config"]["method"] == "pros"
    assert payload["model"]["center"].abs().sum() > 0
    model, config = load_model(run)
    assert isinstance(model, StudentTeacherViT) and not model.training
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value.cpu())
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    features = extract_features(model, images, names=("F_s",), progress=False)
    assert features["F_s"].shape == (5, model.feature_dims["F_s"])
    torch.testing.assert_close(features["F_s"], model.teacher.features(images.float() / 255))
