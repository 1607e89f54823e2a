"""L_cyc: a cross-identity swap must re-encode to its parts (this project's option, not in PCL).

PCL's L_dis (Liu et al., CVPR 2023, Eq. 2) only ever decodes features of two views of
the *same* face, while the method is judged -- and the explorer used -- on swaps across
faces, D(F_f^A, F_p^B). L_cyc decodes such a swap inside training and asks the encoder
to read the parts back from it, in the spirit of FaceCycle's cycle consistency (Chang
et al., CVPR 2021):

    x_i = D(F_f^i, F_p^{pi(i)}),   (F_f', F_p') = E(x),
    L_cyc = L_inv(F_f', sg(F_f)) + L_inv(F_p', sg(F_p[pi])),

with pi pairing every image with the previous one of the batch (another face), sg the
stop-gradient (the targets do not move towards the swap: no collapse through them) and
L_inv the centred cosine of :func:`pclkit.losses.branch_invariance`. A swap that carries
B's appearance in its face, or A's head pose, costs; the gradient reaches the decoder
(through x) and the encoder (through x and E). One extra decode and one extra encoder
pass of B images per step.

With ``train_decoder=False`` the swaps are decoded without a gradient: x is a fixed picture
of face A at pose B that the encoder must read as (F_f^A, F_p^B) -- a cross-identity pose
positive made by the decoder, which can no longer hide the codes in noise patterns for the
encoder to read (what the trained form did; docs/results/recipe_search.md, lever 5). The
decoder runs in its current mode, so in training its BatchNorm statistics also see these swaps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from pclkit.losses._checks import check_matrix
from pclkit.losses.branch_invariance import branch_invariance


def swap_cycle(
    face: Tensor,
    pose: Tensor,
    decoder: Callable[[Tensor, Tensor], Tensor],
    encoder: Callable[[Tensor], tuple[Tensor, Tensor]],
    train_decoder: bool = True,
    face_term: bool = True,
) -> Tensor:
    """L_cyc of a batch (module docstring).

    Args:
        face: (B, D) face features F_f, B >= 2.
        pose: (B, D_p) pose features F_p of the same images.
        decoder: (F_f (N, D), F_p (N, D_p)) -> images (N, 3, H, W), e.g. ``PCLModel.decode``.
        encoder: images (N, 3, H, W) -> (F_f (N, D), F_p (N, D_p)).
        train_decoder: False decodes the swaps under ``torch.no_grad`` (no gradient reaches the
            decoder or, through it, the first encoder pass).
        face_term: False drops L_inv(F_f', sg(F_f)): only the pose must be read back.

    Returns:
        float32 scalar in [0, 4] ([0, 2] without the face term).

    Example:
        >>> import torch
        >>> decoder = lambda f, p: torch.cat([f, p], 1)[:, :, None, None]  # "images" that hold both codes
        >>> encoder = lambda x: (x[:, :8, 0, 0], x[:, 8:, 0, 0])
        >>> float(swap_cycle(torch.randn(6, 8), torch.randn(6, 4), decoder, encoder)) < 1e-5
        True
    """
    check_matrix("face", face)
    check_matrix("pose", pose)
    if face.shape[0] != pose.shape[0] or face.shape[0] < 2:
        raise ValueError(f"face and pose need the same batch of >= 2 images, got {face.shape[0]} and {pose.shape[0]}")
    partner = torch.roll(torch.arange(face.shape[0], device=face.device), 1)  # image i takes the pose of i - 1
    partner_pose = pose.index_select(0, partner)
    if train_decoder:
        swaps = decoder(face, partner_pose)
    else:
        with torch.no_grad():
            swaps = decoder(face.detach(), partner_pose.detach())
    face_again, pose_again = encoder(swaps)
    pose_loss = branch_invariance(pose_again, partner_pose.detach())
    return branch_invariance(face_again, face.detach()) + pose_loss if face_term else pose_loss
