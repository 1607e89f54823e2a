"""pclkit: Pose-disentangled Contrastive Learning (Liu et al., CVPR 2023, arXiv 2211.13490).

A research workbook for self-supervised facial representation learning:
SynthFaces (an embedded procedural 3D face dataset with ground-truth factors),
the PCL model and losses, a SimCLR baseline, pretraining, linear evaluation of
the paper's four tasks, and figures. Submodules are imported lazily so that
``import pclkit`` stays cheap.

``pclkit.load_pretrained("pcl_synthfaces")`` (or ``"simclr_synthfaces"``) returns a
model shipped in ``pclkit/weights`` (see :mod:`pclkit.pretrained`).
"""

from typing import Any

__version__ = "0.1.0"

#: public names served lazily from submodules (``import pclkit`` does not import torch)
_LAZY = {"load_pretrained": "pclkit.pretrained", "list_pretrained": "pclkit.pretrained"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """``pclkit.load_pretrained`` and friends, imported on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pclkit' has no attribute {name!r}")
