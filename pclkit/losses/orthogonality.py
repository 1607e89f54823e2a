"""L_orth: orthogonality of the face and pose branches (PCL, Liu et al., CVPR 2023, Eq. 3)."""

from __future__ import annotations

from torch import Tensor

from pclkit.losses._checks import autocast_off, check_matrix, check_same_shape, standardised_columns

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
    check_matrix("face", face)
    check_matrix("pose", pose)
    if face.shape[0] != pose.shape[0]:
        raise ValueError(f"face {tuple(face.shape)} and pose {tuple(pose.shape)} must have the same batch size")
    if mode not in ORTHOGONALITY_MODES:
        raise ValueError(f"orthogonality mode must be one of {ORTHOGONALITY_MODES}, got {mode!r}")
    if mode not in ("dsn", "xcorr"):
        check_same_shape("face", face, "pose", pose)
    with autocast_off(face):
        return _orthogonality_fp32(face.float(), pose.float(), mode, eps)


def _orthogonality_fp32(face32: Tensor, pose32: Tensor, mode: str, eps: float) -> Tensor:
    if mode == "dsn":
        face_c = face32 - face32.mean(dim=0, keepdim=True)
        pose_c = pose32 - pose32.mean(dim=0, keepdim=True)
        face_n = face_c / (face_c.norm(dim=1, keepdim=True) + eps)
        pose_n = pose_c / (pose_c.norm(dim=1, keepdim=True) + eps)
        return (face_n.T @ pose_n).pow(2).mean()
    if mode == "xcorr":
        face_z, pose_z = standardised_columns(face32, eps), standardised_columns(pose32, eps)
        corr = face_z.T @ pose_z / face32.shape[0]  # (D_f, D_p)
        return corr.pow(2).sum() / face32.shape[1]
    if mode == "cosine":
        face32 = face32 / (face32.norm(dim=1, keepdim=True) + eps)
        pose32 = pose32 / (pose32.norm(dim=1, keepdim=True) + eps)
    return (face32 * pose32).sum(dim=1).pow(2).mean()
