"""PCL: Pose-disentangled Contrastive Learning (Liu et al., "Pose-disentangled
Contrastive Learning for Self-supervised Facial Representation", CVPR 2023).

    L = L_dis + lambda_orth * L_orth + alpha_pose * L_pose + alpha_face * L_face      (Sec. 3.4)

* L_dis -- swap reconstruction of s and its pose-changed view ŝ (Eq. 2);
* L_orth -- orthogonality of the face and pose branches (Eq. 3; ``loss.orth_mode``:
  the DSN form by default, the branches' cross-correlation ``xcorr`` in synth_cpu);
* L_pose -- pose contrastive loss: positives two appearance views of s, negatives
  the image's own M pose-changed views (Eq. 4-5);
* L_face -- NT-Xent (Chen et al., ICML 2020, Eq. 1) on the face branch F_f;
* L_inv -- this project's option (``loss.face_invariance_weight`` > 0; not in the paper):
  F_f of s and of ŝ agree (:func:`pclkit.losses.branch_invariance`);
* L_adv -- this project's option (``loss.adversary_weight`` > 0): an MLP reads F_p from F_f and
  the face branch is trained against it (:func:`pclkit.losses.pose_adversary`);
* L_pred -- this project's option (``loss.predictability_weight`` > 0): a ridge regression on F_f,
  fitted afresh on each batch, must not predict F_p (:func:`pclkit.losses.cross_fitted_predictability`);
* L_flip -- this project's option (``loss.flip_weight`` > 0): F_p of the mirrored pose positive is its
  F_p with half the columns negated (:func:`pclkit.losses.flip_equivariance`).

alpha_pose, alpha_face come from Dynamic Weight Average (Liu, Johns & Davison,
CVPR 2019) when ``loss.use_dwa``; ``loss.use_dis/use_orth/use_pose`` switch
terms off for the paper's ablation (:attr:`PCL.ablations`). Under DDP the face
projections (NT-Xent negatives) and the branch features (batch-centred DSN
orthogonality) are gathered from all ranks with gradients; L_pose contrasts
an image with its own negatives and L_dis is a per-image mean, so they need
no gathering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from pclkit.distributed import all_gather_with_grad
from pclkit.losses import (
    PredictabilityMemory,
    branch_invariance,
    cross_fitted_predictability,
    flip_equivariance,
    mix_negatives,
    nt_xent,
    orthogonality,
    pose_adversary,
    pose_contrastive,
    swap_cycle,
    swap_reconstruction,
)
from pclkit.methods import register
from pclkit.methods.base import Method, Step

if TYPE_CHECKING:
    from pclkit.config import TrainConfig
    from pclkit.models import ModelConfig
    from pclkit.views import StepViews

#: the sub-steps of the reference code's alternating schedule, in its order
ALTERNATING_STEPS = ("recon", "face", "pose")

#: the ablation rows of the paper (Table 5: SimCLR; +L_dis; +L_orth; +L_pose; +DWA) as config overrides.
#: Each PCL row keeps the preset's own options, L_pred included (``synth_cpu``: ``loss.predictability_weight``
#: 1), so the rows differ only in the paper's four switches.
_SWITCHES = ("loss.use_dis", "loss.use_orth", "loss.use_pose", "loss.use_dwa")
ABLATIONS: dict[str, dict[str, object]] = {
    "simclr": {"method": "simclr"},
    **{row: {"method": "pcl", **dict(zip(_SWITCHES, on))} for row, on in (
        ("dis", (True, False, False, False)),
        ("dis_orth", (True, True, False, False)),
        ("dis_orth_pose", (True, True, True, False)),
        ("pcl", (True, True, True, True)),
    )},
}


@register
class PCL(Method):
    """Views: face views, pose positives and negatives, noisy s / ŝ. Heads: face and pose
    projectors, the swap decoder. Loss: L_dis, L_orth, L_pose, L_face.

    Example:
        >>> from pclkit.config import resolve_config
        >>> method = PCL(resolve_config("smoke"))
        >>> method.terms(), method.weighted_terms()
        (('dis', 'orth', 'pose', 'face'), ('pose', 'face'))
    """

    name = "pcl"
    label = "PCL"
    features = ("F_s", "F_f", "F_p", "F_fp")
    has_decoder = True
    ablations = ABLATIONS

    @classmethod
    def build_model(cls, model_cfg: "ModelConfig") -> nn.Module:
        from pclkit.models import build_encoder
        from pclkit.models.pcl import PCLModel

        return PCLModel(
            build_encoder(model_cfg),
            proj_hidden_dim=model_cfg.proj_hidden_dim,
            proj_dim=model_cfg.proj_dim,
            decoder_width=model_cfg.decoder_width,
            decoder_stage_width=model_cfg.decoder_stage_width,
            decoder_fusion=model_cfg.decoder_fusion,
            decoder_seed_size=model_cfg.decoder_seed_size,
            decoder_upsample=model_cfg.decoder_upsample,
            decoder_refine=model_cfg.decoder_refine,
            decoder_warp_size=model_cfg.decoder_warp_size,
            decoder_skips=model_cfg.decoder_skips,
            pose_dim=model_cfg.pose_dim,
            pose_adversary_hidden=model_cfg.pose_adversary_hidden,
            pose_head=model_cfg.pose_head,
        )

    @classmethod
    def validate_model(cls, model_cfg: "ModelConfig") -> None:
        seed = max(model_cfg.decoder_seed_size, 1)
        side = model_cfg.image_size // seed
        if model_cfg.image_size % seed or side < 4 or side & (side - 1):
            raise ValueError(f"decoder_seed_size {model_cfg.decoder_seed_size} must divide image_size "
                             f"{model_cfg.image_size} into a power of two >= 4")

    def __init__(self, config: "TrainConfig") -> None:
        super().__init__(config)
        memory = config.loss.predictability_memory
        #: L_pred's past fit rows (loss.predictability_memory batches), or None
        self.pred_memory = PredictabilityMemory(memory) if memory and config.loss.predictability_weight > 0 else None

    @classmethod
    def validate(cls, config: "TrainConfig") -> str | None:
        if config.loss.schedule != "joint" and config.views.share_recon_views:
            return "views.share_recon_views needs loss.schedule 'joint' (the alternating sub-steps build separate views)"
        views, loss = config.views, config.loss
        if (loss.adversary_weight > 0) != (config.model.pose_adversary_hidden > 0):
            return ("L_adv needs both loss.adversary_weight > 0 and model.pose_adversary_hidden > 0 "
                    f"(got {loss.adversary_weight} and {config.model.pose_adversary_hidden})")
        if loss.flip_weight > 0 and not (loss.use_pose and loss.schedule == "joint"):
            return "loss.flip_weight > 0 mirrors the pose positives: it needs loss.use_pose true and loss.schedule 'joint'"
        if loss.dis_pose_views == "augmented" and not (
            loss.use_pose and views.share_recon_views and views.num_negatives >= 2 and not views.negatives_across_poses
        ):
            return ("loss.dis_pose_views 'augmented' reads F_p of the pose loss's augmented copies of s and ŝ: "
                    "it needs loss.use_pose true, views.share_recon_views true, views.num_negatives >= 2 and "
                    "views.negatives_across_poses false")
        return None

    # -- which terms, which views ---------------------------------------------

    def terms(self) -> tuple[str, ...]:
        loss = self.config.loss
        on = {"dis": loss.use_dis, "orth": loss.use_orth, "pose": loss.use_pose, "face": True,
              "inv": loss.face_invariance_weight > 0, "cyc": loss.cycle_weight > 0, "adv": loss.adversary_weight > 0,
              "pred": loss.predictability_weight > 0, "flip": loss.flip_weight > 0}
        return tuple(name for name, active in on.items() if active)

    def weighted_terms(self) -> tuple[str, ...]:
        return tuple(name for name in ("pose", "face") if name in self.terms())

    def steps(self) -> tuple[Step, ...]:
        terms = self.terms()
        if self.config.loss.schedule == "joint":
            return (Step("joint", self.view_parts(terms)),)
        # the reference's three optimiser steps: recon (L_dis + L_orth), face, pose
        return tuple(Step(part, (part,)) for part in ALTERNATING_STEPS if part in self.view_parts(terms))

    def leaves_parameters_unused(self) -> bool:
        # an ablation without L_dis leaves the decoder unused, without L_pose the pose head
        return len(self.steps()) > 1 or not {"dis", "pose"} <= set(self.terms())

    def term_scales(self, weights: Mapping[str, float]) -> dict[str, float]:
        scales = super().term_scales(weights)
        scales["dis"] = self.config.loss.dis_weight
        scales["orth"] = self.config.loss.orth_weight
        scales["inv"] = self.config.loss.face_invariance_weight
        scales["cyc"] = self.config.loss.cycle_weight
        scales["adv"] = self.config.loss.adversary_weight
        scales["pred"] = self.config.loss.predictability_weight
        scales["flip"] = self.config.loss.flip_weight
        return {name: scales[name] for name in self.terms()}

    # -- the loss terms ----------------------------------------------------------

    def loss_terms(
        self,
        model: nn.Module,
        views: "StepViews",
        features: Mapping[str, Tensor],
        spans: Mapping[str, tuple[int, int]],
        generator: torch.Generator | None,
    ) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        face_feat, pose_feat = features["F_f"], features["F_p"]  # (N, D) each
        if "face_a" in spans:
            terms.update(self.face_terms(model, face_feat, spans, views))
        if "pose_a" in spans and "pose" in self.terms():
            terms.update(self.pose_terms(model, pose_feat, spans, views, generator))
        if "pose_flip" in spans:  # L_flip: F_p (B, k) of the pose positives and of their mirrors
            (a0, a1), (f0, f1) = spans["pose_a"], spans["pose_flip"]
            terms["flip"] = flip_equivariance(pose_feat[a0:a1], pose_feat[f0:f1], odd=self.config.loss.flip_odd_dims)
        if "recon_in" in spans or (views.recon_shared and "pose_a" in spans):
            terms.update(self.recon_losses(model, face_feat, pose_feat, spans, views))
        return terms

    def face_terms(self, model: nn.Module, face_feat: Tensor, spans: Mapping[str, tuple[int, int]],
                   views: "StepViews") -> dict[str, Tensor]:
        """``{"face": L_face}`` (a subclass may change the face loss and add ``diag_*`` entries)."""
        return {"face": self.face_loss(model, face_feat, spans)}

    def pose_terms(self, model: nn.Module, pose_feat: Tensor, spans: Mapping[str, tuple[int, int]],
                   views: "StepViews", generator: torch.Generator | None) -> dict[str, Tensor]:
        """``{"pose": L_pose}`` (a subclass may change the pose loss and add ``diag_*`` entries)."""
        return {"pose": self.pose_loss(model, pose_feat, spans, views.batch_size, generator)}

    def face_loss(self, model: nn.Module, face_feat: Tensor, spans: Mapping[str, tuple[int, int]]) -> Tensor:
        """L_face: NT-Xent on g_f(F_f) of the 2B face views (mean over 2B rows), negatives from all ranks."""
        start, stop = spans["face_a"][0], spans["face_b"][1]
        # one head call on both views: BatchNorm1d normalises over all 2B projections
        z_a, z_b = model.project_face(face_feat[start:stop]).chunk(2, dim=0)  # 2 x (B, P)
        return nt_xent(all_gather_with_grad(z_a), all_gather_with_grad(z_b), self.config.loss.temperature)

    def pose_loss(self, model: nn.Module, pose_feat: Tensor, spans: Mapping[str, tuple[int, int]], batch: int,
                  generator: torch.Generator | None) -> Tensor:
        """L_pose: positives = two appearance views, negatives = the image's own M pose-changed views."""
        start, stop = spans["pose_a"][0], spans["pose_neg"][1]
        proj = model.project_pose(pose_feat[start:stop])  # (2B + B*M, P)
        anchor, positive = proj[:batch], proj[batch:2 * batch]
        negatives = proj[2 * batch:].reshape(batch, -1, proj.shape[1])  # (B, M, P), image-major
        views_cfg, loss_cfg = self.config.views, self.config.loss
        if views_cfg.negative_mix:
            negatives = mix_negatives(negatives, generator, alpha=views_cfg.mix_alpha)
        return pose_contrastive(anchor, positive, negatives, loss_cfg.pose_temperature,
                                positive_in_denominator=loss_cfg.pose_positive_in_denominator)

    def recon_losses(self, model: nn.Module, face_feat: Tensor, pose_feat: Tensor,
                     spans: Mapping[str, tuple[int, int]], views: "StepViews") -> dict[str, Tensor]:
        """L_dis (swap reconstruction of s and ŝ), L_orth and (when on) L_inv, L_adv, L_pred, L_cyc on the noisy inputs."""
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
        loss = self.config.loss
        # F_p for the swaps: of s + n and ŝ + n, or (dis_pose_views "augmented") of the appearance-augmented
        # s (pose_b) and ŝ (each image's second pose negative): same pose and face, other colours
        dis_pose, dis_pose_hat = pose, pose_hat
        if loss.dis_pose_views == "augmented":
            if not views.recon_shared:  # validate() rules this out; never fall back to the clean views silently
                raise ValueError("loss.dis_pose_views 'augmented' needs the shared reconstruction and pose views")
            b0, b1 = spans["pose_b"]
            dis_pose = pose_feat[b0:b1]
            dis_pose_hat = pose_feat[rows_hat + 1]  # (B, D): the copy of ŝ after ŝ + n, image-major rows
        out: dict[str, Tensor] = {}
        if loss.use_dis:
            out["dis"] = swap_reconstruction(views.target, views.target_hat, face, face_hat, dis_pose, dis_pose_hat,
                                             model.decode, swaps_only=loss.dis_terms == "swaps",
                                             ssim_weight=loss.dis_ssim_weight).total
        if loss.use_orth:
            gathered = [all_gather_with_grad(t) for t in (face, pose, face_hat, pose_hat)]
            out["orth"] = (orthogonality(gathered[0], gathered[1], loss.orth_mode)
                           + orthogonality(gathered[2], gathered[3], loss.orth_mode))
        terms = self.terms()
        if "inv" in terms:
            out["inv"] = branch_invariance(face, face_hat, form=loss.face_invariance_form)
        if "adv" in terms or "pred" in terms:  # both read F_f and F_p of s + n and ŝ + n together: (2B, D)
            both_face, both_pose = torch.cat([face, face_hat]), torch.cat([pose, pose_hat])
        if "adv" in terms:
            adversary = pose_adversary(model.pose_adversary, both_face, both_pose, form=loss.adversary_form)
            out["adv"], out["diag_adv_fit"] = adversary.total, adversary.fit
        if "pred" in terms:
            # folds by image (s_i and ŝ_i together), so the held-out rows are other faces
            image = torch.arange(2 * len(rows_s), device=face.device) % len(rows_s)
            memory = self.pred_memory
            out["pred"] = cross_fitted_predictability(both_face, both_pose, ridge=loss.predictability_ridge,
                                                      fold=image % 2 == 0,
                                                      memory=None if memory is None else memory.rows())
            if memory is not None:
                memory.push(both_face, both_pose)
        if "cyc" in terms:
            out["cyc"] = swap_cycle(face, pose, model.decode, lambda images: self._branches(model, images),
                                    train_decoder=loss.cycle_decoder == "trained",
                                    face_term=loss.cycle_parts == "both")
        return out

    def _branches(self, model: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
        """(F_f, F_p) of decoded images (L_cyc's second encoder pass; ``loss.cycle_encoder``)."""
        if self.config.loss.cycle_encoder == "trained":
            features = model.forward_features(images)
            return features["F_f"], features["F_p"]
        parts = [part for part in (model.encoder, model.pose_code) if part is not None]
        modes = [part.training for part in parts]
        flags = [(param, param.requires_grad) for part in parts for param in part.parameters()]
        try:  # a fixed judge: running statistics untouched, no parameter gradient, images still differentiable
            for part in parts:
                part.eval()
            for param, _ in flags:
                param.requires_grad_(False)
            features = model.forward_features(images)
        finally:
            for part, mode in zip(parts, modes):
                part.train(mode)
            for param, flag in flags:
                param.requires_grad_(flag)
        return features["F_f"], features["F_p"]
