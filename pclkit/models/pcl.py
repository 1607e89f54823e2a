"""PCLModel: encoder + pose-disentangled decoder + projection heads.

Pose-disentangled Contrastive Learning (Liu et al., CVPR 2023, Fig. 2):
E(s) -> F_s, branches -> (F_f, F_p), D(F_f, F_p) -> image, face projection
head on F_f (L_face) and pose projection head on F_p (L_pose).
The SimCLR baseline is :class:`pclkit.models.simclr.SimCLRModel`.
"""

from __future__ import annotations

from torch import Tensor, nn

from pclkit.models.encoder import BranchedEncoder
from pclkit.models.heads import ProjectionHead, SwapDecoder, pose_projection

__all__ = ["PCLModel"]


class PCLModel(nn.Module):
    """Uniform model API (docs/architecture.md).

    * ``forward_features(x)`` -> ``{"F_s": (B, D_s), "F_f": (B, D), "F_p": (B, D)}``; also ``forward``.
    * ``decode(F_f, F_p)`` -> (B, 3, S, S) in [0, 1]
    * ``project_face(F_f)`` -> (B, P), ``project_pose(F_p)`` -> (B, P)
    * ``feature_dims`` -> {"F_s": D_s, "F_f": D, "F_p": D (or ``pose_dim``)}

    Args:
        encoder: a :class:`BranchedEncoder`.
        proj_hidden_dim, proj_dim: projection head sizes (reference 2048, 512).
        decoder_width: channels of the decoder's 1x1 seed map (reference 512).
        decoder_stage_width: channels of its upsampling stages (None = decoder_width // 2, the reference).
        decoder_fusion: ``sum`` (normalize(F_f + F_p), the reference), ``concat`` or ``warp``.
        decoder_seed_size: side of the decoder's seed map (reference 1).
        decoder_upsample: ``bilinear`` (reference) or ``pixelshuffle``.
        decoder_refine: residual blocks after each full-width decoder stage (0 = the reference).
        decoder_warp_size: side of the map the ``warp`` fusion moves (None = image side // 4).
        decoder_skips: 1x1 convs from every decoder map to RGB, added to the output (False = the reference).
        pose_dim: size of F_p. None (the paper) = the branch output itself; a number
            k adds a linear map branch output -> k (a narrow pose code: pose has three
            angles, and a code of k << D has little room left for identity; this
            project's option, needs ``decoder_fusion="concat"`` or ``"warp"``).
        pose_adversary_hidden: hidden width of an MLP F_f (B, D) -> (B, k) that predicts F_p for
            L_adv (:func:`pclkit.losses.pose_adversary`); 0 = none (the paper).
        pose_head: the pose projection g_p: ``mlp`` (the reference), ``linear`` or ``bn``
            (:func:`~pclkit.models.heads.pose_projection`).
    """

    def __init__(
        self,
        encoder: BranchedEncoder,
        proj_hidden_dim: int = 2048,
        proj_dim: int = 512,
        decoder_width: int = 512,
        decoder_stage_width: int | None = None,
        decoder_fusion: str = "sum",
        decoder_seed_size: int = 1,
        decoder_upsample: str = "bilinear",
        pose_dim: int | None = None,
        decoder_refine: int = 0,
        decoder_warp_size: int | None = None,
        decoder_skips: bool = False,
        pose_adversary_hidden: int = 0,
        pose_head: str = "mlp",
    ) -> None:
        super().__init__()
        #: the resolved ModelConfig when built by build_model (None otherwise)
        self.config = None
        self.encoder = encoder
        self.image_size = encoder.input_size
        self.pose_dim = pose_dim or encoder.branch_dim
        #: branch output (B, D) -> narrow pose code F_p (B, k), or None (F_p is the branch output)
        self.pose_code = nn.Linear(encoder.branch_dim, pose_dim) if pose_dim else None
        self.face_head = ProjectionHead(encoder.branch_dim, proj_hidden_dim, proj_dim)
        self.pose_head = pose_projection(pose_head, self.pose_dim, proj_hidden_dim, proj_dim)
        self.decoder = SwapDecoder(
            encoder.branch_dim, decoder_width, encoder.input_size, decoder_stage_width, decoder_fusion,
            decoder_seed_size, decoder_upsample, pose_dim=self.pose_dim, refine=decoder_refine,
            warp_size=decoder_warp_size, skips=decoder_skips,
        )
        #: F_f (B, D) -> predicted standardised F_p (B, k) for L_adv, or None
        self.pose_adversary = (
            nn.Sequential(nn.Linear(encoder.branch_dim, pose_adversary_hidden), nn.ReLU(inplace=True),
                          nn.Linear(pose_adversary_hidden, self.pose_dim))
            if pose_adversary_hidden else None
        )

    # -- features --------------------------------------------------------

    @property
    def feature_dims(self) -> dict[str, int]:
        """Sizes of the flattened features: {"F_s": D_s, "F_f": D, "F_p": D or pose_dim}."""
        return {"F_s": self.encoder.shared_dim, "F_f": self.encoder.branch_dim, "F_p": self.pose_dim}

    def forward_features(self, images: Tensor) -> dict[str, Tensor]:
        """E(s): (B, 3, S, S) in [0, 1] -> ``{"F_s": (B, D_s), "F_f": (B, D), "F_p": (B, D)}``, flattened.

        Any memory format works (channels_last is faster on CPU with bf16).
        """
        self.encoder.check_images(images)
        shared_map = self.encoder.forward_shared_map(images)
        face_feat, pose_feat = self.encoder.forward_branches(shared_map)
        if self.pose_code is not None:
            pose_feat = self.pose_code(pose_feat)  # (B, k)
        return {"F_s": self.encoder.shared_pool(shared_map).flatten(1), "F_f": face_feat, "F_p": pose_feat}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Same as :meth:`forward_features` (so DDP can wrap the model)."""
        return self.forward_features(images)

    # -- heads -----------------------------------------------------------

    def decode(self, face_feat: Tensor, pose_feat: Tensor) -> Tensor:
        """D(F_f, F_p): (B, D), (B, D) -> (B, 3, S, S) in [0, 1] (PCL Eq. 2)."""
        return self.decoder(face_feat, pose_feat)

    def project_face(self, feat: Tensor) -> Tensor:
        """Face projection g_f: F_f (B, D) -> (B, P) for L_face."""
        return self.face_head(feat)

    def project_pose(self, pose_feat: Tensor) -> Tensor:
        """Pose projection g_p: F_p (B, D) -> (B, P) for L_pose."""
        return self.pose_head(pose_feat)

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, feature_dims={self.feature_dims}"
