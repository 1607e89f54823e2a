"""SimCLRModel: an encoder and a projection head, F_s only (Chen et al., ICML 2020).

The SimCLR baseline of PCL's ablation (Liu et al., CVPR 2023, Table 5) uses
the same backbone as PCL; here it is the backbone's trunk alone -- the
branches that would split F_s into F_f and F_p are not built into the model.

Checkpoints written before SimCLR had its own class (a ``PCLModel`` whose
frozen random branches were never trained) load through
:meth:`SimCLRModel.upgrade_state`: the branch weights are dropped and the
face head becomes the projector.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from pclkit.models.encoder import BranchedEncoder
from pclkit.models.heads import ProjectionHead

__all__ = ["SimCLRModel"]

_OLD_BRANCH_PREFIXES = ("encoder.face_branch.", "encoder.pose_branch.")


class SimCLRModel(nn.Module):
    """E(s) -> F_s; projector g(F_s) -> z for NT-Xent.

    * ``forward_features(x)`` -> ``{"F_s": (B, D_s)}``; also ``forward``.
    * ``project(F_s)`` -> (B, P).
    * ``feature_dims`` -> ``{"F_s": D_s}``.

    Args:
        encoder: a :class:`BranchedEncoder`; its branches are removed.
        proj_hidden_dim, proj_dim: projection head sizes.
    """

    def __init__(self, encoder: BranchedEncoder, proj_hidden_dim: int = 2048, proj_dim: int = 512) -> None:
        super().__init__()
        #: the resolved ModelConfig when built by build_model (None otherwise)
        self.config = None
        encoder.drop_branches()
        self.encoder = encoder
        self.image_size = encoder.input_size
        self.projector = ProjectionHead(encoder.shared_dim, proj_hidden_dim, proj_dim)

    @property
    def feature_dims(self) -> dict[str, int]:
        return {"F_s": self.encoder.shared_dim}

    def forward_features(self, images: Tensor) -> dict[str, Tensor]:
        """E(s): (B, 3, S, S) in [0, 1] -> ``{"F_s": (B, D_s)}``."""
        self.encoder.check_images(images)
        return {"F_s": self.encoder.forward_shared(images)}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.forward_features(images)

    def project(self, shared_feat: Tensor) -> Tensor:
        """g(F_s): (B, D_s) -> (B, P)."""
        return self.projector(shared_feat)

    @staticmethod
    def upgrade_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Read a state dict of the older SimCLR ``PCLModel`` (frozen branches, ``face_head``)."""
        out = {}
        for key, value in state.items():
            if key.startswith(_OLD_BRANCH_PREFIXES):
                continue
            out["projector." + key[len("face_head."):] if key.startswith("face_head.") else key] = value
        return out

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, feature_dims={self.feature_dims}"
