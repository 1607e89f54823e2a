"""Frozen extraction, feature cache, image metrics, the frozen-encoder assertions and the evaluate pipeline end to end."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from pclkit.checkpoint import model_state, save_checkpoint
from pclkit.config import config_to_dict, resolve_config
from pclkit.evaluate import EvalConfig, checkpoint_labels, evaluate_sources, resolve_pose_limits, supervised_rows
from pclkit.features import PCA, EncoderSource, FeatureCache, ImageSet, PixelSource, cached, extract_features, parse_feature_names
from pclkit.image_metrics import gaussian_window, psnr, ssim
from pclkit.models import build_model
from pclkit.probes import ProbeConfig
from pclkit.protocols import (
    CHANCE,
    PIXELS,
    RANDOM_INIT,
    class_indices,
    frozen_encoders,
    subject_split,
    synthfaces_parts,
    within_identity_split,
)
from pclkit.tables import result_tables, seeds_note

FAST_PROBE = ProbeConfig(l2_grid=(1e-2, 1e-3), ridge_grid=(10.0, 1.0), max_iter=25)


def tiny_model(method: str = "pcl", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cfg = resolve_config("smoke", {"method": method})
    return build_model(cfg.model).eval()


def save_tiny_checkpoint(path, method: str = "pcl") -> None:
    cfg = resolve_config("smoke", {"method": method})
    torch.manual_seed(0)
    model = build_model(cfg.model)
    save_checkpoint(path, {"config": config_to_dict(cfg), "model": model_state(model), "step": 0, "epoch": 0})


# --------------------------------------------------------------------------- image metrics


def test_psnr_of_a_known_error():
    x = torch.zeros(2, 3, 16, 16)
    assert psnr(x, x + 0.1).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # MSE 0.01
    assert psnr(x, x).tolist() == [100.0, 100.0]


def test_ssim_of_flat_images_is_the_luminance_term():
    # constant images: variances and covariance vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01**2
    value = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b))
    assert value.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)


def test_ssim_matches_a_direct_window_computation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 11, 11, generator=g)
    y = (x + 0.2 * torch.rand(1, 1, 11, 11, generator=g)).clamp(0, 1)
    w = gaussian_window().double()
    xd, yd = x[0, 0].double(), y[0, 0].double()
    mx, my = (w * xd).sum(), (w * yd).sum()
    vx, vy = (w * (xd - mx) ** 2).sum(), (w * (yd - my) ** 2).sum()
    cov = (w * (xd - mx) * (yd - my)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, y).item() == pytest.approx(expected.item(), abs=1e-5)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    noisy = ssim(torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g))
    assert (noisy < 0.2).all()


def test_image_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 15))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


# --------------------------------------------------------------------------- extraction


class Recorder(nn.Module):
    """A stand-in encoder with BatchNorm that records the autograd state it runs under."""

    image_size = 16

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.grad_states: list[bool] = []

    def forward_features(self, x):
        self.grad_states.append(torch.is_grad_enabled())
        pooled = self.norm(x.mean(dim=(2, 3)))
        return {"F_s": pooled, "F_f": pooled * 2, "F_p": pooled * 3}


def test_extraction_is_frozen_batched_and_gradient_free():
    model = Recorder()
    images = torch.randint(0, 256, (10, 3, 20, 20), dtype=torch.uint8)  # resized to 16
    with pytest.raises(RuntimeError, match="eval mode"):
        extract_features(model, images, progress=False)
    model.eval()
    model.norm.train()  # one submodule left in training mode is refused too
    with pytest.raises(RuntimeError, match="norm"):
        extract_features(model, images, progress=False)
    model.eval()
    feats = extract_features(model, images, ("F_s", "F_fp"), batch_size=4, progress=False)
    assert model.grad_states == [False, False, False]  # 3 batches, no autograd
    assert feats["F_s"].shape == (10, 3) and feats["F_fp"].shape == (10, 6)
    assert torch.allclose(feats["F_fp"], torch.cat([feats["F_s"] * 2, feats["F_s"] * 3], 1))
    # eval-mode BatchNorm uses running statistics (0, 1): F_s is just the channel mean
    expected = torch.nn.functional.interpolate(images.float() / 255, size=(16, 16), mode="bilinear", antialias=True).mean((2, 3))
    assert torch.allclose(feats["F_s"], expected, atol=1e-3)


def test_bf16_extraction_returns_float32_close_to_fp32():
    model = tiny_model()
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    fp32 = extract_features(model, images, ("F_s",), progress=False)["F_s"]
    bf16 = extract_features(model, images, ("F_s",), bf16=True, progress=False)["F_s"]
    assert bf16.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(fp32, bf16).min() > 0.98


def test_feature_names_parse_aliases_and_reject_unknown():
    assert parse_feature_names("F_s, F_f⊕F_p,F_p") == ("F_s", "F_fp", "F_p")
    with pytest.raises(ValueError, match="unknown feature"):
        parse_feature_names("F_x")


def test_feature_cache_round_trip_and_invalidation(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"F_s": torch.arange(6.0).reshape(3, 2)}

    ident = {"checkpoint_sha256": "abc", "data": "synthfaces", "split": "test", "n": 3}
    first = cached(cache, ident, compute)
    second = cached(cache, ident, compute)
    assert len(calls) == 1 and torch.equal(first["F_s"], second["F_s"])
    cached(cache, {**ident, "n": 4}, compute)  # another dataset identity -> recomputed
    assert len(calls) == 2
    cache.path(ident).write_bytes(b"not a torch file")  # a corrupt entry is a miss, not a crash
    cached(cache, ident, compute)
    assert len(calls) == 3


def test_pca_is_fitted_on_training_rows_only():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(50, 3, generator=g))[0]
    train = torch.randn(40, 3, generator=g) * torch.tensor([5.0, 3.0, 2.0]) @ basis.T + 0.01 * torch.randn(40, 50, generator=g)
    pca = PCA.fit(train, 3)  # N < D: Gram route
    # the recovered subspace is the planted one
    assert torch.linalg.svdvals(basis.T @ pca.components).min() > 0.99
    assert PCA.fit(train, 100).components.shape == (50, 39)  # capped at N - 1


# --------------------------------------------------------------------------- splits


def test_within_identity_and_subject_splits():
    identity = torch.arange(10).repeat(6)
    tr, va, te = within_identity_split(identity, seed=0)
    assert len(set(tr.tolist()) | set(va.tolist()) | set(te.tolist())) == 60
    assert len(tr) + len(va) + len(te) == 60
    for part in (tr, va, te):
        assert set(identity[part].tolist()) == set(range(10))  # every identity in every split
    sub = within_identity_split(identity + 2_000_000, seed=0, max_identities=4)
    assert len(torch.unique(identity[torch.cat(sub)])) == 4
    classes = class_indices(identity + 2_000_000, sub)
    for part in sub:
        assert set(classes[part].tolist()) == {0, 1, 2, 3}  # contiguous classes of the chosen identities
    tr, va, te = subject_split(identity, (6, 2, 2), seed=1)
    sets = [set(identity[p].tolist()) for p in (tr, va, te)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert [len(s) for s in sets] == [6, 2, 2]
    assert not torch.equal(subject_split(identity, (6, 2, 2), seed=2)[2], te)


def test_checkpoint_labels_from_run_folders(tmp_path):
    assert checkpoint_labels(["runs/pcl/last.pt", "runs/simclr/last.pt"], [{}, {}]) == ["pcl", "simclr"]
    assert checkpoint_labels(["a/x.pt", "b/x.pt"], [{}, {}]) == ["x", "x'"]


# --------------------------------------------------------------------------- pipeline


def fake_synthfaces_sets(size: int = 32) -> dict[str, ImageSet]:
    """SynthFaces labels (real factors) with cheap random images: exercises every protocol without rendering."""
    from pclkit.data.synthfaces import SynthConfig

    synth = SynthConfig(identities={"train": 30, "val": 20, "test": 20})
    cfg = EvalConfig(n_train=120, n_val=60, n_test=100, progress=False)
    image_sets = synthfaces_parts(cfg, size, cache=None, synth_config=synth)
    g = torch.Generator().manual_seed(0)
    for image_set in image_sets.values():
        image_set._images = torch.randint(0, 256, (len(image_set), 3, size, size), dtype=torch.uint8, generator=g)
    return image_sets


def test_synthfaces_pipeline_rows_tables_and_no_test_label_selection():
    image_sets = fake_synthfaces_sets()
    cfg = EvalConfig(seeds=2, n_pairs=200, n_swap=4, probe=FAST_PROBE, progress=False, cache_dir=None)
    model = tiny_model()
    sources = [EncoderSource("pcl", model, ("F_s", "F_p", "F_fp"), {"m": 1}, progress=False), PixelSource(PIXELS, 16)]
    rows = evaluate_sources(sources, image_sets, cfg)
    keys = {(r["method"], r["feature"], r["task"]) for r in rows}
    for task in ("expression", "expression_knn", "au", "head_pose", "verification", "verification_cross_pose"):
        assert ("pcl", "F_fp", task) in keys and (PIXELS, "pixels", task) in keys
    assert ("pcl", "F_p", "identity") in keys and ("pcl", "F_s", "identity") not in keys
    assert ("pcl", "decoder", "swap") in keys
    assert {r["seed"] for r in rows} == {0, 1}
    for r in rows:
        assert math.isfinite(r["value"]) or r["metric"].startswith("f1_AU")
    swap = {r["metric"]: r["value"] for r in rows if r["task"] == "swap" and r["seed"] == 0}
    assert 0 < swap["psnr_swap"] < 100 and -1 <= swap["ssim_swap"] <= 1

    # the chance row is computed from labels alone: "all AUs present" has F1 = 2p / (1 + p)
    p = (image_sets["test"].labels["aus"][:, 0] >= 0.4).float().mean().item()
    chance = {(r["task"], r["metric"]): r["value"] for r in rows if r["method"] == CHANCE and r["seed"] == 0}
    assert chance[("au", "f1_AU1")] == pytest.approx(2 * p / (1 + p))
    assert chance[("verification", "accuracy")] == 0.5
    counts = torch.bincount(image_sets["test"].labels["expression"], minlength=7).float() / len(image_sets["test"])
    assert chance[("expression", "accuracy")] in [pytest.approx(c.item()) for c in counts]

    tables = result_tables(rows, "synthfaces")
    assert set(tables) == {"main", "features", "disentanglement", "swap", "au"}
    assert tables["main"].labels == ["pcl", PIXELS, CHANCE]
    assert tables["features"].labels == ["pcl (F_s)", "pcl (F_p)", "pcl (F_f ⊕ F_p)"]
    assert tables["disentanglement"].labels == ["pcl (F_p)"]

    # corrupt every test label the probes are scored on: selected hyperparameters must not move
    corrupted = dict(image_sets)
    test = image_sets["test"]
    g = torch.Generator().manual_seed(1)
    bad = {**test.labels, "expression": torch.randint(0, 7, (len(test),), generator=g),
           "aus": torch.rand(len(test), 8, generator=g), "pose": torch.rand(len(test), 3, generator=g) * 90}
    corrupted["test"] = replace(test, labels=bad)
    rows_bad = evaluate_sources(sources[:1], corrupted, replace(cfg, seeds=1, n_swap=0))
    selected = lambda rs: {(r["feature"], r["task"], r["metric"], r["seed"]): r["value"] for r in rs  # noqa: E731
                           if r["metric"].startswith("selected_") and r["task"] in ("expression", "au", "head_pose")}
    good_sel = selected([r for r in rows if r["method"] == "pcl" and r["seed"] == 0])
    assert good_sel and selected(rows_bad) == good_sel
    acc = lambda rs: [r["value"] for r in rs if r["task"] == "expression" and r["metric"] == "accuracy"]  # noqa: E731
    assert acc(rows_bad) != acc([r for r in rows if r["method"] == "pcl" and r["seed"] == 0])


def test_supervised_reference_rows(tmp_path):
    path = tmp_path / "sup.json"
    path.write_text('{"results": {"expression": {"accuracy": 0.9}, "head_pose": {"mae_mean": 4.0}}, "note": "x"}')
    rows = supervised_rows(path, "synthfaces")
    assert {(r["task"], r["metric"], r["value"]) for r in rows} == {
        ("expression", "accuracy", 0.9),
        ("head_pose", "mae_mean", 4.0),
    }
    assert all(r["method"] == "supervised" for r in rows)
    from pclkit.data.synthfaces import RENDERER_VERSION

    learnability = {"test_expression_accuracy": 0.95, "heldout_identity_accuracy": 0.8, "au_threshold": 0.5,
                    "test_au_f1": {"AU1": 0.9}, "test_au_f1_mean": 0.9,
                    "test_pose_mae_deg": {"yaw": 3.0, "pitch": 2.0, "roll": 1.0}}
    path.write_text(json.dumps(learnability))
    with pytest.warns(UserWarning, match="renderer version"):  # measured on other faces: left out
        assert supervised_rows(path, "synthfaces", au_threshold=0.5) == []
    learnability["renderer_version"] = RENDERER_VERSION
    path.write_text(json.dumps(learnability))
    got = {(r["task"], r["metric"]): r["value"] for r in supervised_rows(path, "synthfaces", au_threshold=0.5)}
    assert got[("expression", "accuracy")] == 0.95 and got[("head_pose", "mae_mean")] == pytest.approx(2.0)
    assert got[("au", "f1_mean")] == 0.9
    # F1 at another intensity threshold is not comparable: left out
    got = {(r["task"], r["metric"]) for r in supervised_rows(path, "synthfaces", au_threshold=0.4)}
    assert ("au", "f1_mean") not in got and ("expression", "accuracy") in got
    assert supervised_rows(path, "cmu") == []
    path.write_text('[{"task": "expression"}]')
    with pytest.raises(ValueError, match="task, metric and value"):
        supervised_rows(path, "synthfaces")


def test_cli_on_cmu_faces_end_to_end(tmp_path, cmu_root):
    from pclkit.cli import main

    save_tiny_checkpoint(tmp_path / "runs" / "pcl" / "last.pt", "pcl")
    save_tiny_checkpoint(tmp_path / "runs" / "simclr" / "last.pt", "simclr")
    out = tmp_path / "results"
    code = main(["evaluate", str(tmp_path / "runs" / "pcl" / "last.pt"), str(tmp_path / "runs" / "simclr"),
                 "--data", "cmu", "--cmu", str(cmu_root), "--out", str(out), "--seeds", "2", "--features", "F_s,F_p",
                 "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    methods = {r["method"] for r in rows}
    assert methods == {"pcl", "simclr", RANDOM_INIT, PIXELS, CHANCE}
    assert {r["feature"] for r in rows if r["method"] == "simclr"} == {"F_s"}  # SimCLR trains only F_s
    assert {r["task"] for r in rows} == {"expression", "expression_knn", "pose", "verification", "identity"}
    # a 4-class probe on a random-weight encoder: accuracies are valid fractions, pose is above chance
    pose = [float(r["value"]) for r in rows if r["method"] == PIXELS and r["task"] == "pose" and r["metric"] == "accuracy"]
    assert len(pose) == 2 and all(0.25 < v <= 1 for v in pose)
    md = (out / "results.md").read_text()
    assert "### cmu: linear evaluation" in md and "### cmu: disentanglement" in md
    assert r"\toprule" in (out / "results.tex").read_text()
    assert list((tmp_path / "cache").glob("*.pt"))  # features cached for the next run


def test_seeds_note_counts_pretraining_runs_and_probe_seeds():
    def rows(method: str, runs: int, probe_seeds: int) -> list[dict]:
        return [dict(data="synthfaces", method=method, feature="F_s", task="expression", metric="accuracy", seed=s, value=0.5)
                for _ in range(runs) for s in range(probe_seeds)]

    three_by_three = rows("PCL", 3, 3) + rows("pixels (PCA)", 1, 3)
    assert "3 pretraining runs × 3 probe seed(s)" in seeds_note(three_by_three, ["PCL"])
    assert seeds_note(rows("PCL", 1, 3), ["PCL"]) == "Mean ± std (sample, ddof = 1) over 3 probe seed(s)."
    assert seeds_note(rows("PCL", 1, 1), ["PCL"]) == "One seed."


def test_pose_limits_come_from_the_runs_unless_requested():
    narrow = {"data": {"pose_limits": [30, 15, 10]}}
    old_run = {"data": {}}  # saved before the key existed: the default poses
    assert resolve_pose_limits(None, [narrow, narrow]) == (30.0, 15.0, 10.0)
    assert resolve_pose_limits(None, [old_run]) == (90.0, 40.0, 30.0)
    with pytest.raises(ValueError, match="different SynthFaces pose limits"):
        resolve_pose_limits(None, [narrow, old_run])
    with pytest.warns(UserWarning, match="evaluated at"):
        assert resolve_pose_limits((90, 40, 30), [narrow]) == (90.0, 40.0, 30.0)


# --------------------------------------------------------------------------- frozen encoders (MoCo's sanity check)


def test_frozen_encoders_freeze_restore_and_pass_an_untouched_model():
    model = tiny_model()
    assert all(p.requires_grad for p in model.parameters())
    with frozen_encoders({"pcl": model}):
        assert not any(p.requires_grad for p in model.parameters())  # nothing a probe could train
        extract_features(model, torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), progress=False)
    assert all(p.requires_grad for p in model.parameters())  # the caller's flags come back


def test_frozen_encoders_refuse_a_changed_or_trainable_encoder():
    model = tiny_model()
    with pytest.raises(RuntimeError, match="must not change the encoder.*'pcl'"):
        with frozen_encoders({"pcl": model}):
            with torch.no_grad():
                next(model.parameters()).add_(1e-3)  # a step of fine-tuning
    with pytest.raises(RuntimeError, match="running_mean"):  # BatchNorm statistics count as encoder state
        with frozen_encoders({"pcl": model}):
            model.train()
            model.forward_features(torch.rand(4, 3, 32, 32))
    model.eval()
    with pytest.raises(RuntimeError, match="became trainable"):
        with frozen_encoders({"pcl": model}):
            model.encoder.requires_grad_(True)


def test_evaluation_fails_when_a_probe_touches_the_encoder():
    class Tampering(EncoderSource):
        """Extracts features, then nudges the encoder as a fine-tuning probe would."""

        def features(self, image_sets, fit_rows=None):
            out = super().features(image_sets, fit_rows)
            with torch.no_grad():
                next(self.model.parameters()).mul_(1.01)
            return out

    cfg = EvalConfig(seeds=1, n_pairs=200, n_swap=0, baselines=False, probe=FAST_PROBE, progress=False, cache_dir=None)
    image_sets = fake_synthfaces_sets()
    honest = EncoderSource("pcl", tiny_model(), ("F_s",), {"m": 1}, progress=False)
    assert evaluate_sources([honest], image_sets, cfg)  # an untouched encoder passes
    with pytest.raises(RuntimeError, match="must not change the encoder"):
        evaluate_sources([Tampering("pcl", tiny_model(), ("F_s",), {"m": 1}, progress=False)], image_sets, cfg)
