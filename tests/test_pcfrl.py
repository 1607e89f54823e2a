"""PCFRL (a reconstruction): calibrated contrastive losses, the mutual-kNN detector, the method plug-in."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from ddp_support import save_ddp_step

from pclkit.config import ConfigError, resolve_config
from pclkit.losses import (
    calibrated_nt_xent,
    calibrated_pose_contrastive,
    multi_positive_info_nce,
    nt_xent,
    pose_contrastive,
)
from pclkit.methods import get_method, method_label, method_names
from pclkit.methods.pcfrl import PCFRL, CalibrationConfig, true_identity_pairs, true_pose_pairs
from pclkit.models import build_model
from pclkit.neighbours import knn_mask, mutual_neighbours, pair_scores
from pclkit.objective import PretrainObjective
from pclkit.trainer import Trainer
from pclkit.views import ViewBuilder

#: a tiny, fast run (as tests/test_train.py): 32 SynthFaces at 32 px, batch 16, one thread
TINY = ["data.n=32", "optim.batch_size=16", "model.width=4", "runtime.threads=1", "runtime.progress=false"]


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------
# naive references: one Python loop over query rows and their candidates


def naive_multi_positive(logits, weight, valid, positives_in_denominator=True):
    rows = []
    for i in range(logits.shape[0]):
        denominator = [logits[i, c] for c in range(logits.shape[1])
                       if valid[i, c] and (positives_in_denominator or weight[i, c] == 0)]
        log_z = torch.logsumexp(torch.stack(denominator), dim=0)
        total = sum(float(weight[i, c]) for c in range(logits.shape[1]))
        terms = [float(weight[i, c]) * (logits[i, c] - log_z) for c in range(logits.shape[1]) if weight[i, c] > 0]
        rows.append(-sum(terms) / total)
    return torch.stack(rows).mean()


def naive_calibrated_nt_xent(z_a, z_b, pair_weight, tau):
    """NT-Xent over 2B views; for view k of image i: the own other view (weight 1), both views of j (w_ij)."""
    batch = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    losses = []
    for k in range(2 * batch):
        i = k % batch
        candidates = [m for m in range(2 * batch) if m != k]
        log_z = torch.logsumexp(torch.stack([z[k] @ z[m] / tau for m in candidates]), dim=0)
        weighted, total = 0.0, 0.0
        for m in candidates:
            j = m % batch
            w = 1.0 if j == i else float(pair_weight[i, j])
            if w > 0:
                weighted = weighted + w * (z[k] @ z[m] / tau - log_z)
                total += w
        losses.append(-weighted / total)
    return torch.stack(losses).mean()


def naive_calibrated_pose(anchor, positive, negatives, pair_weight, tau, positive_in_denominator=True,
                          batch_negatives=True):
    """l(p_i -> q) + l(q_i -> p), candidates: every image's other view (or, without batch
    negatives, only the own and the calibrated ones) + the own M negatives."""
    batch = anchor.shape[0]
    p, q = F.normalize(anchor, dim=1), F.normalize(positive, dim=1)
    n = F.normalize(negatives, dim=2)
    total_loss = 0.0
    for i in range(batch):
        for query, keys in ((p[i], q), (q[i], p)):
            candidates = [(query @ keys[j] / tau, 1.0 if j == i else float(pair_weight[i, j])) for j in range(batch)]
            if not batch_negatives:
                candidates = [(logit, w) for logit, w in candidates if w > 0]
            candidates += [(query @ n[i, m] / tau, 0.0) for m in range(negatives.shape[1])]
            log_z = torch.logsumexp(torch.stack([logit for logit, w in candidates
                                                 if positive_in_denominator or w == 0]), dim=0)
            weight_sum = sum(w for _, w in candidates if w > 0)
            total_loss = total_loss - sum(w * (logit - log_z) for logit, w in candidates if w > 0) / weight_sum
    return total_loss / batch


def random_pair_weight(batch, generator, density=0.4):
    weight = torch.rand(batch, batch, generator=generator)
    keep = torch.rand(batch, batch, generator=generator) < density
    weight = torch.where(keep, weight, torch.zeros_like(weight))
    return weight.fill_diagonal_(0.0)


# ---------------------------------------------------------------------------
# the calibrated losses


@pytest.mark.parametrize("in_denominator", [True, False])
def test_multi_positive_info_nce_matches_a_loop(in_denominator):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 9, generator=g) * 3
    valid = torch.rand(6, 9, generator=g) < 0.8
    weight = torch.rand(6, 9, generator=g) * (torch.rand(6, 9, generator=g) < 0.3)
    valid[:, 0] = True
    weight[:, 0] = 1.0  # every row has a positive ...
    valid[:, 1] = True
    weight[:, 1] = 0.0  # ... and a negative
    weight = torch.where(valid, weight, torch.zeros_like(weight))
    got = multi_positive_info_nce(logits, weight, valid, positives_in_denominator=in_denominator)
    torch.testing.assert_close(got, naive_multi_positive(logits, weight, valid, in_denominator))


def test_multi_positive_info_nce_with_one_positive_is_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 7, generator=g)
    target = torch.tensor([0, 3, 6, 2, 2])
    weight = F.one_hot(target, 7).float()
    torch.testing.assert_close(multi_positive_info_nce(logits, weight), F.cross_entropy(logits, target))


def test_multi_positive_info_nce_rejects_bad_weights():
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="at least one positive"):
        multi_positive_info_nce(logits, torch.tensor([[1.0, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=">= 0"):
        multi_positive_info_nce(logits, torch.tensor([[1.0, -1, 0], [1, 0, 0]]))
    with pytest.raises(ValueError, match="invalid candidate"):
        multi_positive_info_nce(logits, torch.eye(2, 3), valid=~torch.eye(2, 3, dtype=torch.bool))


def test_calibrated_nt_xent_matches_a_loop_over_pairs():
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    weight = random_pair_weight(5, g)
    assert weight.count_nonzero() > 0
    torch.testing.assert_close(calibrated_nt_xent(z_a, z_b, weight, 0.2),
                               naive_calibrated_nt_xent(z_a, z_b, weight, 0.2))


def test_calibrated_nt_xent_without_calibrated_pairs_is_nt_xent():
    g = torch.Generator().manual_seed(3)
    z_a, z_b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    torch.testing.assert_close(calibrated_nt_xent(z_a, z_b, torch.zeros(6, 6), 0.07), nt_xent(z_a, z_b, 0.07))
    # the diagonal of the pair weights is ignored: an image is never its own calibrated positive
    torch.testing.assert_close(calibrated_nt_xent(z_a, z_b, torch.eye(6) * 5, 0.07), nt_xent(z_a, z_b, 0.07))


def test_calibrating_a_true_pair_lowers_the_face_loss_and_the_weights_get_no_gradient():
    # images 0 and 1 are the same person: identical projections; the plain loss treats them as negatives
    g = torch.Generator().manual_seed(4)
    z = torch.randn(4, 8, generator=g)
    z[1] = z[0]
    z_a = z.clone().requires_grad_(True)
    weight = torch.zeros(4, 4)
    weight[0, 1] = weight[1, 0] = 1.0
    weight.requires_grad_(True)
    calibrated = calibrated_nt_xent(z_a, z, weight)
    assert calibrated < nt_xent(z, z)
    calibrated.backward()
    assert z_a.grad is not None and weight.grad is None


@pytest.mark.parametrize("in_denominator", [True, False])
def test_calibrated_pose_loss_matches_a_loop_over_pairs(in_denominator):
    g = torch.Generator().manual_seed(5)
    anchor, positive = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    negatives = torch.randn(4, 3, 6, generator=g)
    for weight in (torch.zeros(4, 4), random_pair_weight(4, g, density=0.6)):
        got = calibrated_pose_contrastive(anchor, positive, negatives, weight, 0.1,
                                          positive_in_denominator=in_denominator)
        torch.testing.assert_close(got, naive_calibrated_pose(anchor, positive, negatives, weight, 0.1, in_denominator))


@pytest.mark.parametrize("in_denominator", [True, False])
def test_calibrated_pose_loss_without_batch_negatives_matches_a_loop_and_pcl(in_denominator):
    g = torch.Generator().manual_seed(8)
    anchor, positive = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    negatives = torch.randn(4, 3, 6, generator=g)
    weight = random_pair_weight(4, g, density=0.6)
    got = calibrated_pose_contrastive(anchor, positive, negatives, weight, 0.1,
                                      positive_in_denominator=in_denominator, batch_negatives=False)
    torch.testing.assert_close(got, naive_calibrated_pose(anchor, positive, negatives, weight, 0.1, in_denominator,
                                                          batch_negatives=False))
    assert not torch.allclose(got, calibrated_pose_contrastive(anchor, positive, negatives, weight, 0.1,
                                                               positive_in_denominator=in_denominator))
    # no calibrated pair: PCL's L_pose exactly, whatever the batch size
    torch.testing.assert_close(
        calibrated_pose_contrastive(anchor, positive, negatives, torch.zeros(4, 4), 0.1, in_denominator,
                                    batch_negatives=False),
        pose_contrastive(anchor, positive, negatives, 0.1, positive_in_denominator=in_denominator))


@pytest.mark.parametrize("in_denominator", [True, False])
def test_calibrated_pose_loss_of_one_image_is_pcl_pose_loss(in_denominator):
    # no other image in the batch: no batch negatives, nothing to calibrate = PCL's L_pose (Eq. 4-5)
    g = torch.Generator().manual_seed(6)
    anchor, positive = torch.randn(1, 6, generator=g), torch.randn(1, 6, generator=g)
    negatives = torch.randn(1, 4, 6, generator=g)
    torch.testing.assert_close(
        calibrated_pose_contrastive(anchor, positive, negatives, torch.zeros(1, 1), 0.07, in_denominator),
        pose_contrastive(anchor, positive, negatives, 0.07, positive_in_denominator=in_denominator))


def test_calibrated_pose_loss_per_image_sums_to_the_mean():
    g = torch.Generator().manual_seed(7)
    anchor, positive = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    negatives = torch.randn(3, 2, 5, generator=g)
    weight = random_pair_weight(3, g, density=1.0)
    per_image = calibrated_pose_contrastive(anchor, positive, negatives, weight, reduction="none")
    assert per_image.shape == (3,)
    torch.testing.assert_close(per_image.mean(), calibrated_pose_contrastive(anchor, positive, negatives, weight))


# ---------------------------------------------------------------------------
# the detector


def planted_clusters(k: int, clusters: int, dim: int = 32, seed: int = 0):
    """``clusters`` groups of k + 1 points around orthogonal directions, a loner near a direction of its
    own, and a hanger-on whose nearest neighbours are all in group 0 (which has closer members); shuffled."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0].T  # orthonormal rows
    points, labels = [], []
    for c in range(clusters):
        points.append(basis[c] + 0.05 * torch.randn(k + 1, dim, generator=g))
        labels += [c] * (k + 1)
    points.append((basis[clusters] + 0.05 * torch.randn(dim, generator=g))[None])
    points.append((0.7 * basis[0] + 0.7 * basis[clusters + 1])[None])
    labels += [-1, -2]
    order = torch.randperm(len(labels), generator=g)
    return torch.cat(points)[order], torch.tensor(labels)[order]


def test_mutual_knn_finds_exactly_the_planted_groups():
    k = 3
    x, labels = planted_clusters(k, clusters=4)
    found = mutual_neighbours(x, k)
    planted = true_identity_pairs(labels) & (labels[:, None] >= 0)
    # the hanger-on's neighbours are all in group 0, but none of them returns the favour
    hanger = int((labels == -2).nonzero())
    assert set(labels[knn_mask(x, k)[hanger]].tolist()) == {0}
    assert torch.equal(found.pairs, planted)
    assert torch.equal(found.pairs, found.pairs.T) and not found.pairs.diagonal().any()
    # a group of k + 1 mutual nearest neighbours is perfectly cohesive
    torch.testing.assert_close(found.cohesion[planted], torch.ones(int(planted.sum())))
    assert (found.cohesion[~planted] == 0).all()


def test_mutual_knn_and_cohesion_match_set_arithmetic():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(12, 3, generator=g)
    k = 4
    unit = F.normalize(x, dim=1)
    sim = unit @ unit.T
    knn = []
    for i in range(12):
        others = sorted((j for j in range(12) if j != i), key=lambda j: -float(sim[i, j]))
        knn.append(set(others[:k]))
    found = mutual_neighbours(x, k)
    for i in range(12):
        assert {j for j in range(12) if knn_mask(x, k)[i, j]} == knn[i]
        for j in range(12):
            mutual = i != j and j in knn[i] and i in knn[j]
            assert bool(found.pairs[i, j]) == mutual
            if mutual:
                a, b = knn[i] | {i}, knn[j] | {j}
                assert math.isclose(float(found.cohesion[i, j]), len(a & b) / len(a | b), rel_tol=1e-6)
                assert 1 / k - 1e-6 <= float(found.cohesion[i, j]) <= 1.0


def test_knn_clips_k_and_a_single_point_has_no_pairs():
    assert knn_mask(torch.randn(3, 4), 10).sum(dim=1).tolist() == [2, 2, 2]
    assert not mutual_neighbours(torch.randn(1, 4), 5).pairs.any()


def test_pair_scores_count_unordered_pairs():
    true = torch.zeros(4, 4, dtype=torch.bool)
    true[0, 1] = true[1, 0] = true[2, 3] = true[3, 2] = True
    detected = torch.zeros(4, 4, dtype=torch.bool)
    detected[0, 1] = detected[1, 0] = detected[0, 2] = detected[2, 0] = True
    scores = pair_scores(detected, true)
    assert (scores.precision.item(), scores.recall.item()) == (0.5, 0.5)
    assert (scores.detected.item(), scores.true.item(), scores.hits.item()) == (2, 2, 1)
    none = pair_scores(torch.zeros(4, 4, dtype=torch.bool), true)
    assert none.precision.item() == 0.0 and none.recall.item() == 0.0  # 0, not NaN: the counts tell


def test_truth_pairs_of_identity_and_pose():
    assert true_identity_pairs(torch.tensor([3, 1, 3])).nonzero().tolist() == [[0, 2], [2, 0]]
    pose = torch.tensor([[0.0, 0.0, 0.0], [9.0, -9.0, 40.0], [11.0, 0.0, 0.0], [0.0, 12.0, 0.0]])
    # roll does not count; |Δyaw| and |Δpitch| must both be < 10 degrees
    assert true_pose_pairs(pose).nonzero().tolist() == [[0, 1], [1, 0], [1, 2], [2, 1]]


# ---------------------------------------------------------------------------
# the method


def test_pcfrl_registers_with_pcls_model_terms_steps_and_features():
    assert "pcfrl" in method_names() and method_label("pcfrl") == "PCFRL"
    cls, pcl = get_method("pcfrl"), get_method("pcl")
    assert cls is PCFRL and issubclass(cls, pcl)
    assert cls.features == pcl.features and cls.has_decoder
    for overrides in ({}, {"loss.schedule": "alternating"}, {"loss.use_pose": False}):
        config = resolve_config("smoke", {"method": "pcfrl", **overrides})
        method, reference = cls(config), pcl(config)
        assert method.terms() == reference.terms() and method.steps() == reference.steps()
        assert method.weighted_terms() == reference.weighted_terms()
        assert method.term_scales({"alpha_face": 2.0}) == reference.term_scales({"alpha_face": 2.0})
    assert type(cls.build_model(config.model)) is type(pcl.build_model(config.model))


def test_calibration_config_defaults_and_validation():
    config = resolve_config("smoke", {"method": "pcfrl"})
    assert PCFRL(config).calibration == CalibrationConfig()
    with pytest.raises(ValueError, match="warmup_fraction"):
        CalibrationConfig(warmup_fraction=1.5)
    with pytest.raises(ValueError, match="k_face"):
        CalibrationConfig(k_face=0)
    # the knobs come from the config's method_options; unknown keys list the valid ones
    tuned = resolve_config("smoke", {"method": "pcfrl", "method_options.k_pose": 7, "method_options.warmup_fraction": 0.0})
    assert PCFRL(tuned).calibration == CalibrationConfig(k_pose=7, warmup_fraction=0.0)
    own = resolve_config("smoke", {"method": "pcfrl", "method_options.pose_batch_negatives": False})
    assert PCFRL(own).calibration.pose_batch_negatives is False
    with pytest.raises(ConfigError, match=r"unknown method_options \['k_nearest'\].*valid: k_face, k_pose"):
        resolve_config("smoke", {"method": "pcfrl", "method_options.k_nearest": 3})
    with pytest.raises(ConfigError, match="method_options: .*warmup_fraction"):
        resolve_config("smoke", {"method": "pcfrl", "method_options.warmup_fraction": 2.0})
    with pytest.raises(ConfigError, match="method 'pcl' takes no method_options"):
        resolve_config("smoke", {"method_options.k_pose": 7})


def test_warmup_tracks_iterations_statelessly():
    config = resolve_config("smoke", {"method": "pcfrl"})
    method = PCFRL(config, CalibrationConfig(warmup_fraction=0.25))
    assert not method.calibrating()  # run length unknown before the trainer says it
    seen = []
    for step in range(8):
        method.on_step_start(step, 8)
        seen.append(method.calibrating())
    assert seen == [False, False, True, True, True, True, True, True]
    resumed = PCFRL(config, CalibrationConfig(warmup_fraction=0.25))
    resumed.on_step_start(5, 8)  # a resumed run: only the step index matters
    assert resumed.iteration == 5 and resumed.calibrating()
    assert PCFRL(config, CalibrationConfig(warmup_fraction=0.0)).calibrating()


def test_warmup_counts_the_sub_steps_of_an_alternating_schedule():
    config = resolve_config("smoke", {"method": "pcfrl", "loss.schedule": "alternating"})
    method = PCFRL(config, CalibrationConfig(warmup_fraction=0.5))
    calls = []
    for step in range(4):
        method.on_step_start(step, 4)
        for _ in method.steps():  # recon, face, pose: three optimiser steps of one iteration
            calls.append((method.iteration, method.calibrating()))
    assert calls == [(0, False), (0, False), (0, False), (1, False), (1, False), (1, False),
                     (2, True), (2, True), (2, True), (3, True), (3, True), (3, True)]


def synth_views(config, parts, batch=8, seed=0):
    """Views of ``batch`` SynthFaces images, with pose and factors (so the views carry ground truth)."""
    from pclkit.data.synthfaces import synthfaces_split

    dataset = synthfaces_split("train", batch, config.model.image_size, 0)
    images, labels = dataset.tensors()
    generator = torch.Generator().manual_seed(seed)
    views = ViewBuilder(config).build(images.float() / 255, generator, parts, pose=labels["pose"],
                                      factors=dataset.factors)
    return views, generator, dataset.factors


def tiny_method_config(**overrides):
    return resolve_config("smoke", {"method": "pcfrl", "model.width": 4, "model.image_size": 32,
                                    "views.num_negatives": 2, **overrides})


def test_views_carry_ground_truth_for_diagnostics_only():
    config = tiny_method_config()
    views, _, factors = synth_views(config, ("face", "pose", "recon"))
    assert torch.equal(views.truth_identity, factors.identity)
    assert torch.equal(views.truth_pose, factors.pose)
    images, spans = views.encoder_input()
    assert images.shape[0] == 2 * 8 + 2 * 8 + 8 * 2 + 2 * 8 and "truth_pose" not in spans
    half = views.shard(1, 2)
    assert torch.equal(half.truth_identity, factors.identity[4:]) and half.batch_size == 4
    bare = ViewBuilder(config).build(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0), ("face",))
    assert bare.truth_identity is None and bare.truth_pose is None


def test_before_calibration_the_terms_are_pcls_and_diagnostics_are_logged():
    config = tiny_method_config()
    method = PCFRL(config, CalibrationConfig(warmup_loss="pcl"))
    views, _, _ = synth_views(config, method.steps()[0].view_parts)
    torch.manual_seed(0)
    model = build_model(config.model)
    weights = {"alpha_pose": 0.7, "alpha_face": 1.3}
    ours = PretrainObjective(model, method)(views, weights, torch.Generator().manual_seed(1))
    plain = PretrainObjective(model, get_method("pcl")(config))(views, weights, torch.Generator().manual_seed(1))
    for term in method.terms():
        torch.testing.assert_close(ours[term], plain[term])
    torch.testing.assert_close(ours["loss"], plain["loss"])
    diagnostics = {name for name in ours if name.startswith("diag_")}
    assert diagnostics == {f"diag_{branch}_fn_{what}" for branch in ("face", "pose")
                           for what in ("pairs", "precision", "recall", "true_pairs", "hits")} | {"diag_fn_calibrating"}
    assert all(ours[name].dim() == 0 and ours[name].dtype == torch.float32 for name in diagnostics)
    assert ours["diag_fn_calibrating"].item() == 0.0
    assert set(ours) == {*method.terms(), *diagnostics, "loss"}


def test_calibration_changes_only_the_contrastive_terms_and_every_parameter_learns():
    config = tiny_method_config()
    views, _, _ = synth_views(config, ("face", "pose", "recon"))
    torch.manual_seed(0)
    model = build_model(config.model)
    weights = {"alpha_pose": 1.0, "alpha_face": 1.0}
    on = PCFRL(config, CalibrationConfig(warmup_fraction=0.0, max_weight=1.0, k_face=3, k_pose=3))
    off = PCFRL(config, CalibrationConfig(warmup_fraction=0.0, calibrate_face=False, calibrate_pose=False,
                                          k_face=3, k_pose=3))
    calibrated = PretrainObjective(model, on)(views, weights, torch.Generator().manual_seed(1))
    plain = PretrainObjective(model, off)(views, weights, torch.Generator().manual_seed(1))
    assert calibrated["diag_fn_calibrating"].item() == 1.0
    assert calibrated["diag_face_fn_pairs"].item() > 0 and calibrated["diag_pose_fn_pairs"].item() > 0
    for term in ("face", "pose"):
        assert not torch.allclose(calibrated[term], plain[term])
    for term in ("dis", "orth"):
        torch.testing.assert_close(calibrated[term], plain[term])
    calibrated["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def read_records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_a_short_pcfrl_run_logs_the_detector_diagnostics(tmp_path):
    # render3d passes SynthFaces factors to the views: identity truth for the face branch too
    config = resolve_config("smoke", [*TINY, "method=pcfrl", "optim.max_steps=2", "views.pose_change=render3d"])
    run = tmp_path / "pcfrl"
    Trainer(config, run).fit()
    steps = read_records(run, "step")
    assert len(steps) == 2
    for record in steps:
        assert {"loss_face", "loss_pose", "loss_dis", "loss_orth"} <= set(record)
        for branch in ("face", "pose"):
            for what in ("pairs", "precision", "recall", "true_pairs", "hits"):
                assert math.isfinite(record[f"diag_{branch}_fn_{what}"])
            assert 0.0 <= record[f"diag_{branch}_fn_precision"] <= 1.0
    # 4 iterations in all (2 epochs of 2), warm-up 10%: the first iteration warms up, the second calibrates
    assert [r["diag_fn_calibrating"] for r in steps] == [0.0, 1.0]


# ---------------------------------------------------------------------------
# data parallelism: 2 gloo ranks x B/2 == 1 rank x B (detector on the gathered batch, truth gathered too)

WORLD = 2
DDP_WEIGHTS = {"alpha_pose": 0.7, "alpha_face": 1.3}


def _ddp_inputs(batch: int = 8):
    """Method, model and views with ground truth, identical in every process (fixed seeds)."""
    config = resolve_config("smoke", ["method=pcfrl", "runtime.precision=fp32", "views.num_negatives=3",
                                      "model.width=4", "model.image_size=16", "model.decoder_width=16"])
    method = PCFRL(config, CalibrationConfig(warmup_fraction=0.0, max_weight=1.0, k_face=2, k_pose=2))
    torch.manual_seed(0)
    model = build_model(config.model)
    model.eval()  # BatchNorm with running statistics, as in tests/test_ddp.py
    g = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 3, 16, 16, generator=g)
    views = ViewBuilder(config).build(images, torch.Generator().manual_seed(2), ("face", "pose", "recon"))
    views.truth_identity = torch.tensor([0, 1, 0, 2, 1, 3, 3, 0])
    views.truth_pose = torch.randn(batch, 3, generator=g) * 15
    return method, model, views


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        method, model, views = _ddp_inputs()
        save_ddp_step(PretrainObjective(model, method), model, views, DDP_WEIGHTS, rank, WORLD, out_dir)
        dist.barrier()  # both ranks done before either tears gloo down (as in tests/test_ddp.py)
    finally:
        dist.destroy_process_group()


def test_two_ranks_on_half_batches_match_one_rank_on_the_whole_batch(tmp_path):
    import socket

    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available():
        pytest.skip("torch.distributed not available")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=WORLD, join=True)
    method, model, views = _ddp_inputs()
    terms = PretrainObjective(model, method)(views, DDP_WEIGHTS, None)
    terms["loss"].backward()
    assert terms["diag_fn_calibrating"].item() == 1.0 and terms["diag_face_fn_true_pairs"].item() == 5
    assert terms["diag_face_fn_pairs"].item() > 0 and terms["diag_pose_fn_pairs"].item() > 0
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"step_{rank}.pt", weights_only=True)
        assert set(got["terms"]) == set(terms)
        for name, value in terms.items():
            torch.testing.assert_close(got["terms"][name], value.detach(), rtol=1e-5, atol=1e-6, msg=name)
        assert set(got["grads"]) == set(grads)
        for name, grad in grads.items():
            torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_detector_scores_by_epoch_pool_the_steps_and_give_the_chance_precision():
    from pclkit.figures import detector_scores_by_epoch

    steps = [  # epoch 0: 2 steps; epoch 1: 1 step; a step record without truth is ignored
        {"kind": "step", "epoch": 0, "diag_pose_fn_hits": 1, "diag_pose_fn_pairs": 2, "diag_pose_fn_true_pairs": 3},
        {"kind": "step", "epoch": 0, "diag_pose_fn_hits": 3, "diag_pose_fn_pairs": 6, "diag_pose_fn_true_pairs": 3},
        {"kind": "step", "epoch": 1, "diag_pose_fn_hits": 0, "diag_pose_fn_pairs": 0, "diag_pose_fn_true_pairs": 1},
        {"kind": "step", "epoch": 1, "diag_pose_fn_pairs": 5},
        {"kind": "epoch", "epoch": 1, "diag_pose_fn_hits": 99},
    ]
    scores = detector_scores_by_epoch(steps, "pose", batch_size=4)  # 6 pairs per batch
    assert scores["epoch"] == [1, 2]
    assert scores["precision"][0] == 4 / 8 and scores["recall"][0] == 4 / 6 and scores["chance"][0] == 6 / 12
    assert math.isnan(scores["precision"][1]) and scores["recall"][1] == 0.0  # nothing flagged: no precision
    assert detector_scores_by_epoch(steps, "face", 4)["epoch"] == []
