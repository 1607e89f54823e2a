"""PCLModel: encoder + pose-disentangled decoder + projection heads, and the SimCLR baseline.

Pose-disentangled Contrastive Learning (Liu et al., CVPR 2023, Fig. 2):
E(s) -> F_s, branches -> (F_f, F_p), D(F_f, F_p) -> image, face projection
head on F_f (L_face) and pose projection head on F_p (L_pose).

SimCLR (Chen et al., ICML 2020) is the same class with ``method="simclr"``:
the face projection head is applied to F_s. A SimCLR model has no decoder and
no pose head; its F_f/F_p branches exist so the feature API stays uniform, but
they are frozen (``requires_grad=False``, computed without autograd) because
no SimCLR loss trains them -- their features are a fixed random projection of
F_s, and DDP sees no unused trainable parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pclkit.models.encoder import BranchedEncoder
from pclkit.models.heads import ProjectionHead, SwapDecoder

__all__ = ["PCLModel", "METHODS"]

METHODS = ("pcl", "simclr")


class PCLModel(nn.Module):
    """Uniform model API (docs/architecture.md).

    * ``forward_features(x)`` -> (F_s (B, D_s), F_f (B, D), F_p (B, D)); also ``forward``.
    * ``decode(F_f, F_p)`` -> (B, 3, S, S) in [0, 1]   (PCL only)
    * ``project_face(feat)`` -> (B, P): on F_f for PCL, on F_s for SimCLR
    * ``project_pose(F_p)`` -> (B, P)                   (PCL only)
    * ``feature_dims`` -> {"F_s": D_s, "F_f": D, "F_p": D}

    Args:
        encoder: a :class:`BranchedEncoder`.
        method: ``"pcl"`` or ``"simclr"``.
        proj_hidden_dim, proj_dim: projection head sizes (reference 2048, 512).
        decoder_width: channels of the decoder's 1x1 seed map (reference 512).
        decoder_stage_width: channels of its upsampling stages (None = decoder_width // 2, the reference).
        decoder_fusion: ``sum`` (normalize(F_f + F_p), the reference) or ``concat``.
        decoder_seed_size: side of the decoder's seed map (reference 1).
        decoder_upsample: ``bilinear`` (reference) or ``pixelshuffle``.
    """

    def __init__(
        self,
        encoder: BranchedEncoder,
        method: str = "pcl",
        proj_hidden_dim: int = 2048,
        proj_dim: int = 512,
        decoder_width: int = 512,
        decoder_stage_width: int | None = None,
        decoder_fusion: str = "sum",
        decoder_seed_size: int = 1,
        decoder_upsample: str = "bilinear",
    ) -> None:
        super().__init__()
        #: the resolved ModelConfig when built by build_model (None otherwise)
        self.config = None
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.encoder = encoder
        self.image_size = encoder.input_size
        face_in = encoder.branch_dim if method == "pcl" else encoder.shared_dim
        self.face_head = ProjectionHead(face_in, proj_hidden_dim, proj_dim)
        if method == "pcl":
            self.pose_head: ProjectionHead | None = ProjectionHead(encoder.branch_dim, proj_hidden_dim, proj_dim)
            self.decoder: SwapDecoder | None = SwapDecoder(
                encoder.branch_dim, decoder_width, encoder.input_size, decoder_stage_width, decoder_fusion,
                decoder_seed_size, decoder_upsample,
            )
        else:
            self.pose_head = None
            self.decoder = None
            for branch in (encoder.face_branch, encoder.pose_branch):
                branch.requires_grad_(False)

    # -- features --------------------------------------------------------

    @property
    def feature_dims(self) -> dict[str, int]:
        """Sizes of the flattened features: {"F_s": D_s, "F_f": D, "F_p": D}."""
        return {"F_s": self.encoder.shared_dim, "F_f": self.encoder.branch_dim, "F_p": self.encoder.branch_dim}

    def _check_images(self, images: Tensor) -> None:
        size = self.image_size
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2:] != (size, size):
            raise ValueError(
                f"{type(self).__name__} expects images of shape (B, 3, {size}, {size}) in [0, 1], "
                f"got {tuple(images.shape)}"
            )

    def forward_features(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """E(s): (B, 3, S, S) in [0, 1] -> (F_s (B, D_s), F_f (B, D), F_p (B, D)), flattened.

        Any memory format works (channels_last is faster on CPU with bf16).
        For SimCLR F_f and F_p come from the frozen branches, without autograd.
        """
        self._check_images(images)
        shared_map = self.encoder.forward_shared_map(images)
        if self.method == "simclr":
            with torch.no_grad():
                face_feat, pose_feat = self.encoder.forward_branches(shared_map)
        else:
            face_feat, pose_feat = self.encoder.forward_branches(shared_map)
        shared_feat = self.encoder.shared_head(shared_map).flatten(1)
        return shared_feat, face_feat, pose_feat

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Same as :meth:`forward_features` (so DDP can wrap the model)."""
        return self.forward_features(images)

    # -- heads -----------------------------------------------------------

    def decode(self, face_feat: Tensor, pose_feat: Tensor) -> Tensor:
        """D(F_f, F_p): (B, D), (B, D) -> (B, 3, S, S) in [0, 1] (PCL Eq. 2)."""
        if self.decoder is None:
            raise RuntimeError("this is a SimCLR model: it has no decoder (build it with method='pcl')")
        return self.decoder(face_feat, pose_feat)

    def project_face(self, feat: Tensor) -> Tensor:
        """Face projection g_f: F_f (PCL) or F_s (SimCLR), (B, D) -> (B, P) for L_face."""
        return self.face_head(feat)

    def project_pose(self, pose_feat: Tensor) -> Tensor:
        """Pose projection g_p: F_p (B, D) -> (B, P) for L_pose."""
        if self.pose_head is None:
            raise RuntimeError("this is a SimCLR model: it has no pose projection head (build it with method='pcl')")
        return self.pose_head(pose_feat)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, image_size={self.image_size}, feature_dims={self.feature_dims}"
