"""``resnet18`` / ``resnet50``: torchvision ResNets (He et al., CVPR 2016) for 64-px faces.

The ImageNet stem (7x7 stride-2 conv + max-pool, /4) would leave a 2x2 map
at 64 px, so -- as for CIFAR-size inputs in SimCLR (Chen et al., ICML 2020,
App. B.9) -- it is replaced by a 3x3 stride-1 conv and no max-pool. The
trunk (layer1..layer4) gives a C x 8 x 8 map at 64 px (C = 512 / 2048);
F_s is its global average (the usual ResNet representation), and each of the
two unshared branch heads maps it to F_f / F_p with
[conv3x3/2 -> BN -> ReLU -> conv3x3 -> BN -> ReLU] to 128 x 4 x 4 = 2048-d,
the same size as the reference branches. Weights are random (weights=None).
"""

from __future__ import annotations

import torchvision
from torch import nn

from pclkit.models.encoder import BranchedEncoder

__all__ = ["resnet_encoder"]

_BRANCH_MID = 256
_BRANCH_OUT = 128


def branch_head(in_ch: int) -> nn.Sequential:
    """Shared map (B, in_ch, h, w) -> (B, 128, h/2, w/2)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, _BRANCH_MID, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(_BRANCH_MID),
        nn.ReLU(inplace=True),
        nn.Conv2d(_BRANCH_MID, _BRANCH_OUT, 3, padding=1, bias=False),
        nn.BatchNorm2d(_BRANCH_OUT),
        nn.ReLU(inplace=True),
    )


def resnet_encoder(depth: int = 18, input_size: int = 64) -> BranchedEncoder:
    """ResNet-18/50 trunk with a 3x3 stride-1 stem; F_s 512-d (18) or 2048-d (50), F_f/F_p 2048-d at 64 px."""
    constructors = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}
    if depth not in constructors:
        raise ValueError(f"resnet depth must be one of {sorted(constructors)}, got {depth}")
    if input_size % 16 != 0:
        raise ValueError(f"resnet encoder needs an input side divisible by 16, got {input_size}")
    net = constructors[depth](weights=None)
    stem = nn.Sequential(nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False), net.bn1, net.relu)
    nn.init.kaiming_normal_(stem[0].weight, mode="fan_out", nonlinearity="relu")
    trunk = nn.Sequential(stem, net.layer1, net.layer2, net.layer3, net.layer4)
    channels = net.fc.in_features  # 512 or 2048
    shared_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    side = input_size // 16  # layer2..4 halve three times, the branch once more
    branch_dim = _BRANCH_OUT * side * side
    face_branch, pose_branch = branch_head(channels), branch_head(channels)
    for module in (*face_branch.modules(), *pose_branch.modules()):
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return BranchedEncoder(trunk, shared_pool, face_branch, pose_branch, channels, branch_dim, input_size)
