"""Input checks and float32 helpers shared by the losses."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor


def check_matrix(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, D) tensor, got shape {shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")


def check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def autocast_off(x: Tensor) -> contextlib.AbstractContextManager:
    """Disable autocast for the device of ``x`` so matmuls in the loss stay float32."""
    if x.device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def standardised_columns(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Each column of (B, D) centred and divided by its std over the batch (+ eps)."""
    return (x - x.mean(0)) / (x.std(0) + eps)


def unit_rows_fp32(x: Tensor) -> Tensor:
    """L2-normalise the last dimension in float32 (autocast-proof)."""
    return F.normalize(x.float(), dim=-1)


def check_pose_inputs(anchor: Tensor, positive: Tensor, negatives: Tensor, reduction: str, temperature: float) -> None:
    """Inputs of a pose contrastive loss: anchor, positive (B, D); negatives (B, M >= 1, D); reduction; tau."""
    check_matrix("anchor", anchor)
    check_matrix("positive", positive)
    check_same_shape("anchor", anchor, "positive", positive)
    batch, dim = anchor.shape
    if negatives.dim() != 3 or negatives.shape[0] != batch or negatives.shape[2] != dim:
        raise ValueError(f"negatives must be (B, M, D) = ({batch}, M, {dim}) to match anchor {tuple(anchor.shape)}, "
                         f"got {tuple(negatives.shape)}")
    if negatives.shape[1] == 0:
        raise ValueError("negatives has M = 0 pose-changed views; at least one is needed")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    check_temperature(temperature)
