"""ProS (Di, Zheng, Liu & Cheng, "Prototype-based Self-Distillation for unsupervised face
representation learning", WACV 2024, arXiv 2311.01929), as a labelled RECONSTRUCTION.

What the paper says (abstract): two vision transformers, a teacher and a student,
see differently augmented images (cropping, blurring, colouring); a
**prototype-based matching loss** aligns the similarity distributions of teacher
and student features against a set of **learnable prototypes**; after
pre-training the *teacher* ViT is the backbone. There is no public code, so
everything below the abstract is a **reconstruction: DINO's self-distillation**
(Caron et al., "Emerging Properties in Self-Supervised Vision Transformers",
ICCV 2021) with the choices marked "Reconstruction":

* Model (:class:`pclkit.models.vit.StudentTeacherViT`): student = torchvision
  ViT (patch 8 at 64 px, tiny width/depth so it trains on 2 CPU cores) + a
  prototype head (MLP, L2-normalised embedding, K L2-normalised learnable
  prototypes: cosine scores s in [-1, 1]^K); teacher = the same architecture,
  no gradient, an EMA of the student
  ``theta_t <- m theta_t + (1 - m) theta_s`` after every optimiser step with m
  rising from ``ema_momentum`` to 1 on a cosine (:func:`ema_momentum_at`).
  Reconstruction: DINO's head (3-layer MLP, weight-normalised last layer with
  gain 1 = row-normalised prototypes) with BatchNorm in its MLP (DINO's
  ``use_bn_in_head`` option, which DINO uses for convnets): measured on
  pros_synth_cpu, without it the teacher's targets collapse to uniform within
  ~20 steps (normalised entropy 0.98 by step 20 at lr 5e-4 or 1.25e-4, tau_t 0.04
  or 0.02), with it they stay sharp (0.2-0.3 at tau_t 0.02) and spread over
  prototypes (batch entropy ~0.65) for 96 steps; random ViT features of different
  faces are nearly equal, and the batch statistics separate them from the first
  step. Alternatives: no BatchNorm with a long warm-up (DINO's ViT recipe), a
  linear head, SwAV's prototypes with Sinkhorn-balanced targets (Caron et al.,
  NeurIPS 2020; DINOv2's centring).
* Views: DINO's multi-crop (part ``multicrop`` of :mod:`pclkit.views`): 2 global
  crops at the model side and L local crops at a smaller side, colour jitter,
  grey and blur (no flip: it changes a face's pose). The student sees all
  2 + L crops (local crops through interpolated position embeddings), the
  teacher the 2 global crops only.
* Loss ``proto`` (:func:`pclkit.losses.prototype_matching`): cross-entropy
  between the teacher's centred, sharpened softmax over prototypes
  (temperature ``teacher_temperature``) and the student's softmax
  (``student_temperature``), averaged over all (teacher view, student view)
  pairs of different views; the centre c is an EMA (``center_momentum``) of the
  teacher's batch-mean scores, a buffer of the model (in the state dict), updated
  in training after each loss evaluation (all-reduced over ranks).
  Reconstruction: a fixed teacher temperature of 0.02 (DINO: 0.04, warmed up
  to 0.07; its ablation trains with 0.02-0.06): at 0.04 the targets drifted
  towards uniform over 96 steps (entropy 0.63 -> 0.74), at 0.02 they stayed
  sharp; no "freeze the prototypes in the first epoch" trick.
* Diagnostics (logged, not optimised): ``diag_teacher_entropy`` (mean entropy of
  the teacher's targets / log K: near 1 = collapse to uniform) and
  ``diag_batch_entropy`` (entropy of their batch mean / log K: near 0 = every
  image on one prototype).
* Left out: the paper's face-aware curation (a retrieval step that keeps
  face-dominated images from an uncurated set). SynthFaces renders one centred
  face per image, so it has no counterpart there; on a frames folder pclkit has
  no face detector to measure the face box, and its ``FaceFolder`` already expects
  face crops, so no curation is run.
* Evaluation: ProS fine-tunes its teacher on each task; pclkit evaluates the
  teacher's frozen class token (``F_s``) with the same linear / kNN protocol as
  every other method, so all methods sit in one table.

The ViT, head and loss settings are config keys (``model.vit_dim``,
``loss.teacher_temperature``, ...; see :class:`ProSSettings`); a key left at
None takes the default of :class:`ProSSettings`. The multi-crop sizes are
:class:`pclkit.views.MultiCrop` (``views.local_crops``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from pclkit.distributed import all_reduce_mean
from pclkit.losses import prototype_matching, teacher_targets, updated_center
from pclkit.methods import register
from pclkit.methods.base import Method, Step

if TYPE_CHECKING:
    from pclkit.config import TrainConfig
    from pclkit.models import ModelConfig
    from pclkit.views import StepViews

__all__ = ["ProS", "ProSSettings", "ema_momentum_at"]

#: config section of each setting
_MODEL_KEYS = ("vit_patch", "vit_dim", "vit_depth", "vit_heads", "vit_mlp_dim", "num_prototypes", "head_batch_norm")
_LOSS_KEYS = ("student_temperature", "teacher_temperature", "center_momentum", "ema_momentum")


@dataclass(frozen=True)
class ProSSettings:
    """ProS sizes and hyper-parameters (defaults: a ViT that trains on 2 CPU cores); config keys of the
    same name in ``model`` and ``loss`` override them unless None.

    Model (``model.*``): vit_patch 8 (an 8 x 8 grid at 64 px), vit_dim / vit_depth /
    vit_heads the ViT's width, depth and heads (ViT-S is 384 / 12 / 6), vit_mlp_dim
    (None: 4 x vit_dim), num_prototypes K (DINO: 65,536; the prototype head's MLP
    sizes are ``model.proj_hidden_dim`` / ``model.proj_dim``), head_batch_norm
    (BatchNorm in the head's MLP; DINO's ``use_bn_in_head``).
    Loss (``loss.*``): student_temperature tau_s (DINO 0.1), teacher_temperature
    tau_t (0.02 here, DINO 0.04), center_momentum (DINO 0.9), ema_momentum m0 of the teacher
    (0.99 here, for CPU runs of a few hundred steps: with 0.996 a 512-step run keeps
    about a third of the random initial weights in the teacher; DINO uses 0.996 for
    100+ epochs, the ``paper``-size setting).
    """

    vit_patch: int = 8
    vit_dim: int = 96
    vit_depth: int = 4
    vit_heads: int = 3
    vit_mlp_dim: int | None = None
    num_prototypes: int = 256
    head_batch_norm: bool = True
    student_temperature: float = 0.1
    teacher_temperature: float = 0.02
    center_momentum: float = 0.9
    ema_momentum: float = 0.99

    def __post_init__(self) -> None:
        for name in ("vit_patch", "vit_dim", "vit_depth", "vit_heads", "num_prototypes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.vit_dim % self.vit_heads:
            raise ValueError(f"vit_dim {self.vit_dim} must divide into vit_heads {self.vit_heads}")
        if self.vit_mlp_dim is not None and self.vit_mlp_dim < 1:
            raise ValueError(f"vit_mlp_dim must be >= 1 or null, got {self.vit_mlp_dim}")
        for name in ("student_temperature", "teacher_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("center_momentum", "ema_momentum"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def mlp_dim(self) -> int:
        return self.vit_mlp_dim if self.vit_mlp_dim is not None else 4 * self.vit_dim

    @classmethod
    def read(cls, model_cfg: Any = None, loss_cfg: Any = None) -> "ProSSettings":
        """The defaults, overridden by the keys of the same name of ``model_cfg`` / ``loss_cfg`` that are not None."""
        values: dict[str, Any] = {}
        for section, keys in ((model_cfg, _MODEL_KEYS), (loss_cfg, _LOSS_KEYS)):
            values.update({key: getattr(section, key) for key in keys if getattr(section, key, None) is not None})
        return cls(**values)

    @classmethod
    def of(cls, config: "TrainConfig") -> "ProSSettings":
        return cls.read(config.model, config.loss)


def ema_momentum_at(step: int, total_steps: int, base: float) -> float:
    """Teacher EMA momentum after iteration ``step`` (0-based) of ``total_steps``: cosine from ``base`` to 1.

        m(step) = 1 - (1 - base) * (1 + cos(pi * step / total_steps)) / 2      (DINO, Sec. 3.1)
    """
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (1.0 + math.cos(math.pi * progress)) / 2.0


def _normalised_entropy(probs: Tensor) -> Tensor:
    """Entropy over the last dimension divided by log K (0: one-hot, 1: uniform)."""
    k = probs.shape[-1]
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return entropy / math.log(k) if k > 1 else entropy


@register
class ProS(Method):
    """Views: multi-crop. Model: student/teacher ViTs with prototype heads. Loss: ``proto``.

    Example:
        >>> from pclkit.config import resolve_config
        >>> method = ProS(resolve_config("smoke", {"method": "pros"}))
        >>> method.terms(), [step.view_parts for step in method.steps()]
        (('proto',), [('multicrop',)])
    """

    name = "pros"
    label = "ProS"
    successor_of = "pcl"
    features = ("F_s",)
    has_decoder = False

    @classmethod
    def build_model(cls, model_cfg: "ModelConfig") -> nn.Module:
        """:class:`pclkit.models.vit.StudentTeacherViT`; ``model.encoder`` is not read (the backbone is the ViT)."""
        from pclkit.models.vit import StudentTeacherViT

        settings = ProSSettings.read(model_cfg)
        return StudentTeacherViT(
            image_size=model_cfg.image_size,
            patch_size=settings.vit_patch,
            hidden_dim=settings.vit_dim,
            depth=settings.vit_depth,
            heads=settings.vit_heads,
            mlp_dim=settings.mlp_dim,
            head_hidden_dim=model_cfg.proj_hidden_dim,
            bottleneck_dim=model_cfg.proj_dim,
            num_prototypes=settings.num_prototypes,
            head_batch_norm=settings.head_batch_norm,
        )

    @classmethod
    def validate_model(cls, model_cfg: "ModelConfig") -> None:
        settings = ProSSettings.read(model_cfg)
        if model_cfg.image_size % settings.vit_patch:
            raise ValueError(f"image_size {model_cfg.image_size} must be a multiple of the ViT patch {settings.vit_patch}")

    @classmethod
    def validate(cls, config: "TrainConfig") -> str | None:
        from pclkit.views import MultiCrop

        if config.loss.schedule != "joint":
            return "loss.schedule 'alternating' splits PCL's terms; ProS has one term (use 'joint')"
        try:
            settings = ProSSettings.of(config)
            crops = MultiCrop.from_config(config)
        except (TypeError, ValueError) as err:
            return str(err)
        side = crops.side(config.model.image_size)
        if crops.local_crops < 0:
            return f"views.local_crops must be >= 0, got {crops.local_crops}"
        if crops.local_crops and (side < settings.vit_patch or side % settings.vit_patch):
            return f"the local crops' side {side} must be a positive multiple of the ViT patch {settings.vit_patch}"
        low, high = crops.local_scale
        if not 0.0 < low <= high <= 1.0:
            return f"views.local_scale must be (low, high) with 0 < low <= high <= 1, got {crops.local_scale}"
        return None

    def __init__(self, config: "TrainConfig") -> None:
        super().__init__(config)
        self.settings = ProSSettings.of(config)

    def terms(self) -> tuple[str, ...]:
        return ("proto",)

    def steps(self) -> tuple[Step, ...]:
        return (Step("joint", ("multicrop",)),)

    def compute_terms(self, model: nn.Module, views: "StepViews", generator: torch.Generator | None,
                      channels_last: bool = False) -> dict[str, Tensor]:
        """L_proto of one step: a teacher pass over the 2 global crops, student passes over all crops.

        Rows are view-major: global crops (2B, 3, S, S) then local crops (L*B, 3, s, s),
        one student pass per size; the scores are reshaped to (views, B, K).
        In training, the teacher centre then moves towards this batch's mean teacher score.
        """
        if views.global_views is None:
            raise ValueError("ProS needs the multicrop views (global_views); build them with parts ('multicrop',)")
        batch = views.global_views.shape[0]
        memory = torch.channels_last if channels_last else torch.contiguous_format
        crops = [views.global_views.transpose(0, 1).flatten(0, 1)]  # (2B, 3, S, S): view 0 of all images, then view 1
        if views.local_views is not None:
            crops.append(views.local_views.transpose(0, 1).flatten(0, 1))  # (L*B, 3, s, s)
        crops = [c.contiguous(memory_format=memory) for c in crops]
        teacher = model.teacher_scores(crops[0])  # (2B, K), no gradient
        student = torch.cat([model.student_scores(c) for c in crops])  # ((2 + L) B, K)
        teacher = teacher.reshape(-1, batch, teacher.shape[-1])  # (2, B, K)
        student = student.reshape(-1, batch, student.shape[-1])  # (2 + L, B, K)
        settings = self.settings
        terms = {"proto": prototype_matching(student, teacher, model.center,
                                             settings.student_temperature, settings.teacher_temperature)}
        with torch.no_grad():
            targets = teacher_targets(teacher, model.center, settings.teacher_temperature)  # (2, B, K)
            terms["diag_teacher_entropy"] = _normalised_entropy(targets).mean()
            terms["diag_batch_entropy"] = _normalised_entropy(targets.mean(dim=(0, 1)))
            if model.training:
                batch_mean = all_reduce_mean(teacher.float().mean(dim=(0, 1)))  # (K,) over all ranks
                model.center.copy_(updated_center(model.center, batch_mean, settings.center_momentum))
        return terms

    def after_optimizer_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """The teacher's EMA update with the cosine momentum schedule."""
        model.update_teacher(ema_momentum_at(step, total_steps, self.settings.ema_momentum))
