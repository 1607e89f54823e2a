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
    the method's active terms (unweighted), any diagnostics it reports (not
    optimised; names outside ``method.terms()``), and ``loss`` (the weighted sum
    of the terms, the thing to backpropagate). ``weights`` holds the DWA ``alpha_<term>``.
    """

    def __init__(self, model: nn.Module, method: Method, channels_last: bool = False) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.channels_last = channels_last

    def forward(self, views: StepViews, weights: dict[str, float],
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        # by default one encoder pass over all view groups, then the method's terms
        terms = self.method.compute_terms(self.model, views, generator, self.channels_last)
        scales = self.method.term_scales(weights)
        # entries that are not loss terms (a method's diagnostics, e.g. "diag_<name>") are logged, not optimised
        total = sum(scales[name] * value for name, value in terms.items() if name in scales)
        return {**terms, "loss": total}
