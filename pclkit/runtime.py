"""Where and how a run computes: device, precision (bf16 autocast), seeds and RNG state.

bf16 autocast with channels_last is about 3x fp32 for the convnets here on CPUs
with native bf16 (AVX-512 BF16 / AMX) and on GPUs; elsewhere (AVX2, and plain
AVX-512 such as Ice Lake) it is emulated and slower, so
``runtime.precision: auto`` picks it only where it is native.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from pclkit.config import ConfigError

__all__ = ["select_device", "native_bf16", "resolve_precision", "autocast", "step_seed", "rng_state", "set_rng_state"]


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device is 'cuda' but torch.cuda.is_available() is False")
    return torch.device(name)


def step_seed(seed: int, step: int, rank: int, sub_step: int = 0) -> int:
    """Seed of the augmentation generator for one (sub-)step of one rank."""
    return (seed * 1_000_003 + step * 4099 + rank * 131 + sub_step) % (2**63 - 1)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware (CUDA: ``is_bf16_supported``; CPU: AVX-512 BF16 or AMX).

    On a CPU without those instructions bf16 autocast is emulated, and slower
    than fp32. oneDNN's own check (``_is_mkldnn_bf16_supported``) also says
    yes on plain AVX-512 (it emulates bf16 there), so the instruction flags
    decide. Measured: on a 2-core AVX2 EPYC a ``synth_cpu`` SimCLR step took
    3.5 s in bf16 against 0.26 s in fp32 (one thread); on a 2-core AVX-512
    Xeon without BF16 (Ice Lake) a 2048^2 matmul ran at 60 GFLOP/s in bf16
    against 276 in fp32, and the ``paper`` PCL step at 0.59x fp32's speed
    (``python -m pclkit bench --what train``).
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):  # older or stripped builds: be conservative
        return False
    has_avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    has_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if has_avx512_bf16 is None and has_amx is None:  # torch without the flags: oneDNN's answer
        return True
    return bool((has_avx512_bf16 is not None and has_avx512_bf16()) or (has_amx is not None and has_amx()))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device has native bf16, else ``fp32``; explicit choices are kept."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU or CUDA (``precision: bf16``, or ``auto`` on native-bf16 hardware), nothing for fp32."""
    if resolve_precision(precision, device) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def rng_state() -> dict[str, Any]:
    """torch's global RNG states (CPU, and CUDA when present)."""
    state: dict[str, Any] = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
