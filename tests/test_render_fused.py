"""The fused CPU renderer (pclkit.data.synthfaces.fused) against the torch code it mirrors."""

from __future__ import annotations

import pytest
import torch

from pclkit.data.synthfaces import parts, render, sample_factors
from pclkit.data.synthfaces import renderer as renderer_module
from pclkit.data.synthfaces.fused import available, composite_fused, fusable
from pclkit.data.synthfaces.raycast import Lighting, PartGroup, cast_group, composite

pytestmark = [pytest.mark.skipif(not available(), reason="numba is not installed"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.mark.parametrize(
    "options",
    [{}, {"supersample": 1}, {"mixed_resolution": False}, {"size": 96, "symmetric": True}, {"size": 32}],
    ids=["default", "ss1", "full_supersampling", "96px_symmetric", "32px"],
)
def test_fused_renders_the_pixels_of_the_torch_code(options):
    """Same steps in float32: pixels agree to a few units of float rounding (torch's vectorised sqrt
    is not always correctly rounded, numba's is; the box filter and the coarse layer's upsampling
    spread such differences), far below anything a uint8 image keeps."""
    faces = sample_factors("val", 48, seed=3)
    by_torch = render(faces, backend="torch", **options)
    by_fused = render(faces, backend="fused", **options)
    assert by_fused.shape == by_torch.shape and by_fused.dtype == torch.float32
    difference = (by_fused - by_torch).abs()
    assert difference.max() < 2e-6
    assert difference.mean() < 2e-8


def test_auto_uses_the_fused_code_on_cpu(monkeypatch):
    calls = []
    original = renderer_module.fused.composite_fused
    monkeypatch.setattr(renderer_module.fused, "composite_fused", lambda *a, **k: calls.append(1) or original(*a, **k))
    render(sample_factors("train", 4), chunk=2)
    assert len(calls) == 2  # one per chunk
    render(sample_factors("train", 4), backend="torch")
    assert len(calls) == 2


def test_fused_breaks_exact_depth_ties_like_composite():
    """Two parts of one group at the same depth: every pixel shows the later one (raycast.composite's rule)."""
    b, s = 4, 32
    albedo = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).expand(b, 2, 3)  # red, then blue
    twins = PartGroup("twins", torch.zeros(b, 2, 3), torch.eye(3).expand(b, 2, 3, 3), torch.full((b, 2, 3), 0.5), albedo)
    light = Lighting(torch.tensor([[0.0, 0.0, 1.0]]).expand(b, 3), torch.ones(b), torch.zeros(b))
    image = composite_fused([twins], s, light, torch.zeros(b, 3, s, 1))
    painted = image.sum(1) > 0
    assert painted.sum() > b * 0.15 * s * s
    assert (image[:, 0][painted] == 0).all() and (image[:, 2][painted] > 0).all()  # all blue
    assert torch.equal(image, composite([twins], s, light, torch.zeros(b, 3, s, s)))


def test_fused_clip_rules_and_back_faces_match_the_torch_code():
    """A hair-cap shell clipped at its hairline, seen from the back, with the inner surface showing
    (``back_faces``, which no SynthFaces part uses today), and a coarse layer under a detailed one."""
    gen = torch.Generator().manual_seed(0)
    b, s = 6, 48
    center = (torch.rand(b, 2, 3, generator=gen) - 0.5) * 0.6
    radii = 0.3 + 0.3 * torch.rand(b, 2, 3, generator=gen)
    shell = PartGroup(
        "shell", center, torch.eye(3).expand(b, 2, 3, 3).contiguous(), radii, torch.rand(b, 2, 3, generator=gen),
        clip=parts._cap_clip, texture=parts._hair_streaks, back_faces=True, coarse=True,
        params={"front": torch.rand(b, generator=gen) - 0.5, "parting": torch.rand(b, generator=gen) * 0.2},
    )
    eyes = PartGroup(
        "eyes", center * 0.5 + torch.tensor([0.0, 0.0, 0.8]), torch.eye(3).expand(b, 2, 3, 3).contiguous(),
        torch.full((b, 2, 3), 0.12), torch.rand(b, 2, 3, generator=gen), texture=parts._eye_texture,
        params={"iris": torch.rand(b, 3, generator=gen)}, specular=0.5, shininess=40.0,
    )
    direction = torch.nn.functional.normalize(torch.rand(b, 3, generator=gen) + 0.2, dim=1)
    light = Lighting(direction, torch.full((b,), 0.8), torch.full((b,), 0.2))
    backdrop = torch.rand(b, 3, 1, 1, generator=gen) * torch.linspace(1.0, 0.8, s)[:, None]
    options = {"coarse_factor": 2, "coarse_bias": 2.0 / s, "downsample": 2}
    by_torch = composite([shell, eyes], s, light, backdrop, **options)
    by_fused = composite_fused([shell, eyes], s, light, backdrop, **options)
    assert (by_fused - by_torch).abs().max() < 2e-6
    assert cast_group(shell, s // 2).inside.any()  # some rays show the inner surface


def test_a_rule_without_a_fused_twin_is_rendered_by_the_torch_code(monkeypatch):
    faces = sample_factors("train", 3)
    original = renderer_module.build_scene

    def scene_with_a_new_rule(*args, **kwargs):
        groups, light, background = original(*args, **kwargs)
        groups[0].clip = lambda q, params: q[1] < 0.5  # e.g. a user's new part
        return groups, light, background

    monkeypatch.setattr(renderer_module, "build_scene", scene_with_a_new_rule)
    assert not fusable(scene_with_a_new_rule(faces)[0])
    assert torch.equal(render(faces), render(faces, backend="torch"))  # auto falls back, pixel for pixel


def test_backend_errors(monkeypatch):
    faces = sample_factors("train", 2)
    with pytest.raises(ValueError, match="backend must be one of"):
        render(faces, backend="numba")
    monkeypatch.setattr(renderer_module.fused, "available", lambda: False)
    with pytest.raises(ValueError, match="numba"):
        render(faces, backend="fused")
    assert render(faces).shape == (2, 3, 64, 64)  # auto: the torch code
    with pytest.raises(ValueError, match="backdrop"):
        composite_fused([], 32, Lighting(torch.ones(2, 3), torch.ones(2), torch.ones(2)), torch.zeros(2, 3, 32, 32))
