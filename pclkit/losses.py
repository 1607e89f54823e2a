"""Losses of Pose-disentangled Contrastive Learning (Liu et al., CVPR 2023).

The total objective of the paper (Sec. 3) is

    L = L_dis + L_orth + alpha_pose * L_pose + alpha_face * L_face,

with alpha from Dynamic Weight Average (Liu et al., MTAN, CVPR 2019).

* :func:`nt_xent` -- L_face, SimCLR NT-Xent (Chen et al., ICML 2020, Eq. 1).
* :func:`pose_contrastive` -- L_pose, the pose-related contrastive loss.
* :func:`orthogonality` -- L_orth, DSN difference loss or the paper's dot form.
* :func:`swap_reconstruction` -- L_dis, the four L1 swap-reconstruction terms.
* :class:`DynamicWeightAverage` -- the alpha of the contrastive terms.
* :func:`mix_negatives` -- optional Beta mixing of pose negatives (reference code detail).

Every contrastive/similarity loss is computed in float32 even under autocast:
bf16 has an 8-bit mantissa, and logits divided by tau = 0.07 lose too much
precision in log-sum-exp.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, ContextManager, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "nt_xent",
    "pose_contrastive",
    "orthogonality",
    "swap_reconstruction",
    "SwapReconstruction",
    "SWAP_TERM_NAMES",
    "DynamicWeightAverage",
    "mix_negatives",
    "sample_beta",
]


# ---------------------------------------------------------------------------
# input checks


def _check_matrix(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, D) tensor, got shape {shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")


def _check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _autocast_off(x: Tensor) -> ContextManager:
    """Disable autocast for the device of ``x`` so matmuls in the loss stay float32."""
    if x.device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def _unit_rows_fp32(x: Tensor) -> Tensor:
    """L2-normalise the last dimension in float32 (autocast-proof)."""
    return F.normalize(x.float(), dim=-1)


# ---------------------------------------------------------------------------
# L_face: NT-Xent


def nt_xent(z_a: Tensor, z_b: Tensor, temperature: float = 0.07) -> Tensor:
    """SimCLR NT-Xent loss (Chen et al., ICML 2020, Eq. 1), the paper's L_face.

    The 2B rows ``z = [z_a; z_b]`` are L2-normalised; for row k with positive
    k' (its other view)

        l(k) = -log( exp(sim(z_k, z_k') / tau) / sum_{m != k} exp(sim(z_k, z_m) / tau) ),

    and the loss is the **mean over the 2B rows** -- the convention of lightly
    and solo-learn. The original TF SimCLR code sums the two directions and
    averages over B only, i.e. reports 2x this value.

    Args:
        z_a, z_b: (B, D) projections of the two views; row i of each is a pair.
        temperature: tau (0.07 in the PCL reference code).

    Returns:
        scalar float32 loss. Identical embeddings everywhere give
        ``log(2B - 1)`` (the positive is one of 2B-1 equally likely rows).
    """
    _check_matrix("z_a", z_a)
    _check_matrix("z_b", z_b)
    _check_same_shape("z_a", z_a, "z_b", z_b)
    _check_temperature(temperature)
    batch = z_a.shape[0]
    with _autocast_off(z_a):
        z = _unit_rows_fp32(torch.cat([z_a, z_b], dim=0))  # (2B, D)
        logits = z @ z.T / temperature  # (2B, 2B)
        # a row is never its own negative
        self_mask = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        rows = torch.arange(2 * batch, device=z.device)
        positive_of_row = (rows + batch) % (2 * batch)
        return F.cross_entropy(logits, positive_of_row)


# ---------------------------------------------------------------------------
# L_pose: pose-related contrastive loss


def pose_contrastive(
    anchor: Tensor,
    positive: Tensor,
    negatives: Tensor,
    temperature: float = 0.07,
    positive_in_denominator: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Pose-related contrastive loss L_pose of PCL (Liu et al., CVPR 2023, Eq. 4-5).

    For sample i with anchor p_i, positive p_j (another appearance-only view of
    the same image, same pose) and its OWN negatives p̂_{i,1..M} (pose-changed
    views of the same image i):

        l_p(i, j) = -log( exp(s(p_i, p_j)/tau)
                          / (exp(s(p_i, p_j)/tau) + sum_m exp(s(p_i, p̂_{i,m})/tau)) ),
        L_pose(i) = l_p(i, j) + l_p(j, i),

    where ``s`` is cosine similarity and l_p(j, i) uses the positive as anchor
    against the same negatives. The positive is in the denominator as in the
    public reference code (standard InfoNCE); the paper's printed formula has
    only the negatives there -- ``positive_in_denominator=False`` gives that
    form. Unlike the reference code, which groups negatives across the wrong
    samples, each anchor only ever sees the negatives of its own image.

    Args:
        anchor, positive: (B, D) projected pose features of the two positive views.
        negatives: (B, M, D); ``negatives[i]`` are the M pose-changed views of image i.
        temperature: tau.
        positive_in_denominator: True = reference code / InfoNCE, False = paper formula.
        reduction: ``"mean"`` (batch mean, scalar) or ``"none"`` ((B,) per-sample L_pose(i)).

    Returns:
        float32 scalar (or (B,) for ``reduction="none"``).
    """
    _check_matrix("anchor", anchor)
    _check_matrix("positive", positive)
    _check_same_shape("anchor", anchor, "positive", positive)
    if negatives.dim() != 3 or negatives.shape[0] != anchor.shape[0] or negatives.shape[2] != anchor.shape[1]:
        raise ValueError(
            f"negatives must be (B, M, D) = ({anchor.shape[0]}, M, {anchor.shape[1]}) "
            f"to match anchor {tuple(anchor.shape)}, got {tuple(negatives.shape)}"
        )
    if negatives.shape[1] == 0:
        raise ValueError("negatives has M = 0 pose-changed views; at least one is needed")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    _check_temperature(temperature)

    with _autocast_off(anchor):
        return _pose_contrastive_fp32(anchor, positive, negatives, temperature, positive_in_denominator, reduction)


def _pose_contrastive_fp32(anchor: Tensor, positive: Tensor, negatives: Tensor, temperature: float,
                           positive_in_denominator: bool, reduction: str) -> Tensor:
    anchor_n = _unit_rows_fp32(anchor)  # (B, D)
    positive_n = _unit_rows_fp32(positive)  # (B, D)
    negatives_n = _unit_rows_fp32(negatives)  # (B, M, D)

    def one_direction(query: Tensor, key: Tensor) -> Tensor:  # (B,) l_p(query -> key)
        pos_logit = (query * key).sum(-1, keepdim=True) / temperature  # (B, 1)
        # batched per-sample product: query i only meets negatives[i]
        neg_logits = torch.einsum("bd,bmd->bm", query, negatives_n) / temperature  # (B, M)
        if positive_in_denominator:
            denominator = torch.logsumexp(torch.cat([pos_logit, neg_logits], dim=1), dim=1)
        else:
            denominator = torch.logsumexp(neg_logits, dim=1)
        return denominator - pos_logit.squeeze(1)

    per_sample = one_direction(anchor_n, positive_n) + one_direction(positive_n, anchor_n)
    return per_sample.mean() if reduction == "mean" else per_sample


def sample_beta(shape: Sequence[int], alpha: float, beta: float, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> Tensor:
    """Beta(alpha, beta) samples drawn from ``generator`` (reproducible).

    ``torch.distributions.Beta`` cannot take a generator, so this draws
    X ~ Gamma(alpha), Y ~ Gamma(beta) with Marsaglia & Tsang's method
    (ACM TOMS 2000) from the generator's normals/uniforms and returns X/(X+Y).
    """
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be > 0, got ({alpha}, {beta})")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    x = _sample_gamma(tuple(shape), alpha, generator, device)
    y = _sample_gamma(tuple(shape), beta, generator, device)
    return x / (x + y)


def _sample_gamma(shape: tuple[int, ...], concentration: float, generator: torch.Generator | None,
                  device: torch.device | str) -> Tensor:
    """Gamma(concentration, 1) by Marsaglia-Tsang rejection, vectorised."""
    boost = concentration < 1.0
    # for k < 1 sample Gamma(k + 1) and scale by U^(1/k) (Marsaglia & Tsang, Sec. 6)
    shape_param = concentration + 1.0 if boost else concentration
    d = shape_param - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    numel = math.prod(shape)
    out = torch.empty(numel, device=device)
    todo = torch.arange(numel, device=device)
    while todo.numel() > 0:
        n = todo.numel()
        x = torch.randn(n, generator=generator, device=device)
        u = torch.rand(n, generator=generator, device=device)
        v = (1.0 + c * x) ** 3
        ok = v > 0
        log_v = torch.log(v.clamp_min(1e-30))
        accept = ok & (torch.log(u.clamp_min(1e-30)) < 0.5 * x * x + d - d * v + d * log_v)
        out[todo[accept]] = d * v[accept]
        todo = todo[~accept]
    if boost:
        u = torch.rand(numel, generator=generator, device=device)
        out = out * u.clamp_min(1e-30) ** (1.0 / concentration)
    return out.reshape(shape)


def mix_negatives(negatives: Tensor, generator: torch.Generator | None = None, alpha: float = 1.6) -> Tensor:
    """Mix each pose negative with another negative of the SAME sample (reference-code detail).

    ``mixed[i, m] = lam * negatives[i, m] + (1 - lam) * negatives[i, m']`` with
    lam ~ Beta(alpha, alpha) per negative and m' != m drawn uniformly among the
    sample's other negatives. Not in the paper; off by default in the trainer.

    Args:
        negatives: (B, M, D), M >= 2.
        generator: torch.Generator for lam and m' (its device is used).
        alpha: Beta concentration (1.6 in the reference).

    Returns:
        (B, M, D) tensor, same dtype/device.
    """
    if negatives.dim() != 3:
        raise ValueError(f"negatives must be (B, M, D), got shape {tuple(negatives.shape)}")
    batch, num_neg, _ = negatives.shape
    if num_neg < 2:
        raise ValueError(f"mixing needs at least 2 negatives per sample, got M = {num_neg}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    lam = sample_beta((batch, num_neg, 1), alpha, alpha, generator, gen_device)
    # an offset in [1, M-1] guarantees a partner different from the negative itself
    offset = torch.randint(1, num_neg, (batch, num_neg), generator=generator, device=gen_device)
    partner = (torch.arange(num_neg, device=gen_device) + offset) % num_neg  # (B, M)
    lam = lam.to(device=negatives.device, dtype=negatives.dtype)
    partner = partner.to(negatives.device)
    partner_feats = torch.gather(negatives, 1, partner.unsqueeze(-1).expand_as(negatives))
    return lam * negatives + (1.0 - lam) * partner_feats


# ---------------------------------------------------------------------------
# L_orth


#: accepted ``mode`` values of :func:`orthogonality`
ORTHOGONALITY_MODES: tuple[str, ...] = ("dsn", "dot", "cosine", "xcorr")


def orthogonality(face: Tensor, pose: Tensor, mode: str = "dsn", eps: float = 1e-6) -> Tensor:
    """Orthogonality loss L_orth between the face and pose branches.

    ``mode="dsn"`` (default, what the reference code uses): the difference loss
    of Domain Separation Networks (Bousmalis et al., NeurIPS 2016, Eq. 6),

        L = mean_{a,b} ( (F̃_fᵀ F̃_p)_{ab} )²,

    where F̃ is the feature centred over the batch and L2-normalised per row.
    The mean runs over the D_f x D_p entries. Unlike the reference, the row
    norms are not detached (the DSN formulation differentiates through them).

    ``mode="dot"``: the paper's formula (Liu et al., CVPR 2023, Eq. 3),
    (1/N) sum_i (F_f,i · F_p,i)², per-sample squared dot product of the raw
    features (scale-dependent, as written in the paper).

    ``mode="cosine"``: the paper's per-sample formula on L2-normalised rows,
    (1/N) sum_i cos(F_f,i, F_p,i)², in [0, 1]. Why it exists: the DSN mean over
    D_f x D_p entries gives gradients ~10^4 times smaller than the other terms
    for D ~ 1000, so in the joint sum it does not fall (measured on synth_cpu:
    post-ReLU F_f, F_p kept a mean cosine of 0.32 while DSN read 1e-3), and the
    raw "dot" form scales with the feature norm (~10^4) and swamps the sum.

    ``mode="xcorr"`` (this project's option): the squared cross-*correlation*
    of the two branches' feature columns over the batch,

        L = (1/D_f) sum_{a,b} ( (1/B) sum_i ẑ_f,ia ẑ_p,ib )²,

    with ẑ each column standardised over the batch (as Barlow Twins' C matrix,
    Zbontar et al., ICML 2021, but between the two branches and driven to 0).
    When every F_f column is uncorrelated with every F_p column, whatever F_p
    encodes linearly (the pose) cannot be read linearly from F_f. Summing over
    D_p and dividing by D_f keeps its gradient comparable to the other terms
    (the DSN mean over D_f x D_p entries does not). Its floor for independent
    features is about D_p / B (sampling noise of a B-row batch).

    Args:
        face, pose: (B, D) features (same B; DSN and xcorr allow different D, dot and cosine do not).
        mode: ``"dsn"``, ``"dot"``, ``"cosine"`` or ``"xcorr"``.

    Returns:
        float32 scalar; 0 when the branches are orthogonal.
    """
    _check_matrix("face", face)
    _check_matrix("pose", pose)
    if face.shape[0] != pose.shape[0]:
        raise ValueError(f"face {tuple(face.shape)} and pose {tuple(pose.shape)} must have the same batch size")
    if mode not in ORTHOGONALITY_MODES:
        raise ValueError(f"orthogonality mode must be one of {ORTHOGONALITY_MODES}, got {mode!r}")
    if mode not in ("dsn", "xcorr"):
        _check_same_shape("face", face, "pose", pose)
    with _autocast_off(face):
        return _orthogonality_fp32(face.float(), pose.float(), mode, eps)


def _orthogonality_fp32(face32: Tensor, pose32: Tensor, mode: str, eps: float) -> Tensor:
    if mode == "dsn":
        face_c = face32 - face32.mean(dim=0, keepdim=True)
        pose_c = pose32 - pose32.mean(dim=0, keepdim=True)
        face_n = face_c / (face_c.norm(dim=1, keepdim=True) + eps)
        pose_n = pose_c / (pose_c.norm(dim=1, keepdim=True) + eps)
        return (face_n.T @ pose_n).pow(2).mean()
    if mode == "xcorr":
        face_z = (face32 - face32.mean(dim=0, keepdim=True)) / (face32.std(dim=0, keepdim=True) + eps)
        pose_z = (pose32 - pose32.mean(dim=0, keepdim=True)) / (pose32.std(dim=0, keepdim=True) + eps)
        corr = face_z.T @ pose_z / face32.shape[0]  # (D_f, D_p)
        return corr.pow(2).sum() / face32.shape[1]
    if mode == "cosine":
        face32 = face32 / (face32.norm(dim=1, keepdim=True) + eps)
        pose32 = pose32 / (pose32.norm(dim=1, keepdim=True) + eps)
    return (face32 * pose32).sum(dim=1).pow(2).mean()


# ---------------------------------------------------------------------------
# L_dis


#: order of the four L_dis terms in :class:`SwapReconstruction`
SWAP_TERM_NAMES: tuple[str, ...] = ("recon_s", "swap_to_s_hat", "swap_to_s", "recon_s_hat")


class SwapReconstruction(NamedTuple):
    """Result of :func:`swap_reconstruction`.

    total: scalar float32, the sum of the four terms (L_dis).
    terms: (4,) float32, in the order of :data:`SWAP_TERM_NAMES`.
    reconstructions: (4, B, 3, H, W) decoder outputs, same order:
        D(F_f, F_p) -> s, D(F_f, F_p̂) -> ŝ, D(F_f̂, F_p) -> s, D(F_f̂, F_p̂) -> ŝ.
    """

    total: Tensor
    terms: Tensor
    reconstructions: Tensor

    def named_terms(self) -> dict[str, float]:
        """The four terms as plain floats keyed by :data:`SWAP_TERM_NAMES` (for logging)."""
        return dict(zip(SWAP_TERM_NAMES, self.terms.detach().tolist()))


def swap_reconstruction(
    images: Tensor,
    images_hat: Tensor,
    face: Tensor,
    face_hat: Tensor,
    pose: Tensor,
    pose_hat: Tensor,
    decoder: Callable[[Tensor, Tensor], Tensor],
) -> SwapReconstruction:
    """Pose-disentangled swap reconstruction loss L_dis (Liu et al., CVPR 2023, Eq. 2).

        L_dis = |s - D(F_f, F_p)| + |ŝ - D(F_f, F_p̂)| + |s - D(F_f̂, F_p)| + |ŝ - D(F_f̂, F_p̂)|

    Each reconstruction takes its POSE feature from the view it must reproduce
    and its face feature from either view. Each term is the mean absolute error
    over all B*3*H*W pixels (``F.l1_loss`` with mean reduction, as the reference).

    The four decoder calls are batched into one call on 4B rows. With a
    BatchNorm decoder in training mode this normalises over all 4B
    reconstructions at once, whereas the reference's four separate calls
    normalise each group of B separately.

    Args:
        images, images_hat: (B, 3, H, W) targets s and ŝ (clean, in [0, 1]).
        face, face_hat: (B, D) face features F_f, F_f̂ of s and ŝ.
        pose, pose_hat: (B, D) pose features F_p, F_p̂ of s and ŝ.
        decoder: callable (F_f (N, D), F_p (N, D)) -> (N, 3, H, W), e.g. ``PCLModel.decode``.

    Returns:
        :class:`SwapReconstruction` (total, terms (4,), reconstructions (4, B, 3, H, W)).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    _check_same_shape("images", images, "images_hat", images_hat)
    for name, feat in (("face", face), ("face_hat", face_hat), ("pose", pose), ("pose_hat", pose_hat)):
        _check_matrix(name, feat)
        if feat.shape[0] != images.shape[0]:
            raise ValueError(f"{name} has batch {feat.shape[0]} but images have batch {images.shape[0]}")
    _check_same_shape("face", face, "face_hat", face_hat)
    _check_same_shape("pose", pose, "pose_hat", pose_hat)

    batch = images.shape[0]
    face_in = torch.cat([face, face, face_hat, face_hat], dim=0)  # (4B, D)
    pose_in = torch.cat([pose, pose_hat, pose, pose_hat], dim=0)  # (4B, D)
    recon = decoder(face_in, pose_in)
    if recon.shape[1:] != images.shape[1:] or recon.shape[0] != 4 * batch:
        raise ValueError(
            f"decoder returned {tuple(recon.shape)}, expected ({4 * batch}, {', '.join(map(str, images.shape[1:]))})"
        )
    recon = recon.reshape(4, *images.shape)  # (4, B, 3, H, W)
    targets = torch.stack([images, images_hat, images, images_hat]).float()
    with _autocast_off(images):
        terms = (recon.float() - targets).abs().flatten(1).mean(dim=1)  # (4,)
    return SwapReconstruction(total=terms.sum(), terms=terms, reconstructions=recon)


# ---------------------------------------------------------------------------
# Dynamic Weight Average


class DynamicWeightAverage:
    """Dynamic Weight Average (Liu, Johns & Davison, MTAN, CVPR 2019, Eq. 7).

    With per-epoch mean losses L_k(t):

        w_k(t-1) = L_k(t-1) / L_k(t-2),
        alpha_k(t) = K * exp(w_k(t-1) / T) / sum_j exp(w_j(t-1) / T),

    K = ``num_losses``, T = ``temperature``; alpha = 1 for the first two epochs
    (fewer than two epochs of history). Call :meth:`update` once at the end of
    each epoch with that epoch's mean losses; read :attr:`weights` during the
    next epoch. PCL weights (L_pose, L_face) with K = 2, T = 2.
    """

    def __init__(self, num_losses: int = 2, temperature: float = 2.0) -> None:
        if num_losses < 1:
            raise ValueError(f"num_losses must be >= 1, got {num_losses}")
        _check_temperature(temperature)
        self.num_losses = int(num_losses)
        self.temperature = float(temperature)
        self._history: list[list[float]] = []  # last two epochs' mean losses, oldest first

    def update(self, epoch_mean_losses: Sequence[float] | Tensor) -> None:
        """Record one epoch's mean losses ((K,) sequence or tensor, all finite and > 0)."""
        values = [float(v) for v in (epoch_mean_losses.detach().flatten().tolist()
                                     if isinstance(epoch_mean_losses, Tensor) else epoch_mean_losses)]
        if len(values) != self.num_losses:
            raise ValueError(f"expected {self.num_losses} epoch mean losses, got {len(values)}")
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"epoch mean losses must be finite and > 0 for DWA ratios, got {values}")
        self._history = (self._history + [values])[-2:]

    @property
    def weights(self) -> Tensor:
        """(K,) float32 tensor alpha_k; ones until two epochs were recorded."""
        if len(self._history) < 2:
            return torch.ones(self.num_losses)
        previous, before = torch.tensor(self._history[1]), torch.tensor(self._history[0])
        ratios = previous / before
        return self.num_losses * torch.softmax(ratios / self.temperature, dim=0)

    def state_dict(self) -> dict[str, object]:
        """Plain ints/floats/tensor: loadable with ``torch.load(weights_only=True)``."""
        history = torch.tensor(self._history, dtype=torch.float64).reshape(-1, self.num_losses)
        return {"num_losses": self.num_losses, "temperature": self.temperature, "history": history}

    def load_state_dict(self, state: dict[str, object]) -> None:
        missing = {"num_losses", "temperature", "history"} - set(state)
        if missing:
            raise KeyError(f"DWA state is missing keys {sorted(missing)}; has {sorted(state)}")
        if int(state["num_losses"]) != self.num_losses:
            raise ValueError(f"DWA state has {state['num_losses']} losses, this instance {self.num_losses}")
        self.temperature = float(state["temperature"])
        history = torch.as_tensor(state["history"], dtype=torch.float64).reshape(-1, self.num_losses)
        self._history = history.tolist()[-2:]

    def __repr__(self) -> str:
        return (f"DynamicWeightAverage(num_losses={self.num_losses}, temperature={self.temperature}, "
                f"history={self._history}, weights={self.weights.tolist()})")
