"""Datasets: the embedded SynthFaces generator and loaders for real face data.

Every dataset returns ``(image, labels)`` with ``image`` a float tensor
``(3, H, W)`` in [0, 1] and ``labels`` a dict (see docs/architecture.md).
Names are resolved lazily so importing one loader never pays for another.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SynthFaces": "pclkit.data.synthfaces",
    "synthfaces_split": "pclkit.data.synthfaces",
    "FaceFolder": "pclkit.data.real",
    "CMUFaces": "pclkit.data.real",
    "RAFDB": "pclkit.data.real",
    "FER2013": "pclkit.data.real",
    "PairList": "pclkit.data.real",
    "PoseNPZ": "pclkit.data.real",
    "DISFA": "pclkit.data.real",
    "as_tensors": "pclkit.data.tensors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pclkit.data' has no attribute {name!r}")
