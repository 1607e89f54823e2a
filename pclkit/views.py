"""The views of one pretraining step, made from a batch of clean images.

PCL (Liu et al., CVPR 2023, Sec. 3), per image s of the batch:

* face views (L_face): two non-overlapping quadrant patches of s
  (``views.face_view=quadrant``, the reference) or two random resized crops of
  the whole face (``crop``, SimCLR's view), each with its own appearance
  augmentation;
* pose positives (L_pose): two appearance augmentations of the full frame s
  (same pose);
* pose negatives (L_pose): M appearance augmentations of the pose-changed
  view ŝ (flip / roll / render3d) — all of the *same* image;
* reconstruction (L_dis, L_orth): s and ŝ with Gaussian noise as encoder
  inputs, the clean s and ŝ as targets;
* mirrors (L_flip, this project's option, part ``flip``): the horizontal mirror of
  the first pose positive.

SimCLR (Chen et al., ICML 2020) uses only the two face views, so the ablation
from SimCLR to PCL changes the objective, not the face views.

Multi-crop (part ``multicrop``; DINO, Caron et al., ICCV 2021, used by the ProS
reading of :mod:`pclkit.methods`): two global random resized crops at the model
side (area in ``views.crop_scale``) and L smaller local crops (:class:`MultiCrop`),
each appearance-augmented (colour, grey, blur: ``views.appearance``); no flip.

Everything is batched: the M negatives of B images are one (B*M) batch for
the appearance augmentation; no per-image Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from pclkit.augment import (
    AppearanceAugment,
    add_gaussian_noise,
    crop_and_resize,
    make_pose_change,
    quadrant_patches,
    random_resized_crops,
    sample_crop_boxes,
    sample_quadrant_boxes,
)
from pclkit.config import TrainConfig

#: the encoder inputs of a step, in the order they are concatenated for the one encoder pass
ENCODER_GROUPS = ("face_a", "face_b", "pose_a", "pose_b", "pose_neg", "recon_in", "recon_hat_in", "pose_flip")


@dataclass
class StepViews:
    """All tensors of one step; every field has the batch B as its first dimension.

    Images are float (…, 3, S, S) in [0, 1] (noisy reconstruction inputs may
    leave that range). Fields a step does not need are None.

    face_a, face_b: (B, 3, S, S) face views.
    pose_a, pose_b: (B, 3, S, S) pose positives.
    pose_neg: (B, M, 3, S, S) pose negatives of each image.
    recon_in, recon_hat_in: (B, 3, S, S) noisy s and ŝ (encoder inputs of L_dis / L_orth).
    target, target_hat: (B, 3, S, S) clean s and ŝ.
    pose_flip: (B, 3, S, S) the horizontal mirror of ``pose_a`` (L_flip).
    recon_shared: the noisy s and ŝ were not added as separate groups: they are
        ``pose_a`` and ``pose_neg[:, 0]`` (``views.share_recon_views``).
    global_views: (B, 2, 3, S, S) two global crops; local_views: (B, L, 3, s, s) local
        crops at a smaller side s (multi-crop). Two sizes: they are never part of
        :meth:`encoder_input`; a method that uses them runs its own passes.
    truth_identity: (B,) long identity of each image; truth_pose: (B, 3) its head pose
        (yaw, pitch, roll) in degrees -- when the data knows them (SynthFaces). For
        diagnostics only (e.g. scoring a false-negative detector); never used by a loss,
        and not encoder input (:meth:`encoder_input` takes image groups only).
    """

    face_a: Tensor | None = None
    face_b: Tensor | None = None
    pose_a: Tensor | None = None
    pose_b: Tensor | None = None
    pose_neg: Tensor | None = None
    recon_in: Tensor | None = None
    recon_hat_in: Tensor | None = None
    target: Tensor | None = None
    target_hat: Tensor | None = None
    pose_flip: Tensor | None = None
    global_views: Tensor | None = None
    local_views: Tensor | None = None
    recon_shared: bool = False
    truth_identity: Tensor | None = None
    truth_pose: Tensor | None = None

    @property
    def batch_size(self) -> int:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                return value.shape[0]
        raise ValueError("StepViews holds no tensors")

    def shard(self, rank: int, world_size: int) -> "StepViews":
        """Rows ``[rank*B/W, (rank+1)*B/W)`` of every field (B must divide by W)."""
        batch = self.batch_size
        if batch % world_size:
            raise ValueError(f"batch {batch} does not split evenly over {world_size} ranks")
        per_rank = batch // world_size
        rows = slice(rank * per_rank, (rank + 1) * per_rank)
        return replace(self, **{f.name: getattr(self, f.name)[rows] for f in fields(self)
                                if isinstance(getattr(self, f.name), Tensor)})

    def encoder_input(self, groups: tuple[str, ...] = ENCODER_GROUPS) -> tuple[Tensor, dict[str, tuple[int, int]]]:
        """Concatenate the present ``groups`` into one (N, 3, S, S) batch for ONE encoder pass.

        Returns the batch and ``{group: (start, stop)}`` row ranges; ``pose_neg``
        rows are image-major (row ``i*M + m`` is negative m of image i).
        """
        parts, spans, start = [], {}, 0
        for name in groups:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "pose_neg":
                value = value.flatten(0, 1)
            parts.append(value)
            spans[name] = (start, start + value.shape[0])
            start += value.shape[0]
        if not parts:
            raise ValueError(f"none of the view groups {groups} is present")
        return torch.cat(parts, dim=0), spans


@dataclass(frozen=True)
class MultiCrop:
    """The local crops of multi-crop (DINO, Caron et al., ICCV 2021: 10 crops of 96 px, area 5-40%,
    beside 2 global crops of 224 px, area 40-100%); the global crops use ``views.crop_scale``.

    local_crops: L local crops per image (0: global crops only).
    local_size: side s of the local crops; None = half the model side (32 px at 64 px).
    local_scale: range of a local crop's area as a fraction of the image.
    """

    local_crops: int = 4
    local_size: int | None = None
    local_scale: tuple[float, float] = (0.05, 0.4)

    @classmethod
    def from_config(cls, config: TrainConfig) -> "MultiCrop":
        """From ``views.local_crops`` / ``local_size`` / ``local_scale``."""
        views = config.views
        return cls(local_crops=views.local_crops, local_size=views.local_size, local_scale=tuple(views.local_scale))

    def side(self, image_size: int) -> int:
        """The local crops' side s for a model side ``image_size``."""
        return self.local_size if self.local_size is not None else image_size // 2


def uses_pose_change(parts: tuple[str, ...], face_across_pose: bool) -> bool:
    """Whether views of ``parts`` need the pose-changed view ŝ (pose negatives, reconstruction
    targets, or the second face view with ``views.face_across_pose``)."""
    return "pose" in parts or "recon" in parts or ("face" in parts and face_across_pose)


class ViewBuilder:
    """Makes :class:`StepViews` from clean image batches, following a :class:`TrainConfig`.

    ``parts`` selects what to build: ``"face"`` (face views), ``"pose"``
    (positives + negatives), ``"recon"`` (noisy inputs + clean targets); the
    method says which a step needs (:meth:`pclkit.methods.Method.steps`).
    """

    def __init__(self, config: TrainConfig) -> None:
        views = config.views
        self.face_view = views.face_view
        self.patch_frac = views.patch_frac
        self.crop_scale = tuple(views.crop_scale)
        self.face_across_pose = views.face_across_pose
        self.out_size = config.model.image_size
        self.num_negatives = views.num_negatives
        self.recon_noise = views.recon_noise
        self.share_recon_views = views.share_recon_views
        self.negatives_across_poses = views.negatives_across_poses
        self.negative_change_axes = views.negative_change_axes
        self.appearance = AppearanceAugment(**views.appearance)
        self.pose_change = make_pose_change(views.pose_change, **views.pose_change_options)
        self.multicrop = MultiCrop.from_config(config)

    def face_views(self, images: Tensor, generator: torch.Generator, images_hat: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Two face views per image (quadrant patches or whole-face crops), each appearance-augmented: 2 x (B, 3, S, S).

        With ``images_hat`` (``views.face_across_pose``) the second view is cut from ŝ instead of s.
        """
        if images_hat is None and self.face_view == "crop":
            patch_a, patch_b = random_resized_crops(images, generator, scale=self.crop_scale, out_size=self.out_size)
        elif images_hat is None:
            patch_a, patch_b = quadrant_patches(images, generator, patch_frac=self.patch_frac, out_size=self.out_size)
        else:  # one draw of two boxes per image: the first cuts s, the second ŝ (quadrants stay distinct)
            batch = images.shape[0]
            if self.face_view == "crop":
                boxes = sample_crop_boxes(2 * batch, generator, self.crop_scale, device=images.device)
                box_a, box_b = boxes[:batch], boxes[batch:]
            else:
                boxes = sample_quadrant_boxes(batch, generator, self.patch_frac, images.device)
                box_a, box_b = boxes[:, 0], boxes[:, 1]
            patch_a = crop_and_resize(images, box_a, self.out_size)
            patch_b = crop_and_resize(images_hat, box_b, self.out_size)
        # one augmentation call on 2B images: per-image parameters, one batched pass
        both = self.appearance(torch.cat([patch_a, patch_b], dim=0), generator)
        return both.chunk(2, dim=0)

    def multicrop_views(self, images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Two global crops (B, 2, 3, S, S) and L local crops (B, L, 3, s, s) per image, appearance-augmented.

        One batched crop and one augmentation call per size; rows are image-major.
        """
        batch, spec = images.shape[0], self.multicrop
        global_a, global_b = random_resized_crops(images, generator, scale=self.crop_scale, out_size=self.out_size)
        global_views = self.appearance(torch.cat([global_a, global_b], dim=0), generator)
        global_views = torch.stack(global_views.chunk(2, dim=0), dim=1)  # (B, 2, 3, S, S)
        if spec.local_crops == 0:
            return global_views, None
        boxes = sample_crop_boxes(batch * spec.local_crops, generator, spec.local_scale, device=images.device)
        side = spec.side(self.out_size)
        local_views = crop_and_resize(images.repeat_interleave(spec.local_crops, dim=0), boxes, side)
        local_views = self.appearance(local_views, generator)
        return global_views, local_views.reshape(batch, spec.local_crops, 3, side, side)

    def _negatives(self, images_hat: Tensor, renders: Tensor | None, skip: int) -> Tensor:
        """Pose negatives ``skip..M-1`` before augmentation, (B, M - skip, 3, S, S): copies of ŝ,
        or with ``renders`` (B, M, 3, S, S; ``views.negatives_across_poses``) those re-renders."""
        if renders is not None:
            return renders[:, skip:]
        return images_hat.unsqueeze(1).expand(images_hat.shape[0], self.num_negatives - skip, *images_hat.shape[1:])

    def build(
        self,
        images: Tensor,
        generator: torch.Generator,
        parts: tuple[str, ...],
        pose: Tensor | None = None,
        factors: Any = None,
        pose_bank: Any = None,
    ) -> StepViews:
        """Views of ``images`` (B, 3, S, S) float in [0, 1].

        ``pose`` (B, 3) and ``factors`` (SynthFaces :class:`Factors`) are passed
        to the pose change (``render3d`` needs ``factors``); they also fill the
        diagnostic ``truth_pose`` (``pose``, else ``factors.pose``) and
        ``truth_identity`` (``factors.identity``) of the views. With ``pose_bank``
        (a :class:`~pclkit.data.synthfaces.PoseBank` of the batch's faces,
        ``views.render3d_bank``) ŝ is one of its pre-rendered pose changes per image.
        """
        unknown = set(parts) - {"face", "pose", "recon", "multicrop", "flip"}
        if unknown:
            raise ValueError(f"unknown view parts {sorted(unknown)}; use face, pose, recon, multicrop, flip")
        if "flip" in parts and "pose" not in parts:
            raise ValueError("the 'flip' view part mirrors the pose positives: build it together with 'pose'")
        views = StepViews()
        truth_pose = pose if pose is not None else getattr(factors, "pose", None)
        truth_identity = getattr(factors, "identity", None)
        views.truth_pose = truth_pose.to(images.device) if truth_pose is not None else None
        views.truth_identity = truth_identity.to(images.device) if truth_identity is not None else None
        if "multicrop" in parts:
            views.global_views, views.local_views = self.multicrop_views(images, generator)
        across = "face" in parts and self.face_across_pose
        if "face" in parts and not across:
            views.face_a, views.face_b = self.face_views(images, generator)
        renders = None  # (B, M, 3, S, S): M different re-renders, with views.negatives_across_poses
        if uses_pose_change(parts, self.face_across_pose):
            across_poses = "pose" in parts and self.negatives_across_poses  # pose negatives from the bank
            if pose_bank is None and across_poses:
                raise ValueError("views.negatives_across_poses draws the pose negatives from the batch's pose bank: "
                                 "pass pose_bank= (views.render3d_bank > 0)")
            if across_poses and self.negative_change_axes is not None:
                if pose_bank.negatives_from is None:
                    raise ValueError("views.negative_change_axes needs a pose bank that joins two rules "
                                     "(pclkit.trainer.build_pose_bank for a method with a pose loss)")
                # a joined bank: ŝ from the first rule's re-renders, the other negatives from the
                # second rule's (views.negative_change_axes)
                images_hat, _ = pose_bank.pick(generator, columns=pose_bank.hat_columns)
                others, _ = pose_bank.pick(generator, count=self.num_negatives - 1,
                                           columns=(pose_bank.negatives_from, pose_bank.k))
                renders = torch.cat([images_hat.unsqueeze(1), others], dim=1)
            elif across_poses:
                # ŝ is the first of them, the others are the remaining pose negatives
                renders, _ = pose_bank.pick(generator, count=self.num_negatives)
                images_hat = renders[:, 0]
            elif pose_bank is not None:
                images_hat, _ = pose_bank.pick(generator, columns=pose_bank.hat_columns)
            else:
                images_hat, _ = self.pose_change(images, pose, generator, factors=factors)
        if across:
            views.face_a, views.face_b = self.face_views(images, generator, images_hat)
        batch = images.shape[0]
        shared = self.share_recon_views and "pose" in parts and "recon" in parts
        if "pose" in parts and not shared:
            # positives and negatives go through the same appearance augmentation call
            # (per-image parameters), then are split again
            negatives = self._negatives(images_hat, renders, 0)
            stacked = torch.cat([images, images, negatives.reshape(-1, *images.shape[1:])], dim=0)
            augmented = self.appearance(stacked, generator)
            views.pose_a, views.pose_b = augmented[:batch], augmented[batch : 2 * batch]
            views.pose_neg = augmented[2 * batch :].reshape(batch, self.num_negatives, *images.shape[1:])
        if "recon" in parts:
            views.target, views.target_hat = images, images_hat
            recon_in = add_gaussian_noise(images, generator, sigma=self.recon_noise)
            recon_hat_in = add_gaussian_noise(images_hat, generator, sigma=self.recon_noise)
            if shared:
                # s + n is a pose positive, ŝ + n the first pose negative; the rest are colour-augmented
                rest = self._negatives(images_hat, renders, 1)
                augmented = self.appearance(torch.cat([images, rest.reshape(-1, *images.shape[1:])], dim=0), generator)
                views.pose_a, views.pose_b = recon_in, augmented[:batch]
                views.pose_neg = torch.cat(
                    [recon_hat_in.unsqueeze(1), augmented[batch:].reshape(batch, self.num_negatives - 1, *images.shape[1:])],
                    dim=1,
                )
                views.recon_shared = True
            else:
                views.recon_in, views.recon_hat_in = recon_in, recon_hat_in
        if "flip" in parts:
            views.pose_flip = views.pose_a.flip(-1)  # mirror left-right: yaw and roll change sign
        return views
