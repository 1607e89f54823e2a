"""Tests of pclkit.models: shapes, parameter counts, SimCLR variant, bf16/channels_last, one PCL step."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from pclkit.losses import nt_xent, orthogonality, pose_contrastive, swap_reconstruction
from pclkit.models import ENCODERS, ModelConfig, PCLModel, SimCLRModel, build_model, count_parameters

SIZE = 64


def _images(batch: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1]: coarse noise upsampled bilinearly."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 8, 8, generator=generator)
    return F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1)


# ---------------------------------------------------------------------------
# shapes


@pytest.fixture(scope="module")
def built_models() -> dict[str, PCLModel]:
    """One PCL model per encoder, built once (the ResNets take seconds); tests must not modify them."""
    return {name: build_model(ModelConfig(encoder=name)) for name in ENCODERS}


@pytest.mark.parametrize("encoder", ENCODERS)
def test_every_encoder_gives_the_contract_shapes_at_64px(encoder, built_models):
    batch = 2 if encoder == "resnet50" else 3
    model = built_models[encoder]
    images = _images(batch)
    with torch.no_grad():
        feats = model.forward_features(images)
        shared, face, pose = feats["F_s"], feats["F_f"], feats["F_p"]
        dims = model.feature_dims
        assert set(dims) == {"F_s", "F_f", "F_p"}
        assert shared.shape == (batch, dims["F_s"])
        assert face.shape == (batch, dims["F_f"]) and pose.shape == (batch, dims["F_p"])
        recon = model.decode(face, pose)
        assert recon.shape == (batch, 3, SIZE, SIZE)
        assert recon.min() >= 0 and recon.max() <= 1
        proj_dim = model.config.proj_dim
        assert model.project_face(face).shape == (batch, proj_dim)
        assert model.project_pose(pose).shape == (batch, proj_dim)


def test_forward_is_forward_features():
    model = build_model(encoder="small").eval()
    images = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(model(images), model.forward_features(images))


def test_reference_feature_sizes(built_models):
    # F_s = 128x4x4 and F_f, F_p 2048-d for facecycle; resnet F_s is the pooled trunk
    assert built_models["facecycle"].feature_dims == {"F_s": 2048, "F_f": 2048, "F_p": 2048}
    assert built_models["resnet18"].feature_dims == {"F_s": 512, "F_f": 2048, "F_p": 2048}
    assert built_models["resnet50"].feature_dims == {"F_s": 2048, "F_f": 2048, "F_p": 2048}


# ---------------------------------------------------------------------------
# parameter counts of the reference architecture


def _conv(c_in: int, c_out: int, k: int = 3) -> int:
    return k * k * c_in * c_out + c_out


def _linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def test_facecycle_parameter_counts_match_the_reference(built_models):
    # hand-derived from the reference layer list (every conv has a bias; no BN in the encoder)
    attention = lambda c: 3 * _conv(c, c, k=1)  # noqa: E731  g, theta, phi 1x1 convs
    encoder = (
        _conv(3, 64, 7) + _conv(64, 64)  # stem
        + _conv(64, 64) + attention(64) + _conv(64, 64)  # layer1
        + _conv(64, 128) + attention(128) + _conv(128, 128)  # layer2_1
        + 4 * _conv(128, 128)  # two residual blocks
        + 2 * _conv(128, 128)  # layer2_2
        + _conv(128, 256) + _conv(256, 128)  # layer3_1 -> F_s
        + 2 * 2 * _conv(128, 128)  # face and pose branches
    )
    decoder = (
        _linear(2048, 512) + _conv(512, 256) + 3 * _conv(256, 256) + _conv(256, 128) + _conv(128, 3)
        + 2 * (4 * 256 + 128)  # BatchNorm2d affine parameters
    )
    head = _linear(2048, 2048) + _linear(2048, 512) + 2 * 512
    model = built_models["facecycle"]
    assert count_parameters(model.encoder) == encoder
    assert count_parameters(model.decoder) == decoder
    assert count_parameters(model.face_head) == count_parameters(model.pose_head) == head
    assert count_parameters(model) == encoder + decoder + 2 * head
    # the published figures (2.47 M, 4.30 M, 17.3 M) are rounded to three
    # significant digits, i.e. +-0.2 %; 0.5 % leaves room for that rounding only
    assert count_parameters(model.encoder) == pytest.approx(2.47e6, rel=5e-3)
    assert count_parameters(model.decoder) == pytest.approx(4.30e6, rel=5e-3)
    assert count_parameters(model) == pytest.approx(17.3e6, rel=5e-3)


def test_facecycle_has_no_batchnorm_and_uses_leaky_relu(built_models):
    encoder = built_models["facecycle"].encoder
    kinds = {type(m).__name__ for m in encoder.modules()}
    assert not any("BatchNorm" in k for k in kinds)
    slopes = {m.negative_slope for m in encoder.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.1}
    first = next(m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.kernel_size == (7, 7) and first.stride == (2, 2)


@pytest.mark.parametrize("encoder", ["resnet18", "resnet50"])
def test_resnet_stem_suits_64px_faces(encoder, built_models):
    trunk = built_models[encoder].encoder.trunk
    stem_conv = trunk[0][0]
    assert stem_conv.kernel_size == (3, 3) and stem_conv.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in trunk.modules())


# ---------------------------------------------------------------------------
# SimCLR: its own model, F_s only


def test_simclr_model_has_only_the_trunk_and_a_projector():
    pcl = build_model(encoder="facecycle", method="pcl")
    simclr = build_model(encoder="facecycle", method="simclr")
    assert isinstance(simclr, SimCLRModel) and not hasattr(simclr, "decoder")
    assert simclr.projector.in_dim == simclr.feature_dims["F_s"] and set(simclr.feature_dims) == {"F_s"}
    assert simclr.encoder.face_branch is None and simclr.encoder.pose_branch is None
    # every parameter is trained: trunk + projector, nothing frozen
    assert count_parameters(simclr, trainable_only=True) == count_parameters(simclr)
    assert count_parameters(simclr) == count_parameters(simclr.encoder.trunk) + count_parameters(simclr.projector)
    assert count_parameters(simclr) < count_parameters(pcl)
    # same seed, same trunk: the branches PCL builds do not change the trunk's initial weights
    torch.manual_seed(0)
    pcl = build_model(encoder="small", method="pcl")
    torch.manual_seed(0)
    simclr = build_model(encoder="small", method="simclr")
    torch.testing.assert_close(simclr.encoder.trunk.state_dict(), pcl.encoder.trunk.state_dict())
    images = _images(4)
    feats = simclr.forward_features(images)
    assert set(feats) == {"F_s"} and feats["F_s"].shape == (4, simclr.feature_dims["F_s"])
    nt_xent(simclr.project(feats["F_s"][:2]), simclr.project(feats["F_s"][2:])).backward()
    assert all(p.grad is not None for p in simclr.parameters())


def test_old_simclr_state_dicts_load_into_the_new_model():
    """Before SimCLRModel, SimCLR was a PCLModel with frozen branches and a face head on F_s."""
    torch.manual_seed(0)
    simclr = build_model(encoder="small", method="simclr").eval()
    old = {f"face_head.{k}": v for k, v in simclr.projector.state_dict().items()}
    old.update({f"encoder.{k}": v for k, v in simclr.encoder.state_dict().items()})
    old["encoder.face_branch.0.weight"] = torch.zeros(3)  # frozen random branches: dropped
    old["encoder.pose_branch.0.weight"] = torch.zeros(3)
    fresh = build_model(encoder="small", method="simclr").eval()
    fresh.load_state_dict(SimCLRModel.upgrade_state(old))
    images = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(fresh.forward_features(images), simclr.forward_features(images))


# ---------------------------------------------------------------------------
# bf16 autocast, channels_last, CUDA


@pytest.mark.parametrize("encoder", ["small", "facecycle", "resnet18"])
def test_bf16_autocast_forward_backward_is_finite(encoder):
    model = build_model(encoder=encoder).to(memory_format=torch.channels_last)
    images = _images(4).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        shared, face, pose = model.forward_features(images).values()
        recon = model.decode(face, pose)
        z_face, z_pose = model.project_face(face), model.project_pose(pose)
        loss = (recon.float() - images).abs().mean() + z_face.float().pow(2).mean() + z_pose.float().pow(2).mean()
        loss = loss + shared.float().pow(2).mean() * 1e-3
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("encoder", ["small", "facecycle"])
def test_channels_last_inputs_give_the_same_features(encoder):
    model = build_model(encoder=encoder).eval()
    images = _images(3)
    with torch.no_grad():
        expected = model.forward_features(images)
        model_cl = model.to(memory_format=torch.channels_last)
        got = model_cl.forward_features(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(expected, got, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_forward_backward():
    model = build_model(encoder="facecycle").cuda()
    images = _images(4).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, face, pose = model.forward_features(images).values()
        loss = swap_reconstruction(images, images.flip(-1), face, face, pose, pose, model.decode).total
        loss = loss + nt_xent(model.project_face(face), model.project_face(face.flip(0)))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


# ---------------------------------------------------------------------------
# config and input errors, state round trip


def test_bad_inputs_give_clear_errors():
    model = build_model(encoder="small")
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        model.forward_features(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        model.forward_features(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 2048\)"):
        model.project_face(torch.rand(2, 100))
    with pytest.raises(ValueError, match="F_p"):
        model.decode(torch.rand(2, 2048), torch.rand(2, 7))
    with pytest.raises(ValueError, match="unknown encoder 'vgg'.*small"):
        build_model(encoder="vgg")
    with pytest.raises(ValueError, match="unknown method 'byol'; known methods: .*pcl.*simclr"):
        build_model(method="byol")
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model(image_size=60)


def test_config_resolution_and_weights_only_state_round_trip():
    model = build_model(ModelConfig(encoder="small", width=16), proj_dim=64)
    cfg = model.config
    assert (cfg.width, cfg.proj_dim, cfg.proj_hidden_dim) == (16, 64, 512)
    assert (cfg.decoder_width, cfg.decoder_stage_width) == (256, 32)  # small defaults filled in
    # elsewhere the decoder stages follow the reference rule: half the seed width
    assert ModelConfig(encoder="facecycle", decoder_width=64).resolved().decoder_stage_width == 32
    buffer = io.BytesIO()
    torch.save({"config": cfg.to_dict(), "model": model.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    restored = build_model(ModelConfig(**saved["config"]))
    restored.load_state_dict(saved["model"])
    model.eval(), restored.eval()
    images = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(images), restored.forward_features(images))


def test_a_narrow_pose_code_sizes_f_p_its_head_and_the_decoder():
    model = build_model(ModelConfig(encoder="small", width=8, decoder_fusion="concat", pose_dim=6))
    feats = model.forward_features(_images(3))
    assert feats["F_p"].shape == (3, 6) and feats["F_f"].shape == (3, 8 * 64)
    assert model.feature_dims["F_p"] == 6 and model.pose_head.in_dim == 6
    assert model.decode(feats["F_f"], feats["F_p"]).shape == (3, 3, 64, 64)
    assert model.project_pose(feats["F_p"]).shape[0] == 3
    with pytest.raises(ValueError, match="F_p of shape"):
        model.decode(feats["F_f"], feats["F_f"])
    with pytest.raises(ValueError, match="concat"):  # a sum needs F_f and F_p of one size
        build_model(ModelConfig(encoder="small", width=8, pose_dim=6))
    # without pose_dim F_p is the branch output, as in the paper
    assert build_model(ModelConfig(encoder="small", width=8)).pose_code is None


def test_the_pose_head_kinds_project_f_p_as_documented():
    def model_with(kind: str):
        return build_model(ModelConfig(encoder="small", width=8, decoder_fusion="concat", pose_dim=6,
                                       proj_hidden_dim=32, proj_dim=16, pose_head=kind))

    pose_feat = torch.randn(5, 6) * 3 + 1
    assert model_with("mlp").project_pose(pose_feat).shape == (5, 16)  # the reference MLP
    linear = model_with("linear")
    assert linear.project_pose(pose_feat).shape == (5, 16)
    assert count_parameters(linear.pose_head) == 6 * 16 + 16 + 2 * 16  # Linear + BatchNorm1d's affine
    standardised = model_with("bn")
    assert count_parameters(standardised.pose_head) == 0
    out = standardised.project_pose(pose_feat)  # training mode: batch statistics, F_p itself standardised
    torch.testing.assert_close(out, (pose_feat - pose_feat.mean(0)) / (pose_feat.var(0, unbiased=False) + 1e-5).sqrt())
    with pytest.raises(ValueError, match="pose_head must be one of mlp, linear, bn, got 'deep'"):
        model_with("deep")


def test_a_mean_pooled_face_branch_keeps_the_size_of_f_f_but_not_the_layout():
    model = build_model(ModelConfig(encoder="small", width=8, decoder_fusion="concat", pose_dim=6, face_pool="mean"))
    captured: list[torch.Tensor] = []
    pool = model.encoder.face_branch[-1]
    pool.register_forward_hook(lambda module, inputs, out: captured.append(inputs[0]))
    feats = model.forward_features(_images(3))
    assert feats["F_f"].shape == (3, 8 * 64) and feats["F_s"].shape == (3, 8 * 64)
    before = captured[-1]  # (B, 512, 4, 4): one 1x1-conv feature per grid cell
    assert before.shape == (3, 8 * 64, 4, 4)
    torch.testing.assert_close(feats["F_f"], before.mean(dim=(2, 3)))
    # moving a feature to another grid cell leaves F_f as it was: it holds what, not where
    torch.testing.assert_close(pool(before.flip(-1)).flatten(1), feats["F_f"])
    assert model.decode(feats["F_f"], feats["F_p"]).shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match="face_pool"):
        ModelConfig(encoder="small", face_pool="max").validate()
    with pytest.raises(ValueError, match="small"):
        ModelConfig(encoder="facecycle", face_pool="mean").validate()


# ---------------------------------------------------------------------------
# one PCL step overfits a fixed tiny batch


def _fixed_views(batch: int, num_neg: int) -> dict[str, torch.Tensor]:
    """PCL views from plain tensor ops (the augmentation module is separate).

    face views: two crops from different quadrants, resized; pose positives:
    two photometric jitters of the full frame; negatives: jitters of its
    horizontal flip; reconstruction: s and its flip ŝ (noisy inputs, clean targets).
    """
    generator = torch.Generator().manual_seed(1)
    images = _images(batch, seed=2)

    def jitter(x: torch.Tensor) -> torch.Tensor:
        gain = 0.8 + 0.4 * torch.rand(x.shape[0], 1, 1, 1, generator=generator)
        return (x * gain + 0.03 * torch.randn(x.shape, generator=generator)).clamp(0, 1)

    def crop(x: torch.Tensor, top: int, left: int) -> torch.Tensor:
        patch = x[:, :, top:top + 32, left:left + 32]
        return F.interpolate(patch, size=(SIZE, SIZE), mode="bilinear", align_corners=False)

    flipped = images.flip(-1)
    return {
        "face_a": jitter(crop(images, 0, 0)),
        "face_b": jitter(crop(images, 32, 32)),
        "pose_a": jitter(images),
        "pose_b": jitter(images),
        "negatives": torch.stack([jitter(flipped) for _ in range(num_neg)], dim=1),  # (B, M, 3, H, W)
        "s": images,
        "s_hat": flipped,
        "s_in": (images + 0.1 * torch.randn(images.shape, generator=generator)).clamp(0, 1),
        "s_hat_in": (flipped + 0.1 * torch.randn(images.shape, generator=generator)).clamp(0, 1),
    }


def _pcl_losses(model: PCLModel, views: dict[str, torch.Tensor], orth_mode: str) -> dict[str, torch.Tensor]:
    """The four PCL losses with one encoder pass over all views."""
    batch, num_neg = views["negatives"].shape[:2]
    encoder_input = torch.cat([
        views["face_a"], views["face_b"], views["pose_a"], views["pose_b"],
        views["negatives"].flatten(0, 1), views["s_in"], views["s_hat_in"],
    ])
    _, face, pose = model.forward_features(encoder_input).values()
    face_a, face_b, *_ = face.split(batch)
    face_s, face_s_hat = face[-2 * batch:].split(batch)
    pose_s, pose_s_hat = pose[-2 * batch:].split(batch)
    pose_proj = model.project_pose(pose[2 * batch:-2 * batch])
    anchor, positive = pose_proj[:batch], pose_proj[batch:2 * batch]
    negatives = pose_proj[2 * batch:].reshape(batch, num_neg, -1)
    swap = swap_reconstruction(views["s"], views["s_hat"], face_s, face_s_hat, pose_s, pose_s_hat, model.decode)
    return {
        "dis": swap.total,
        "orth": orthogonality(torch.cat([face_s, face_s_hat]), torch.cat([pose_s, pose_s_hat]), orth_mode),
        "pose": pose_contrastive(anchor, positive, negatives),
        "face": nt_xent(model.project_face(face_a), model.project_face(face_b)),
    }


def test_a_few_pcl_steps_lower_each_of_the_four_losses():
    # L_orth in the paper's form (Eq. 3, per-sample squared dot product of
    # F_f and F_p): the DSN form starts at its chance level ~B/D^2 ~ 1e-5 for
    # 1024-d features and is negligible next to the other terms in a plain sum
    # (see the next test for DSN on its own)
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder="small", width=16))
    views = _fixed_views(batch=8, num_neg=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = None
    for _ in range(10):
        losses = _pcl_losses(model, views, orth_mode="dot")
        first = first or {k: v.item() for k, v in losses.items()}
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    with torch.no_grad():
        last = {k: v.item() for k, v in _pcl_losses(model, views, orth_mode="dot").items()}
    for name in first:
        assert last[name] < first[name], f"L_{name} did not decrease: {first[name]:.4g} -> {last[name]:.4g}"


def test_dsn_orthogonality_alone_can_be_lowered_through_the_branches():
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder="small", width=16))
    images = _images(16, seed=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    values = []
    for _ in range(8):
        _, face, pose = model.forward_features(images).values()
        loss = orthogonality(face, pose, "dsn")
        values.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert values[-1] < 0.7 * values[0], values


def test_decoder_refine_blocks_start_as_the_identity_and_sit_after_the_full_width_stages():
    from pclkit.models.heads import RefineBlock, SwapDecoder

    block = RefineBlock(8)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(block(x), x)  # the BN scale starts at 0
    decoder = SwapDecoder(32, width=16, out_size=64, stage_width=8, fusion="concat", seed_size=4,
                          upsample="pixelshuffle", pose_dim=4, refine=2)
    blocks = [m for m in decoder.stages if isinstance(m, RefineBlock)]
    # 4 -> 8 -> 16 -> 32 -> 64: the two full-width stages (8 and 16 px) get two blocks each
    assert len(blocks) == 4 and {b.conv.in_channels for b in blocks} == {8}
    out = decoder(torch.randn(3, 32), torch.randn(3, 4))
    assert out.shape == (3, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="refine"):
        SwapDecoder(32, width=16, refine=-1)
    with pytest.raises(ValueError, match="decoder_refine"):
        build_model(ModelConfig(method="pcl", decoder_refine=-1))


def test_warp_fusion_starts_as_the_identity_and_moves_the_map_by_its_flow():
    from pclkit.models.heads import SwapDecoder

    torch.manual_seed(0)
    decoder = SwapDecoder(32, width=16, out_size=64, stage_width=8, fusion="warp", seed_size=4,
                          upsample="pixelshuffle", pose_dim=4, warp_size=64).eval()
    face_feat, pose_feat = torch.randn(3, 32), torch.randn(3, 4)
    seed = decoder.fc(face_feat).view(-1, 16, 4, 4)
    logits = decoder.stages(seed)  # (3, 3, 64, 64), F_f alone: the template
    with torch.no_grad():
        # a new warp is the identity, whatever F_p
        torch.testing.assert_close(decoder(face_feat, pose_feat), torch.sigmoid(logits))
        torch.testing.assert_close(decoder(face_feat, 5 * pose_feat), torch.sigmoid(logits))
        # a flow of +2 pixels in x everywhere: output pixel (y, x) reads the template at (y, x + 2)
        bias = decoder.warp.flow[-1].bias.view(2, 8, 8)
        bias[0] = 2 * 2 / 64
        out = decoder(face_feat, pose_feat)
    torch.testing.assert_close(out[..., :-2], torch.sigmoid(logits[..., 2:]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[..., -2:], torch.sigmoid(logits[..., -1:]).expand(-1, -1, -1, 2),
                               atol=1e-5, rtol=1e-5)  # border padding


def test_warp_fusion_sits_at_the_map_of_its_side_and_rejects_bad_sizes():
    from pclkit.models.heads import SwapDecoder

    model = build_model(ModelConfig(encoder="small", width=8, decoder_fusion="warp", decoder_seed_size=4,
                                    decoder_upsample="pixelshuffle", pose_dim=6))
    decoder = model.decoder
    template = decoder.stages[: decoder.warp_at](torch.randn(2, decoder.width, 4, 4))
    assert template.shape[-2:] == (16, 16)  # image_size // 4 by default
    images = torch.rand(2, 3, 64, 64)
    feats = model.forward_features(images)
    out = model.decode(feats["F_f"], feats["F_p"])
    out.mean().backward()
    assert out.shape == (2, 3, 64, 64) and decoder.warp.flow[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="warp_size"):
        SwapDecoder(32, width=16, out_size=64, fusion="warp", seed_size=4, warp_size=12)
    with pytest.raises(ValueError, match="needs fusion 'warp'"):
        SwapDecoder(32, width=16, out_size=64, fusion="concat", pose_dim=4, warp_size=16)
    with pytest.raises(ValueError, match="decoder_warp_size"):
        build_model(ModelConfig(method="pcl", decoder_fusion="concat", pose_dim=6, decoder_warp_size=16))


def test_decoder_skips_start_as_the_plain_decoder_and_add_each_map_in_rgb():
    from pclkit.models.heads import SwapDecoder

    torch.manual_seed(0)
    kwargs = dict(width=16, out_size=64, stage_width=8, fusion="concat", seed_size=4, upsample="pixelshuffle", pose_dim=4)
    plain = SwapDecoder(32, **kwargs).eval()
    skipped = SwapDecoder(32, **kwargs, skips=True).eval()
    missing, unexpected = skipped.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("to_rgb.") for key in missing)
    # the seed (4 px) and the 8, 16 and 32 px maps each get a 1x1 conv to RGB; the output itself does not
    assert [conv.in_channels for conv in skipped.to_rgb.values()] == [16, 8, 8, 4]
    face_feat, pose_feat = torch.randn(3, 32), torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(skipped(face_feat, pose_feat), plain(face_feat, pose_feat))  # zero at init
        first = next(iter(skipped.to_rgb.values()))
        first.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))  # a constant coarse map: adds that colour everywhere
        logits = torch.logit(plain(face_feat, pose_feat), eps=1e-6)
        expected = torch.sigmoid(logits + torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1))
        torch.testing.assert_close(skipped(face_feat, pose_feat), expected, atol=1e-4, rtol=1e-4)
