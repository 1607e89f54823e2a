"""Optimiser and learning-rate schedule of a pretraining run.

Adam with L2 weight decay, as the PCL reference code (Liu et al., CVPR 2023),
or AdamW (Loshchilov & Hutter, ICLR 2019); linear warm-up then cosine decay
(Loshchilov & Hutter, SGDR, ICLR 2017).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pclkit.config import TrainConfig

__all__ = ["WarmupCosine", "build_optimizer"]


class WarmupCosine:
    """LR factor: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total`` steps.

    A plain callable object with primitive attributes, so ``LambdaLR.state_dict``
    stays checkpoint-safe.
    """

    def __init__(self, total: int, warmup: int = 0, cosine: bool = True) -> None:
        self.total, self.warmup, self.cosine = int(total), int(warmup), bool(cosine)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if not self.cosine:
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (reference: lr 1e-4, L2 weight decay 1e-3) or AdamW over the trainable parameters.

    With ``optim.decoder_lr_scale`` != 1 the swap decoder's parameters (``model.decoder``) form a
    second group at ``lr * decoder_lr_scale``; the schedule scales both.
    """
    kind = torch.optim.AdamW if config.optim.optimizer == "adamw" else torch.optim.Adam
    params = [p for p in model.parameters() if p.requires_grad]
    decoder = getattr(model, "decoder", None)
    scale = config.optim.decoder_lr_scale
    if scale == 1.0 or decoder is None:
        return kind(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    in_decoder = {id(p) for p in decoder.parameters()}
    groups = [{"params": [p for p in params if id(p) not in in_decoder]},
              {"params": [p for p in params if id(p) in in_decoder], "lr": config.optim.lr * scale}]
    return kind(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
