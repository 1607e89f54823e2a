"""Linear-evaluation protocols on constructed features with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pclkit.probes import (
    LogisticProblem,
    ProbeConfig,
    Split,
    Standardizer,
    au_detection_probe,
    best_accuracy_threshold,
    best_f1_threshold,
    binary_f1,
    classification_probe,
    fit_logistic,
    identity_pairs,
    knn_predict,
    knn_probe,
    pose_regression_probe,
    ridge_path,
    verification_accuracy,
    verification_probe,
)

FAST = ProbeConfig(l2_grid=(1e-2, 1e-4), max_iter=40)


def one_hot_split(labels: torch.Tensor, n_classes: int, noise: float = 0.0) -> Split:
    x = F.one_hot(labels, n_classes).float() + noise * torch.randn(len(labels), n_classes)
    return Split(x, labels)


def random_labels(n: int, n_classes: int, seed: int) -> torch.Tensor:
    return torch.randint(0, n_classes, (n,), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- solvers


@pytest.mark.parametrize("multilabel", [False, True])
def test_hand_written_logistic_gradient_matches_autograd(multilabel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=g)
    targets = (torch.rand(30, 3, generator=g) > 0.5).float() if multilabel else torch.randint(0, 3, (30,), generator=g)
    weight_t, bias = torch.randn(3, 5, generator=g), torch.randn(3, generator=g)
    loss, grad_w, grad_b = LogisticProblem(x, targets, multilabel).loss_and_grad(weight_t, bias, l2=0.3)
    w, b = weight_t.clone().requires_grad_(), bias.clone().requires_grad_()
    logits = x @ w.T + b
    if multilabel:
        ref = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 30
    else:
        ref = F.cross_entropy(logits, targets)
    ref = ref + 0.15 * w.pow(2).sum()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(grad_w, w.grad, atol=1e-5) and torch.allclose(grad_b, b.grad, atol=1e-5)


@pytest.mark.parametrize("multilabel", [False, True])
def test_logistic_fit_reaches_the_optimum(multilabel):
    # the objective is strictly convex: a zero autograd gradient certifies the minimiser
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 6, generator=g)
    targets = (torch.rand(80, 3, generator=g) > 0.5).float() if multilabel else torch.randint(0, 3, (80,), generator=g)
    model = fit_logistic(x, targets, l2=0.05, multilabel=multilabel, max_iter=200)
    w, b = model.weight.clone().requires_grad_(), model.bias.clone().requires_grad_()
    logits = x @ w + b
    if multilabel:
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 80
    else:
        loss = F.cross_entropy(logits, targets)
    (loss + 0.025 * w.pow(2).sum()).backward()
    assert w.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4
    # and it is not the trivial solution
    assert model.weight.abs().max() > 0.05


def test_standardizer_does_not_blow_up_nearly_constant_features():
    train = torch.cat([torch.randn(1000, 3), torch.zeros(1000, 1)], 1)
    train[0, 3] = 0.01  # a unit that fired once on the training set
    std = Standardizer.fit(train)
    test = torch.tensor([[0.0, 0.0, 0.0, 0.5]])
    assert std(test).abs().max() < 100  # 0.5 / (0.01 / sqrt(1000)) would be ~1600 standard deviations
    assert torch.allclose(std(train)[:, :3].std(0, unbiased=False), torch.ones(3), atol=1e-5)


# --------------------------------------------------------------------------- classification


def test_one_hot_features_classify_perfectly():
    splits = [one_hot_split(random_labels(n, 7, s), 7, noise=0.05) for n, s in ((300, 1), (100, 2), (200, 3))]
    result = classification_probe(*splits, n_classes=7, config=FAST)
    assert result.metrics["accuracy"] == 1.0
    assert result.metrics["mean_class_accuracy"] == 1.0
    assert result.selected["l2"] in FAST.l2_grid


def test_random_features_classify_at_chance():
    n_classes = 4
    splits = [Split(torch.randn(n, 16), random_labels(n, n_classes, s)) for n, s in ((800, 1), (300, 2), (3000, 3))]
    result = classification_probe(*splits, n_classes=n_classes, config=FAST)
    assert abs(result.metrics["accuracy"] - 1 / n_classes) < 0.04
    assert abs(result.metrics["mean_class_accuracy"] - 1 / n_classes) < 0.04


def test_mean_class_accuracy_weights_classes_equally():
    # class 0 is 90% of test and always right, class 1 always wrong: acc 0.9, mean-class 0.5
    train = Split(torch.tensor([[1.0], [1.1], [0.9], [1.05]]), torch.tensor([0, 0, 0, 0]))
    test = Split(torch.ones(10, 1), torch.tensor([0] * 9 + [1]))
    result = classification_probe(train, train, test, n_classes=2, config=FAST)
    assert result.metrics["accuracy"] == pytest.approx(0.9)
    assert result.metrics["mean_class_accuracy"] == pytest.approx(0.5)


def test_knn_on_one_hot_and_random_features():
    labels = random_labels(400, 5, 0)
    train = one_hot_split(labels, 5, noise=0.01)
    test = one_hot_split(random_labels(200, 5, 1), 5, noise=0.01)
    assert knn_probe(train, test, 5).metrics["accuracy"] == 1.0
    rand_train = Split(torch.randn(2000, 32), random_labels(2000, 5, 2))
    rand_test = Split(torch.randn(2000, 32), random_labels(2000, 5, 3))
    assert abs(knn_probe(rand_train, rand_test, 5).metrics["accuracy"] - 0.2) < 0.04


def test_knn_weights_votes_by_similarity():
    # 1 very close neighbour of class 1 outweighs 2 distant neighbours of class 0 at T = 0.07
    train_x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    train_y = torch.tensor([1, 0, 0])
    pred = knn_predict(train_x, train_y, torch.tensor([[1.0, 0.05]]), n_classes=2, k=3, temperature=0.07)
    assert pred.tolist() == [1]
    # with a huge temperature the weights are equal and the majority wins
    pred = knn_predict(train_x, train_y, torch.tensor([[1.0, 0.05]]), n_classes=2, k=3, temperature=1e6)
    assert pred.tolist() == [0]


# --------------------------------------------------------------------------- regression


def test_ridge_path_matches_normal_equations_in_primal_and_dual_form():
    g = torch.Generator().manual_seed(0)
    for n, d in ((50, 8), (8, 50)):  # d <= n uses the D x D Gram, d > n the N x N one
        x, y = torch.randn(n, d, generator=g), torch.randn(n, 3, generator=g)
        (model,) = ridge_path(x, y, (0.3,))
        xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()
        w = torch.linalg.solve(xc.T @ xc / n + 0.3 * torch.eye(d, dtype=torch.float64), xc.T @ yc / n)
        assert torch.allclose(model.weight.double(), w, atol=1e-4)
        assert torch.allclose(model(x).double(), xc @ w + y.double().mean(0), atol=1e-4)


def test_pose_from_pose_features_has_zero_mae():
    g = torch.Generator().manual_seed(0)
    angles = [
        torch.rand(n, 3, generator=g) * torch.tensor([180.0, 80.0, 60.0]) - torch.tensor([90.0, 40.0, 30.0])
        for n in (400, 100, 200)
    ]
    # features = a random linear map of the angles plus nuisance dimensions
    mix = torch.randn(3, 10, generator=g)
    splits = [Split(torch.cat([a @ mix, torch.randn(len(a), 5, generator=g)], 1), a) for a in angles]
    result = pose_regression_probe(*splits)
    for name in ("yaw", "pitch", "roll", "mean"):
        assert result.metrics[f"mae_{name}"] < 0.5
    assert result.metrics["r2_mean"] > 0.999


def test_pose_from_random_features_is_as_bad_as_predicting_the_mean():
    g = torch.Generator().manual_seed(1)
    angles = [torch.rand(n, 3, generator=g) * 180 - 90 for n in (2000, 500, 2000)]
    splits = [Split(torch.randn(len(a), 8, generator=g), a) for a in angles]
    result = pose_regression_probe(*splits)
    mean_predictor_mae = (angles[2] - angles[0].mean(0)).abs().mean().item()  # uniform(-90, 90): 45 deg
    assert result.metrics["mae_mean"] == pytest.approx(mean_predictor_mae, rel=0.03)
    assert abs(result.metrics["r2_mean"]) < 0.02


def test_pose_probe_rejects_wrong_label_shape():
    with pytest.raises(ValueError, match="pose labels"):
        s = Split(torch.randn(10, 4), torch.randn(10))
        pose_regression_probe(s, s, s)


# --------------------------------------------------------------------------- AU detection


def test_binary_f1_hand_computed():
    # TP = 2 (0, 4), FP = 1 (2), FN = 1 (1): F1 = 4 / 6
    assert binary_f1(torch.tensor([1, 0, 1, 0, 1]), torch.tensor([1, 1, 0, 0, 1])) == pytest.approx(2 / 3)
    assert binary_f1(torch.tensor([0, 0]), torch.tensor([1, 0])) == 0.0
    assert np.isnan(binary_f1(torch.tensor([1, 0]), torch.tensor([0, 0])))


def test_best_f1_threshold_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        scores = torch.randint(0, 6, (15,), generator=g).float() / 5  # with ties
        target = torch.rand(15, generator=g) < 0.4
        if not target.any():
            continue
        threshold, f1 = best_f1_threshold(scores, target)
        brute = max(binary_f1(scores > t, target) for t in torch.cat([scores, scores.min()[None] - 1]))
        assert f1 == pytest.approx(brute)
        assert binary_f1(scores > threshold, target) == pytest.approx(brute)


def test_per_au_f1_on_a_small_hand_computed_case():
    # 2 AUs. Feature 0 is AU0's intensity, so AU0 is detected perfectly. AU1 is read
    # from feature 1, which is wrong on test rows 2 and 3: fixed 0.5 decision gives
    # AU1 predictions [1, 0, 1, 0, 0, 0] vs truth [1, 1, 0, 0, 0, 0] -> TP 1, FP 1, FN 1, F1 = 0.5.
    train_aus = torch.tensor([[0.9, 0.8], [0.0, 0.0], [0.7, 0.0], [0.0, 0.9], [0.8, 0.7], [0.1, 0.1]] * 10)
    train = Split(train_aus.clone(), train_aus)
    test_aus = torch.tensor([[0.9, 0.9], [0.0, 0.8], [0.8, 0.0], [0.0, 0.0], [0.9, 0.1], [0.0, 0.2]])
    test_x = test_aus.clone()
    test_x[1, 1], test_x[2, 1] = 0.0, 0.9  # AU1 feature lies on rows 1 (miss) and 2 (false alarm)
    config = ProbeConfig(l2_grid=(1e-3,), au_decision=0.5, au_intensity_threshold=0.4)
    result = au_detection_probe(train, train, Split(test_x, test_aus), au_names=("AU1", "AU2"), config=config)
    assert result.metrics["f1_AU1"] == pytest.approx(1.0)
    assert result.metrics["f1_AU2"] == pytest.approx(0.5)
    assert result.metrics["f1_mean"] == pytest.approx(0.75)
    assert result.selected["threshold_AU1"] == 0.5


def test_au_absent_from_test_is_not_scored():
    aus = torch.tensor([[0.9, 0.0], [0.0, 0.9], [0.8, 0.0], [0.0, 0.8]] * 5)
    test_aus = torch.tensor([[0.9, 0.0], [0.0, 0.1]])
    result = au_detection_probe(Split(aus, aus), Split(aus, aus), Split(test_aus, test_aus), config=FAST)
    assert result.metrics["f1_AU0"] == 1.0
    assert np.isnan(result.metrics["f1_AU1"])
    assert result.metrics["f1_mean"] == 1.0 and result.metrics["n_aus_scored"] == 1


def test_random_features_detect_aus_at_chance_f1():
    g = torch.Generator().manual_seed(0)
    aus = [torch.rand(n, 3, generator=g) for n in (1500, 600, 3000)]
    splits = [Split(torch.randn(len(a), 8, generator=g), a) for a in aus]
    result = au_detection_probe(*splits, config=FAST)
    # prevalence p = 0.6 (intensity >= 0.4); the chance-level optimum predicts all present:
    # F1 = 2p / (1 + p) = 0.75; a random guess with rate q gets 2pq / (p + q) < 0.75
    assert result.metrics["f1_mean"] == pytest.approx(0.75, abs=0.03)


# --------------------------------------------------------------------------- verification


def brute_force_k_fold(scores: torch.Tensor, same: torch.Tensor, fold: torch.Tensor) -> list[float]:
    accs = []
    for k in fold.unique():
        held = fold == k
        s_tr, y_tr = scores[~held], same[~held]
        candidates = torch.cat([s_tr, s_tr.min()[None] - 1])
        best = max(candidates.tolist(), key=lambda t: ((s_tr > t) == y_tr).float().mean().item())
        accs.append(((scores[held] > best) == same[held]).float().mean().item())
    return accs


def test_best_accuracy_threshold_is_optimal_on_its_data():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        scores = torch.randint(0, 8, (20,), generator=g).float()
        same = torch.rand(20, generator=g) < 0.5
        t = best_accuracy_threshold(scores, same)
        brute = max(((scores > c) == same).float().mean().item() for c in torch.cat([scores, scores.min()[None] - 1]))
        assert ((scores > t) == same).float().mean().item() == pytest.approx(brute)


def test_ten_fold_verification_on_a_hand_computed_case():
    # 10 folds x 2 pairs. Scores of "same" pairs are 0.6..0.9, of "different" pairs 0.1..0.4,
    # except fold 3 whose same-pair scores 0.2: the threshold learnt on the other 9 folds lies
    # in (0.4, 0.6), so fold 3 gets 1/2 right and all others 2/2 -> mean 0.95, std 0.15.
    same = torch.tensor([True, False] * 10)
    fold = torch.arange(10).repeat_interleave(2)
    scores = torch.where(same, 0.6 + 0.03 * fold, 0.1 + 0.03 * fold)
    scores[6] = 0.2
    result = verification_accuracy(scores, same, fold)
    assert result.metrics["accuracy"] == pytest.approx(0.95)
    assert result.metrics["accuracy_fold_std"] == pytest.approx(0.15)
    assert 0.4 < result.selected["threshold_mean"] < 0.65


def test_ten_fold_verification_matches_brute_force():
    g = torch.Generator().manual_seed(3)
    scores = torch.rand(60, generator=g)
    same = torch.rand(60, generator=g) < 0.5
    fold = torch.arange(60) % 10
    result = verification_accuracy(scores, same, fold)
    assert result.metrics["accuracy"] == pytest.approx(float(np.mean(brute_force_k_fold(scores, same, fold))))


def test_identity_pairs_are_balanced_deterministic_and_identity_disjoint_across_folds():
    identity = torch.arange(40).repeat_interleave(6)
    yaw = torch.linspace(-90, 90, 240)[torch.randperm(240, generator=torch.Generator().manual_seed(0))]
    pairs = identity_pairs(identity, 400, torch.Generator().manual_seed(5))
    again = identity_pairs(identity, 400, torch.Generator().manual_seed(5))
    assert torch.equal(pairs.left, again.left) and torch.equal(pairs.right, again.right)
    assert len(pairs) == 400 and pairs.same.sum() == 200
    assert torch.equal(identity[pairs.left] == identity[pairs.right], pairs.same)
    fold_of_identity = {}
    for side in (pairs.left, pairs.right):
        for ident, k in zip(identity[side].tolist(), pairs.fold.tolist()):
            assert fold_of_identity.setdefault(ident, k) == k
    cross = identity_pairs(identity, 400, torch.Generator().manual_seed(5), yaw=yaw, min_abs_delta_yaw=45.0)
    assert ((yaw[cross.left] - yaw[cross.right]).abs() > 45).all()
    assert cross.same.sum() * 2 == len(cross)
    with pytest.raises(ValueError, match="identities"):
        identity_pairs(torch.arange(5), 10, torch.Generator())


def test_verification_on_identity_and_random_features():
    identity = torch.arange(60).repeat_interleave(5)
    pairs = identity_pairs(identity, 600, torch.Generator().manual_seed(0))
    perfect = verification_probe(F.one_hot(identity, 60).float() + 0.01 * torch.randn(300, 60), pairs)
    assert perfect.metrics["accuracy"] == 1.0
    chance = verification_probe(torch.randn(300, 64), pairs)
    assert abs(chance.metrics["accuracy"] - 0.5) < 0.08


# --------------------------------------------------------------------------- no test-label leakage


def test_corrupting_test_labels_leaves_selection_unchanged():
    g = torch.Generator().manual_seed(0)
    n_classes = 5
    w = torch.randn(12, n_classes, generator=g)

    def make(n: int) -> Split:
        x = torch.randn(n, 12, generator=g)
        return Split(x, (x @ w + 2.0 * torch.randn(n, n_classes, generator=g)).argmax(1))

    train, val, test = make(200), make(200), make(300)
    corrupted = Split(test.x, torch.randint(0, n_classes, (300,), generator=g))
    grid = ProbeConfig(l2_grid=(1.0, 1e-1, 1e-2, 1e-3), max_iter=40)

    a, b = classification_probe(train, val, test, n_classes, grid), classification_probe(train, val, corrupted, n_classes, grid)
    assert a.selected == b.selected and a.metrics["accuracy"] != b.metrics["accuracy"]

    angles = torch.randn(700, 3, generator=g) * 30
    x = angles @ torch.randn(3, 6, generator=g) + 20 * torch.randn(700, 6, generator=g)
    tr, va, te = Split(x[:200], angles[:200]), Split(x[200:400], angles[200:400]), Split(x[400:], angles[400:])
    a = pose_regression_probe(tr, va, te, config=grid)
    b = pose_regression_probe(tr, va, Split(te.x, te.y[torch.randperm(300, generator=g)]), config=grid)
    assert a.selected == b.selected and a.metrics["mae_mean"] != b.metrics["mae_mean"]

    aus = torch.rand(700, 3, generator=g)
    x = aus + 0.3 * torch.randn(700, 3, generator=g)
    tr, va, te = Split(x[:200], aus[:200]), Split(x[200:400], aus[200:400]), Split(x[400:], aus[400:])
    a = au_detection_probe(tr, va, te, config=grid)
    b = au_detection_probe(tr, va, Split(te.x, 1 - te.y), config=grid)
    assert a.selected == b.selected and a.metrics["f1_mean"] != b.metrics["f1_mean"]


# --------------------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="rows"):
        Split(torch.randn(5, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="2-D"):
        Split(torch.randn(5), torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        Split(torch.tensor([[float("nan")]]), torch.zeros(1))
    with pytest.raises(ValueError, match="au_decision"):
        ProbeConfig(au_decision=1.5)
