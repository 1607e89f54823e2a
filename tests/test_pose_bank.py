"""Pre-rendered pose changes (views.render3d_bank): the bank, its cache and its use in training."""

from __future__ import annotations

import pytest
import torch

from pclkit.augment import AppearanceAugment, make_pose_change
from pclkit.config import ConfigError, resolve_config
from pclkit.data.synthfaces import PoseBank, SynthFaces, render, render_pose_bank
from pclkit.trainer import Trainer

CHANGE = dict(yaw_range=(-60.0, 60.0), pitch_range=(-20.0, 20.0), roll_range=(-15.0, 15.0), min_yaw_change=20.0)


@pytest.fixture(scope="module")
def faces() -> SynthFaces:
    return SynthFaces("val", n=6, size=32)


def test_the_bank_holds_each_face_rendered_at_new_poses_drawn_by_render3d(faces):
    change = make_pose_change("render3d", **CHANGE)
    bank = render_pose_bank(faces, change, k=3, seed=5)
    assert bank.images.shape == (6, 3, 3, 32, 32) and bank.poses.shape == (6, 3, 3)
    yaw = faces.factors.pose[:, 0].clamp(-60, 60)
    assert ((bank.poses[..., 0] - yaw[:, None]).abs() >= 20.0 - 1e-4).all()  # the yaw really turns
    assert (bank.poses[..., 1].abs() <= 20).all() and (bank.poses[..., 2].abs() <= 15).all()
    # each entry is exactly the face re-rendered at that pose (up to uint8 rounding)
    live = render(faces.factors[[4]].with_pose(bank.poses[4, 2:3]), 32)
    assert (bank.images[4, 2].float() / 255 - live[0]).abs().max() <= 0.5 / 255 + 1e-6
    again = render_pose_bank(faces, change, k=3, seed=5)
    assert torch.equal(again.images, bank.images)  # deterministic
    assert not torch.equal(render_pose_bank(faces, change, k=3, seed=6).poses, bank.poses)


def test_the_bank_is_cached_on_disk_and_a_corrupt_cache_is_rendered_again(tmp_path):
    faces = SynthFaces("val", n=4, size=32, cache_dir=tmp_path)
    change = make_pose_change("render3d", **CHANGE)
    bank = render_pose_bank(faces, change, k=2)
    files = sorted(tmp_path.glob("posebank_*.pt"))
    assert len(files) == 1
    cached = render_pose_bank(faces, change, k=2)
    assert torch.equal(cached.images, bank.images) and torch.equal(cached.poses, bank.poses)
    other = make_pose_change("render3d", **{**CHANGE, "min_yaw_change": 10.0})
    render_pose_bank(faces, other, k=2)
    assert len(list(tmp_path.glob("posebank_*.pt"))) == 2  # keyed by the pose change too
    files[0].write_bytes(b"not a bank")
    with pytest.warns(UserWarning, match="ignoring unreadable"):
        assert torch.equal(render_pose_bank(faces, change, k=2).images, bank.images)


def test_pick_takes_one_entry_per_face_and_rows_follow_the_indices():
    images = torch.arange(4 * 3, dtype=torch.uint8).view(4, 3, 1, 1, 1).expand(4, 3, 3, 2, 2).contiguous()
    poses = torch.arange(4 * 3, dtype=torch.float32).view(4, 3, 1).expand(4, 3, 3).contiguous()
    bank = PoseBank(images, poses)
    rows = bank.rows(torch.tensor([2, 0]))
    assert torch.equal(rows.poses[:, :, 0], torch.tensor([[6.0, 7, 8], [0, 1, 2]]))
    picked, pose = rows.pick(torch.Generator().manual_seed(0))
    assert picked.shape == (2, 3, 2, 2) and picked.dtype == torch.float32
    assert torch.allclose(picked[:, 0, 0, 0] * 255, pose[:, 0])  # image and pose of the same entry
    assert pose[0, 0] in (6.0, 7.0, 8.0) and pose[1, 0] in (0.0, 1.0, 2.0)
    counts = torch.zeros(3)
    for seed in range(60):
        counts[bank.rows(torch.tensor([1])).pick(torch.Generator().manual_seed(seed))[1][0, 0].long() - 3] += 1
    assert (counts > 5).all()  # every entry gets picked
    with pytest.raises(ValueError, match=r"\(N, K, 3\)"):
        PoseBank(images, poses[:, :2])


def test_config_needs_render3d_for_a_bank():
    with pytest.raises(ConfigError, match="render3d_bank"):
        resolve_config("smoke", ["views.render3d_bank=4"])
    with pytest.raises(ConfigError, match="render3d_bank"):
        resolve_config("smoke", ["views.pose_change=render3d", "views.render3d_bank=-1"])


def test_training_with_a_bank_draws_the_pose_change_from_it(tmp_path, monkeypatch):
    overrides = ["data.n=32", "optim.batch_size=16", "model.width=4", "runtime.threads=1", "runtime.progress=false",
                 "views.pose_change=render3d", "views.render3d_bank=2", "views.num_negatives=1",
                 "optim.max_steps=2", "runtime.snapshot_every=0"]
    trainer = Trainer(resolve_config("smoke", overrides), tmp_path / "run")
    bank = trainer.batches.pose_bank
    assert bank.images.shape[:2] == (32, 2)
    batch = next(iter(trainer.batches.epoch(0)))[0]
    index = int(torch.nonzero((trainer.batches.images.float() / 255 == batch.images[0]).all(-1).all(-1).all(-1))[0])
    assert torch.equal(batch.pose_bank.images[0], bank.images[index])  # the batch's rows of the bank
    live_renders = []
    import pclkit.augment.pose as pose_module

    monkeypatch.setattr(pose_module.Render3D, "__call__", lambda *a, **k: live_renders.append(1))
    trainer.fit()  # the steps take ŝ from the bank: nothing is rendered live
    assert not live_renders


def test_pick_count_draws_different_poses_of_each_face():
    images = torch.arange(2 * 4, dtype=torch.uint8).view(2, 4, 1, 1, 1).expand(2, 4, 3, 2, 2).contiguous()
    poses = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1).expand(2, 4, 3).contiguous()
    for seed in range(10):
        picked, pose = PoseBank(images, poses).pick(torch.Generator().manual_seed(seed), count=3)
        assert picked.shape == (2, 3, 3, 2, 2) and pose.shape == (2, 3, 3)
        for row in range(2):
            assert len(set(pose[row, :, 0].tolist())) == 3  # without replacement
            assert set(pose[row, :, 0].tolist()) <= set(range(4 * row, 4 * row + 4))
    with pytest.raises(ValueError, match="asked for 5"):
        PoseBank(images, poses).pick(torch.Generator(), count=5)


@pytest.mark.parametrize("shared", [True, False])
def test_negatives_across_poses_are_different_re_renders_of_the_face(faces, shared):
    from pclkit.views import ViewBuilder

    overrides = ["views.pose_change=render3d", "views.render3d_bank=3", "views.num_negatives=3",
                 "views.negatives_across_poses=true", f"views.share_recon_views={str(shared).lower()}",
                 "views.recon_noise=0.0", "model.image_size=32"]
    config = resolve_config("smoke", overrides)
    change = make_pose_change("render3d", **config.views.pose_change_options)
    bank = render_pose_bank(faces, change, k=3)
    images = faces.tensors()[0].float() / 255
    builder = ViewBuilder(config)
    builder.appearance = AppearanceAugment(jitter_p=0, grayscale_p=0, blur_p=0, gradient_p=0)  # geometry only
    views = builder.build(images, torch.Generator().manual_seed(0), ("pose", "recon"), factors=faces.factors,
                          pose_bank=bank)
    entries = bank.images.float() / 255  # (N, 3, 3, S, S)
    for row in range(len(faces)):
        matches = [int(torch.nonzero((entries[row] - neg).abs().amax(dim=(1, 2, 3)) < 1e-4)[0]) for neg in views.pose_neg[row]]
        assert sorted(matches) == [0, 1, 2]  # each of the three poses once
        assert torch.equal(views.target_hat[row], views.pose_neg[row, 0])  # ŝ is the first negative
    with pytest.raises(ValueError, match="pass pose_bank="):
        builder.build(images, torch.Generator(), ("pose", "recon"), factors=faces.factors)
    with pytest.raises(ConfigError, match="render3d_bank >= 3"):
        resolve_config("smoke", ["views.pose_change=render3d", "views.render3d_bank=2", "views.num_negatives=3",
                                 "views.negatives_across_poses=true"])


def test_methods_without_a_pose_change_get_no_bank(tmp_path):
    overrides = ["data.n=32", "optim.batch_size=16", "model.width=4", "runtime.threads=1", "runtime.progress=false",
                 "views.pose_change=render3d", "views.render3d_bank=2", "method=simclr"]
    plain = Trainer(resolve_config("smoke", overrides), tmp_path / "plain")
    assert plain.batches.pose_bank is None  # SimCLR's face views come from s alone: nothing to pre-render
    across = Trainer(resolve_config("smoke", [*overrides, "views.face_across_pose=true"]), tmp_path / "across")
    assert across.batches.pose_bank is not None  # the second face view is cut from ŝ


@pytest.mark.parametrize("shared", [True, False])
def test_negative_change_axes_keeps_s_hat_by_the_pose_change_and_draws_the_others_one_axis_at_a_time(faces, shared,
                                                                                                 tmp_path):
    from pclkit.trainer import build_pose_bank
    from pclkit.views import ViewBuilder

    overrides = ["views.pose_change=render3d", "views.render3d_bank=2", "views.num_negatives=3",
                 "views.negatives_across_poses=true", "views.negative_change_axes=one",
                 f"views.share_recon_views={str(shared).lower()}", "views.recon_noise=0.0", "model.image_size=32",
                 *[f"views.pose_change_options.{key}={list(value) if isinstance(value, tuple) else value}"
                   for key, value in CHANGE.items()]]
    config = resolve_config("smoke", overrides)
    bank = build_pose_bank(config, faces)
    assert bank.k == 4  # two by the pose change's rule, two by the one-axis rule
    current = faces.factors.pose
    moved = (bank.poses - current[:, None]).abs() > 1e-3  # (N, 4, 3)
    yaw = current[:, 0].clamp(-60, 60)
    assert ((bank.poses[:, :2, 0] - yaw[:, None]).abs() >= 20.0 - 1e-4).all()  # ŝ candidates: the yaw turns
    assert (moved[:, 2:].sum(-1) == 1).all()  # the other negatives: exactly one axis moves
    with pytest.raises(ValueError, match="columns"):
        bank.pick(torch.Generator(), columns=(2, 5))
    images = faces.tensors()[0].float() / 255
    builder = ViewBuilder(config)
    builder.appearance = AppearanceAugment(jitter_p=0, grayscale_p=0, blur_p=0, gradient_p=0)  # geometry only
    entries = bank.images.float() / 255  # (N, 4, 3, S, S)
    for seed in range(3):
        views = builder.build(images, torch.Generator().manual_seed(seed), ("pose", "recon"), factors=faces.factors,
                              pose_bank=bank)
        for row in range(len(faces)):
            matches = [int(torch.nonzero((entries[row] - neg).abs().amax(dim=(1, 2, 3)) < 1e-4)[0])
                       for neg in views.pose_neg[row]]
            assert matches[0] in (0, 1) and sorted(matches[1:]) == [2, 3]
            assert torch.equal(views.target_hat[row], views.pose_neg[row, 0])  # ŝ is the first negative
    with pytest.raises(ConfigError, match="negatives_across_poses: true"):
        resolve_config("smoke", ["views.pose_change=render3d", "views.render3d_bank=2", "views.num_negatives=2",
                                 "views.negative_change_axes=one"])
    with pytest.raises(ConfigError, match="negative_change_axes must be"):
        resolve_config("smoke", ["views.negative_change_axes=two"])


def test_only_a_method_with_pose_negatives_gets_the_second_rule(faces, tmp_path, monkeypatch):
    """views.negative_change_axes renders a second bank for the pose loss; SimCLR has none, so it
    gets (and draws ŝ from) the first rule's re-renders only."""
    from pclkit.methods import get_method
    from pclkit.trainer import build_pose_bank, pose_bank_use
    from pclkit.views import ViewBuilder

    overrides = ["views.pose_change=render3d", "views.render3d_bank=2", "views.num_negatives=2",
                 "views.negatives_across_poses=true", "views.negative_change_axes=one", "views.face_across_pose=true",
                 "model.image_size=32", "views.crop_scale=[1.0, 1.0]"]
    pcl, simclr = (resolve_config("smoke", [*overrides, f"method={name}"]) for name in ("pcl", "simclr"))
    assert pose_bank_use(get_method("pcl")(pcl)) == (True, True)
    assert pose_bank_use(get_method("simclr")(simclr)) == (True, False)
    joined = build_pose_bank(pcl, faces)
    single = build_pose_bank(simclr, faces)  # the method decides: SimCLR has no pose negatives
    assert (joined.k, joined.negatives_from, joined.hat_columns) == (4, 2, (0, 2))
    assert (single.k, single.negatives_from, single.hat_columns) == (2, None, (0, 2))
    assert torch.equal(single.images, joined.images[:, :2])  # the same first rule
    assert joined.rows(torch.tensor([1, 0])).negatives_from == 2
    # a step without the pose loss draws ŝ from the first rule's columns of a joined bank
    asked = []
    pick = PoseBank.pick

    def recording_pick(bank, generator, count=None, columns=None):
        asked.append(columns)
        return pick(bank, generator, count=count, columns=columns)

    monkeypatch.setattr(PoseBank, "pick", recording_pick)
    images = faces.tensors()[0].float() / 255
    ViewBuilder(pcl).build(images, torch.Generator().manual_seed(0), ("face",), factors=faces.factors, pose_bank=joined)
    assert asked == [(0, 2)]
    ViewBuilder(pcl).build(images, torch.Generator().manual_seed(0), ("pose", "recon"), factors=faces.factors,
                           pose_bank=joined)
    assert asked[1:] == [(0, 2), (2, 4)]  # ŝ by the first rule, the other negative by the second
    with pytest.raises(ValueError, match="joins two rules"):
        ViewBuilder(pcl).build(images, torch.Generator(), ("pose", "recon"), factors=faces.factors, pose_bank=single)
    with pytest.raises(ValueError, match="negatives_from"):
        PoseBank(joined.images, joined.poses, negatives_from=4)
    trainer = Trainer(resolve_config("smoke", [*overrides, "method=simclr", "data.n=32", "optim.batch_size=16",
                                               "model.width=4", "runtime.threads=1", "runtime.progress=false"]),
                      tmp_path / "simclr")
    assert trainer.batches.pose_bank.negatives_from is None and trainer.batches.pose_bank.k == 2
