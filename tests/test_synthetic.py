"""SynthFaces (pclkit.data.synthfaces): factors, renderer geometry, dataset contract."""

from __future__ import annotations

import math

import pytest
import torch

from pclkit.data import as_tensors
from pclkit.data.synthfaces import (
    AU_NAMES,
    DEFAULT_CONFIG,
    EXPRESSIONS,
    LANDMARK_NAMES,
    NUISANCE_NAMES,
    SPLITS,
    Factors,
    SynthConfig,
    SynthFaces,
    build_scene,
    landmarks,
    make_factors,
    render,
    sample_factors,
    symmetric_pose_config,
    synthfaces_split,
)
from pclkit.data.synthfaces.layout import rot_x, rot_y, rot_z
from pclkit.data.synthfaces.raycast import Lighting, PartGroup, cast_group, composite

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


# ---------------------------------------------------------------------------
# dataset contract


def test_item_format_shapes_and_ranges():
    ds = SynthFaces("val", n=12, seed=3)
    image, labels = ds[5]
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert float(image.std()) > 0.05  # not a blank frame
    assert set(labels) == {"identity", "expression", "aus", "pose", "index"}
    assert labels["index"] == 5 and isinstance(labels["identity"], int)
    assert labels["aus"].shape == (8,) and labels["pose"].shape == (3,)
    assert ds.class_names["expression"] == list(EXPRESSIONS)
    assert ds.class_names["aus"] == list(AU_NAMES)
    with pytest.raises(IndexError):
        ds[12]


def test_tensors_cache_matches_items_and_as_tensors():
    ds = SynthFaces("test", n=10, size=32, seed=1)
    images, labels = as_tensors(ds)
    assert images.dtype == torch.uint8 and images.shape == (10, 3, 32, 32)
    assert set(labels) == {"identity", "expression", "aus", "pose", "index"}
    assert labels["aus"].shape == (10, 8) and labels["pose"].shape == (10, 3)
    assert torch.equal(labels["index"], torch.arange(10))
    again, _ = ds.tensors()
    assert again.data_ptr() == images.data_ptr()  # rendered once, cached
    fresh = render(ds.factors[7], 32)[0]
    assert (images[7].float() / 255 - fresh).abs().max() <= 1 / 255 + 1e-6
    item, item_labels = ds[7]  # items now come from the cache
    assert (item - fresh).abs().max() <= 1 / 255 + 1e-6
    assert item_labels["identity"] == int(labels["identity"][7])


def test_labels_in_range():
    for split in SPLITS:
        f = sample_factors(split, 400, seed=0)
        ids = DEFAULT_CONFIG.identity_range(split)
        assert int(f.identity.min()) >= ids.start and int(f.identity.max()) < ids.stop
        assert f.expression.min() >= 0 and f.expression.max() < len(EXPRESSIONS)
        assert set(f.expression.tolist()) == set(range(len(EXPRESSIONS)))
        assert float(f.aus.min()) >= 0 and float(f.aus.max()) <= 1
        for axis, (lo, hi) in enumerate(DEFAULT_CONFIG.pose_range):
            assert lo <= float(f.pose[:, axis].min()) and float(f.pose[:, axis].max()) <= hi
            # spreads over the prior: the range (uniform) or about 6 std (the default near-frontal normal)
            spread = (hi - lo) if DEFAULT_CONFIG.pose_prior == "uniform" else min(hi - lo, 4 * DEFAULT_CONFIG.pose_std[axis])
            assert float(f.pose[:, axis].max() - f.pose[:, axis].min()) > 0.8 * spread
        assert f.nuisance.shape == (400, len(NUISANCE_NAMES))


def test_split_identities_disjoint_and_repeated():
    seen = {}
    for split in SPLITS:
        ids = sample_factors(split, DEFAULT_CONFIG.default_n[split], seed=0).identity
        counts = torch.bincount(ids - ids.min())
        assert int(counts[counts > 0].min()) >= 10  # several images per identity
        seen[split] = set(ids.tolist())
    assert not seen["train"] & seen["val"] and not seen["train"] & seen["test"] and not seen["val"] & seen["test"]


def test_config_validation_and_bad_input():
    with pytest.raises(ValueError, match="overlap"):
        SynthConfig(identity_base={"train": 0, "val": 10, "test": 1000}, identities={"train": 50, "val": 5, "test": 5})
    with pytest.raises(ValueError, match="split"):
        SynthFaces("training")
    with pytest.raises(ValueError, match="aus"):
        Factors(
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, 5),
            torch.zeros(2, 3),
            torch.zeros(2, 11),
        )
    with pytest.raises(TypeError):
        render(torch.zeros(2, 3))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# determinism


def test_same_index_same_image_different_index_different():
    a = SynthFaces("train", n=6, seed=0)
    b = SynthFaces("train", n=30, seed=0)  # sample i does not depend on n
    assert torch.equal(a[4][0], b[4][0])
    assert a[4][1]["identity"] == b[4][1]["identity"]
    assert not torch.equal(a[4][0], a[5][0])
    c = SynthFaces("train", n=6, seed=1)
    assert not torch.equal(a[4][0], c[4][0])


def test_render_independent_of_batch_and_global_rng():
    f = sample_factors("train", 8, seed=5)
    torch.manual_seed(123)
    batch = render(f)
    torch.manual_seed(999)
    single = render(f[3])
    assert (batch[3] - single[0]).abs().max() < 2e-3


# ---------------------------------------------------------------------------
# factor editing


def test_pose_edit_changes_image_not_labels():
    f = sample_factors("train", 4, seed=2)
    new_pose = torch.tensor([[30.0, -10.0, 5.0]]).expand(4, 3)
    g = f.with_pose(new_pose)
    assert torch.equal(g.identity, f.identity) and torch.equal(g.expression, f.expression)
    assert torch.equal(g.aus, f.aus) and torch.equal(g.nuisance, f.nuisance)
    assert torch.equal(g.pose, new_pose)
    diff = (render(g) - render(f)).abs().mean(dim=(1, 2, 3))
    assert bool((diff > 0.01).all())


def test_combine_takes_face_of_a_and_pose_of_b():
    a = sample_factors("train", 3, seed=0)
    b = sample_factors("val", 3, seed=0)
    ab = Factors.combine(face_from=a, pose_from=b)
    assert torch.equal(ab.identity, a.identity) and torch.equal(ab.aus, a.aus)
    assert torch.equal(ab.nuisance, a.nuisance) and torch.equal(ab.pose, b.pose)
    assert torch.equal(render(Factors.combine(a, a)), render(a))
    with pytest.raises(ValueError):
        Factors.combine(a, b[:2])


# ---------------------------------------------------------------------------
# geometry


def test_mirror_symmetry_of_symmetric_identity():
    poses = torch.tensor([[0.0, 0.0, 0.0], [35.0, 10.0, 12.0], [-70.0, -25.0, -20.0], [90.0, 30.0, 0.0]])
    f = make_factors([3, 8, 14, 21], expression=[1, 3, 5, 6], pose=poses)
    image = render(f, symmetric=True)
    mirrored = render(f.mirrored(), symmetric=True)
    values = [psnr(image[i].flip(-1), mirrored[i]) for i in range(len(f))]
    print("mirror PSNR (dB):", [round(v, 1) for v in values])
    assert min(values) > 40.0
    # the asymmetric version of the same identity is measurably less symmetric
    asym = render(f, symmetric=False)
    asym_mirrored = render(f.mirrored(), symmetric=False)
    assert min(psnr(asym[i].flip(-1), asym_mirrored[i]) for i in range(len(f))) < min(values)


def test_zbuffer_nearest_hit_wins():
    def sphere(center, radius, colour):
        return PartGroup(
            "s", torch.tensor([[center]]), torch.eye(3)[None, None], torch.full((1, 1, 3), radius), torch.tensor([[colour]])
        )

    back = sphere([0.0, 0.0, 0.0], 0.6, [1.0, 0.0, 0.0])
    front = sphere([0.0, 0.0, 2.0], 0.3, [0.0, 1.0, 0.0])
    light = Lighting(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([1.0]), torch.tensor([0.0]))
    for order in ([back, front], [front, back]):
        image = composite(order, 32, light, torch.zeros(1, 3, 32, 32))[0]
        assert image[1, 16, 16] > 0.9 and image[0, 16, 16] == 0  # front sphere in the middle
        assert image[0, 16, 8] > 0.3 and image[1, 16, 8] == 0  # back sphere around it
        assert image[:, 0, 0].abs().sum() == 0  # background in the corner


def test_zbuffer_depth_ties_paint_the_last_part_in_cast_order():
    """Two parts of one group at exactly the same depth: every pixel they cover shows the later part."""
    b, s = 8, 32
    albedo = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).expand(b, 2, 3)  # red, then blue
    twins = PartGroup("twins", torch.zeros(b, 2, 3), torch.eye(3).expand(b, 2, 3, 3), torch.full((b, 2, 3), 0.5), albedo)
    light = Lighting(torch.tensor([[0.0, 0.0, 1.0]]).expand(b, 3), torch.ones(b), torch.zeros(b))
    image = composite([twins], s, light, torch.zeros(b, 3, s, s))
    painted = image.sum(1) > 0
    assert painted.sum() > b * 0.15 * s * s  # the sphere covers ~20 % of each image
    assert (image[:, 0][painted] == 0).all() and (image[:, 2][painted] > 0).all()  # all blue


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_render_does_not_depend_on_the_batch_split_or_thread_count(backend):
    """Where parts touch, depths can tie exactly. Before ties were broken, such a pixel was written
    twice and which write stayed depended on the batch split and the threads (7 of 1,024 faces
    differed in a few pixels between chunks of 128 and 256)."""
    faces = sample_factors("train", 256, seed=0)
    by_128 = render(faces, chunk=128, threads=2, backend=backend)
    assert torch.equal(by_128, render(faces, chunk=256, threads=2, backend=backend))
    assert torch.equal(by_128, render(faces, chunk=256, threads=1, backend=backend))


def test_cast_group_hits_exactly_the_pixels_a_full_grid_finds():
    """The scanline extents cast every pixel whose ray meets an ellipsoid, and no other; depths agree."""
    gen = torch.Generator().manual_seed(0)
    b, p, s = 3, 5, 40
    center = (torch.rand(b, p, 3, generator=gen) - 0.5) * 2.2  # some parts partly outside the image
    radii = 0.03 + 0.45 * torch.rand(b, p, 3, generator=gen)
    angles = (torch.rand(3, b, p, generator=gen) - 0.5) * 2 * math.pi
    rotation = rot_z(angles[0]) @ rot_x(angles[1]) @ rot_y(angles[2])
    enabled = torch.ones(b, p, dtype=torch.bool)
    enabled[1, 2] = False
    hits = cast_group(PartGroup("e", center, rotation, radii, torch.ones(b, p, 3), enabled), s)

    # brute force: every pixel of the image against every part, q0 = A u, d = A e_z, A = diag(1/r) R^T
    coord = (torch.arange(s) + 0.5) * 2 / s
    x, y = (coord - 1)[None, :].expand(s, s), (1 - coord)[:, None].expand(s, s)
    a = rotation.transpose(-1, -2) / radii[..., :, None]  # (B,P,3,3)
    ux = x.reshape(1, 1, -1) - center[..., 0:1]
    uy = y.reshape(1, 1, -1) - center[..., 1:2]
    q0 = a[..., 0, None] * ux[..., None, :] + a[..., 1, None] * uy[..., None, :]  # (B,P,3,S*S)
    d = a[..., 2, None]
    q0_d, d_d = (q0 * d).sum(-2), (d * d).sum(-2)
    disc = q0_d**2 - d_d * ((q0 * q0).sum(-2) - 1)  # (B,P,S*S)
    disc[~enabled] = -1.0
    depth = center[..., 2:3] + (disc.clamp_min(0).sqrt() - q0_d) / d_d

    found = torch.zeros(b, p, s * s, dtype=torch.bool)
    image = hits.pixel // (s * s)
    found[image, hits.part % p, hits.pixel % (s * s)] = True
    assert bool(found[disc > 1e-4].all()), "a pixel whose ray clearly meets an ellipsoid was not cast"
    assert not bool(found[disc < -1e-4].any()), "a pixel whose ray clearly misses was cast"
    assert not bool(found[1, 2].any())  # a disabled part casts nothing
    assert len(hits.pixel) == int(found.sum())  # each pixel of a part once
    expected = depth[image, hits.part % p, hits.pixel % (s * s)]
    torch.testing.assert_close(hits.depth, expected, atol=2e-4, rtol=0)


def _visible_pixels(factors: Factors, part: str, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: (number of fine pixels won by each ellipsoid of ``part`` (B, P), z-buffer (B, S, S))."""
    groups, light, background = build_scene(factors)
    s = size * 2
    _, depth = composite(groups, s, light, background[:, :, None, None].expand(-1, -1, s, s), return_depth=True)
    group = next(g for g in groups if g.name == part)
    hits = cast_group(group, s)
    won = hits.depth >= depth.reshape(-1).index_select(0, hits.pixel)
    parts = group.center.shape[1]
    counts = torch.bincount(hits.part[won], minlength=len(factors) * parts).reshape(len(factors), parts)
    return counts, depth


def test_occlusion_far_eye_hidden_and_nose_in_profile():
    f = make_factors([5, 5, 5], pose=[[0.0, 0.0, 0.0], [90.0, 0.0, 0.0], [-90.0, 0.0, 0.0]])
    eyes, depth = _visible_pixels(f, "eyeballs")
    print("visible eyeball pixels (left, right) at yaw 0, +90, -90:", eyes.tolist())
    assert bool((eyes[0] > 20).all())  # frontal: both eyes
    # yaw +90 turns the nose to image right: the subject's +x eye (index 1) goes behind the head
    assert eyes[1, 1] == 0 and eyes[1, 0] > 5
    assert eyes[2, 0] == 0 and eyes[2, 1] > 5
    nose, _ = _visible_pixels(f, "nose")  # part 0 is the tip
    assert bool((nose[:, 0] > 0).all())
    # in profile the nose sticks out beyond the face: it holds the frontmost column of its rows
    marks = landmarks(f, 128)
    row = int(marks[1, LANDMARK_NAMES.index("nose_tip"), 1])
    face_cols = torch.isfinite(depth[1, row - 2 : row + 3]).nonzero()[:, 1]
    assert int(face_cols.max()) >= int(marks[1, LANDMARK_NAMES.index("nose_tip"), 0]) - 3


# ---------------------------------------------------------------------------
# action units


def _regions(marks: torch.Tensor) -> dict[str, tuple[float, float, float, float]]:
    """Expected (row0, row1, col0, col1) of each AU's effect on a frontal 64x64 face."""
    idx = {name: i for i, name in enumerate(LANDMARK_NAMES)}
    eye_l, eye_r = marks[idx["eye_left"]], marks[idx["eye_right"]]
    brow_row = float(marks[idx["brow_left"], 1])
    eye_row, nose_row = float(eye_l[1]), float(marks[idx["nose_tip"], 1])
    mouth_row, chin_row = float(marks[idx["mouth"], 1]), float(marks[idx["chin"], 1])
    centre = float(marks[idx["nose_tip"], 0])
    half = float(eye_r[0] - eye_l[0]) / 2
    upper = (brow_row - 6, eye_row + 3, centre - half - 9, centre + half + 9)
    return {
        "AU1": upper,
        "AU2": upper,
        "AU4": upper,
        "AU6": (eye_row - 4, nose_row + 4, centre - half - 10, centre + half + 10),
        "AU9": (brow_row - 3, mouth_row + 2, centre - half - 5, centre + half + 5),
        "AU12": (eye_row + 2, mouth_row + 6, centre - half - 8, centre + half + 8),  # mouth corners and cheeks
        "AU25": (mouth_row - 5, mouth_row + 6, centre - half - 2, centre + half + 2),
        "AU26": (mouth_row - 5, chin_row + 6, centre - half - 8, centre + half + 8),
    }


def test_each_au_changes_its_region_only():
    base = make_factors([6])
    neutral = render(base, 64, symmetric=True)[0]
    regions = _regions(landmarks(base, 64, symmetric=True)[0])
    for k, name in enumerate(AU_NAMES):
        aus = torch.zeros(1, 8)
        aus[0, k] = 1.0
        moved = render(base.with_expression(base.expression, aus), 64, symmetric=True)[0]
        diff = (moved - neutral).abs().sum(0)  # (64, 64)
        changed = diff > 0.05
        rows, cols = torch.meshgrid(torch.arange(64.0) + 0.5, torch.arange(64.0) + 0.5, indexing="ij")
        r0, r1, c0, c1 = regions[name]
        inside = (rows >= r0) & (rows <= r1) & (cols >= c0) & (cols <= c1)
        share = float(diff[inside].sum() / diff.sum())
        print(f"{name}: {int(changed.sum())} px changed, {share:.1%} of the change inside its region")
        assert int(changed.sum()) >= 6, f"{name} barely changes the face"
        assert share > 0.9, f"{name} changes the face outside its region ({share:.1%} inside)"


def _brow_heights(image: torch.Tensor, marks: torch.Tensor) -> tuple[float, float]:
    """Darkness-weighted mean row of the brows in their inner and outer halves (64x64 frontal face)."""
    idx = {name: i for i, name in enumerate(LANDMARK_NAMES)}
    brow_row = int(marks[idx["brow_left"], 1])
    centre = float(marks[idx["nose_tip"], 0])
    half = float(marks[idx["eye_right"], 0] - marks[idx["eye_left"], 0]) / 2
    band = image[:, brow_row - 7 : brow_row + 5].mean(0)  # (rows, 64) luminance
    darkness = (band.median() - band).clamp_min(0)
    rows = torch.arange(brow_row - 7, brow_row + 5, dtype=torch.float32)[:, None].expand_as(band)
    dist = (torch.arange(64.0) + 0.5 - centre).abs()[None, :].expand_as(band)
    inner = (dist < half) & (dist > 1)
    outer = (dist >= half) & (dist < half + 8)
    mean_row = lambda m: float((rows * darkness * m).sum() / (darkness * m).sum())  # noqa: E731
    return mean_row(inner), mean_row(outer)


def test_au1_raises_inner_brow_au2_outer_brow():
    base = make_factors([3])  # dark brows on light skin, no glasses
    marks = landmarks(base, 64, symmetric=True)[0]
    heights = {}
    for name in ("neutral", "AU1", "AU2"):
        aus = torch.zeros(1, 8)
        if name != "neutral":
            aus[0, AU_NAMES.index(name)] = 1.0
        image = render(base.with_expression(base.expression, aus), 64, symmetric=True)[0]
        heights[name] = _brow_heights(image, marks)
    lift = {name: (heights["neutral"][0] - heights[name][0], heights["neutral"][1] - heights[name][1]) for name in ("AU1", "AU2")}
    print("brow lift in px (inner, outer):", {k: tuple(round(v, 2) for v in t) for k, t in lift.items()})
    tilt = {name: inner - outer for name, (inner, outer) in lift.items()}  # > 0: inner end raised more
    assert tilt["AU1"] > tilt["AU2"] + 0.5
    assert tilt["AU1"] > 0.5 and lift["AU1"][0] > 1.0  # AU1: the inner brow goes up
    assert lift["AU2"][1] > 0.4  # AU2: the outer brow goes up too


def test_expressions_render_differently():
    f = make_factors([9] * len(EXPRESSIONS), expression=list(range(len(EXPRESSIONS))))
    images = render(f, 64)
    for i in range(1, len(EXPRESSIONS)):
        assert float((images[i] - images[0]).abs().mean()) > 0.002, EXPRESSIONS[i]


def test_disk_cache_roundtrip(tmp_path):
    first = SynthFaces("val", n=5, size=32, cache_dir=tmp_path)
    images, _ = first.tensors()
    files = list(tmp_path.glob("synthfaces_val_5_32px_*.pt"))
    assert len(files) == 1
    second = SynthFaces("val", n=5, size=32, cache_dir=tmp_path)
    assert torch.equal(second.tensors()[0], images)  # read back, not re-rendered
    other_seed = SynthFaces("val", n=5, size=32, seed=1, cache_dir=tmp_path)
    assert other_seed.cache_key() != first.cache_key()
    files[0].write_bytes(b"not a tensor")  # a corrupt cache is ignored with a warning, never trusted
    with pytest.warns(UserWarning, match="unreadable"):
        assert torch.equal(SynthFaces("val", n=5, size=32, cache_dir=tmp_path).tensors()[0], images)


def test_render_options_agree_with_default():
    f = sample_factors("test", 6, seed=4)
    default = render(f)
    full = render(f, mixed_resolution=False)  # every part supersampled
    single = render(f, supersample=1)
    assert psnr(default, full) > 28  # mixed resolution only softens the edges of large parts
    assert psnr(default, single) > 24  # no anti-aliasing: same picture, jaggier edges
    assert render(f, threads=1).shape == (6, 3, 64, 64)
    with pytest.raises(ValueError):
        render(f, supersample=0)


def test_factors_indexing_and_cat():
    f = sample_factors("train", 10, seed=0)
    picked = f[torch.tensor([1, 3, 5])]
    assert len(picked) == 3 and torch.equal(picked.pose, f.pose[[1, 3, 5]])
    assert len(f[2]) == 1 and torch.equal(f[-1].identity, f.identity[-1:])
    joined = Factors.cat([f[:4], f[4:]])
    assert all(torch.equal(a, b) for a, b in zip(joined.labels().values(), f.labels().values()))
    assert torch.equal(f.mirrored().mirrored().pose, f.pose)


def test_pose_limits_narrow_the_sampled_poses_and_keep_the_default_config():
    assert symmetric_pose_config((90, 40, 30)) is DEFAULT_CONFIG  # same caches as before
    narrow = symmetric_pose_config((30, 20, 15))
    pose = sample_factors("train", 2000, seed=0, config=narrow).pose
    assert (pose.abs() <= torch.tensor([30.0, 20.0, 15.0])).all()
    assert pose[:, 0].abs().max() > 25  # still uniform over the narrower range
    wide = sample_factors("train", 2000, seed=0).pose
    assert torch.equal(sample_factors("train", 2000, seed=0, config=narrow).expression,
                       sample_factors("train", 2000, seed=0).expression)  # only the pose changes
    assert wide[:, 0].abs().max() > 60
    with pytest.raises(ValueError, match="3 angles"):
        symmetric_pose_config((30, 20))


def test_normal_pose_prior_is_near_frontal_truncated_and_deterministic():
    from pclkit.data.synthfaces.factors import POSE_STD

    assert DEFAULT_CONFIG.pose_prior == "normal"
    pose = sample_factors("train", 4000, seed=0).pose
    limits = torch.tensor([90.0, 40.0, 30.0])
    assert (pose.abs() <= limits).all()
    # zero mean; the std of a normal truncated at ~3.6 / 4 / 4.3 sigma is the untruncated one within 3%
    assert pose.mean(0).abs().max() < 1.5
    for column, std in enumerate(POSE_STD):
        assert pose[:, column].std().item() == pytest.approx(std, rel=0.06)
    # mostly near-frontal, with tails towards profile (as VoxCeleb yaw)
    yaw = pose[:, 0].abs()
    assert (yaw < 45).float().mean() > 0.88 and (yaw > 60).sum() > 10
    # counter-based: sample i is the same whatever n is
    assert torch.equal(sample_factors("train", 10, seed=0).pose, pose[:10])
    # a truncated prior stays inside narrow limits and keeps its shape there
    narrow = sample_factors("train", 2000, seed=0, config=symmetric_pose_config((20, 10, 5))).pose
    assert (narrow.abs() <= torch.tensor([20.0, 10.0, 5.0])).all() and narrow[:, 0].abs().max() > 18


def test_synthfaces_split_draws_poses_within_the_limits_and_shares_the_default_config():
    default = synthfaces_split("val", 6, 32, seed=1)
    assert default.config is DEFAULT_CONFIG and (default.split, len(default), default.size) == ("val", 6, 32)
    narrow = synthfaces_split("val", 200, 32, seed=1, pose_limits=(20, 10, 5), prior="uniform")
    assert narrow.config == symmetric_pose_config((20, 10, 5), prior="uniform")
    assert (narrow.factors.pose.abs() <= torch.tensor([20.0, 10.0, 5.0])).all()
    assert torch.equal(narrow.factors.identity, synthfaces_split("val", 200, 32, seed=1).factors.identity)


def test_former_module_paths_are_the_package_modules():
    import pclkit.data.synthetic as old_synthetic
    from pclkit.data import synthfaces

    assert old_synthetic.SynthFaces is SynthFaces and old_synthetic.render is render
    assert set(synthfaces.__all__) <= set(old_synthetic.__all__)
    digest = synthfaces.renderer_source_hash()
    assert len(digest) == 16 and digest == synthfaces.renderer_source_hash()


def test_uniform_pose_prior_is_still_available():
    uniform = symmetric_pose_config((90, 40, 30), prior="uniform")
    assert uniform.pose_prior == "uniform" and uniform != DEFAULT_CONFIG
    pose = sample_factors("train", 4000, seed=0, config=uniform).pose
    # uniform on [-90, 90]: std 90 / sqrt(3)
    assert pose[:, 0].std().item() == pytest.approx(90 / math.sqrt(3), rel=0.05)
    with pytest.raises(ValueError, match="pose_prior"):
        symmetric_pose_config((90, 40, 30), prior="cauchy")


def test_expressions_move_pixels_as_much_as_a_small_head_turn():
    """Expression geometry is plainly visible at 64 px (the first SynthFaces moved 1.9/255 on average)."""
    faces = make_factors(list(range(20)) * 6, expression=[e for e in range(1, 7) for _ in range(20)])
    neutral = faces.with_expression(torch.zeros(len(faces), dtype=torch.int64), torch.zeros(len(faces), 8))
    change = (render(faces, 64) - render(neutral, 64)).abs().mean().item() * 255
    assert change > 2.5, f"an expression changes pixels by only {change:.2f}/255 on average"


def test_images_of_indices_are_the_items_rendered_in_one_batch_or_read_from_the_cache():
    data = SynthFaces("test", n=6, size=32)
    batched = data.images([4, 0, -1])
    items = torch.stack([data[i][0] for i in (4, 0, 5)])
    torch.testing.assert_close(batched, items, atol=1e-6, rtol=0)
    data.tensors()  # cached as uint8: the same quantised pixels as the items then
    torch.testing.assert_close(data.images(torch.tensor([4, 0])), torch.stack([data[4][0], data[0][0]]))
    with pytest.raises(IndexError, match="out of range"):
        data.images([6])
