"""L_dis: the pose-disentangled swap reconstruction loss (PCL, Liu et al., CVPR 2023, Eq. 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from pclkit.image_metrics import ssim
from pclkit.losses._checks import autocast_off, check_matrix, check_same_shape
from pclkit.swap import decode_pairs, swap_quad

#: order of the four L_dis terms in :class:`SwapReconstruction`
SWAP_TERM_NAMES: tuple[str, ...] = ("recon_s", "swap_to_s_hat", "swap_to_s", "recon_s_hat")
#: the two swap terms, the only ones with ``swaps_only=True``
SWAP_ONLY_TERM_NAMES: tuple[str, ...] = ("swap_to_s_hat", "swap_to_s")


class SwapReconstruction(NamedTuple):
    """Result of :func:`swap_reconstruction`.

    total: scalar float32, the sum of the terms (L_dis).
    terms: (4,) float32, in the order of :data:`SWAP_TERM_NAMES` ((2,) in the order of
        :data:`SWAP_ONLY_TERM_NAMES` with ``swaps_only``).
    reconstructions: (4, B, 3, H, W) decoder outputs, same order:
        D(F_f, F_p) -> s, D(F_f, F_p̂) -> ŝ, D(F_f̂, F_p) -> s, D(F_f̂, F_p̂) -> ŝ
        ((2, B, 3, H, W), the two middle ones, with ``swaps_only``).
    """

    total: Tensor
    terms: Tensor
    reconstructions: Tensor

    def named_terms(self) -> dict[str, float]:
        """The terms as plain floats keyed by :data:`SWAP_TERM_NAMES` (or :data:`SWAP_ONLY_TERM_NAMES`)."""
        names = SWAP_TERM_NAMES if len(self.terms) == len(SWAP_TERM_NAMES) else SWAP_ONLY_TERM_NAMES
        return dict(zip(names, self.terms.detach().tolist()))


def swap_reconstruction(
    images: Tensor,
    images_hat: Tensor,
    face: Tensor,
    face_hat: Tensor,
    pose: Tensor,
    pose_hat: Tensor,
    decoder: Callable[[Tensor, Tensor], Tensor],
    swaps_only: bool = False,
    ssim_weight: float = 0.0,
) -> SwapReconstruction:
    """Pose-disentangled swap reconstruction loss L_dis (Liu et al., CVPR 2023, Eq. 2).

        L_dis = |s - D(F_f, F_p)| + |ŝ - D(F_f, F_p̂)| + |s - D(F_f̂, F_p)| + |ŝ - D(F_f̂, F_p̂)|

    Each reconstruction takes its POSE feature from the view it must reproduce
    and its face feature from either view. Each term is the mean absolute error
    over all B*3*H*W pixels (``F.l1_loss`` with mean reduction, as the reference).

    The four decoder calls are batched into one call on 4B rows (:func:`pclkit.swap.swap_quad`). With a
    BatchNorm decoder in training mode this normalises over all 4B
    reconstructions at once, whereas the reference's four separate calls
    normalise each group of B separately.

    ``swaps_only`` (this project's option, not the paper's) keeps the two swap terms
    |ŝ - D(F_f, F_p̂)| + |s - D(F_f̂, F_p)|: half the decoder calls. Each is still a
    reconstruction of a view of the same face, so the decoder learns the same task
    from half as many decodes, and a wider decoder fits the same step time.

    ``ssim_weight`` w > 0 (this project's option, not the paper's) adds a structural term to
    each reconstruction, |x - D| + w (1 - SSIM(x, D)) with SSIM averaged over the batch
    (Wang et al., IEEE TIP 2004; mixing L1 with SSIM as in Zhao et al., IEEE TCI 2017): L1
    alone is content with a blurred average, SSIM asks for local contrast and structure.

    Args:
        images, images_hat: (B, 3, H, W) targets s and ŝ (clean, in [0, 1]).
        face, face_hat: (B, D) face features F_f, F_f̂ of s and ŝ.
        pose, pose_hat: (B, D_p) pose features F_p, F_p̂ of s and ŝ (D_p = D unless ``model.pose_dim``).
        decoder: callable (F_f (N, D), F_p (N, D_p)) -> (N, 3, H, W), e.g. ``PCLModel.decode``.
        swaps_only: only the two swap terms (see above).
        ssim_weight: weight w of the structural term (0: the paper's plain L1).

    Returns:
        :class:`SwapReconstruction` (total, terms (4,) or (2,), reconstructions (4 or 2, B, 3, H, W)).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    check_same_shape("images", images, "images_hat", images_hat)
    for name, feat in (("face", face), ("face_hat", face_hat), ("pose", pose), ("pose_hat", pose_hat)):
        check_matrix(name, feat)
        if feat.shape[0] != images.shape[0]:
            raise ValueError(f"{name} has batch {feat.shape[0]} but images have batch {images.shape[0]}")
    check_same_shape("face", face, "face_hat", face_hat)
    check_same_shape("pose", pose, "pose_hat", pose_hat)

    if ssim_weight < 0:
        raise ValueError(f"ssim_weight must be >= 0, got {ssim_weight}")
    if swaps_only:
        recon = torch.stack(decode_pairs(decoder, [(face, pose_hat), (face_hat, pose)]))  # (2, B, 3, H, W)
        targets = torch.stack([images_hat, images])
    else:
        recon = swap_quad(decoder, face, face_hat, pose, pose_hat)  # (4, B, 3, H, W), one decoder call
        targets = torch.stack([images, images_hat, images, images_hat])
    if recon.shape[2:] != images.shape[1:]:
        raise ValueError(f"decoder returned images {tuple(recon.shape[2:])}, expected {tuple(images.shape[1:])}")
    targets = targets.float()
    with autocast_off(images):
        terms = (recon.float() - targets).abs().flatten(1).mean(dim=1)  # (4,) or (2,)
        if ssim_weight > 0:
            similarity = ssim(recon.float().flatten(0, 1), targets.flatten(0, 1)).view(recon.shape[:2])  # (T, B)
            terms = terms + ssim_weight * (1.0 - similarity.mean(dim=1))
    return SwapReconstruction(total=terms.sum(), terms=terms, reconstructions=recon)
