"""PCFRL: Sample-Cohesive Pose-Aware Contrastive Facial Representation Learning
(Liu et al., IJCV 2025, doi 10.1007/s11263-025-02348-z) -- a labelled RECONSTRUCTION.

What the paper says (abstract): PCFRL keeps PCL's pose-disentangled decoder and
orthogonality term and adds a *false-negative pair calibration module*. The face-aware
and pose-aware features "may not share the same negative pairs": two images can show
the same head pose (a false negative of the pose branch) while being different people
(a true negative of the face branch), and the other way round. A
*neighbourhood-cohesive pair alignment* finds the pose false negatives and the face
false negatives separately and calibrates them into positives; two *calibrated
contrastive losses* learn from the calibrated pairs adaptively. The authors' code
(fulaoze/CV) does not contain this module; its formulas and hyper-parameters are not
public. Everything below that goes beyond PCL is therefore a reconstruction:

    L = L_dis + lambda_orth L_orth + alpha_pose L_pose^cal + alpha_face L_face^cal

* **Detector** (:mod:`pclkit.neighbours`). Reconstruction: per branch, without gradient,
  the image-level projection (the normalised mean of the image's two view projections:
  face views for the face branch, the two appearance views p, q for the pose branch);
  a pair is a false negative when the two images are *mutual* k-nearest neighbours
  (``k_face``, ``k_pose``) in that branch's own projection space. Alternatives: a
  similarity threshold, plain (one-sided) kNN, shared-neighbour counts above a
  threshold, clustering (k-means) as in prototype methods.
* **Adaptive weight**. Reconstruction: a calibrated pair becomes a positive of weight
  ``max_weight * cohesion``, cohesion = Jaccard overlap of the two closed kNN
  neighbourhoods (1/k .. 1: "sample-cohesive"), the own positive keeps weight 1.
  Alternatives: ``weighting="constant"`` (every detected pair at ``max_weight``), the
  cosine similarity, a learnt weight.
* **Face loss** (:func:`pclkit.losses.calibrated_nt_xent`): NT-Xent over the 2B face
  views with the calibrated pairs as weighted extra positives (SupCon-style, Khosla et
  al., NeurIPS 2020); no calibrated pair = PCL's L_face exactly.
* **Pose loss** (:func:`pclkit.losses.calibrated_pose_contrastive`): PCL's L_pose
  contrasts an image only with its own M pose-changed views, so it has no false
  negatives; the reconstruction adds the other images of the batch as negatives (the
  other images' appearance views), which are what pose false negatives are made of,
  and calibrates the detected ones into weighted positives. Alternative
  (``pose_batch_negatives=false``): PCL's own-negative L_pose with the detected pairs
  as extra positives only.
* **Warm-up**. No calibration before ``warmup_fraction`` of the run (early projections
  are noise). During warm-up the face loss is PCL's NT-Xent; the pose loss is the
  uncalibrated batch-negative pose loss (``warmup_loss="uncalibrated"``, chosen so the
  pose loss does not jump when calibration starts -- Dynamic Weight Average reads loss
  ratios) or PCL's own L_pose (``warmup_loss="pcl"``).

Diagnostics (beyond the paper: SynthFaces knows the truth). When the views carry
ground truth (``StepViews.truth_identity`` / ``truth_pose``) the detector is scored
every step against it -- face: same identity; pose: |Δyaw| and |Δpitch| below
:data:`POSE_TRUTH_TOLERANCE_DEG` -- as ``diag_<branch>_fn_precision``, ``_recall``,
``_true_pairs`` and ``_hits`` (detected pairs that are true: an epoch's precision is
mean(hits) / mean(pairs), not the mean of the per-step precisions). Always logged:
``diag_<branch>_fn_pairs`` (detected pairs, also during warm-up, whether or not they
are calibrated yet) and ``diag_fn_calibrating`` (1 once calibration is on). Precision
and recall are 0.0, not NaN, when nothing was detected / nothing is true: the pair
counts tell those cases apart.

Data parallelism: both losses and the detector work on the batch gathered from all
ranks (every rank computes the same global loss, as PCL's L_face), so W ranks x B/W
rows give the terms, diagnostics and gradients of one rank x B (tests/test_pcfrl.py).

Configuration: the knobs live in :class:`CalibrationConfig`, read from the config's
``method_options`` (e.g. ``--set method_options.k_face=2``); unknown keys list the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pclkit.distributed import all_gather_with_grad
from pclkit.losses import calibrated_nt_xent, calibrated_pose_contrastive, mix_negatives, nt_xent, pose_contrastive
from pclkit.methods import register
from pclkit.methods.pcl import PCL
from pclkit.neighbours import NeighbourPairs, mutual_neighbours, pair_scores

if TYPE_CHECKING:
    from pclkit.config import TrainConfig
    from pclkit.views import StepViews

__all__ = ["CalibrationConfig", "PCFRL", "POSE_TRUTH_TOLERANCE_DEG", "true_pose_pairs", "true_identity_pairs"]

#: two images are truly "at the same pose" when |Δyaw| and |Δpitch| are below these (degrees)
POSE_TRUTH_TOLERANCE_DEG = (10.0, 10.0)


@dataclass
class CalibrationConfig:
    """The false-negative calibration knobs (all reconstruction choices; see the module docstring).

    k_face, k_pose: neighbours of the mutual-kNN detector in each branch's projection space.
    warmup_fraction: no calibration before this fraction of the run's iterations.
    max_weight: weight of a calibrated positive at cohesion 1 (the own positive has weight 1).
    weighting: ``cohesion`` (max_weight * cohesion) or ``constant`` (max_weight).
    calibrate_face, calibrate_pose: calibrate that branch at all (off = detector diagnostics only).
    warmup_loss: pose loss during warm-up: ``uncalibrated`` (batch negatives, no calibrated
        pair) or ``pcl`` (PCL's L_pose, own negatives only).
    pose_batch_negatives: the pose loss contrasts an image with the other images of the batch
        (True, the reconstruction's default) or only with its own pose-changed views, the
        detected pairs being extra positives (False: PCL's L_pose + calibrated positives).
    """

    k_face: int = 3
    k_pose: int = 5
    warmup_fraction: float = 0.1
    max_weight: float = 0.5
    weighting: Literal["cohesion", "constant"] = "cohesion"
    calibrate_face: bool = True
    calibrate_pose: bool = True
    warmup_loss: Literal["uncalibrated", "pcl"] = "uncalibrated"
    pose_batch_negatives: bool = True

    def __post_init__(self) -> None:
        if self.k_face < 1 or self.k_pose < 1:
            raise ValueError(f"calibration k_face and k_pose must be >= 1, got {self.k_face}, {self.k_pose}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"calibration warmup_fraction must be in [0, 1], got {self.warmup_fraction}")
        if not self.max_weight >= 0.0:
            raise ValueError(f"calibration max_weight must be >= 0, got {self.max_weight}")
        if self.weighting not in ("cohesion", "constant"):
            raise ValueError(f"calibration weighting must be 'cohesion' or 'constant', got {self.weighting!r}")
        if self.warmup_loss not in ("uncalibrated", "pcl"):
            raise ValueError(f"calibration warmup_loss must be 'uncalibrated' or 'pcl', got {self.warmup_loss!r}")


def true_identity_pairs(identity: Tensor) -> Tensor:
    """(N, N) bool: images i != j of the same identity (the face branch's true false negatives)."""
    same = identity[:, None] == identity[None, :]
    return same & ~torch.eye(identity.shape[0], dtype=torch.bool, device=identity.device)


def true_pose_pairs(pose: Tensor, tolerance: tuple[float, float] = POSE_TRUTH_TOLERANCE_DEG) -> Tensor:
    """(N, N) bool: images i != j with |Δyaw| < tol_yaw and |Δpitch| < tol_pitch (pose (N, 3) degrees)."""
    delta = (pose[:, None, :2] - pose[None, :, :2]).abs()  # (N, N, 2): yaw, pitch
    close = (delta[..., 0] < tolerance[0]) & (delta[..., 1] < tolerance[1])
    return close & ~torch.eye(pose.shape[0], dtype=torch.bool, device=pose.device)


def _gather(x: Tensor) -> Tensor:
    """This step's rows of every rank (with gradient to the own rows; identity on one process)."""
    return all_gather_with_grad(x)


def _image_embedding(view_a: Tensor, view_b: Tensor) -> Tensor:
    """(B, P) unit mean of two views' unit projections, detached: the image the detector sees."""
    with torch.no_grad():
        return F.normalize(F.normalize(view_a.detach().float(), dim=1) + F.normalize(view_b.detach().float(), dim=1),
                           dim=1)


@register
class PCFRL(PCL):
    """PCL plus the false-negative pair calibration (a reconstruction; module docstring).

    Same model, features, terms, views and steps as PCL; L_face and L_pose become the
    calibrated losses once the warm-up is over.

    Example:
        >>> from pclkit.config import resolve_config
        >>> method = PCFRL(resolve_config("smoke", {"method": "pcfrl"}))
        >>> method.terms(), method.calibration.k_face
        (('dis', 'orth', 'pose', 'face'), 3)
    """

    name = "pcfrl"
    label = "PCFRL"
    successor_of = "pcl"
    ablations: Mapping[str, Mapping[str, Any]] = {}
    options_type = CalibrationConfig

    def __init__(self, config: "TrainConfig", calibration: CalibrationConfig | None = None) -> None:
        super().__init__(config)
        self.calibration = calibration if calibration is not None else self.options
        #: 0-based index of the iteration the next loss belongs to, and the run's length
        #: (set by the trainer at the start of every iteration, :meth:`on_step_start`)
        self.iteration = 0
        self.total_steps: int | None = None

    @classmethod
    def validate(cls, config: "TrainConfig") -> str | None:
        return super().validate(config)  # the calibration knobs are checked by parse_options

    # -- warm-up ------------------------------------------------------------------

    def on_step_start(self, step: int, total_steps: int) -> None:
        """The trainer's iteration index and run length: the warm-up is a function of them only
        (so a resumed run calibrates from its first iteration as an uninterrupted one would)."""
        self.iteration, self.total_steps = step, total_steps

    def calibrating(self) -> bool:
        """Whether the current iteration calibrates (past ``warmup_fraction`` of the run).

        Outside a trainer (no :meth:`on_step_start` yet) the run length is unknown:
        only ``warmup_fraction == 0`` calibrates then.
        """
        fraction = self.calibration.warmup_fraction
        if fraction == 0.0:
            return True
        return self.total_steps is not None and self.iteration >= fraction * self.total_steps

    # -- the detector -----------------------------------------------------------------

    def pair_weights(self, found: NeighbourPairs) -> Tensor:
        """(N, N) calibration weight of each detected pair: max_weight * cohesion (or constant)."""
        cal = self.calibration
        strength = found.cohesion if cal.weighting == "cohesion" else found.pairs.float()
        return cal.max_weight * strength

    @staticmethod
    def _diagnostics(branch: str, found: NeighbourPairs, truth: Tensor | None) -> dict[str, Tensor]:
        pairs = torch.triu(found.pairs, diagonal=1).sum().float()
        out = {f"diag_{branch}_fn_pairs": pairs}
        if truth is not None:
            scores = pair_scores(found.pairs, truth)
            out[f"diag_{branch}_fn_precision"] = scores.precision
            out[f"diag_{branch}_fn_recall"] = scores.recall
            out[f"diag_{branch}_fn_true_pairs"] = scores.true
            out[f"diag_{branch}_fn_hits"] = scores.hits
        return out

    # -- the loss terms -------------------------------------------------------------------

    def face_terms(self, model: nn.Module, face_feat: Tensor, spans: Mapping[str, tuple[int, int]],
                   views: "StepViews") -> dict[str, Tensor]:
        calibrating = self.calibrating()
        face, diagnostics = self.calibrated_face_loss(model, face_feat, spans, views, calibrating)
        return {"face": face, **diagnostics, **self._calibrating_flag(calibrating, face_feat.device)}

    def pose_terms(self, model: nn.Module, pose_feat: Tensor, spans: Mapping[str, tuple[int, int]],
                   views: "StepViews", generator: torch.Generator | None) -> dict[str, Tensor]:
        calibrating = self.calibrating()
        pose, diagnostics = self.calibrated_pose_loss(model, pose_feat, spans, views, generator, calibrating)
        return {"pose": pose, **diagnostics, **self._calibrating_flag(calibrating, pose_feat.device)}

    @staticmethod
    def _calibrating_flag(calibrating: bool, device: torch.device) -> dict[str, Tensor]:
        return {"diag_fn_calibrating": torch.tensor(float(calibrating), device=device)}

    def calibrated_face_loss(self, model: nn.Module, face_feat: Tensor, spans: Mapping[str, tuple[int, int]],
                             views: "StepViews", calibrating: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """L_face^cal over the 2B face views of all ranks, and the face detector's diagnostics."""
        start, stop = spans["face_a"][0], spans["face_b"][1]
        z_a, z_b = model.project_face(face_feat[start:stop]).chunk(2, dim=0)  # 2 x (B, P), one BatchNorm pass
        z_a, z_b = _gather(z_a), _gather(z_b)  # (W*B, P): negatives from every rank
        found = mutual_neighbours(_image_embedding(z_a, z_b), self.calibration.k_face)
        truth = views.truth_identity
        diag = self._diagnostics("face", found, true_identity_pairs(_gather(truth)) if truth is not None else None)
        temperature = self.config.loss.temperature
        if calibrating and self.calibration.calibrate_face:
            return calibrated_nt_xent(z_a, z_b, self.pair_weights(found), temperature), diag
        return nt_xent(z_a, z_b, temperature), diag

    def calibrated_pose_loss(self, model: nn.Module, pose_feat: Tensor, spans: Mapping[str, tuple[int, int]],
                             views: "StepViews", generator: torch.Generator | None,
                             calibrating: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """L_pose^cal with batch negatives from all ranks, and the pose detector's diagnostics."""
        batch = views.batch_size
        start, stop = spans["pose_a"][0], spans["pose_neg"][1]
        proj = model.project_pose(pose_feat[start:stop])  # (2B + B*M, P)
        anchor, positive = proj[:batch], proj[batch:2 * batch]
        negatives = proj[2 * batch:].reshape(batch, -1, proj.shape[1])  # (B, M, P), image-major
        views_cfg, loss_cfg, cal = self.config.views, self.config.loss, self.calibration
        if views_cfg.negative_mix:
            negatives = mix_negatives(negatives, generator, alpha=views_cfg.mix_alpha)
        anchor_all, positive_all = _gather(anchor), _gather(positive)  # (W*B, P)
        found = mutual_neighbours(_image_embedding(anchor_all, positive_all), cal.k_pose)
        truth = views.truth_pose
        diag = self._diagnostics("pose", found, true_pose_pairs(_gather(truth.float())) if truth is not None else None)
        if not calibrating and cal.warmup_loss == "pcl":  # PCL's L_pose: own negatives only, no gathering needed
            return pose_contrastive(anchor, positive, negatives, loss_cfg.pose_temperature,
                                    positive_in_denominator=loss_cfg.pose_positive_in_denominator), diag
        weights = self.pair_weights(found)
        if not (calibrating and cal.calibrate_pose):
            weights = torch.zeros_like(weights)
        loss = calibrated_pose_contrastive(anchor_all, positive_all, _gather(negatives), weights,
                                           loss_cfg.pose_temperature,
                                           positive_in_denominator=loss_cfg.pose_positive_in_denominator,
                                           batch_negatives=cal.pose_batch_negatives)
        return loss, diag
