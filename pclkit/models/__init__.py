"""Models of the pretraining methods: ``ModelConfig`` + ``build_model``.

Encoders by name: ``small`` (compact BN convnet, CPU default), ``facecycle``
(the reference architecture), ``resnet18`` / ``resnet50`` (torchvision,
weights=None, 64-px stem). See :mod:`pclkit.models.pcl` for the model API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from torch import nn

from pclkit.methods import DEFAULT_METHOD
from pclkit.models.encoder import BranchedEncoder
from pclkit.models.heads import FUSIONS, POSE_HEADS, UPSAMPLINGS, ProjectionHead, SwapDecoder
from pclkit.models.pcl import PCLModel
from pclkit.models.simclr import SimCLRModel
from pclkit.models.small import FACE_POOLS

__all__ = [
    "ModelConfig",
    "build_model",
    "build_encoder",
    "ENCODERS",
    "PCLModel",
    "SimCLRModel",
    "BranchedEncoder",
    "ProjectionHead",
    "SwapDecoder",
    "count_parameters",
]

#: per-encoder defaults for the sizes left as None in ModelConfig
_REFERENCE_SIZES = {"proj_hidden_dim": 2048, "proj_dim": 512, "decoder_width": 512}
_DEFAULTS: dict[str, dict[str, int]] = {
    # small: a wide decoder seed but narrow high-resolution stages, which dominate its cost
    "small": {"proj_hidden_dim": 512, "proj_dim": 128, "decoder_width": 256, "decoder_stage_width": 32},
    "facecycle": dict(_REFERENCE_SIZES),
    "resnet18": dict(_REFERENCE_SIZES),
    "resnet50": dict(_REFERENCE_SIZES),
}
ENCODERS = tuple(_DEFAULTS)


@dataclass
class ModelConfig:
    """Which encoder/method to build and the head sizes.

    Attributes:
        encoder: ``small`` | ``facecycle`` | ``resnet18`` | ``resnet50``.
        method: a registered method (:func:`pclkit.methods.method_names`); it builds the model.
        image_size: input side in pixels (64 in the paper; all encoders need a multiple of 16).
        width: base channel width of the ``small`` encoder (ignored by the others).
        proj_hidden_dim, proj_dim: projection head sizes; None = the encoder's default
            (2048/512 as the reference; 512/128 for ``small``).
        decoder_width: channels of the decoder's seed map (s x s, s = decoder_seed_size); None = 512
            (reference), 256 for ``small``.
        decoder_stage_width: channels of the decoder's upsampling stages; None = 32 for
            ``small``, else decoder_width // 2 (the reference: 256).
        decoder_fusion: ``sum`` (normalize(F_f + F_p), the reference), ``concat`` or ``warp`` (the
            seed from F_f alone, F_p moves a stage map with a flow field; this project's option,
            :class:`~pclkit.models.heads.PoseWarp`).
        decoder_warp_size: side of the decoder map the ``warp`` fusion moves; None = image_size // 4.
        decoder_skips: every decoder map also goes to RGB through a 1 x 1 conv and is added, upsampled,
            to the output (StyleGAN2's skip generator; this project's option, False = the reference).
        decoder_seed_size: side of the decoder's seed map (1 in the reference).
        decoder_upsample: ``bilinear`` (the reference) or ``pixelshuffle`` (sub-pixel convolution).
        decoder_refine: residual 3x3 blocks after each full-width decoder stage (0 = the reference;
            :class:`~pclkit.models.heads.RefineBlock`, this project's option).
        pose_dim: size of F_p; None = the pose branch's output (the paper, same size as F_f);
            a number adds a linear map to a narrow pose code (PCL only; needs ``concat`` fusion).
        pose_head: PCL's pose projection g_p for L_pose: ``mlp`` (the reference's Linear, ReLU, Linear,
            BatchNorm1d), ``linear`` (Linear, BatchNorm1d) or ``bn`` (BatchNorm1d alone: L_pose compares
            standardised F_p itself); this project's options, :func:`~pclkit.models.heads.pose_projection`.
        pose_adversary_hidden: hidden width of the MLP that reads F_p from F_f for L_adv
            (``loss.adversary_weight``; 0 = no adversary, the paper; PCL only, this project's option).
        face_pool: how the ``small`` encoder's face branch becomes F_f: ``flatten`` its 4 x 4 map
            (the reference layout, which keeps where each part of the face is) or ``mean`` (a 1 x 1
            conv to as many channels as the flattened map has, then the spatial mean: F_f no longer holds the layout;
            this project's option).
        vit_patch, vit_dim, vit_depth, vit_heads, vit_mlp_dim, num_prototypes, head_batch_norm:
            the ViT and prototype head of ProS (:class:`pclkit.methods.pros.ProSSettings`);
            None = that method's default.
    """

    encoder: str = "small"
    method: str = DEFAULT_METHOD
    image_size: int = 64
    width: int = 32
    proj_hidden_dim: int | None = None
    proj_dim: int | None = None
    decoder_width: int | None = None
    decoder_stage_width: int | None = None
    decoder_fusion: str = "sum"
    decoder_seed_size: int = 1
    decoder_upsample: str = "bilinear"
    decoder_refine: int = 0
    decoder_warp_size: int | None = None
    decoder_skips: bool = False
    pose_dim: int | None = None
    pose_head: str = "mlp"
    pose_adversary_hidden: int = 0
    face_pool: str = "flatten"
    vit_patch: int | None = None
    vit_dim: int | None = None
    vit_depth: int | None = None
    vit_heads: int | None = None
    vit_mlp_dim: int | None = None
    num_prototypes: int | None = None
    head_batch_norm: bool | None = None

    def resolved(self) -> "ModelConfig":
        """A copy with every None replaced by the encoder default (what a checkpoint stores)."""
        self.validate()
        defaults = _DEFAULTS[self.encoder]
        filled = replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})
        if filled.decoder_stage_width is None:
            filled.decoder_stage_width = max(filled.decoder_width // 2, 1)
        return filled

    def validate(self) -> None:
        if self.encoder not in _DEFAULTS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose one of {', '.join(ENCODERS)}")
        from pclkit.methods import get_method

        method = get_method(self.method)  # an unknown name lists the known ones
        if self.decoder_upsample not in UPSAMPLINGS:
            raise ValueError(f"decoder_upsample must be one of {', '.join(UPSAMPLINGS)}, got {self.decoder_upsample!r}")
        if self.decoder_fusion not in FUSIONS:
            raise ValueError(f"decoder_fusion must be one of {', '.join(FUSIONS)}, got {self.decoder_fusion!r}")
        if self.pose_head not in POSE_HEADS:
            raise ValueError(f"pose_head must be one of {', '.join(POSE_HEADS)}, got {self.pose_head!r}")
        if self.face_pool not in FACE_POOLS:
            raise ValueError(f"face_pool must be one of {', '.join(FACE_POOLS)}, got {self.face_pool!r}")
        if self.face_pool != "flatten" and self.encoder != "small":
            raise ValueError(f"face_pool {self.face_pool!r} is an option of the 'small' encoder, got {self.encoder!r}")
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a positive multiple of 16, got {self.image_size}")
        if self.pose_dim is not None and self.decoder_fusion == "sum":
            raise ValueError(f"pose_dim {self.pose_dim} (a narrower F_p) needs decoder_fusion 'concat' or 'warp', "
                             f"got {self.decoder_fusion!r}")
        if self.decoder_warp_size is not None and self.decoder_fusion != "warp":
            raise ValueError(f"decoder_warp_size {self.decoder_warp_size} needs decoder_fusion 'warp', "
                             f"got {self.decoder_fusion!r}")
        if self.pose_adversary_hidden < 0:
            raise ValueError(f"pose_adversary_hidden must be >= 0, got {self.pose_adversary_hidden}")
        if self.decoder_refine < 0:
            raise ValueError(f"decoder_refine must be >= 0, got {self.decoder_refine}")
        for name in ("width", "proj_hidden_dim", "proj_dim", "decoder_width", "decoder_stage_width", "decoder_seed_size",
                     "pose_dim"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        method.validate_model(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _small(cfg: ModelConfig) -> BranchedEncoder:
    from pclkit.models.small import small_encoder

    return small_encoder(width=cfg.width, input_size=cfg.image_size, face_pool=cfg.face_pool)


def _facecycle(cfg: ModelConfig) -> BranchedEncoder:
    from pclkit.models.facecycle import facecycle_encoder

    return facecycle_encoder(input_size=cfg.image_size)


def _resnet(depth: int) -> Callable[[ModelConfig], BranchedEncoder]:
    def build(cfg: ModelConfig) -> BranchedEncoder:
        from pclkit.models.resnet import resnet_encoder

        return resnet_encoder(depth, input_size=cfg.image_size)

    return build


_ENCODER_BUILDERS: dict[str, Callable[[ModelConfig], BranchedEncoder]] = {
    "small": _small,
    "facecycle": _facecycle,
    "resnet18": _resnet(18),
    "resnet50": _resnet(50),
}


def build_encoder(cfg: ModelConfig) -> BranchedEncoder:
    """The encoder named by ``cfg.encoder`` (randomly initialised)."""
    cfg.validate()
    return _ENCODER_BUILDERS[cfg.encoder](cfg)


def build_model(cfg: ModelConfig | None = None, **overrides: Any) -> nn.Module:
    """Build the model of ``cfg.method`` (e.g. :class:`PCLModel`, :class:`SimCLRModel`), randomly initialised.

    Fields of ``cfg`` may be overridden by keyword; ``model.config`` holds the resolved :class:`ModelConfig`.
    """
    from pclkit.methods import get_method

    cfg = replace(cfg or ModelConfig(), **overrides).resolved()
    model = get_method(cfg.method).build_model(cfg)
    model.config = cfg
    return model


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with requires_grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
