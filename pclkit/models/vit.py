"""A student/teacher pair of small vision transformers with prototype heads (self-distillation).

The model of the ProS reading in :mod:`pclkit.methods.pros` (Di, Zheng, Liu &
Cheng, WACV 2024, arXiv 2311.01929: "two vision transformers, a teacher and a
student", a prototype-based matching loss, the *teacher* as the backbone after
pre-training), built the DINO way (Caron et al., ICCV 2021):

* backbone: torchvision's :class:`torchvision.models.VisionTransformer` (not
  re-implemented), sized for 64 px faces (patch 8: an 8 x 8 token grid plus
  the class token), classification head replaced by the identity, so it returns
  the class token after the final LayerNorm: F (B, D);
* :class:`PrototypeHead`: a 3-layer GELU MLP to a bottleneck, L2-normalised,
  then cosine scores against K learnable prototypes whose rows are L2-normalised
  in the forward pass (DINO's weight-normalised last layer with its gain fixed at
  1): s (B, K) in [-1, 1];
* the teacher: a copy of student backbone + head with ``requires_grad=False``,
  moved towards the student by an exponential moving average
  (:meth:`StudentTeacherViT.update_teacher`); ``center`` (K,) is a buffer (saved
  in the state dict) with the EMA of the teacher's batch-mean scores.

Crops of another size (DINO's local crops): torchvision's ViT checks its input
side, so :func:`vit_class_token` runs the same modules (``conv_proj``,
``class_token``, ``encoder.pos_embedding / dropout / layers / ln``) with the
position embeddings interpolated (bicubic) to the crop's token grid, as DINO
does. Alternative (not chosen): resize every local crop up to the model side,
which costs as much as a global crop per local crop and removes the scale change.

torchvision >= 0.19 keeps these attribute names (unchanged since 0.12).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VisionTransformer

__all__ = [
    "PrototypeHead",
    "StudentTeacherViT",
    "interpolate_position_embedding",
    "resampled_class_token",
    "vit_backbone",
    "vit_class_token",
]


def vit_backbone(image_size: int, patch_size: int, hidden_dim: int, depth: int, heads: int,
                 mlp_dim: int) -> VisionTransformer:
    """torchvision's ViT without its classification head: ``vit(x (B, 3, S, S)) -> (B, hidden_dim)``."""
    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} must be a multiple of the patch size {patch_size}")
    if hidden_dim % heads:
        raise ValueError(f"hidden_dim {hidden_dim} must divide into {heads} attention heads")
    vit = VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=depth, num_heads=heads,
                            hidden_dim=hidden_dim, mlp_dim=mlp_dim)
    vit.heads = nn.Identity()  # the class token after the final LayerNorm is the feature
    return vit


def interpolate_position_embedding(pos: Tensor, grid: int) -> Tensor:
    """Position embeddings (1, 1 + G*G, D) of a G x G token grid -> (1, 1 + grid*grid, D) (bicubic).

    The class token's embedding is kept; the patch embeddings are resampled as a
    (D, G, G) image. With ``grid == G`` the input is returned unchanged.
    """
    tokens = pos.shape[1] - 1
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"position embeddings of {tokens} patch tokens do not form a square grid")
    if grid == side:
        return pos
    cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
    dim = pos.shape[-1]
    patch_pos = patch_pos.reshape(1, side, side, dim).permute(0, 3, 1, 2)  # (1, D, G, G)
    patch_pos = F.interpolate(patch_pos.float(), size=(grid, grid), mode="bicubic", align_corners=False)
    patch_pos = patch_pos.to(pos.dtype).permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat([cls_pos, patch_pos], dim=1)


def vit_class_token(vit: VisionTransformer, images: Tensor) -> Tensor:
    """The class token of ``vit`` for images (B, 3, s, s) of any side s divisible by the patch: (B, D).

    At the model side this is ``vit(images)`` (torchvision's own forward); at other
    sides :func:`resampled_class_token`.
    """
    side = images.shape[-1]
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2] != side or side % vit.patch_size:
        raise ValueError(f"images must be (B, 3, s, s) with s a multiple of the patch size {vit.patch_size}, "
                         f"got {tuple(images.shape)}")
    return vit(images) if side == vit.image_size else resampled_class_token(vit, images)


def resampled_class_token(vit: VisionTransformer, images: Tensor) -> Tensor:
    """torchvision's ViT forward for any input side: the same modules (patch projection, class
    token, encoder dropout / blocks / final LayerNorm) with the position embeddings resampled
    to the input's token grid (:func:`interpolate_position_embedding`). (B, 3, s, s) -> (B, D).
    """
    tokens = vit.conv_proj(images).flatten(2).transpose(1, 2)  # (B, g*g, D)
    cls = vit.class_token.expand(images.shape[0], -1, -1)  # (B, 1, D)
    tokens = torch.cat([cls, tokens], dim=1)
    encoder = vit.encoder
    tokens = tokens + interpolate_position_embedding(encoder.pos_embedding, images.shape[-1] // vit.patch_size)
    return encoder.ln(encoder.layers(encoder.dropout(tokens)))[:, 0]


class PrototypeHead(nn.Module):
    """F (B, D) -> prototype scores s (B, K): cosine similarity of an embedding with K prototypes.

    z = normalize(MLP(F)), MLP = Linear(D, H) [BN] GELU Linear(H, H) [BN] GELU Linear(H, P)
    (DINO's head; BatchNorm with ``batch_norm``, DINO's ``use_bn_in_head``); s_k = <z, w_k / |w_k|> with learnable
    prototypes w (K, P). The scores are computed in float32 (autocast off):
    they are divided by temperatures as low as 0.02 afterwards.
    """

    def __init__(self, in_dim: int, hidden_dim: int, bottleneck_dim: int, num_prototypes: int,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.in_dim = in_dim

        def norm() -> nn.Module:
            return nn.BatchNorm1d(hidden_dim) if batch_norm else nn.Identity()

        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), norm(), nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim), norm(), nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, bottleneck_dim) / math.sqrt(bottleneck_dim))

    @property
    def num_prototypes(self) -> int:
        return self.prototypes.shape[0]

    def forward(self, feat: Tensor) -> Tensor:
        if feat.dim() != 2 or feat.shape[1] != self.in_dim:
            raise ValueError(f"prototype head expects (B, {self.in_dim}) features, got {tuple(feat.shape)}")
        hidden = self.mlp(feat)
        with torch.autocast(device_type=feat.device.type, enabled=False):
            z = F.normalize(hidden.float(), dim=-1)  # (B, P)
            return z @ F.normalize(self.prototypes.float(), dim=-1).T  # (B, K)


class _Network(nn.Module):
    """One side of the pair: ViT backbone + prototype head."""

    def __init__(self, backbone: VisionTransformer, head: PrototypeHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, images: Tensor) -> Tensor:
        return vit_class_token(self.backbone, images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


class StudentTeacherViT(nn.Module):
    """Student and EMA teacher ViTs with prototype heads; the teacher's class token is the feature.

    * ``forward_features(x)`` / ``forward(x)`` -> ``{"F_s": (B, D)}``: the TEACHER
      backbone's class token (the backbone ProS evaluates);
    * ``student_scores(x)`` (B, K) with gradients; ``teacher_scores(x)`` (B, K), no gradient;
      x may be a global crop (the model side) or a smaller local crop;
    * ``update_teacher(m)``: theta_t <- m theta_t + (1 - m) theta_s;
    * ``center`` (K,) buffer: the teacher centre (updated by the method);
    * ``feature_dims`` -> ``{"F_s": D}``; ``image_size`` the global side.
    """

    def __init__(self, image_size: int = 64, patch_size: int = 8, hidden_dim: int = 96, depth: int = 4,
                 heads: int = 3, mlp_dim: int = 384, head_hidden_dim: int = 512, bottleneck_dim: int = 128,
                 num_prototypes: int = 256, head_batch_norm: bool = False) -> None:
        super().__init__()
        #: the resolved ModelConfig when built by build_model (None otherwise)
        self.config = None
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.student = _Network(vit_backbone(image_size, patch_size, hidden_dim, depth, heads, mlp_dim),
                                PrototypeHead(hidden_dim, head_hidden_dim, bottleneck_dim, num_prototypes,
                                              batch_norm=head_batch_norm))
        self.teacher = copy.deepcopy(self.student)  # starts equal to the student (DINO)
        self.teacher.requires_grad_(False)
        self.register_buffer("center", torch.zeros(num_prototypes))

    @property
    def feature_dims(self) -> dict[str, int]:
        return {"F_s": self.hidden_dim}

    @property
    def num_prototypes(self) -> int:
        return self.student.head.num_prototypes

    def _check_global(self, images: Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f"expected images (B, 3, {self.image_size}, {self.image_size}), got {tuple(images.shape)}")

    def forward_features(self, images: Tensor) -> dict[str, Tensor]:
        """Teacher backbone: (B, 3, S, S) in [0, 1] -> ``{"F_s": (B, D)}``."""
        self._check_global(images)
        return {"F_s": self.teacher.features(images)}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.forward_features(images)

    def student_scores(self, images: Tensor) -> Tensor:
        """Student prototype scores of crops (B, 3, s, s): (B, K), with gradients."""
        return self.student(images)

    def teacher_scores(self, images: Tensor) -> Tensor:
        """Teacher prototype scores of crops (B, 3, s, s): (B, K), never with gradients."""
        with torch.no_grad():
            return self.teacher(images)

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """theta_t <- m theta_t + (1 - m) theta_s for every parameter (and buffer) of the teacher."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
        for teacher, student in zip(self.teacher.parameters(), self.student.parameters()):
            teacher.mul_(momentum).add_(student.detach(), alpha=1.0 - momentum)
        for teacher, student in zip(self.teacher.buffers(), self.student.buffers()):
            teacher.copy_(student)

    def extra_repr(self) -> str:
        return (f"image_size={self.image_size}, patch_size={self.patch_size}, feature_dims={self.feature_dims}, "
                f"num_prototypes={self.num_prototypes}")
