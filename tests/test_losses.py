"""Tests of pclkit.losses against deliberately naive loop implementations of each formula."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

from pclkit.image_metrics import ssim
from pclkit.losses import (
    SWAP_TERM_NAMES,
    DynamicWeightAverage,
    mix_negatives,
    nt_xent,
    orthogonality,
    pose_contrastive,
    sample_beta,
    swap_reconstruction,
)

# ---------------------------------------------------------------------------
# naive references: plain Python loops over rows, float64


def _cos(u: torch.Tensor, v: torch.Tensor) -> float:
    u, v = u.double().tolist(), v.double().tolist()
    dot = sum(a * b for a, b in zip(u, v))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def naive_nt_xent(z_a, z_b, tau):
    rows = list(z_a) + list(z_b)
    n = len(rows)
    batch = len(z_a)
    total = 0.0
    for k in range(n):
        pos = (k + batch) % n
        denom = sum(math.exp(_cos(rows[k], rows[m]) / tau) for m in range(n) if m != k)
        total += -math.log(math.exp(_cos(rows[k], rows[pos]) / tau) / denom)
    return total / n


def naive_pose_contrastive(anchor, positive, negatives, tau, positive_in_denominator=True):
    per_sample = []
    for i in range(len(anchor)):
        term = 0.0
        for query, key in ((anchor[i], positive[i]), (positive[i], anchor[i])):
            pos = math.exp(_cos(query, key) / tau)
            negs = sum(math.exp(_cos(query, neg) / tau) for neg in negatives[i])
            term += -math.log(pos / ((pos if positive_in_denominator else 0.0) + negs))
        per_sample.append(term)
    return per_sample


def naive_dsn(face, pose):
    batch, d_f, d_p = len(face), face.shape[1], pose.shape[1]
    f = face.double().tolist()
    p = pose.double().tolist()
    f_mean = [sum(f[i][a] for i in range(batch)) / batch for a in range(d_f)]
    p_mean = [sum(p[i][b] for i in range(batch)) / batch for b in range(d_p)]
    f_c = [[f[i][a] - f_mean[a] for a in range(d_f)] for i in range(batch)]
    p_c = [[p[i][b] - p_mean[b] for b in range(d_p)] for i in range(batch)]
    f_n = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in f_c]
    p_n = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in p_c]
    total = 0.0
    for a in range(d_f):
        for b in range(d_p):
            entry = sum(f_n[i][a] * p_n[i][b] for i in range(batch))
            total += entry**2
    return total / (d_f * d_p)


def naive_dot(face, pose):
    return sum(sum(x * y for x, y in zip(fr, pr)) ** 2 for fr, pr in zip(face.tolist(), pose.tolist())) / len(face)


COMBOS = [(2, 3, 1, 0.07), (3, 8, 4, 0.5), (5, 16, 2, 1.0), (4, 5, 7, 0.2)]  # (B, D, M, tau)


# ---------------------------------------------------------------------------
# NT-Xent


@pytest.mark.parametrize("batch,dim,_m,tau", COMBOS)
def test_nt_xent_matches_naive_loop(batch, dim, _m, tau):
    z_a, z_b = torch.randn(batch, dim), torch.randn(batch, dim)
    assert nt_xent(z_a, z_b, tau).item() == pytest.approx(naive_nt_xent(z_a, z_b, tau), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_nt_xent_identical_embeddings_give_log_2b_minus_1(batch):
    z = torch.ones(batch, 4)
    assert nt_xent(z, z, 0.07).item() == pytest.approx(-math.log(1 / (2 * batch - 1)), abs=1e-5)


def test_nt_xent_is_symmetric_and_scale_invariant():
    z_a, z_b = torch.randn(6, 10), torch.randn(6, 10)
    assert nt_xent(z_a, z_b).item() == pytest.approx(nt_xent(z_b, z_a).item(), rel=1e-6)
    assert nt_xent(3.0 * z_a, 0.2 * z_b).item() == pytest.approx(nt_xent(z_a, z_b).item(), rel=1e-5)


def test_nt_xent_lower_for_aligned_pairs():
    z_a = torch.randn(8, 16)
    assert nt_xent(z_a, z_a + 0.01 * torch.randn(8, 16)) < nt_xent(z_a, torch.randn(8, 16))


def test_nt_xent_float32_under_bf16_autocast_with_finite_grads():
    z_a = torch.randn(16, 32, requires_grad=True)
    z_b = torch.randn(16, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nt_xent(z_a.bfloat16(), z_b.bfloat16())
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()
    assert z_a.grad.abs().sum() > 0


def test_nt_xent_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        nt_xent(torch.randn(4, 8, 2), torch.randn(4, 8, 2))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 8), torch.randn(4, 8), temperature=0.0)


# ---------------------------------------------------------------------------
# pose contrastive


@pytest.mark.parametrize("batch,dim,num_neg,tau", COMBOS)
@pytest.mark.parametrize("positive_in_denominator", [True, False])
def test_pose_contrastive_matches_naive_loop(batch, dim, num_neg, tau, positive_in_denominator):
    anchor, positive = torch.randn(batch, dim), torch.randn(batch, dim)
    negatives = torch.randn(batch, num_neg, dim)
    expected = naive_pose_contrastive(anchor, positive, negatives, tau, positive_in_denominator)
    per_sample = pose_contrastive(anchor, positive, negatives, tau, positive_in_denominator, reduction="none")
    assert per_sample.shape == (batch,)
    assert per_sample.tolist() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    mean = pose_contrastive(anchor, positive, negatives, tau, positive_in_denominator)
    assert mean.item() == pytest.approx(sum(expected) / batch, rel=1e-4, abs=1e-5)


def test_pose_contrastive_each_anchor_sees_only_its_own_negatives():
    batch, num_neg, dim, k = 5, 4, 12, 2
    anchor, positive = torch.randn(batch, dim), torch.randn(batch, dim)
    negatives = torch.randn(batch, num_neg, dim)
    before = pose_contrastive(anchor, positive, negatives, reduction="none")
    perturbed = negatives.clone()
    perturbed[k] = torch.randn(num_neg, dim)
    after = pose_contrastive(anchor, positive, perturbed, reduction="none")
    changed = (after - before).abs() > 1e-6
    assert changed.tolist() == [i == k for i in range(batch)]


def test_pose_contrastive_is_symmetric_in_anchor_and_positive():
    anchor, positive, negatives = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 3, 8)
    forward = pose_contrastive(anchor, positive, negatives, reduction="none")
    swapped = pose_contrastive(positive, anchor, negatives, reduction="none")
    torch.testing.assert_close(forward, swapped)


def test_pose_contrastive_analytic_orthogonal_negatives():
    # anchor = positive = e_0, negatives orthogonal: each direction is -log(e^{1/t} / (e^{1/t} + M))
    tau, num_neg = 0.5, 3
    anchor = torch.zeros(2, 4)
    anchor[:, 0] = 1
    negatives = torch.zeros(2, num_neg, 4)
    negatives[:, :, 1] = 1
    expected = 2 * -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + num_neg))
    assert pose_contrastive(anchor, anchor, negatives, tau).item() == pytest.approx(expected, rel=1e-6)


def test_pose_contrastive_finite_grads_and_bad_shapes():
    anchor = torch.randn(4, 8, requires_grad=True)
    negatives = torch.randn(4, 3, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = pose_contrastive(anchor.bfloat16(), torch.randn(4, 8).bfloat16(), negatives.bfloat16())
    assert loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(anchor.grad).all() and torch.isfinite(negatives.grad).all()
    with pytest.raises(ValueError, match=r"\(B, M, D\)"):
        pose_contrastive(torch.randn(4, 8), torch.randn(4, 8), torch.randn(3, 2, 8))
    with pytest.raises(ValueError, match=r"\(B, M, D\)"):
        pose_contrastive(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8))


# ---------------------------------------------------------------------------
# orthogonality


@pytest.mark.parametrize("batch,dim_f,dim_p", [(3, 4, 4), (6, 5, 7), (10, 16, 16)])
def test_orthogonality_dsn_matches_naive_loop(batch, dim_f, dim_p):
    face, pose = torch.randn(batch, dim_f), torch.randn(batch, dim_p)
    assert orthogonality(face, pose, "dsn").item() == pytest.approx(naive_dsn(face, pose), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("batch,dim", [(3, 4), (8, 16)])
def test_orthogonality_dot_matches_naive_loop(batch, dim):
    face, pose = torch.randn(batch, dim), torch.randn(batch, dim)
    assert orthogonality(face, pose, "dot").item() == pytest.approx(naive_dot(face, pose), rel=1e-5)


@pytest.mark.parametrize("batch,dim", [(3, 4), (8, 16)])
def test_orthogonality_cosine_matches_naive_loop(batch, dim):
    face, pose = torch.randn(batch, dim), torch.randn(batch, dim)
    expected = 0.0
    for i in range(batch):
        dot = sum(face[i, k].item() * pose[i, k].item() for k in range(dim))
        norm_f = math.sqrt(sum(face[i, k].item() ** 2 for k in range(dim)))
        norm_p = math.sqrt(sum(pose[i, k].item() ** 2 for k in range(dim)))
        expected += (dot / (norm_f * norm_p)) ** 2 / batch
    assert orthogonality(face, pose, "cosine").item() == pytest.approx(expected, rel=1e-5)


def test_orthogonality_cosine_analytic_cases_and_scale_invariance():
    face = torch.randn(5, 6)
    assert orthogonality(face, face, "cosine").item() == pytest.approx(1.0, rel=1e-5)  # parallel: cos = 1
    assert orthogonality(face, -3 * face, "cosine").item() == pytest.approx(1.0, rel=1e-5)
    pose = torch.randn(5, 6)
    assert orthogonality(100 * face, 0.01 * pose, "cosine").item() == pytest.approx(
        orthogonality(face, pose, "cosine").item(), rel=1e-4)


def test_orthogonality_dot_zero_for_branches_in_disjoint_dimensions():
    face, pose = torch.zeros(8, 10), torch.zeros(8, 10)
    face[:, :5] = torch.randn(8, 5)
    pose[:, 5:] = torch.randn(8, 5)
    assert orthogonality(face, pose, "dot").item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["dsn", "dot", "cosine"])
def test_orthogonality_zero_for_orthogonal_branches_and_symmetric(mode):
    # DSN looks at F̃_fᵀF̃_p, a sum over samples: it is zero when no sample has
    # both a (centred) face and a pose component. Rows come in +v/-v pairs so
    # centring over the batch leaves them unchanged.
    v, u = torch.randn(2, 10), torch.randn(2, 10)
    zeros = torch.zeros(4, 10)
    face = torch.cat([v, -v, zeros])
    pose = torch.cat([zeros, u, -u])
    assert orthogonality(face, pose, mode).item() == pytest.approx(0.0, abs=1e-12)
    a, b = torch.randn(8, 10), torch.randn(8, 10)
    assert orthogonality(a, b, mode).item() == pytest.approx(orthogonality(b, a, mode).item(), rel=1e-6)
    assert orthogonality(a, a, mode) > orthogonality(a, b, mode)


def test_orthogonality_finite_grads_and_errors():
    face = torch.randn(6, 8, requires_grad=True)
    pose = torch.randn(6, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = orthogonality(face.bfloat16(), pose.bfloat16())
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(face.grad).all() and torch.isfinite(pose.grad).all()
    with pytest.raises(ValueError, match="mode"):
        orthogonality(face, pose, "cos")
    with pytest.raises(ValueError, match="batch size"):
        orthogonality(torch.randn(6, 8), torch.randn(5, 8))


# ---------------------------------------------------------------------------
# swap reconstruction


class CountingDecoder(torch.nn.Module):
    """A small deterministic decoder (no BatchNorm) that counts its calls."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.face_proj = torch.nn.Linear(dim, 3 * size * size)
        self.pose_proj = torch.nn.Linear(dim, 3 * size * size)
        self.size = size
        self.calls = 0

    def forward(self, face, pose):
        self.calls += 1
        out = torch.sigmoid(self.face_proj(face) + 2 * self.pose_proj(pose))
        return out.reshape(-1, 3, self.size, self.size)


def test_swap_reconstruction_matches_four_separate_l1_terms_in_one_call():
    batch, dim, size = 3, 6, 8
    images, images_hat = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)
    face, face_hat, pose, pose_hat = (torch.randn(batch, dim) for _ in range(4))
    decoder = CountingDecoder(dim, size)
    out = swap_reconstruction(images, images_hat, face, face_hat, pose, pose_hat, decoder)
    assert decoder.calls == 1
    naive = []
    for target, f, p in ((images, face, pose), (images_hat, face, pose_hat),
                         (images, face_hat, pose), (images_hat, face_hat, pose_hat)):
        recon = decoder(f, p)
        total = sum(abs(a - b) for a, b in zip(recon.flatten().tolist(), target.flatten().tolist()))
        naive.append(total / target.numel())
    assert out.terms.tolist() == pytest.approx(naive, rel=1e-5)
    assert out.total.item() == pytest.approx(sum(naive), rel=1e-5)
    assert out.reconstructions.shape == (4, batch, 3, size, size)
    assert list(out.named_terms()) == list(SWAP_TERM_NAMES)
    # the swaps-only option keeps the two middle terms, decoded in one call
    decoder.calls = 0
    swaps = swap_reconstruction(images, images_hat, face, face_hat, pose, pose_hat, decoder, swaps_only=True)
    assert decoder.calls == 1 and swaps.reconstructions.shape == (2, batch, 3, size, size)
    assert swaps.terms.tolist() == pytest.approx(naive[1:3], rel=1e-5)
    assert list(swaps.named_terms()) == ["swap_to_s_hat", "swap_to_s"]


def test_swap_reconstruction_takes_pose_from_the_view_it_reproduces():
    # an oracle decoder whose output depends only on the pose code: it gives
    # zero loss iff every reconstruction takes its pose from its target view
    batch, size = 4, 8
    images, images_hat = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)
    bank = torch.cat([images, images_hat])  # code j -> image j
    pose = F.one_hot(torch.arange(batch), 2 * batch).float()
    pose_hat = F.one_hot(torch.arange(batch, 2 * batch), 2 * batch).float()
    face, face_hat = torch.randn(batch, 2 * batch), torch.randn(batch, 2 * batch)

    def oracle(face_feat, pose_feat):
        return bank[pose_feat.argmax(dim=1)]

    out = swap_reconstruction(images, images_hat, face, face_hat, pose, pose_hat, oracle)
    assert out.total.item() == pytest.approx(0.0, abs=1e-7)
    # swapping pose and pose_hat makes the decoder copy the wrong view
    wrong = swap_reconstruction(images, images_hat, face, face_hat, pose_hat, pose, oracle)
    assert (wrong.terms > 0.05).all()


def test_swap_reconstruction_grads_and_errors():
    batch, dim, size = 2, 4, 8
    decoder = CountingDecoder(dim, size)
    feats = [torch.randn(batch, dim, requires_grad=True) for _ in range(4)]
    images = torch.rand(batch, 3, size, size)
    out = swap_reconstruction(images, images.flip(-1), *feats, decoder)
    out.total.backward()
    assert all(torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0 for f in feats)
    with pytest.raises(ValueError, match="batch"):
        swap_reconstruction(images, images, torch.randn(3, dim), *feats[1:], decoder)
    with pytest.raises(ValueError, match="decoder returned"):
        swap_reconstruction(torch.rand(batch, 3, 16, 16), torch.rand(batch, 3, 16, 16), *feats, decoder)


def test_swap_reconstruction_structural_term_adds_w_times_one_minus_ssim():
    batch, dim, size = 3, 6, 16
    images, images_hat = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)
    face, face_hat, pose, pose_hat = (torch.randn(batch, dim) for _ in range(4))
    decoder = CountingDecoder(dim, size)
    plain = swap_reconstruction(images, images_hat, face, face_hat, pose, pose_hat, decoder, swaps_only=True)
    mixed = swap_reconstruction(images, images_hat, face, face_hat, pose, pose_hat, decoder, swaps_only=True,
                                ssim_weight=0.5)
    # per term: L1 + w (1 - the batch mean of each image's SSIM), with the SSIM the evaluation reports
    for k, (target, f, p) in enumerate(((images_hat, face, pose_hat), (images, face_hat, pose))):
        recon = decoder(f, p)
        per_image = [ssim(recon[i : i + 1], target[i : i + 1]).item() for i in range(batch)]
        assert mixed.terms[k].item() == pytest.approx(plain.terms[k].item() + 0.5 * (1 - sum(per_image) / batch), rel=1e-5)
    # a decoder that returns its targets scores 0 on both parts; negative weights are refused
    bank = torch.cat([images, images_hat])
    pose_codes = F.one_hot(torch.arange(2 * batch), 2 * batch).float()
    exact = swap_reconstruction(images, images_hat, face, face, pose_codes[:batch], pose_codes[batch:],
                                lambda f, p: bank[p.argmax(dim=1)], ssim_weight=2.0)
    assert exact.total.item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="ssim_weight"):
        swap_reconstruction(images, images_hat, face, face_hat, pose, pose_hat, decoder, ssim_weight=-1.0)


# ---------------------------------------------------------------------------
# Dynamic Weight Average


def test_dwa_is_one_for_the_first_two_epochs_then_hand_computed():
    dwa = DynamicWeightAverage(num_losses=2, temperature=2.0)
    assert dwa.weights.tolist() == [1.0, 1.0]
    dwa.update([2.0, 1.0])
    assert dwa.weights.tolist() == [1.0, 1.0]
    dwa.update([1.0, 1.0])
    # w = (1/2, 1/1); alpha_k = 2 exp(w_k/2) / (exp(0.25) + exp(0.5))
    # = 2 * 1.2840254 / 2.9327467, 2 * 1.6487213 / 2.9327467
    assert dwa.weights.tolist() == pytest.approx([0.8756471, 1.1243529], rel=1e-6)
    dwa.update([0.5, 1.5])  # only the last two epochs count: w = (0.5/1, 1.5/1)
    # alpha = 2 exp(0.25) / (exp(0.25) + exp(0.75)), 2 exp(0.75) / (...) with exp(0.75) = 2.1170000
    assert dwa.weights.tolist() == pytest.approx([0.7550813, 1.2449187], rel=1e-6)
    assert dwa.weights.sum().item() == pytest.approx(2.0)


def test_dwa_three_losses_equal_ratios_give_ones():
    dwa = DynamicWeightAverage(num_losses=3, temperature=2.0)
    dwa.update(torch.tensor([3.0, 2.0, 1.0]))
    dwa.update(torch.tensor([1.5, 1.0, 0.5]))
    assert dwa.weights.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_dwa_state_round_trip_with_weights_only_load():
    dwa = DynamicWeightAverage()
    dwa.update([2.0, 1.0])
    dwa.update([1.0, 3.0])
    buffer = io.BytesIO()
    torch.save(dwa.state_dict(), buffer)
    buffer.seek(0)
    restored = DynamicWeightAverage()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(restored.weights, dwa.weights)
    restored.update([1.0, 1.0])
    dwa.update([1.0, 1.0])
    torch.testing.assert_close(restored.weights, dwa.weights)
    fresh = DynamicWeightAverage()
    fresh.load_state_dict(DynamicWeightAverage().state_dict())
    assert fresh.weights.tolist() == [1.0, 1.0]


def test_dwa_rejects_bad_updates():
    dwa = DynamicWeightAverage()
    with pytest.raises(ValueError, match="expected 2"):
        dwa.update([1.0])
    with pytest.raises(ValueError, match="finite"):
        dwa.update([1.0, float("nan")])
    with pytest.raises(ValueError, match="losses"):
        DynamicWeightAverage(num_losses=3).load_state_dict(dwa.state_dict())


# ---------------------------------------------------------------------------
# Beta mixing of negatives


@pytest.mark.parametrize("alpha", [1.6, 0.5])
def test_sample_beta_matches_the_beta_distribution(alpha):
    from scipy import stats

    generator = torch.Generator().manual_seed(0)
    samples = sample_beta((20000,), alpha, alpha, generator)
    assert samples.min() >= 0 and samples.max() <= 1
    assert samples.mean().item() == pytest.approx(0.5, abs=0.01)
    expected_var = alpha * alpha / ((2 * alpha) ** 2 * (2 * alpha + 1))
    assert samples.var().item() == pytest.approx(expected_var, rel=0.05)
    assert stats.kstest(samples.numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_mix_negatives_mixes_only_within_the_same_sample():
    batch, num_neg = 3, 4
    dim = batch * num_neg
    negatives = torch.eye(dim).reshape(batch, num_neg, dim)  # negative (i, m) is basis vector i*M + m
    mixed = mix_negatives(negatives, torch.Generator().manual_seed(1))
    assert mixed.shape == negatives.shape
    for i in range(batch):
        for m in range(num_neg):
            row = mixed[i, m]
            support = row.nonzero().flatten().tolist()
            own = set(range(i * num_neg, (i + 1) * num_neg))
            assert set(support) <= own, "a negative was mixed with another sample's negative"
            assert i * num_neg + m in support and len(support) == 2
            assert row.sum().item() == pytest.approx(1.0, abs=1e-6)
    again = mix_negatives(negatives, torch.Generator().manual_seed(1))
    torch.testing.assert_close(mixed, again)
    with pytest.raises(ValueError, match="at least 2"):
        mix_negatives(torch.randn(2, 1, 4))


def naive_xcorr(face, pose):
    """(1/D_f) sum_ab corr(F_f[:, a], F_p[:, b])^2 with population statistics over the batch."""
    batch, d_f, d_p = len(face), face.shape[1], pose.shape[1]
    f, p = face.double(), pose.double()
    total = 0.0
    for a in range(d_f):
        for b in range(d_p):
            fa, pb = f[:, a], p[:, b]
            # the loss standardises with the unbiased std; the product is averaged over the B rows
            za = (fa - fa.mean()) / fa.std()
            zb = (pb - pb.mean()) / pb.std()
            total += (sum(za[i].item() * zb[i].item() for i in range(batch)) / batch) ** 2
    return total / d_f


@pytest.mark.parametrize("batch,dim_f,dim_p", [(5, 3, 4), (12, 6, 6)])
def test_orthogonality_xcorr_matches_naive_loop(batch, dim_f, dim_p):
    face, pose = torch.randn(batch, dim_f), torch.randn(batch, dim_p)
    assert orthogonality(face, pose, "xcorr").item() == pytest.approx(naive_xcorr(face, pose), rel=1e-4)


def test_orthogonality_xcorr_sees_a_pose_direction_shared_by_the_branches():
    """A face feature that linearly follows a pose feature is penalised; one that does not, hardly."""
    gen = torch.Generator().manual_seed(0)
    yaw = torch.randn(512, 1, generator=gen)
    pose = torch.cat([yaw, torch.randn(512, 7, generator=gen)], 1)
    clean_face = torch.randn(512, 8, generator=gen)
    leaky_face = clean_face.clone()
    leaky_face[:, 0] = 0.01 * yaw[:, 0]  # tiny in scale, but fully correlated: correlation is scale-free
    clean, leaky = orthogonality(clean_face, pose, "xcorr").item(), orthogonality(leaky_face, pose, "xcorr").item()
    assert clean < 8 * 4 / 512 * 1.5  # about D_p / B for independent features
    assert leaky > clean + 0.1  # one fully correlated pair adds 1 / D_f = 0.125


# ---------------------------------------------------------------------------
# L_inv and L_cyc (this project's options)


def test_branch_invariance_matches_a_naive_loop_and_ignores_a_shared_offset():
    from pclkit.losses import branch_invariance

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    mean = torch.cat([a, b]).mean(0)
    naive = sum(1 - F.cosine_similarity(a[i] - mean, b[i] - mean, dim=0) for i in range(6)) / 6
    torch.testing.assert_close(branch_invariance(a, b), naive)
    torch.testing.assert_close(branch_invariance(a + 3.0, b + 3.0), naive)  # post-ReLU offsets do not count
    assert float(branch_invariance(a, a)) < 1e-6
    assert abs(float(branch_invariance(a, -a)) - 2.0) < 1e-5  # centred rows opposite: the worst case
    collapsed = torch.ones(6, 5)
    assert abs(float(branch_invariance(collapsed, collapsed)) - 1.0) < 1e-6  # a collapse earns nothing
    with pytest.raises(ValueError):
        branch_invariance(a, b[:, :4])


def test_branch_invariance_correlation_form_matches_a_naive_loop_and_weighs_every_dimension_alike():
    from pclkit.losses import branch_invariance

    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    naive = 0.0
    for d in range(4):
        column = torch.cat([a[:, d], b[:, d]])
        mu, sigma = column.mean(), column.std(unbiased=False)
        naive += 1 - sum(float((a[i, d] - mu) * (b[i, d] - mu)) for i in range(8)) / 8 / float(sigma) ** 2
    torch.testing.assert_close(branch_invariance(a, b, form="correlation"), torch.tensor(naive / 4), atol=1e-5, rtol=0)
    assert float(branch_invariance(a, a, form="correlation")) < 1e-5
    assert abs(float(branch_invariance(a, -a, form="correlation")) - 2.0) < 1e-4  # the worst case
    # a dimension with a tiny variance that flips across the pair costs as much as a large one:
    # the cosine form barely sees it, the correlation form charges it a full 2 / D
    big = torch.randn(8, 1, generator=gen) * 10
    small = torch.randn(8, 1, generator=gen) * 1e-3
    f, f_hat = torch.cat([big, small], dim=1), torch.cat([big, -small], dim=1)
    assert float(branch_invariance(f, f_hat)) < 1e-3
    assert abs(float(branch_invariance(f, f_hat, form="correlation")) - 1.0) < 1e-2
    constant = torch.ones(8, 4)
    assert abs(float(branch_invariance(constant, constant, form="correlation")) - 1.0) < 1e-6  # no reward
    with pytest.raises(ValueError, match="form"):
        branch_invariance(a, b, form="l2")


def test_swap_cycle_is_zero_for_a_faithful_swap_and_pairs_each_image_with_the_previous_one():
    from pclkit.losses import branch_invariance, swap_cycle

    g = torch.Generator().manual_seed(3)
    face, pose = torch.randn(5, 8, generator=g), torch.randn(5, 3, generator=g)
    decoded = []

    def decoder(f: torch.Tensor, p: torch.Tensor) -> torch.Tensor:  # "images" that carry both codes
        decoded.append((f, p))
        return torch.cat([f, p], 1)[:, :, None, None]

    def encoder(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :8, 0, 0], x[:, 8:, 0, 0]

    assert float(swap_cycle(face, pose, decoder, encoder)) < 1e-5
    torch.testing.assert_close(decoded[0][1], pose[[4, 0, 1, 2, 3]])  # image i with the pose of image i - 1
    # a decoder that copies the pose image's appearance (face of i - 1) costs exactly L_inv of the wrong face
    def leaky(f: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.cat([f.roll(1, 0), p], 1)[:, :, None, None]

    torch.testing.assert_close(swap_cycle(face, pose, leaky, encoder), branch_invariance(face.roll(1, 0), face))
    assert float(swap_cycle(face, pose, leaky, encoder)) > 0.5


def test_swap_cycle_trains_decoder_and_encoder_but_not_towards_the_swap():
    from pclkit.losses import branch_invariance, swap_cycle

    g = torch.Generator().manual_seed(4)
    face = torch.randn(6, 4, generator=g, requires_grad=True)
    pose = torch.randn(6, 2, generator=g, requires_grad=True)
    decoder, encoder = torch.nn.Linear(6, 12), torch.nn.Linear(12, 6)
    loss = swap_cycle(face, pose, lambda f, p: decoder(torch.cat([f, p], 1))[:, :, None, None],
                      lambda x: (encoder(x.flatten(1))[:, :4], encoder(x.flatten(1))[:, 4:]))
    loss.backward()
    assert decoder.weight.grad.abs().sum() > 0 and encoder.weight.grad.abs().sum() > 0
    # the features get gradient only through the decoder input: the same as with targets detached by hand
    face2, pose2 = face.detach().clone().requires_grad_(True), pose.detach().clone().requires_grad_(True)
    target_f, target_p = face.detach(), pose.detach()[[5, 0, 1, 2, 3, 4]]
    x = decoder(torch.cat([face2, pose2[[5, 0, 1, 2, 3, 4]]], 1))
    out = encoder(x)
    (branch_invariance(out[:, :4], target_f) + branch_invariance(out[:, 4:], target_p)).backward()
    torch.testing.assert_close(face.grad, face2.grad)
    torch.testing.assert_close(pose.grad, pose2.grad)
    with pytest.raises(ValueError, match=">= 2 images"):
        swap_cycle(face[:1], pose[:1], lambda f, p: f, lambda x: (x, x))


def test_swap_cycle_with_a_detached_decoder_trains_only_the_encoder_on_fixed_swaps():
    from pclkit.losses import swap_cycle

    g = torch.Generator().manual_seed(5)
    face = torch.randn(6, 4, generator=g, requires_grad=True)
    pose = torch.randn(6, 2, generator=g, requires_grad=True)
    decoder, encoder = torch.nn.Linear(6, 12), torch.nn.Linear(12, 6)

    def decode(f, p):
        return decoder(torch.cat([f, p], 1))[:, :, None, None]

    def encode(x):
        return encoder(x.flatten(1))[:, :4], encoder(x.flatten(1))[:, 4:]

    detached = swap_cycle(face, pose, decode, encode, train_decoder=False)
    detached.backward()
    assert decoder.weight.grad is None and face.grad is None and pose.grad is None  # fixed pictures
    assert encoder.weight.grad.abs().sum() > 0  # that the encoder learns to read back
    torch.testing.assert_close(detached, swap_cycle(face, pose, decode, encode))  # same value either way
    from pclkit.losses import branch_invariance

    face_again, pose_again = encode(decode(face, pose[[5, 0, 1, 2, 3, 4]]))
    torch.testing.assert_close(swap_cycle(face, pose, decode, encode, face_term=False),
                               branch_invariance(pose_again, pose.detach()[[5, 0, 1, 2, 3, 4]]))  # F_p^B alone


def test_grad_reverse_is_the_identity_forward_and_flips_the_gradient():
    from pclkit.losses import grad_reverse

    x = torch.randn(5, 3, requires_grad=True)
    y = grad_reverse(x)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad, -torch.arange(3.0).expand(5, 3))


def test_pose_adversary_fit_is_one_minus_r2_and_each_form_trains_the_two_sides_as_documented():
    from pclkit.losses import pose_adversary

    torch.manual_seed(0)
    pose = torch.randn(64, 2)
    # an adversary that reads the pose exactly: L_fit = 0; one that says nothing (zeros): (B-1)/B per column
    exact = torch.nn.Linear(2, 2)
    with torch.no_grad():
        exact.weight.copy_(torch.diag(1 / pose.std(0)))
        exact.bias.copy_(-pose.mean(0) / pose.std(0))
    assert pose_adversary(exact, pose.clone(), pose).fit.item() < 1e-10
    blind = torch.nn.Linear(2, 2)
    torch.nn.init.zeros_(blind.weight)
    torch.nn.init.zeros_(blind.bias)
    assert pose_adversary(blind, pose.clone(), pose).fit.item() == pytest.approx(63 / 64, rel=1e-5)

    face0 = pose @ torch.randn(2, 6) + 0.1 * torch.randn(64, 6)
    for form in ("reversal", "confusion"):
        adversary = torch.nn.Linear(6, 2)
        face = face0.clone().requires_grad_()
        result = pose_adversary(adversary, face, pose, form=form)
        result.total.backward()
        with torch.no_grad():
            before = adversary(face).square().mean()
            for param in adversary.parameters():
                param -= 0.05 * param.grad
            # the adversary's step always lowers its fit
            assert pose_adversary(adversary, face, pose).fit < result.fit
            stepped = face - 0.05 * face.grad
            for param in adversary.parameters():
                param += 0.05 * param.grad  # back to the adversary the face step was taken against
            if form == "reversal":  # the face step raises the adversary's error
                assert pose_adversary(adversary, stepped, pose).fit > result.fit
            else:  # the face step pulls the adversary's prediction towards the batch mean (0)
                assert adversary(stepped).square().mean() < before
    # confusion: the adversary's gradient is L_fit's alone (the confusion term reaches only F_f)
    adversary = torch.nn.Linear(6, 2)
    pose_adversary(adversary, face0.clone().requires_grad_(), pose).total.backward()
    alone = torch.nn.Linear(6, 2)
    alone.load_state_dict(adversary.state_dict())
    z = (pose - pose.mean(0)) / (pose.std(0) + 1e-6)
    (alone(face0) - z).square().mean().backward()
    assert torch.allclose(adversary.weight.grad, alone.weight.grad, atol=1e-6)
    with pytest.raises(ValueError, match="same batch"):
        pose_adversary(adversary, face0[:3], pose[:4])
    with pytest.raises(ValueError, match="form"):
        pose_adversary(adversary, face0, pose, form="gan")


def test_cross_fitted_predictability_matches_a_primal_ridge_loop_and_is_blind_to_sign():
    from pclkit.losses import cross_fitted_predictability

    torch.manual_seed(0)
    pose = torch.randn(40, 3)
    face = torch.cat([pose @ torch.randn(3, 5), torch.randn(40, 7)], 1) + 0.5 * torch.randn(40, 12)
    ridge = 0.7

    def standardised(x):
        return (x - x.mean(0)) / (x.std(0) + 1e-6)

    x, z = standardised(face.double()), standardised(pose.double())
    fold = torch.arange(40) % 2 == 0
    expected = 0.0
    for fit, held in ((fold, ~fold), (~fold, fold)):
        # the primal form: weights (D, k) = (X_aᵀ X_a + λ D I)⁻¹ X_aᵀ Z_a
        weights = torch.linalg.solve(x[fit].T @ x[fit] + ridge * 12 * torch.eye(12, dtype=torch.float64), x[fit].T @ z[fit])
        predicted = x[held] @ weights
        for j in range(3):
            expected += torch.corrcoef(torch.stack([predicted[:, j], z[held][:, j]]))[0, 1].item() ** 2 / 6
    assert cross_fitted_predictability(face, pose, ridge=ridge).item() == pytest.approx(expected, abs=1e-4)
    assert cross_fitted_predictability(-face, pose, ridge=ridge).item() == pytest.approx(expected, abs=1e-4)


def test_cross_fitted_predictability_is_high_for_a_copy_low_for_noise_and_trains_only_the_face_feature():
    from pclkit.losses import cross_fitted_predictability

    torch.manual_seed(0)
    pose = torch.randn(128, 4, requires_grad=True)
    assert cross_fitted_predictability(torch.cat([pose.detach(), torch.randn(128, 60)], 1), pose) > 0.5
    assert cross_fitted_predictability(torch.randn(128, 64), pose) < 0.1
    face = (torch.cat([pose.detach(), torch.randn(128, 60)], 1) + torch.randn(128, 64)).requires_grad_()
    loss = cross_fitted_predictability(face, pose)
    loss.backward()
    assert pose.grad is None  # F_p is a detached target
    with torch.no_grad():
        assert cross_fitted_predictability(face - 2.0 * face.grad, pose) < loss
    with pytest.raises(ValueError, match="ridge"):
        cross_fitted_predictability(face, pose, ridge=0.0)
    with pytest.raises(ValueError, match="fold"):
        cross_fitted_predictability(face, pose, fold=torch.zeros(128))
    with pytest.raises(ValueError, match=">= 3 rows"):
        cross_fitted_predictability(face[:4], pose[:4])


def test_predictability_memory_lets_the_ridge_find_pose_spread_over_more_columns_than_a_batch_has_rows():
    from pclkit.losses import PredictabilityMemory, cross_fitted_predictability

    torch.manual_seed(0)
    mixing = torch.randn(200, 2)  # F_p read from a combination of all 200 columns of F_f

    def batch(rows=32):
        face = torch.randn(rows, 200)
        return face, face @ mixing + 0.1 * torch.randn(rows, 2)

    face, pose = batch()
    memory = PredictabilityMemory(batches=8)
    assert memory.rows() is None and len(memory) == 0
    alone = cross_fitted_predictability(face, pose).item()
    for _ in range(10):
        memory.push(*batch())
    past_face, past_pose = memory.rows()
    assert len(memory) == past_face.shape[0] == 8 * 32  # the oldest two batches were dropped
    assert torch.allclose(past_face.mean(0), torch.zeros(200), atol=1e-5)  # stored standardised
    assert not past_face.requires_grad
    face.requires_grad_()
    remembered = cross_fitted_predictability(face, pose, memory=(past_face, past_pose))
    assert alone < 0.3 and remembered.item() > 0.7  # 16 fit rows cannot find a 200-column direction; 272 can
    remembered.backward()
    assert face.grad is not None and face.grad.abs().sum() > 0
    # memory rows that do not carry the relation dilute it
    unrelated = (torch.randn(256, 200), torch.randn(256, 2))
    assert cross_fitted_predictability(face.detach(), pose, memory=unrelated) < remembered
    with pytest.raises(ValueError, match="memory rows"):
        cross_fitted_predictability(face, pose, memory=(past_face[:, :10], past_pose))
    with pytest.raises(ValueError, match="batches"):
        PredictabilityMemory(batches=0)


def test_flip_equivariance_matches_a_naive_loop_and_its_analytic_cases():
    from pclkit.losses import flip_equivariance, flip_signs

    torch.manual_seed(0)
    plain, mirror = torch.randn(32, 6) * 2 + 1, torch.randn(32, 6)
    # naive: standardise every column over the 2B rows, then average the squared residual per entry
    both = torch.cat([plain, mirror])
    expected = 0.0
    for j in range(6):
        column = both[:, j]
        mean, std = column.mean(), (column.var(unbiased=False) + 1e-5).sqrt()
        sign = -1.0 if j < 2 else 1.0
        for i in range(32):
            expected += ((mirror[i, j] - mean) / std - sign * (plain[i, j] - mean) / std).item() ** 2
    expected /= 2 * 32 * 6
    assert flip_equivariance(plain, mirror, odd=2).item() == pytest.approx(expected, rel=1e-5)
    assert flip_signs(4, 1).tolist() == [-1.0, 1.0, 1.0, 1.0]
    # analytic cases: an equivariant code scores 0 (also after scaling), a code that ignores the flip 1
    equivariant = plain * flip_signs(6, 3)
    assert flip_equivariance(plain, equivariant).item() == pytest.approx(0.0, abs=1e-6)
    assert flip_equivariance(0.01 * plain, 0.01 * equivariant).item() == pytest.approx(0.0, abs=1e-5)
    assert flip_equivariance(plain, plain).item() == pytest.approx(1.0, abs=1e-3)  # 2 on the odd half, 0 on the rest


def test_flip_equivariance_trains_both_codes_towards_the_sign_pattern_and_rejects_bad_input():
    from pclkit.losses import flip_equivariance

    torch.manual_seed(0)
    plain = torch.randn(64, 4, requires_grad=True)
    mirror = torch.randn(64, 4, requires_grad=True)
    loss = flip_equivariance(plain, mirror)
    loss.backward()
    assert plain.grad is not None and mirror.grad is not None and torch.isfinite(plain.grad).all()
    with torch.no_grad():
        assert flip_equivariance(plain - 5.0 * plain.grad, mirror - 5.0 * mirror.grad) < loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert flip_equivariance(plain.bfloat16(), mirror.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError, match="same shape"):
        flip_equivariance(plain, mirror[:, :3])
    with pytest.raises(ValueError, match="odd columns must be in 1..4, got 5"):
        flip_equivariance(plain, mirror, odd=5)
    with pytest.raises(ValueError, match="at least 2 rows"):
        flip_equivariance(plain[:1], mirror[:1])
