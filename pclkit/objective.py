"""The pretraining objective of one step as a module (so DDP can wrap it).

All views of a step go through the encoder in ONE pass (concatenated), which
is what makes the step fast; the method (:mod:`pclkit.methods`) turns the
features of that pass into its loss terms and says how they are weighted:

    loss = sum_k scale_k * L_k

(for PCL: L_dis + lambda_orth L_orth + alpha_pose L_pose + alpha_face L_face,
Liu et al., CVPR 2023, Sec. 3.4). The alternating schedule of the reference
code calls this module once per sub-step, with the views of that sub-step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pclkit.methods import Method
from pclkit.views import StepViews


class PretrainObjective(nn.Module):
    """Loss terms of one step for ``method`` on ``model``.

    ``forward(views, weights, generator)`` returns a dict of scalar tensors:
    the method's active terms (unweighted) and ``loss`` (their weighted sum,
    the thing to backpropagate). ``weights`` holds the DWA ``alpha_<term>``.
    """

    def __init__(self, model: nn.Module, method: Method, channels_last: bool = False) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.channels_last = channels_last

    def forward(self, views: StepViews, weights: dict[str, float],
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        images, spans = views.encoder_input()  # (N, 3, S, S): every view group of the step
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        features = self.model(images)  # {"F_s": (N, D_s), ...}: the method's features
        terms = self.method.loss_terms(self.model, views, features, spans, generator)
        scales = self.method.term_scales(weights)
        total = sum(scales[name] * value for name, value in terms.items())
        return {**terms, "loss": total}
