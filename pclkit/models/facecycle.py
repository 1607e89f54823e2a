"""``facecycle``: the encoder of the PCL reference code (FaceCycle, Chang et al., ICCV 2021).

Faithful to the reference architecture: 7x7 stride-2 stem, LeakyReLU(0.1)
everywhere, channel self-attention blocks, residual blocks, no BatchNorm,
inputs in [0, 1] at 64x64. The trunk ends in a 128 x 4 x 4 map (F_s, 2048-d);
two unshared branches of two 3x3 convs on it give F_f and F_p (2048-d each).
About 2.47 M parameters.

    64 -> stem (7x7/2, 3x3)              64 x 32 x 32
       -> conv, attention, conv          64 x 32 x 32
       -> conv/2, attention, conv       128 x 16 x 16
       -> 2 residual blocks             128 x 16 x 16
       -> conv/2, conv                  128 x  8 x  8
       -> conv/2 (256), conv (128)      128 x  4 x  4   = F_s
       branches: conv, conv             128 x  4 x  4   = F_f, F_p
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pclkit.models.encoder import BranchedEncoder

__all__ = ["ChannelSelfAttention", "ResidualBlock", "facecycle_encoder"]

_SLOPE = 0.1


def conv_lrelu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    """Conv (with bias, no normalisation) followed by LeakyReLU(0.1)."""
    return [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2), nn.LeakyReLU(_SLOPE)]


class ChannelSelfAttention(nn.Module):
    """FaceCycle's channel self-attention block (Chang et al., ICCV 2021).

    With 1x1 projections g, theta, phi of x (B, C, N = H*W):

        A = phi(x) · softmax_N(theta(x))ᵀ          (B, C, C) channel affinities
        y = LeakyReLU(x + A · softmax_C(g(x)))      (B, C, H, W)

    theta is normalised over positions (so A averages phi over a learned
    spatial pooling per channel) and g over channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.g = nn.Conv2d(channels, channels, 1)
        self.theta = nn.Conv2d(channels, channels, 1)
        self.phi = nn.Conv2d(channels, channels, 1)
        self.act = nn.LeakyReLU(_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        values = torch.softmax(self.g(x).reshape(batch, channels, -1), dim=1)  # (B, C, N)
        pooling = torch.softmax(self.theta(x).reshape(batch, channels, -1), dim=-1)  # (B, C, N)
        keys = self.phi(x).reshape(batch, channels, -1)  # (B, C, N)
        affinity = torch.bmm(keys, pooling.transpose(1, 2))  # (B, C, C)
        attended = torch.bmm(affinity, values).reshape(batch, channels, height, width)
        return self.act(x + attended)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut, LeakyReLU(0.1), no normalisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


def facecycle_encoder(input_size: int = 64) -> BranchedEncoder:
    """Reference PCL/FaceCycle encoder; F_s, F_f, F_p are 128 x (S/16)² (2048-d at 64 px)."""
    if input_size % 16 != 0:
        raise ValueError(f"facecycle encoder needs an input side divisible by 16, got {input_size}")
    trunk = nn.Sequential(
        *conv_lrelu(3, 64, kernel=7, stride=2),
        *conv_lrelu(64, 64),
        *conv_lrelu(64, 64),
        ChannelSelfAttention(64),
        *conv_lrelu(64, 64),
        *conv_lrelu(64, 128, stride=2),
        ChannelSelfAttention(128),
        *conv_lrelu(128, 128),
        ResidualBlock(128),
        ResidualBlock(128),
        *conv_lrelu(128, 128, stride=2),
        *conv_lrelu(128, 128),
        *conv_lrelu(128, 256, stride=2),
        *conv_lrelu(256, 128),
    )

    def branch() -> nn.Sequential:
        return nn.Sequential(*conv_lrelu(128, 128), *conv_lrelu(128, 128))

    side = input_size // 16
    dim = 128 * side * side
    encoder = BranchedEncoder(trunk, nn.Flatten(1), branch(), branch(), dim, dim, input_size)
    # He init on fan_out, as the reference (weights ~ N(0, 2 / (k*k*out)), zero bias)
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return encoder
