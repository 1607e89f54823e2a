"""Projection heads and the pose-disentangled decoder of PCL.

* :class:`ProjectionHead` -- the reference heads: Linear, ReLU, Linear, BatchNorm1d.
* :func:`pose_projection` -- the pose head g_p by kind: the reference MLP, or this project's
  ``linear`` (Linear, BatchNorm1d) and ``bn`` (BatchNorm1d alone) options.
* :class:`SwapDecoder` -- D(F_f, F_p) of the pose-disentangled decoder (PDD),
  Liu et al., CVPR 2023, Sec. 3.2: z = normalize(F_f + F_p), Linear to a
  1x1 map, then upsampling stages to the image.
* :class:`PoseWarp` -- this project's ``warp`` fusion: F_p moves the decoder's
  feature map with a smooth flow field instead of entering its input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FUSIONS", "POSE_HEADS", "PoseWarp", "ProjectionHead", "SwapDecoder", "UPSAMPLINGS", "pose_projection"]

#: how the decoder combines F_f and F_p
FUSIONS = ("sum", "concat", "warp")
#: how each decoder stage doubles the resolution
UPSAMPLINGS = ("bilinear", "pixelshuffle")
#: the pose projection head g_p: the reference MLP, a linear map, or batch standardisation alone
POSE_HEADS = ("mlp", "linear", "bn")


class ProjectionHead(nn.Module):
    """MLP projection head g(.) of SimCLR (Chen et al., ICML 2020) as in the PCL reference.

    Linear(in, hidden) -> ReLU -> Linear(hidden, out) -> BatchNorm1d(out).
    The reference uses 2048 -> 2048 -> 512 for both the face and the pose head.

    Shapes: (B, in_dim) -> (B, out_dim).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, feat: Tensor) -> Tensor:
        if feat.dim() != 2 or feat.shape[1] != self.in_dim:
            raise ValueError(f"projection head expects (B, {self.in_dim}) features, got {tuple(feat.shape)}")
        return self.bn(self.fc2(self.act(self.fc1(feat))))


def pose_projection(kind: str, in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """The pose head g_p on F_p (B, in_dim), by ``kind``:

    * ``mlp`` -- :class:`ProjectionHead` (the reference): (B, in_dim) -> (B, out_dim);
    * ``linear`` -- Linear(in_dim, out_dim), BatchNorm1d: (B, in_dim) -> (B, out_dim);
    * ``bn`` -- BatchNorm1d(in_dim) without affine parameters: (B, in_dim) -> (B, in_dim), so L_pose's
      cosine compares standardised F_p itself.

    With ``linear`` or ``bn`` (this project's options), L_pose's similarities are linear in F_p up to
    the batch standardisation and the L2 normalisation inside the loss, so what L_pose separates lies
    in F_p along directions a linear probe can read; the MLP may leave it anywhere it can unfold it
    (projection heads keep information out of the features before them: Gupta et al., 2022;
    Bordes et al., TMLR 2023, "Guillotine regularization").
    """
    if kind == "mlp":
        return ProjectionHead(in_dim, hidden_dim, out_dim)
    if kind == "linear":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim))
    if kind == "bn":
        return nn.BatchNorm1d(in_dim, affine=False)
    raise ValueError(f"pose head must be one of {', '.join(POSE_HEADS)}, got {kind!r}")


def _decoder_channels(stage_width: int, num_upsamplings: int) -> list[int]:
    """Output channels of the upsampling stages, as the reference for 64 px.

    Reference (stage width 256, 6 upsamplings): 256, 256, 256, 256, 128, then 3.
    """
    if num_upsamplings < 2:
        raise ValueError(f"decoder needs at least 2 upsampling stages, got {num_upsamplings}")
    return [stage_width] * (num_upsamplings - 2) + [max(stage_width // 2, 1), 3]


class RefineBlock(nn.Module):
    """Residual 3x3 refinement at one resolution: ``x + BN(conv3x3(ReLU(x)))`` (He et al., CVPR 2016).

    The BN's scale starts at 0, so a new block is the identity and the decoder it is added to
    starts where the plain one does. Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.norm.weight)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.norm(self.conv(F.relu(x)))


class PoseWarp(nn.Module):
    """Moves a map by a smooth flow field read from the pose code: ``warp(x, flow(F_p))``.

    This project's option (``decoder_fusion="warp"``; not in the paper, whose decoder
    reads [F_f, F_p] or their sum at its input). It follows the deforming
    autoencoders of Shu et al., ECCV 2018: appearance is drawn in a template frame
    from F_f alone, and the pose code only says where each part of that template
    goes. A head decoded with face A's F_f and face B's F_p can then only take its
    pose from B, which is what a swap asks.

    flow(F_p) = Linear(pose_dim, hidden) -> ReLU -> Linear(hidden, 2 * g * g), a
    (2, g, g) grid of offsets in normalised coordinates ([-1, 1] spans the map),
    upsampled bilinearly to the map's side; the map is resampled at
    identity grid + flow (``grid_sample``, bilinear, border padding). The last
    layer starts at zero, so a new warp is the identity.

    Shapes: x (B, C, H, H), F_p (B, pose_dim) -> (B, C, H, H).
    """

    def __init__(self, pose_dim: int, side: int, grid: int = 8, hidden: int = 128) -> None:
        super().__init__()
        self.side, self.grid = side, min(grid, side)
        self.flow = nn.Sequential(nn.Linear(pose_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 2 * self.grid * self.grid))
        nn.init.zeros_(self.flow[-1].weight)
        nn.init.zeros_(self.flow[-1].bias)
        coords = (torch.arange(side, dtype=torch.float32) + 0.5) * 2 / side - 1  # pixel centres
        identity = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1)  # (H, H, 2) as (x, y)
        self.register_buffer("identity", identity, persistent=False)

    def offsets(self, pose_feat: Tensor) -> Tensor:
        """F_p (B, pose_dim) -> flow (B, H, H, 2) in normalised coordinates."""
        flow = self.flow(pose_feat).view(-1, 2, self.grid, self.grid)  # (B, 2, g, g)
        if self.grid != self.side:
            flow = F.interpolate(flow, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return flow.permute(0, 2, 3, 1)  # (B, H, H, 2)

    def forward(self, x: Tensor, pose_feat: Tensor) -> Tensor:
        if x.shape[-2:] != (self.side, self.side):
            raise ValueError(f"pose warp expects maps of side {self.side}, got {tuple(x.shape)}")
        grid = self.identity + self.offsets(pose_feat)  # (B, H, H, 2)
        return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


class SwapDecoder(nn.Module):
    """Pose-disentangled decoder D(F_f, F_p) (Liu et al., CVPR 2023, Eq. 2; FaceCycle-style generator).

    z = normalize(F_f + F_p) (``fusion="sum"``: sum, then L2 -- the reference;
    not concatenation) or z = [F_f, F_p] (``fusion="concat"``, an option of
    this project: keeps which branch a feature came from and its magnitude), then
    Linear(in_dim or in_dim + pose_dim, width * s * s) -> (width, s, s) with s =
    ``seed_size`` (1 in the reference; a 4x4 seed is this project's option: a
    wider bottleneck at the same cost), log2(out_size / s) stages of
    (``upsample="pixelshuffle"``, this project's option: each stage's conv
    makes 4x the channels at the lower resolution and a pixel shuffle
    rearranges them -- the sub-pixel convolution of Shi et al., CVPR 2016 --
    the same multiply-adds without the upsampled intermediate map, measured
    2.1x faster than bilinear on a CPU for 256 decodes at 64 px)
    [ReLU, bilinear x2, conv3x3, BN] with ``stage_width`` channels (half of
    that in the last-but-one stage) -- the last stage's conv gives the 3
    output channels and has no BN -- then a sigmoid.

    The reference ends in ``tanh`` (range [-1, 1]) against targets in [0, 1],
    so it can never reproduce dark pixels exactly and wastes half its range;
    a sigmoid matches the [0, 1] targets.

    With width 512, stage_width 256 (the default, width // 2) and out_size 64
    this is the reference generator, 4.30 M parameters (2048-d features).
    The late, high-resolution stages dominate the cost, so a cheap decoder
    keeps a wide seed and narrows ``stage_width``.

    ``fusion="warp"`` (this project's option, :class:`PoseWarp`): the seed is
    made from F_f alone and F_p only moves the stage map of side ``warp_size``
    (None = out_size // 4, 16 px at 64 px; ``out_size`` warps the image itself).

    ``skips`` (this project's option; False = the reference): every map
    before the last stage -- the seed and each stage's output -- also gets a
    zero-initialised 1x1 conv to RGB; these RGB logits are summed coarse to
    fine, each sum upsampled 2x (bilinear) before the next map's is added, and
    the last sum is added to the output's logits (the skip generator of
    StyleGAN2, Karras et al., CVPR 2020). The coarse colours (backdrop, skin,
    hair) then have a short path from the seed; the deep stages add the
    detail. With the warp, maps before it reach RGB unmoved.

    ``pose_dim`` (concat and warp; None = ``in_dim``) is the size of F_p when the
    pose code is narrower than F_f (``ModelConfig.pose_dim``).

    ``refine`` (this project's option; 0 = the reference) adds that many
    :class:`RefineBlock` s after each full-width stage (all but the last two),
    where the maps are small and a 3x3 conv is cheap: more depth where the
    face's parts are laid out, without touching the costly 32 and 64 px stages.

    Shapes: F_f (B, in_dim), F_p (B, pose_dim) -> image (B, 3, out_size, out_size) in [0, 1].
    """

    def __init__(
        self,
        in_dim: int,
        width: int = 512,
        out_size: int = 64,
        stage_width: int | None = None,
        fusion: str = "sum",
        seed_size: int = 1,
        upsample: str = "bilinear",
        pose_dim: int | None = None,
        refine: int = 0,
        warp_size: int | None = None,
        skips: bool = False,
    ) -> None:
        super().__init__()
        if refine < 0:
            raise ValueError(f"decoder refine must be >= 0 blocks, got {refine}")
        if fusion not in FUSIONS:
            raise ValueError(f"decoder fusion must be one of {FUSIONS}, got {fusion!r}")
        pose_dim = pose_dim or in_dim
        if fusion == "sum" and pose_dim != in_dim:
            raise ValueError(f"decoder fusion 'sum' needs F_f and F_p of one size, got {in_dim} and {pose_dim}; "
                             "use fusion 'concat'")
        self.fusion = fusion
        if upsample not in UPSAMPLINGS:
            raise ValueError(f"decoder upsample must be one of {UPSAMPLINGS}, got {upsample!r}")
        self.upsample = upsample
        num_up = int(round(math.log2(out_size / seed_size))) if seed_size >= 1 else -1
        if seed_size < 1 or seed_size * 2**num_up != out_size:
            raise ValueError(f"decoder out_size / seed_size must be a power of two, got {out_size} / {seed_size}")
        self.in_dim, self.pose_dim, self.width, self.out_size, self.seed_size = in_dim, pose_dim, width, out_size, seed_size
        self.fc = nn.Linear(in_dim + pose_dim if fusion == "concat" else in_dim, width * seed_size * seed_size)
        if warp_size is not None and fusion != "warp":
            raise ValueError(f"decoder warp_size {warp_size} needs fusion 'warp', got {fusion!r}")
        layers: list[nn.Module] = []
        in_ch = width
        channels = _decoder_channels(stage_width or width // 2, num_up)
        warp_at = 0  # index into the stages where the map has side warp_size (0: the seed)
        map_ends = [(0, width)]  # (index into the stages where a map is complete, its channels)
        for i, out_ch in enumerate(channels):
            if upsample == "pixelshuffle":  # sub-pixel conv: 4x the channels at the input side, then rearrange
                stage = [nn.ReLU(inplace=False), nn.Conv2d(in_ch, 4 * out_ch, 3, padding=1), nn.PixelShuffle(2)]
            else:
                stage = [
                    nn.ReLU(inplace=False),
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(in_ch, out_ch, 3, padding=1),
                ]
            layers += stage
            if i < len(channels) - 1:
                layers.append(nn.BatchNorm2d(out_ch))
            if i < len(channels) - 2:
                layers += [RefineBlock(out_ch) for _ in range(refine)]
            in_ch = out_ch
            map_ends.append((len(layers), out_ch))
            if fusion == "warp" and seed_size * 2 ** (i + 1) == (warp_size or out_size // 4):
                warp_at = len(layers)  # the stage map of side warp_size is complete here
        self.stages = nn.Sequential(*layers)
        #: where the pose warp moves the map: index into ``stages`` (None: no warp)
        self.warp_at: int | None = None
        self.warp: PoseWarp | None = None
        if fusion == "warp":
            side = warp_size or out_size // 4
            if side not in {seed_size * 2**k for k in range(num_up + 1)}:
                raise ValueError(f"decoder warp_size must be the side of one of its maps "
                                 f"({seed_size}, {2 * seed_size}, ..., {out_size}), got {side}")
            self.warp_at, self.warp = warp_at, PoseWarp(pose_dim, side)
        #: index into ``stages`` -> 1x1 conv to RGB of the map there (the skips; empty without them)
        self.to_rgb = nn.ModuleDict()
        for index, channels_there in map_ends[:-1] if skips else []:  # every map but the RGB output
            conv = nn.Conv2d(channels_there, 3, 1)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.to_rgb[str(index)] = conv

    def forward(self, face_feat: Tensor, pose_feat: Tensor) -> Tensor:
        for name, feat, dim in (("F_f", face_feat, self.in_dim), ("F_p", pose_feat, self.pose_dim)):
            if feat.dim() != 2 or feat.shape[1] != dim:
                raise ValueError(f"decoder expects {name} of shape (B, {dim}), got {tuple(feat.shape)}")
        if face_feat.shape[0] != pose_feat.shape[0]:
            raise ValueError(f"F_f {tuple(face_feat.shape)} and F_p {tuple(pose_feat.shape)} differ in batch size")
        if self.fusion == "concat":
            code = torch.cat([face_feat, pose_feat], dim=1)  # (B, in_dim + pose_dim)
        elif self.fusion == "warp":
            code = face_feat  # (B, in_dim): F_p only moves the map below
        else:
            code = F.normalize(face_feat + pose_feat, dim=1)  # (B, in_dim)
        seed = self.fc(code).view(-1, self.width, self.seed_size, self.seed_size)  # (B, width, s, s)
        if self.warp is None and not self.to_rgb:
            return torch.sigmoid(self.stages(seed))
        x, coarse = seed, None
        for index, layer in enumerate(self.stages):
            if index == self.warp_at:  # x is the map of side warp_size: the face in its own frame
                x = self.warp(x, pose_feat)
            if str(index) in self.to_rgb:  # the skips' RGB logits so far, upsampled 2x, plus this map's
                rgb = self.to_rgb[str(index)](x)  # (B, 3, h, h)
                coarse = rgb if coarse is None else _upsample_to(coarse, rgb) + rgb
            x = layer(x)
        if self.warp_at == len(self.stages):
            x = self.warp(x, pose_feat)
        if coarse is not None:
            x = x + _upsample_to(coarse, x)
        return torch.sigmoid(x)  # (B, 3, out_size, out_size)


def _upsample_to(coarse: Tensor, like: Tensor) -> Tensor:
    """Bilinear upsampling of ``coarse`` (B, C, h, h) to the side of ``like`` (B, *, H, H)."""
    return F.interpolate(coarse, size=like.shape[-2:], mode="bilinear", align_corners=False)
