"""The pretraining objective of one step as a module (so DDP can wrap it).

PCL (Liu et al., CVPR 2023, Sec. 3.4):

    L = L_dis + lambda_orth * L_orth + alpha_pose * L_pose + alpha_face * L_face

(lambda_orth = ``loss.orth_weight``, 1 in the paper)

with L_dis the swap reconstruction (Eq. 2), L_orth the orthogonality of the
two branches (Eq. 3; ``loss.orth_mode``: the DSN form by default, the branches'
cross-correlation ``xcorr`` with weight 0.1 in synth_cpu), L_pose the pose contrastive loss
(Eq. 4-5) and L_face SimCLR's NT-Xent (Chen et al., ICML 2020, Eq. 1) on the
face branch. SimCLR is L_face alone on F_s. The ablation switches of
``config.loss`` drop terms.

All views of a step go through the encoder in ONE pass (concatenated), which
is what makes the step fast; the alternating schedule of the reference code
instead calls this module three times with ``part`` = recon / face / pose.
Under DistributedDataParallel the face projections (for NT-Xent negatives)
and the branch features (for the batch-centred DSN orthogonality) are gathered
from all ranks with gradients, so a W-rank step equals a 1-rank step on the
whole batch; L_pose only contrasts an image with its own negatives and
L_dis is a per-image mean, so they need no gathering.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pclkit.config import TrainConfig
from pclkit.distributed import all_gather_with_grad
from pclkit.losses import mix_negatives, nt_xent, orthogonality, pose_contrastive, swap_reconstruction
from pclkit.views import StepViews

#: which view groups each part of the objective encodes
PART_GROUPS: dict[str, tuple[str, ...]] = {
    "joint": ("face_a", "face_b", "pose_a", "pose_b", "pose_neg", "recon_in", "recon_hat_in"),
    "recon": ("recon_in", "recon_hat_in"),
    "face": ("face_a", "face_b"),
    "pose": ("pose_a", "pose_b", "pose_neg"),
}


class PretrainObjective(nn.Module):
    """Loss terms of one step for a :class:`pclkit.models.PCLModel`.

    ``forward(views, weights, part, generator)`` returns a dict of scalar
    float32 tensors: the active terms among ``dis``, ``orth``, ``pose``,
    ``face`` (unweighted) and ``loss`` (their weighted sum, the thing to
    backpropagate). ``weights`` holds ``alpha_pose`` and ``alpha_face``.
    """

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.method = config.method
        self.loss_cfg = config.loss
        self.views_cfg = config.views
        self.channels_last = config.runtime.channels_last

    def forward(
        self,
        views: StepViews,
        weights: dict[str, float],
        part: str = "joint",
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        if part not in PART_GROUPS:
            raise ValueError(f"part must be one of {', '.join(PART_GROUPS)}, got {part!r}")
        images, spans = views.encoder_input(PART_GROUPS[part])
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        shared_feat, face_feat, pose_feat = self.model(images)  # (N, D_s), (N, D), (N, D)

        terms: dict[str, Tensor] = {}
        if "face_a" in spans:
            terms["face"] = self._face_loss(shared_feat, face_feat, spans)
        if "pose_a" in spans:
            terms["pose"] = self._pose_loss(pose_feat, spans, views.batch_size, generator)
        if "recon_in" in spans or (views.recon_shared and "pose_a" in spans):
            terms.update(self._recon_losses(face_feat, pose_feat, spans, views))

        # L = L_dis + lambda_orth L_orth + alpha_pose L_pose + alpha_face L_face
        scale = {"dis": 1.0, "orth": self.loss_cfg.orth_weight,
                 "pose": weights.get("alpha_pose", 1.0), "face": weights.get("alpha_face", 1.0)}
        total = sum(scale[name] * value for name, value in terms.items())
        return {**terms, "loss": total}

    def _face_loss(self, shared_feat: Tensor, face_feat: Tensor, spans: dict[str, tuple[int, int]]) -> Tensor:
        """L_face: NT-Xent over the 2B face views (mean over 2B rows), negatives from all ranks."""
        start, stop = spans["face_a"][0], spans["face_b"][1]
        feat = shared_feat if self.method == "simclr" else face_feat
        # one head call on both views: BatchNorm1d normalises over all 2B projections
        z_a, z_b = self.model.project_face(feat[start:stop]).chunk(2, dim=0)
        return nt_xent(all_gather_with_grad(z_a), all_gather_with_grad(z_b), self.loss_cfg.temperature)

    def _pose_loss(
        self, pose_feat: Tensor, spans: dict[str, tuple[int, int]], batch: int, generator: torch.Generator | None
    ) -> Tensor:
        """L_pose: positives = two appearance views, negatives = the image's own M pose-changed views."""
        start, stop = spans["pose_a"][0], spans["pose_neg"][1]
        proj = self.model.project_pose(pose_feat[start:stop])  # (2B + B*M, P)
        anchor, positive = proj[:batch], proj[batch : 2 * batch]
        negatives = proj[2 * batch :].reshape(batch, -1, proj.shape[1])  # (B, M, P), image-major
        if self.views_cfg.negative_mix:
            negatives = mix_negatives(negatives, generator, alpha=self.views_cfg.mix_alpha)
        return pose_contrastive(
            anchor,
            positive,
            negatives,
            self.loss_cfg.pose_temperature,
            positive_in_denominator=self.loss_cfg.pose_positive_in_denominator,
        )

    def _recon_losses(
        self, face_feat: Tensor, pose_feat: Tensor, spans: dict[str, tuple[int, int]], views: StepViews
    ) -> dict[str, Tensor]:
        """L_dis (swap reconstruction of s and ŝ) and L_orth on the noisy-input features."""
        if views.recon_shared:  # s + n is pose_a; ŝ + n is the first of each image's M negatives
            s0, s1 = spans["pose_a"]
            n0, n1 = spans["pose_neg"]
            rows_s = torch.arange(s0, s1, device=face_feat.device)
            rows_hat = torch.arange(n0, n1, views.pose_neg.shape[1], device=face_feat.device)
        else:
            rows_s = torch.arange(*spans["recon_in"], device=face_feat.device)
            rows_hat = torch.arange(*spans["recon_hat_in"], device=face_feat.device)
        face, face_hat = face_feat[rows_s], face_feat[rows_hat]
        pose, pose_hat = pose_feat[rows_s], pose_feat[rows_hat]
        out: dict[str, Tensor] = {}
        if self.loss_cfg.use_dis:
            out["dis"] = swap_reconstruction(
                views.target, views.target_hat, face, face_hat, pose, pose_hat, self.model.decode
            ).total
        if self.loss_cfg.use_orth:
            mode = self.loss_cfg.orth_mode
            out["orth"] = orthogonality(all_gather_with_grad(face), all_gather_with_grad(pose), mode) + orthogonality(
                all_gather_with_grad(face_hat), all_gather_with_grad(pose_hat), mode
            )
        return out
