"""The encoder contract shared by all backbones: E(s) -> (F_s, F_f, F_p).

PCL (Liu et al., CVPR 2023, Sec. 3.2) encodes an image into shared features
F_s and splits them with two unshared branches of the pose-disentangled
decoder into a face-aware feature F_f and a pose-related feature F_p.
Every backbone (``small``, ``facecycle``, ``resnet18``, ``resnet50``) is the
same :class:`BranchedEncoder` assembled from four parts, so the model code
never depends on the backbone.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["BranchedEncoder"]


class BranchedEncoder(nn.Module):
    """Trunk -> shared map; F_s = shared_pool(map); F_f, F_p = branches(map).

    Args:
        trunk: (B, 3, S, S) -> shared map (B, C, h, w).
        shared_pool: shared map -> (B, shared_dim) F_s (flatten or global pool).
        face_branch, pose_branch: shared map -> (B, branch_dim) after flattening.
        shared_dim, branch_dim: feature sizes (checked by the model tests).
        input_size: the image side S this encoder is built for.
    """

    def __init__(
        self,
        trunk: nn.Module,
        shared_pool: nn.Module,
        face_branch: nn.Module,
        pose_branch: nn.Module,
        shared_dim: int,
        branch_dim: int,
        input_size: int,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.shared_pool = shared_pool
        self.face_branch = face_branch
        self.pose_branch = pose_branch
        self.shared_dim = shared_dim
        self.branch_dim = branch_dim
        self.input_size = input_size

    def drop_branches(self) -> None:
        """Remove the F_f / F_p branches (a model that only uses F_s, e.g. SimCLR)."""
        self.face_branch = None
        self.pose_branch = None
        self.branch_dim = 0

    def check_images(self, images: Tensor) -> None:
        """Raise a clear error unless ``images`` is (B, 3, S, S) for this encoder's S."""
        size = self.input_size
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2:] != (size, size):
            raise ValueError(f"the encoder expects images of shape (B, 3, {size}, {size}) in [0, 1], "
                             f"got {tuple(images.shape)}")

    def forward_shared(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) -> F_s (B, shared_dim)."""
        return self.shared_pool(self.trunk(images)).flatten(1)

    def forward_shared_map(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) -> shared feature map (B, C, h, w)."""
        return self.trunk(images)

    def forward_branches(self, shared_map: Tensor) -> tuple[Tensor, Tensor]:
        """Shared map -> (F_f (B, branch_dim), F_p (B, branch_dim))."""
        if self.face_branch is None:
            raise RuntimeError("this encoder's branches were dropped (an F_s-only model)")
        return self.face_branch(shared_map).flatten(1), self.pose_branch(shared_map).flatten(1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, 3, S, S) in [0, 1] -> (F_s (B, shared_dim), F_f (B, branch_dim), F_p (B, branch_dim))."""
        shared_map = self.forward_shared_map(images)
        face_feat, pose_feat = self.forward_branches(shared_map)
        return self.shared_pool(shared_map).flatten(1), face_feat, pose_feat
