"""Augmentation families (pclkit.augment): appearance-only vs pose-changing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pclkit.augment import (
    AppearanceAugment,
    add_gaussian_noise,
    flip_pose,
    gaussian_blur,
    gradient_magnitude,
    jitter_transform,
    make_pose_change,
    quadrant_patches,
    rotate_images,
)
from pclkit.augment.colour import LUMA_WEIGHTS, apply_colour_transform, hue_matrices
from pclkit.augment.filters import blur_kernel_size, gaussian_weights
from pclkit.augment.grid import affine_sampling_grid
from pclkit.augment.pose import Render3D


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_images(batch: int = 8, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=gen(seed))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1]."""
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


# ---------------------------------------------------------------------------
# appearance family


def test_appearance_gives_each_image_its_own_parameters():
    same = random_images(1).expand(12, -1, -1, -1).contiguous()
    out = AppearanceAugment()(same, gen(0))
    flat = out.flatten(1)
    distances = torch.cdist(flat, flat)
    off_diagonal = distances[~torch.eye(12, dtype=torch.bool)]
    assert off_diagonal.min() > 1e-3, "two images of one batch got the same augmentation"


def test_appearance_is_reproducible_from_the_generator_and_seeds_differ():
    images = random_images()
    augment = AppearanceAugment(noise_p=0.5)
    first = augment(images, gen(7))
    again = augment(images, gen(7))
    other = augment(images, gen(8))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_appearance_keeps_shape_dtype_range_and_input():
    images = random_images(6, 40)
    before = images.clone()
    for dtype in (torch.float32, torch.float64):
        out = AppearanceAugment()(images.to(dtype), gen(3))
        assert out.shape == images.shape and out.dtype == dtype
        assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(images, before), "the input batch was modified in place"


def test_all_probabilities_zero_is_identity():
    images = random_images()
    off = AppearanceAugment(jitter_p=0, grayscale_p=0, blur_p=0, gradient_p=0, noise_p=0)
    assert torch.equal(off(images, gen()), images)


def test_colour_ops_are_pixelwise_so_regions_stay_put():
    # two flat regions split by a diagonal: a pointwise colour map must keep each region flat
    size = 24
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    upper = (cols > rows).float()
    colours = torch.rand(16, 2, 3, generator=gen(2))
    images = colours[:, 0, :, None, None] * upper + colours[:, 1, :, None, None] * (1 - upper)
    out = AppearanceAugment(blur_p=0, gradient_p=0)(images, gen(4))
    for mask in (upper.bool(), ~upper.bool()):
        region = out[:, :, mask]  # (B, 3, pixels)
        assert (region.amax(-1) - region.amin(-1)).max() < 1e-5
    assert not torch.allclose(out, images), "colour jitter changed nothing"


def test_appearance_keeps_an_edge_where_it_is():
    # a vertical step edge between columns 15 and 16 must stay there through jitter, blur and gradient
    images = torch.zeros(32, 3, 32, 32)
    images[..., 16:] = 0.8
    images[..., :16] = 0.2
    out = AppearanceAugment()(images, gen(5))
    column_profile = out.mean(dim=(1, 2))  # (B, W)
    jumps = (column_profile[:, 1:] - column_profile[:, :-1]).abs()
    strong = jumps.amax(1) > 1e-3
    assert strong.float().mean() > 0.9
    # the largest change sits at the edge (between 15|16, i.e. jump index 15, or its symmetric neighbours)
    assert set(jumps[strong].argmax(1).tolist()) <= {14, 15, 16}


def test_jitter_transform_equals_sequential_ops_in_the_given_order():
    images = random_images(4, 16)
    b = torch.tensor([1.3, 0.5, 1.0, 0.8])
    c = torch.tensor([0.6, 1.5, 1.2, 0.3])
    s = torch.tensor([1.7, 0.2, 0.9, 1.1])
    h = torch.tensor([0.1, -0.2, 0.05, 0.0])
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]])
    luma = torch.tensor(LUMA_WEIGHTS)

    def grey(x):
        return torch.einsum("c,bchw->bhw", luma, x).unsqueeze(1)

    expected = images.clone()
    for i in range(4):
        x = expected[i : i + 1]
        for op in order[i].tolist():
            if op == 0:
                x = x * b[i]
            elif op == 1:
                x = c[i] * x + (1 - c[i]) * grey(x).mean()
            elif op == 2:
                x = s[i] * x + (1 - s[i]) * grey(x)
            else:
                x = torch.einsum("ij,bjhw->bihw", hue_matrices(h[i : i + 1])[0], x)
        expected[i : i + 1] = x
    matrix, offset = jitter_transform(b, c, s, h, order, images.mean(dim=(2, 3)))
    got = torch.einsum("bij,bjhw->bihw", matrix, images) + offset[:, :, None, None]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_hue_rotation_turns_red_to_green_and_keeps_grey():
    third = hue_matrices(torch.tensor([1 / 3, 0.0, 0.25]))
    red, grey = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.4, 0.4, 0.4])
    torch.testing.assert_close(third[0] @ red, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(third[1], torch.eye(3))
    torch.testing.assert_close(third[2] @ grey, grey)


def test_apply_colour_transform_grey_and_clamp():
    images = random_images(2, 8)
    luma = torch.tensor(LUMA_WEIGHTS)
    grey = torch.ones(3, 1) * luma.view(1, 3)
    out = apply_colour_transform(images, grey.expand(2, 3, 3), torch.zeros(2, 3))
    torch.testing.assert_close(out[:, 0], torch.einsum("c,bchw->bhw", luma, images))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    bright = apply_colour_transform(images, 3 * torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))
    assert bright.max() == 1.0 and bright.min() >= 0


def test_blur_matches_a_reflect_padded_convolution():
    images = random_images(3, 20)
    sigma = torch.tensor([0.0, 0.8, 2.0])
    kernel_size = 7
    got = gaussian_blur(images, sigma, kernel_size)
    taps = gaussian_weights(sigma, kernel_size)
    for i in range(3):
        padded = F.pad(images[i : i + 1], (3, 3, 3, 3), mode="reflect")
        k = taps[i]
        weight_h = k.view(1, 1, 1, -1).expand(3, 1, 1, kernel_size)
        weight_v = k.view(1, 1, -1, 1).expand(3, 1, kernel_size, 1)
        expected = F.conv2d(F.conv2d(padded, weight_h, groups=3), weight_v, groups=3)
        torch.testing.assert_close(got[i : i + 1], expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(got[0], images[0]), "sigma 0 must be an exact identity"


def test_blur_is_stronger_for_larger_sigma():
    edge = torch.zeros(1, 3, 32, 32)
    edge[..., 16:] = 1.0
    blurred = gaussian_blur(edge.expand(4, -1, -1, -1), torch.tensor([0.3, 0.7, 1.2, 2.0]), 7)
    steepest = (blurred[:, 0, 16, 1:] - blurred[:, 0, 16, :-1]).amax(1)
    assert (steepest[1:] < steepest[:-1]).all()
    # symmetric kernel: the half-way crossing stays between columns 15 and 16
    torch.testing.assert_close(blurred[:, 0, 16, 15] + blurred[:, 0, 16, 16], torch.ones(4))


def test_blur_kernel_size_follows_simclr():
    assert blur_kernel_size(64) == 7 and blur_kernel_size(224) == 23 and blur_kernel_size(8) == 1


def test_gradient_magnitude_marks_edges_only():
    images = torch.full((2, 3, 16, 16), 0.3)
    images[1, :, :, 8:] = 0.9
    grad = gradient_magnitude(images)
    assert grad.shape == images.shape and grad.min() >= 0 and grad.max() <= 1
    assert grad[0].abs().max() == 0, "a flat image has no gradient (and no border frame)"
    assert torch.equal(grad[1, 0], grad[1, 2])
    edge_columns = grad[1, 0].amax(0).nonzero().flatten().tolist()
    assert edge_columns == [7, 8]
    torch.testing.assert_close(grad[1, 0, 5, 7], torch.tensor(0.6))


def test_gaussian_noise_statistics_clamp_and_reproducibility():
    images = torch.full((4, 3, 32, 32), 0.5)
    noisy = add_gaussian_noise(images, gen(1), sigma=0.4)
    delta = noisy - images
    assert abs(delta.mean().item()) < 0.02 and abs(delta.std().item() - 0.4) < 0.02
    assert noisy.min() < 0 and noisy.max() > 1, "default is unclamped, as the reference"
    clamped = add_gaussian_noise(images, gen(1), sigma=0.4, clamp=True)
    assert clamped.min() >= 0 and clamped.max() <= 1
    torch.testing.assert_close(clamped, noisy.clamp(0, 1))
    assert torch.equal(images, torch.full((4, 3, 32, 32), 0.5)), "targets must stay clean"


# ---------------------------------------------------------------------------
# quadrant patches


def coordinate_images(batch: int, size: int) -> torch.Tensor:
    """Channel 0 = x, channel 1 = y of each pixel centre as a fraction of the side; bilinear-exact."""
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    x = centres.view(1, size).expand(size, size)
    y = centres.view(size, 1).expand(size, size)
    return torch.stack([x, y, torch.zeros_like(x)]).expand(batch, 3, size, size).contiguous()


def test_quadrant_patches_come_from_two_quadrants_and_do_not_overlap():
    size, batch = 64, 200
    view_a, view_b = quadrant_patches(coordinate_images(batch, size), gen(3), patch_frac=0.4, out_size=32)
    assert view_a.shape == view_b.shape == (batch, 3, 32, 32)

    def box(view):
        # out pixel centres span the box minus half an output pixel on each side
        half = 0.4 / 32 / 2
        x0, x1 = view[:, 0].amin((1, 2)) - half, view[:, 0].amax((1, 2)) + half
        y0, y1 = view[:, 1].amin((1, 2)) - half, view[:, 1].amax((1, 2)) + half
        return x0, y0, x1, y1

    ax0, ay0, ax1, ay1 = box(view_a)
    bx0, by0, bx1, by1 = box(view_b)
    # side 0.4 (a patch touching the image border loses < half a pixel to edge replication)
    for x0, y0, x1, y1 in ((ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1)):
        torch.testing.assert_close(x1 - x0, torch.full_like(x0, 0.4), atol=1 / 128, rtol=0)
        torch.testing.assert_close(y1 - y0, torch.full_like(y0, 0.4), atol=1 / 128, rtol=0)
        assert ((x1 - x0 - 0.4).abs() < 1e-6).float().mean() > 0.95
    quadrant_a = (ax0 >= 0.5).long() + 2 * (ay0 >= 0.5).long()
    quadrant_b = (bx0 >= 0.5).long() + 2 * (by0 >= 0.5).long()
    # each patch lies inside its quadrant
    for _, _, x1, y1, q in ((ax0, ay0, ax1, ay1, quadrant_a), (bx0, by0, bx1, by1, quadrant_b)):
        assert ((x1 <= 0.5 + 1e-6) | (q % 2 == 1)).all() and ((y1 <= 0.5 + 1e-6) | (q // 2 == 1)).all()
    assert (quadrant_a != quadrant_b).all()
    overlap_x = torch.minimum(ax1, bx1) - torch.maximum(ax0, bx0)
    overlap_y = torch.minimum(ay1, by1) - torch.maximum(ay0, by0)
    assert ((overlap_x <= 1e-6) | (overlap_y <= 1e-6)).all()
    # all 12 ordered quadrant pairs occur, positions vary per image
    assert len(set(zip(quadrant_a.tolist(), quadrant_b.tolist()))) == 12
    assert ax0.unique().numel() > batch // 2


def test_quadrant_patches_are_reproducible_and_keep_range():
    images = random_images(4, 48)
    a1, b1 = quadrant_patches(images, gen(9))
    a2, b2 = quadrant_patches(images, gen(9))
    a3, _ = quadrant_patches(images, gen(10))
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, a3)
    assert a1.shape == (4, 3, 64, 64) and a1.min() >= 0 and a1.max() <= 1


# ---------------------------------------------------------------------------
# pose family


def test_flip_mirrors_images_and_pose_labels():
    images = random_images(3)
    pose = torch.tensor([[30.0, -10.0, 5.0], [-80.0, 20.0, -25.0], [0.0, 0.0, 0.0]])
    flipped, pose_hat = make_pose_change("flip")(images, pose, gen())
    assert torch.equal(flipped, images.flip(-1))
    assert torch.equal(pose_hat, torch.tensor([[-30.0, -10.0, -5.0], [80.0, 20.0, 25.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(flip_pose(pose_hat), pose)
    _, unknown = make_pose_change("flip")(images, None, gen())
    assert unknown is None


def test_sampling_grid_equals_torch_affine_grid():
    theta = torch.randn(5, 2, 3, generator=gen(6))
    torch.testing.assert_close(
        affine_sampling_grid(theta, 7, 11), F.affine_grid(theta, [5, 3, 7, 11], align_corners=False)
    )


def test_rotation_is_counter_clockwise_on_screen():
    image = torch.zeros(1, 3, 33, 33)
    image[..., 16, 26] = 1.0  # a dot right of the centre
    rotated = rotate_images(image, torch.tensor([90.0]))
    row, col = divmod(int(rotated[0, 0].argmax()), 33)
    assert (row, col) == (6, 16), "positive angles turn counter-clockwise: right -> top"


def test_roll_changes_only_roll_by_the_angle_and_differs_per_image():
    images = random_images(6, 32)
    pose = torch.tensor([[10.0, 5.0, 0.0]] * 5 + [[0.0, 0.0, 170.0]])
    roll = make_pose_change("roll", min_degrees=5.0, max_degrees=40.0)
    rotated, pose_hat = roll(images, pose, gen(2))
    assert rotated.shape == images.shape
    assert torch.equal(pose_hat[:, :2], pose[:, :2])
    angles = roll.sample_angles(6, gen(2), torch.device("cpu"))
    expected_roll = torch.remainder(pose[:, 2] + angles + 180, 360) - 180
    torch.testing.assert_close(pose_hat[:, 2], expected_roll)
    assert ((angles.abs() >= 5) & (angles.abs() <= 40)).all()
    assert angles.unique().numel() == 6
    # the images were rotated by exactly those angles
    torch.testing.assert_close(rotated, rotate_images(images, angles))
    again, _ = roll(images, pose, gen(2))
    assert torch.equal(rotated, again)


def test_rotating_back_restores_the_centre():
    smooth = F.avg_pool2d(random_images(4, 72), 5, stride=1)  # (4, 3, 68, 68), smooth enough to resample
    smooth = F.interpolate(smooth, size=64, mode="bilinear", align_corners=False)
    angles = torch.tensor([25.0, -40.0, 10.0, 90.0])
    back = rotate_images(rotate_images(smooth, angles), -angles)
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    centre = ((rows - 31.5) ** 2 + (cols - 31.5) ** 2) < 20**2
    error = (back - smooth)[:, :, centre].abs()
    assert error.mean() < 0.01 and error.max() < 0.08


def test_pose_changes_reject_bad_input():
    images = random_images(2)
    with pytest.raises(ValueError, match="unknown pose change"):
        make_pose_change("yaw")
    with pytest.raises(TypeError, match="no option"):
        make_pose_change("roll", degrees=10)
    with pytest.raises(ValueError, match="pose must be"):
        make_pose_change("flip")(images, torch.tensor([0, 1]), gen())
    with pytest.raises(ValueError, match="min_degrees"):
        make_pose_change("roll", min_degrees=20.0, max_degrees=10.0)
    with pytest.raises(ValueError, match="min_yaw_change"):
        make_pose_change("render3d", min_yaw_change=100.0)
    with pytest.raises(ValueError, match="needs the SynthFaces factors"):
        make_pose_change("render3d")(images, None, gen())


def test_augmentations_reject_bad_images_and_configs():
    augment = AppearanceAugment()
    with pytest.raises(TypeError, match="uint8"):
        augment(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), gen())
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        augment(torch.zeros(3, 8, 8), gen())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment(torch.full((1, 3, 8, 8), 255.0), gen())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment(torch.full((1, 3, 8, 8), float("nan")), gen())
    with pytest.raises(TypeError, match="generator"):
        augment(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="jitter_p"):
        AppearanceAugment(jitter_p=1.5)
    with pytest.raises(ValueError, match="hue"):
        AppearanceAugment(hue=0.7)
    with pytest.raises(ValueError, match="patch_frac"):
        quadrant_patches(torch.zeros(1, 3, 8, 8), gen(), patch_frac=0.6)


def test_render3d_pose_sampling_keeps_yaw_far_and_in_range():
    current = torch.tensor([[-90.0, 0.0, 0.0], [0.0, 10.0, 5.0], [45.0, -5.0, 1.0], [90.0, 0.0, 0.0]]).repeat(50, 1)
    sampler = Render3D(min_yaw_change=45.0)
    new = sampler.sample_pose(current, gen(4))
    assert ((new[:, 0] - current[:, 0]).abs() >= 45 - 1e-4).all()
    assert (new[:, 0].abs() <= 90).all() and (new[:, 1].abs() <= 40).all() and (new[:, 2].abs() <= 30).all()
    # both sides of a central yaw are used
    centre = new[1::4, 0]
    assert (centre < 0).any() and (centre > 0).any()
    kept = Render3D(pitch_range=None, roll_range=None).sample_pose(current, gen(4))
    assert torch.equal(kept[:, 1:], current[:, 1:])


def test_render3d_one_axis_changes_move_exactly_one_angle_by_its_minimum():
    current = torch.tensor([[0.0, 0.0, 0.0], [50.0, 18.0, -14.0], [-60.0, -20.0, 15.0]]).repeat(400, 1)
    sampler = Render3D(yaw_range=(-60.0, 60.0), pitch_range=(-20.0, 20.0), roll_range=(-15.0, 15.0),
                       min_yaw_change=20.0, change_axes="one", min_pitch_change=10.0, min_roll_change=8.0)
    new = sampler.sample_pose(current, gen(5))
    moved = (new - current).abs()
    changed = moved > 1e-5
    assert (changed.sum(1) == 1).all(), "exactly one of yaw, pitch, roll changes per image"
    for column, (minimum, limit) in enumerate([(20.0, 60.0), (10.0, 20.0), (8.0, 15.0)]):
        rows = changed[:, column]
        assert (moved[rows, column] >= minimum - 1e-4).all()
        assert (new[rows, column].abs() <= limit + 1e-4).all()
        # each axis is chosen about a third of the time (1,200 draws: 400 +- 3 sigma of 16)
        assert 330 < int(rows.sum()) < 470, (column, int(rows.sum()))
    # the same generator state gives the same poses; the default rule is unchanged by the option
    assert torch.equal(new, sampler.sample_pose(current, gen(5)))
    default = Render3D(yaw_range=(-60.0, 60.0), pitch_range=(-20.0, 20.0), roll_range=(-15.0, 15.0), min_yaw_change=20.0)
    assert ((default.sample_pose(current, gen(5)) - current).abs() > 1e-5).sum(1).float().mean() > 2.5
    with pytest.raises(ValueError, match="change_axes"):
        Render3D(change_axes="two")
    with pytest.raises(ValueError, match="min_pitch_change"):
        Render3D(pitch_range=(-20.0, 20.0), change_axes="one", min_pitch_change=25.0)
    with pytest.raises(ValueError, match="needs pitch_range and roll_range"):
        Render3D(roll_range=None, change_axes="one")


# ---------------------------------------------------------------------------
# on SynthFaces (the renderer is pclkit.data.synthetic)


@pytest.fixture(scope="module")
def synthetic():
    return pytest.importorskip("pclkit.data.synthetic")


def test_flip_matches_rerender_at_mirrored_pose(synthetic):
    """Labels exactly; pixels above 35 dB PSNR for faces rendered with ``symmetric=True``.

    Measured 45.2 / 40.7 / 41.9 dB here, against <= 21.5 dB for re-renders at
    the poses of wrong flip rules. Identities 3 and 11 are used because
    ``symmetric=True`` does not make every identity mirror-symmetric (e.g.
    identity 42 — long hair, moustache, glasses — scores ~29.6 dB even frontal).
    """
    factors = synthetic.make_factors(
        [3, 3, 11], pose=torch.tensor([[30.0, 10.0, 12.0], [-60.0, -15.0, -15.0], [20.0, 20.0, -20.0]])
    )
    images = synthetic.render(factors, size=64, symmetric=True)
    flipped, pose_hat = make_pose_change("flip")(images, factors.pose, gen())
    mirrored = factors.mirrored()  # also mirrors the light and the horizontal shift
    assert torch.equal(pose_hat, mirrored.pose)
    score = psnr(flipped, synthetic.render(mirrored, size=64, symmetric=True))
    assert (score > 35).all(), score
    for wrong_signs in ([-1.0, 1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]):
        wrong = mirrored.with_pose(factors.pose * torch.tensor(wrong_signs))
        assert (score > psnr(flipped, synthetic.render(wrong, size=64, symmetric=True)) + 10).all()


def test_roll_sign_matches_synthfaces_roll(synthetic):
    """Rotating by +a on screen must look like roll + a, not roll - a (lighting differs, so not exact)."""
    factors = synthetic.make_factors([3, 5, 7])
    images = synthetic.render(factors, size=48)
    angle = 20.0
    rotated = rotate_images(images, torch.full((3,), angle))
    plus = synthetic.render(factors.with_pose(torch.tensor([0.0, 0.0, angle])), size=48)
    minus = synthetic.render(factors.with_pose(torch.tensor([0.0, 0.0, -angle])), size=48)
    assert (psnr(rotated, plus) > psnr(rotated, minus) + 4).all()


def test_render3d_keeps_the_face_and_changes_the_pose(synthetic):
    factors = synthetic.sample_factors("train", 4, seed=0)
    images = synthetic.render(factors, size=32)
    change = make_pose_change("render3d", min_yaw_change=40.0)
    rendered, pose_hat = change(images, factors.pose, gen(5), factors=factors)
    again, pose_again = change(images, None, gen(5), factors=factors)
    assert torch.equal(rendered, again) and torch.equal(pose_hat, pose_again)
    assert rendered.shape == images.shape and rendered.min() >= 0 and rendered.max() <= 1
    assert ((pose_hat[:, 0] - factors.pose[:, 0]).abs() >= 40 - 1e-4).all()
    # same identity, expression, AUs and nuisance: exactly the render of the edited factors
    torch.testing.assert_close(rendered, synthetic.render(factors.with_pose(pose_hat), size=32))
    assert (psnr(rendered, images) < 25).all(), "a 40+ degree turn must change the picture"


# ---------------------------------------------------------------------------
# CUDA (skipped on CPU-only machines)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_stay_on_the_device_and_are_reproducible():
    images = random_images(6, 32).cuda()
    pose = torch.zeros(6, 3, device="cuda")
    for make_generator in (lambda: torch.Generator(device="cuda").manual_seed(0), lambda: gen(0)):
        out = AppearanceAugment(noise_p=0.5)(images, make_generator())
        again = AppearanceAugment(noise_p=0.5)(images, make_generator())
        view_a, _ = quadrant_patches(images, make_generator())
        rolled, pose_hat = make_pose_change("roll")(images, pose, make_generator())
        assert out.device == view_a.device == rolled.device == pose_hat.device == images.device
        assert torch.equal(out, again)
    cpu_result = AppearanceAugment(noise_p=0.0)(images.cpu(), gen(0))
    torch.testing.assert_close(AppearanceAugment(noise_p=0.0)(images, gen(0)).cpu(), cpu_result, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="generator is on"):
        AppearanceAugment()(images.cpu(), torch.Generator(device="cuda"))


def test_random_resized_crops_are_inside_the_image_with_the_requested_area():
    from pclkit.augment import sample_crop_boxes

    boxes = sample_crop_boxes(2000, gen(3), scale=(0.35, 1.0))
    x0, y0, x1, y1 = boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 1 + 1e-6).all() and (y1 <= 1 + 1e-6).all()
    area = (x1 - x0) * (y1 - y0)
    # the area is the drawn one unless a side had to be clipped to the image
    assert area.max() <= 1 + 1e-6 and area.min() >= 0.35 * 0.75 - 1e-6
    assert ((area > 0.34) & (area < 1.01)).float().mean() > 0.9
    assert torch.equal(boxes, sample_crop_boxes(2000, gen(3), scale=(0.35, 1.0)))
    with pytest.raises(ValueError, match="scale"):
        sample_crop_boxes(4, gen(), scale=(0.0, 1.0))


def test_random_resized_crops_of_the_full_area_return_the_image_and_views_differ():
    from pclkit.augment import random_resized_crops

    images = random_images(4, 32)
    from pclkit.augment import sample_crop_boxes

    full = sample_crop_boxes(4, gen(), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(full, torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(4, 4))
    view_a, view_b = random_resized_crops(images, gen(5), scale=(0.3, 0.6), out_size=16)
    assert view_a.shape == view_b.shape == (4, 3, 16, 16)
    assert (view_a - view_b).abs().amax(dim=(1, 2, 3)).min() > 0  # two crops per image, drawn separately
    assert view_a.min() >= 0 and view_a.max() <= 1


def test_blur_taps_hold_no_subnormal_floats_and_match_the_exact_gaussian():
    """Narrow Gaussians (sigma ~0.2 px, common at 64 px) have subnormal outer taps, which run ~8x slower."""
    sigma = torch.linspace(0.0, 2.0, 401)
    taps = gaussian_weights(sigma, 7)
    smallest_normal = torch.finfo(torch.float32).tiny
    assert not ((taps > 0) & (taps < smallest_normal)).any()
    offsets = torch.arange(-3, 4, dtype=torch.float64)
    exact = torch.exp(-0.5 * (offsets / sigma[1:].double().view(-1, 1)) ** 2)
    exact = exact / exact.sum(1, keepdim=True)
    torch.testing.assert_close(taps[1:].double(), exact, atol=1e-9, rtol=1e-5)
    torch.testing.assert_close(taps.sum(1), torch.ones(401))
