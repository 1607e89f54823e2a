"""Losses of Pose-disentangled Contrastive Learning (Liu et al., CVPR 2023), one module each.

The total objective of the paper (Sec. 3.4) is

    L = L_dis + lambda_orth * L_orth + alpha_pose * L_pose + alpha_face * L_face,

with alpha from Dynamic Weight Average (Liu et al., MTAN, CVPR 2019).

* :func:`nt_xent` -- L_face, SimCLR NT-Xent (Chen et al., ICML 2020, Eq. 1).
* :func:`pose_contrastive` -- L_pose, the pose-related contrastive loss (Eq. 4-5).
* :func:`orthogonality` -- L_orth, DSN difference loss, the paper's dot form, cosine or cross-correlation (Eq. 3).
* :func:`swap_reconstruction` -- L_dis, the four L1 swap-reconstruction terms (Eq. 2).
* :func:`branch_invariance` -- L_inv, this project's option: F_f kept the same across the pose change.
* :func:`swap_cycle` -- L_cyc, this project's option: a cross-identity swap re-encodes to its parts.
* :func:`cross_fitted_predictability` -- L_pred, this project's option: a ridge regression on F_f, fitted
  on each batch, must not predict F_p.
* :func:`flip_equivariance` -- L_flip, this project's option: F_p of a mirrored face is F_p of the face
  with a fixed set of columns negated.
* :func:`pose_adversary` -- L_adv, this project's option: an adversary reading F_p from F_f, F_f trained against it.
* :class:`DynamicWeightAverage` -- the alpha of the contrastive terms.
* :func:`mix_negatives` -- optional Beta mixing of pose negatives (reference code detail).
* :func:`calibrated_nt_xent`, :func:`calibrated_pose_contrastive` -- the calibrated face and pose
  losses of the PCFRL reconstruction (Liu et al., IJCV 2025): false negatives as weighted extra
  positives (:func:`multi_positive_info_nce`).
* :func:`prototype_matching` -- ProS's prototype-based matching loss (Di et al., WACV 2024), read as
  DINO's self-distillation (a reconstruction), with :func:`teacher_targets` and :func:`updated_center`.

Every contrastive/similarity loss is computed in float32 even under autocast:
bf16 has an 8-bit mantissa, and logits divided by tau = 0.07 lose too much
precision in log-sum-exp.
"""

from pclkit.losses.branch_invariance import branch_invariance
from pclkit.losses.calibrated import calibrated_nt_xent, calibrated_pose_contrastive, multi_positive_info_nce
from pclkit.losses.dwa import DynamicWeightAverage
from pclkit.losses.flip_equivariance import flip_equivariance, flip_signs
from pclkit.losses.nt_xent import nt_xent
from pclkit.losses.orthogonality import ORTHOGONALITY_MODES, orthogonality
from pclkit.losses.pose_adversary import ADVERSARY_FORMS, AdversaryLoss, grad_reverse, pose_adversary
from pclkit.losses.pose_contrastive import mix_negatives, pose_contrastive, sample_beta
from pclkit.losses.predictability import PredictabilityMemory, cross_fitted_predictability
from pclkit.losses.prototype import prototype_matching, teacher_targets, updated_center
from pclkit.losses.swap_cycle import swap_cycle
from pclkit.losses.swap_reconstruction import (
    SWAP_ONLY_TERM_NAMES,
    SWAP_TERM_NAMES,
    SwapReconstruction,
    swap_reconstruction,
)

__all__ = [
    "nt_xent",
    "pose_contrastive",
    "orthogonality",
    "ORTHOGONALITY_MODES",
    "swap_reconstruction",
    "SwapReconstruction",
    "branch_invariance",
    "swap_cycle",
    "pose_adversary",
    "cross_fitted_predictability",
    "flip_equivariance",
    "flip_signs",
    "PredictabilityMemory",
    "grad_reverse",
    "AdversaryLoss",
    "ADVERSARY_FORMS",
    "SWAP_TERM_NAMES",
    "SWAP_ONLY_TERM_NAMES",
    "DynamicWeightAverage",
    "mix_negatives",
    "sample_beta",
    "calibrated_nt_xent",
    "calibrated_pose_contrastive",
    "multi_positive_info_nce",
    "prototype_matching",
    "teacher_targets",
    "updated_center",
]
