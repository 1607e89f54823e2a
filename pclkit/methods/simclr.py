"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020): NT-Xent between two views of each image, on F_s.

PCL's ablation starts from this baseline (Liu et al., CVPR 2023, Table 5):
the same backbone and the same face views, with the L_face term alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from pclkit.distributed import all_gather_with_grad
from pclkit.losses import nt_xent
from pclkit.methods import register
from pclkit.methods.base import Method

if TYPE_CHECKING:
    from pclkit.config import TrainConfig
    from pclkit.models import ModelConfig
    from pclkit.views import StepViews


@register
class SimCLR(Method):
    """Views: two face views per image. Heads: one projector on F_s. Loss: L_face (NT-Xent).

    Example:
        >>> from pclkit.config import resolve_config
        >>> method = SimCLR(resolve_config("smoke", {"method": "simclr"}))
        >>> method.terms(), [step.view_parts for step in method.steps()]
        (('face',), [('face',)])
    """

    name = "simclr"
    label = "SimCLR"
    features = ("F_s",)

    @classmethod
    def build_model(cls, model_cfg: "ModelConfig") -> nn.Module:
        from pclkit.models import build_encoder
        from pclkit.models.simclr import SimCLRModel

        return SimCLRModel(build_encoder(model_cfg), model_cfg.proj_hidden_dim, model_cfg.proj_dim)

    @classmethod
    def validate(cls, config: "TrainConfig") -> str | None:
        if config.loss.schedule != "joint":
            return "loss.schedule 'alternating' splits PCL's terms; SimCLR has one term (use 'joint')"
        return None

    def terms(self) -> tuple[str, ...]:
        return ("face",)

    def loss_terms(
        self,
        model: nn.Module,
        views: "StepViews",
        features: Mapping[str, Tensor],
        spans: Mapping[str, tuple[int, int]],
        generator: torch.Generator | None,
    ) -> dict[str, Tensor]:
        """L_face = NT-Xent(g(F_s(v_a)), g(F_s(v_b))), mean over the 2B rows; negatives from all ranks."""
        start, stop = spans["face_a"][0], spans["face_b"][1]
        # one projector call on both views: BatchNorm1d normalises over all 2B projections
        z_a, z_b = model.project(features["F_s"][start:stop]).chunk(2, dim=0)  # 2 x (B, P)
        return {"face": nt_xent(all_gather_with_grad(z_a), all_gather_with_grad(z_b), self.config.loss.temperature)}
