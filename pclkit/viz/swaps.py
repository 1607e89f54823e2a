"""Pose swaps of a trained model, as pictures: encode, decode swapped features, the paper's grid.

Pure functions on a model: the model runs in eval mode without gradients and
its train/eval flag is restored afterwards; every decoder call goes through
:func:`pclkit.swap.decode_pairs`. Reconstructions are D(F_f, F_p) of PCL
(Liu et al., CVPR 2023, Eq. 2); a model has a decoder when it has ``decode``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pclkit.swap import decode_pairs
from pclkit.viz.images import as_float_batch, to_numpy_image

__all__ = ["SWAP_GRID_ROWS", "decode_swap", "decode_swaps", "encode", "eval_mode", "feature_rows",
           "ground_truth_swap", "has_decoder", "mix_pose", "model_device", "render_swap", "require_decoder", "swap_grid"]

#: features of a batch, as ``model.forward_features`` returns them: ``{"F_s": (B, D_s), "F_f": (B, D), ...}``
Features = Mapping[str, Tensor]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode without gradients; its train/eval flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameterless module)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def has_decoder(model: nn.Module) -> bool:
    """Whether ``model`` has a decoder ``decode(F_f, F_p)`` (pose swaps need one)."""
    return callable(getattr(model, "decode", None))


def require_decoder(model: nn.Module, what: str = "a pose swap") -> None:
    """Raise ``ValueError`` unless ``model`` has a decoder ``decode(F_f, F_p)`` (``what`` names the caller)."""
    if not has_decoder(model):
        raise ValueError(f"{what} needs a model with a decoder D(F_f, F_p); {type(model).__name__} has none")


def encode(model: nn.Module, images: Tensor) -> dict[str, Tensor]:
    """``model.forward_features`` of ``(B, 3, H, W)`` or ``(3, H, W)`` images, eval mode, no grad.

    Returns the model's feature dict (``F_s (B, D_s)`` and, with branches,
    ``F_f (B, D)``, ``F_p (B, D)``) as float32 on the model's device.
    """
    batch = as_float_batch(images).to(model_device(model))
    with eval_mode(model):
        features = model.forward_features(batch)
    return {name: value.float() for name, value in features.items()}


def feature_rows(features: Features, rows: slice | int) -> dict[str, Tensor]:
    """The features of some rows (an int keeps the batch dimension: ``(1, D)``)."""
    index = slice(rows, rows + 1) if isinstance(rows, int) else rows
    return {name: value[index] for name, value in features.items()}


def decode_swaps(model: nn.Module, pairs: Sequence[tuple[Tensor, Tensor]]) -> list[Tensor]:
    """D(F_f, F_p) of each ``(face (B_i, D), pose (B_i, D))`` pair in one decoder call, eval mode, no grad.

    Returns one ``(B_i, 3, H, W)`` float32 tensor per pair, on CPU.
    """
    require_decoder(model)
    with eval_mode(model):
        return [image.float().cpu() for image in decode_pairs(model.decode, pairs)]


def mix_pose(pose_a: Tensor, pose_b: Tensor, alpha: float) -> Tensor:
    """Linear interpolation ``(1 - alpha) * pose_a + alpha * pose_b``; shapes ``(B, D)`` or ``(B, 3)``."""
    return torch.lerp(pose_a, pose_b, float(alpha))


def decode_swap(model: nn.Module, feats_a: Features, feats_b: Features, alpha: float, swap_face: bool = False) -> Tensor:
    """``D(F_f, (1 - alpha) F_p^a + alpha F_p^b)`` with ``F_f`` of ``a`` (of ``b`` when ``swap_face``).

    Features of batch size B -> images ``(B, 3, H, W)`` on CPU.
    """
    face = feats_b["F_f"] if swap_face else feats_a["F_f"]
    return decode_swaps(model, [(face, mix_pose(feats_a["F_p"], feats_b["F_p"], alpha))])[0]


def render_swap(model: nn.Module, image_a: Tensor, image_b: Tensor, alpha: float, swap_face: bool = False) -> np.ndarray:
    """Reconstruction with the pose feature moved from image ``a`` towards image ``b``.

    ``image_a``, ``image_b``: ``(3, H, W)`` in [0, 1] (or uint8). ``alpha = 0``
    gives ``D(F_f^a, F_p^a)``, ``alpha = 1`` gives ``D(F_f^a, F_p^b)``;
    ``swap_face`` takes ``F_f`` from ``b`` instead. Pure: inputs and the model's
    train/eval flag are left unchanged. Returns ``(H, W, 3)`` float32 in [0, 1].
    """
    feats = encode(model, torch.stack([as_float_batch(image_a)[0], as_float_batch(image_b)[0]]))
    reconstruction = decode_swap(model, feature_rows(feats, 0), feature_rows(feats, 1), alpha, swap_face)
    return to_numpy_image(reconstruction[0])


#: row keys of :func:`swap_grid`, in the paper's order, with their figure labels
SWAP_GRID_ROWS: dict[str, str] = {
    "s": "(a) $s$",
    "s_hat": "$\\hat{s}$",
    "ff_fp": "(b) $D(F_f, F_p)$",
    "ff_fphat": "(c) $D(F_f, \\hat{F}_p)$",
    "ff": "(d) $D(F_f, 0)$",
    "fp": "(e) $D(0, F_p)$",
    "fphat": "(f) $D(0, \\hat{F}_p)$",
}


def swap_grid(model: nn.Module, images: Tensor, images_hat: Tensor) -> dict[str, Tensor]:
    """The paper's reconstruction grid (Liu et al., CVPR 2023, Fig. 4) for faces ``s`` and their views ``ŝ``.

    ``images``, ``images_hat``: ``(B, 3, H, W)`` in [0, 1]. Returns the rows of
    :data:`SWAP_GRID_ROWS` (same keys, same order), each ``(B, 3, H, W)`` on CPU:
    s, ŝ, D(F_f, F_p), D(F_f, F_p̂), D(F_f, 0), D(0, F_p), D(0, F_p̂) -- the five
    reconstructions in one decoder call.
    """
    require_decoder(model, "the swap grid")
    views = as_float_batch(images)
    views_hat = as_float_batch(images_hat)
    if views.shape != views_hat.shape:
        raise ValueError(f"images {tuple(views.shape)} and images_hat {tuple(views_hat.shape)} differ in shape")
    feats, feats_hat = encode(model, views), encode(model, views_hat)
    face, pose, pose_hat = feats["F_f"], feats["F_p"], feats_hat["F_p"]
    no_face, no_pose = torch.zeros_like(face), torch.zeros_like(pose)  # F_p may be narrower than F_f
    pairs = {"ff_fp": (face, pose), "ff_fphat": (face, pose_hat), "ff": (face, no_pose), "fp": (no_face, pose),
             "fphat": (no_face, pose_hat)}
    decoded = dict(zip(pairs, decode_swaps(model, list(pairs.values()))))
    return {"s": views.cpu(), "s_hat": views_hat.cpu(), **decoded}


def ground_truth_swap(face_from: Any, pose_a: Any, pose_b: Any, alpha: float, size: int = 64) -> np.ndarray:
    """SynthFaces re-render of one face at an interpolated head pose.

    ``face_from``, ``pose_a``, ``pose_b``: single-sample
    :class:`pclkit.data.synthfaces.Factors`. Renders identity, expression, AUs
    and nuisance of ``face_from`` at pose ``(1 - alpha) pose_a + alpha pose_b``
    (degrees) via ``render(Factors.combine(...))``. Returns ``(size, size, 3)``.
    """
    from pclkit.data.synthfaces import Factors, render

    pose = mix_pose(pose_a.pose.float(), pose_b.pose.float(), alpha)
    target = Factors.combine(face_from, pose_a.with_pose(pose))
    return to_numpy_image(render(target, size=size)[0])
