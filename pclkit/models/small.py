"""``small``: a compact BatchNorm convnet for fast PCL runs on a few CPU cores.

Same layout as the FaceCycle encoder of the reference (64 px in, a C x 4 x 4
shared map, two 2-conv 3x3 branches giving C x 4 x 4 = 16 C features each),
but with plain conv-BN-ReLU blocks, a third of the depth and no attention, so a
full PCL step on a batch of 128 fits in about a second with bf16 autocast.
"""

from __future__ import annotations

from torch import nn

from pclkit.models.encoder import BranchedEncoder

__all__ = ["FACE_POOLS", "small_encoder"]

#: how the face branch's map becomes F_f (``ModelConfig.face_pool``)
FACE_POOLS = ("flatten", "mean")


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv (no bias: BN follows) -> BN -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def small_encoder(width: int = 32, input_size: int = 64, face_pool: str = "flatten") -> BranchedEncoder:
    """Compact encoder: 64x64 -> shared map (4w, 4, 4); F_s, F_f, F_p are 64w-d (2048 for w = 32).

    Trunk: stride-2 stem to 32x32, then two [stride-2 conv, conv] stages
    (16x16, 8x8) and a stride-2 conv to 4x4. Each branch: two 3x3 convs on the
    4x4 map, so the branches see the whole face layout (pose is spatial).

    ``face_pool="mean"`` (this project's option) ends the face branch with a 1x1
    conv to 64w channels (BN, ReLU) and their spatial mean instead of flattening
    the map: F_f keeps its size but no longer says *where* on the 4x4 grid a
    feature is, so the head's layout -- the pose -- must come from F_p.
    """
    if input_size % 16 != 0:
        raise ValueError(f"small encoder needs an input side divisible by 16, got {input_size}")
    top = 4 * width
    trunk = nn.Sequential(
        conv_bn_relu(3, width, stride=2),  # S/2
        conv_bn_relu(width, 2 * width, stride=2),  # S/4
        conv_bn_relu(2 * width, top, stride=2),  # S/8
        conv_bn_relu(top, top),
        conv_bn_relu(top, top, stride=2),  # S/16
    )

    def branch() -> nn.Sequential:
        return nn.Sequential(conv_bn_relu(top, top), conv_bn_relu(top, top))

    side = input_size // 16
    dim = top * side * side
    if face_pool == "mean":
        face_branch = nn.Sequential(
            conv_bn_relu(top, top),
            nn.Conv2d(top, dim, 1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),  # (B, dim, 1, 1): the layout is averaged away
        )
    elif face_pool == "flatten":
        face_branch = branch()
    else:
        raise ValueError(f"face_pool must be one of {', '.join(FACE_POOLS)}, got {face_pool!r}")
    encoder = BranchedEncoder(trunk, nn.Flatten(1), face_branch, branch(), dim, dim, input_size)
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return encoder
