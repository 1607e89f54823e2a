"""The real-benchmark protocols (pclkit.protocols_real) on tiny datasets written in their exact on-disk formats.

Images carry their labels as bright horizontal bands, and a stub feature
source reads the band brightness back, so every answer is known in advance:
features that separate the classes give 100 %, a planted confusion gives its
exact accuracy, an angle that is not encoded gives a large MAE (which is how a
swapped yaw/pitch column would show), and so on. The last tests run the
``evaluate`` command end to end on every benchmark with a tiny checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_loaders import encoded, fer_pixels, write_bytes, write_disfa_labels, write_fer, write_npz

from pclkit.evaluate import EvalConfig
from pclkit.probes import ProbeConfig
from pclkit.protocols import CHANCE, DATA_INFO
from pclkit.protocols_real import (
    DISFA_STANDARD_FOLDS,
    FSANET_300WLP_FILES,
    DataInputError,
    disfa_folds,
    disfa_plan,
    evaluate_rafdb,
    evaluate_real,
    folder_plan,
    locate_inputs,
    prepare,
    rafdb_plan,
    roc_metrics,
)
from pclkit.tables import result_tables

PROBE = ProbeConfig(l2_grid=(1e-2, 1e-4), ridge_grid=(1.0, 1e-3), max_iter=40)
SIDE = 32
DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)


# --------------------------------------------------------------------------- planted images and features


def bands(values, n_bands: int, height: int = SIDE, width: int = SIDE, channel: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3): horizontal band b has brightness values[b] in [0, 1] (in ``channel`` only, or all three)."""
    image = np.zeros((height, width, 3), np.uint8)
    for b, rows in enumerate(np.array_split(np.arange(height), n_bands)):
        if b < len(values):
            image[rows[0]:rows[-1] + 1, :, slice(None) if channel is None else channel] = round(values[b] * 255)
    return image


def one_hot(k: int, n_bands: int, **kwargs) -> np.ndarray:
    return bands([float(b == k) for b in range(n_bands)], n_bands, **kwargs)


def band_features(images: torch.Tensor, n_bands: int, channel: int | None = None) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, n_bands) mean brightness of each band (of RGB ``channel``, or of all)."""
    x = images.float() / 255
    x = x.mean(1) if channel is None else x[:, channel]
    rows = torch.tensor_split(torch.arange(x.shape[1]), n_bands)
    return torch.stack([x[:, r].mean((1, 2)) for r in rows], dim=1)


class BandSource:
    """A feature source (like pclkit.features.EncoderSource) whose feature F_s is the band brightness."""

    def __init__(self, n_bands: int, channel: int | None = None, method: str = "planted"):
        self.method, self.names, self.n_bands, self.channel = method, ("F_s",), n_bands, channel
        self.fit_rows_seen: list[dict] = []

    def features(self, image_sets, fit_rows=None):
        self.fit_rows_seen.append(dict(fit_rows or {}))
        return {"F_s": {name: band_features(images.images(), self.n_bands, self.channel) for name, images in image_sets.items()}}


def write_png(path: Path, array: np.ndarray) -> Path:
    """Lossless PNG content (whatever the file's extension: decoders go by content)."""
    return write_bytes(path, encoded(array, "PNG"))


def config(data: str, root: Path, **options) -> EvalConfig:
    return EvalConfig(data=data, root=str(root), progress=False, cache_dir=None, **{"probe": PROBE, **options})


def metric(rows, method: str, task: str, name: str, seed: int | None = 0) -> float | list[float]:
    values = [r["value"] for r in rows if r["method"] == method and r["task"] == task and r["metric"] == name
              and (seed is None or r["seed"] == seed)]
    assert values, f"no {method}/{task}/{name} rows"
    return values if seed is None else values[0]


def info(rows) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in rows if r["method"] == DATA_INFO}


# --------------------------------------------------------------------------- fixture datasets (exact formats)

RAF_CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")


def make_rafdb(root: Path, confuse_fear: bool = True) -> Path:
    """7 classes x 6 train + 3 test; test 'fear' faces carry the 'surprise' band; one corrupt image, one bad line."""
    lines, number = [], 0
    for split, per_class in (("train", 6), ("test", 3)):
        for label in range(7):
            for _ in range(per_class):
                number += 1
                name = f"{split}_{number:05d}"
                lines.append(f"{name}.jpg {label + 1}")
                band = 0 if (split == "test" and label == 1 and confuse_fear) else label
                write_png(root / "Image" / "aligned" / f"{name}_aligned.jpg", one_hot(band, 7))
    lines.append("train_99999.jpg 3")
    write_bytes(root / "Image" / "aligned" / "train_99999_aligned.jpg", b"\xff\xd8 not a jpeg")
    lines.append("this line is malformed")
    write_bytes(root / "EmoLabel" / "list_patition_label.txt", ("\n".join(lines) + "\n").encode())
    return root


def fer_band_pixels(label: int) -> str:
    return " ".join(map(str, one_hot(label, 7, height=48, width=48)[..., 0].ravel()))


def make_fer(root: Path) -> Path:
    """Training 7 x 5, PublicTest 7 x 2 (clean), PrivateTest 7 x 2 with 'happy' drawn as 'angry'; one bad row."""
    rows = [[str(c), fer_band_pixels(c), "Training"] for c in range(7) for _ in range(5)]
    rows += [[str(c), fer_band_pixels(c), "PublicTest"] for c in range(7) for _ in range(2)]
    rows += [[str(c), fer_band_pixels(0 if c == 3 else c), "PrivateTest"] for c in range(7) for _ in range(2)]
    rows.append(["3", fer_pixels(0, 100), "Training"])  # 100 pixels: skipped and counted
    root.mkdir(parents=True, exist_ok=True)
    write_fer(root / "fer2013.csv", rows)
    return root


def make_lfw(root: Path) -> Path:
    """20 people with their own band (+ 'Twin_B', who looks exactly like P00); pairs.txt '10 3'.

    Fold 4's last different-person pair is P00 vs Twin_B: the one error a perfect encoder must make.
    """
    people = {f"P{k:02d}": k for k in range(20)} | {"Twin_B": 0}
    for name, band in people.items():
        for index in (1, 2):
            write_png(root / "lfw" / name / f"{name}_{index:04d}.jpg", one_hot(band, 20, height=40, width=40))
    lines = ["10\t3"]
    for fold in range(10):
        a, b, c = 2 * fold, 2 * fold + 1, (2 * fold + 2) % 20
        lines += [f"P{a:02d}\t1\t2", f"P{b:02d}\t1\t2", f"P{c:02d}\t1\t2"]
        last = "P00\t1\tTwin_B\t1" if fold == 4 else f"P{b:02d}\t2\tP{(b + 4) % 20:02d}\t2"
        lines += [f"P{a:02d}\t1\tP{b:02d}\t1", f"P{a:02d}\t2\tP{(a + 3) % 20:02d}\t1", last]
    write_bytes(root / "pairs.txt", ("\n".join(lines) + "\n").encode())
    return root


def make_cplfw(root: Path) -> Path:
    """10 people x 2 images in root/images, pairs_CPLFW.txt: 20 pairs alternating same / different."""
    for k in range(10):
        for index in (1, 2):
            write_png(root / "images" / f"C{k}_{index}.jpg", one_hot(k, 10, height=40, width=40))
    lines = []
    for i in range(20):
        k = i // 2
        other = f"C{k}_2.jpg" if i % 2 == 0 else f"C{(k + 1) % 10}_2.jpg"
        lines += [f"C{k}_1.jpg {1 - i % 2}", f"{other} {1 - i % 2}"]
    write_bytes(root / "pairs_CPLFW.txt", ("\n".join(lines) + "\n").encode())
    return root


DISFA_SUBJECTS = ("SN001", "SN002", "SN011", "SN013", "SN003", "SN004")  # two per standard fold


def make_disfa(root: Path, subjects=DISFA_SUBJECTS, frames: int = 20) -> dict[str, np.ndarray]:
    """Random intensities 0..5; band a of a frame is bright iff AU a has intensity >= 2. Returns subject -> (frames, 8)."""
    rng = np.random.default_rng(0)
    tables = {}
    for subject in subjects:
        intensity = rng.integers(0, 6, (frames, 8))
        tables[subject] = intensity
        write_disfa_labels(root, subject, {f + 1: dict(zip(DISFA_AUS, map(int, intensity[f]))) for f in range(frames)})
        for f in range(frames):
            write_png(root / "frames" / subject / f"{f + 1:05d}.png", bands((intensity[f] >= 2).astype(float), 8))
    return tables


def pose_image(yaw: float, roll: float, rng: np.random.Generator) -> np.ndarray:
    """An FSA-Net npz image (BGR): red (index 2) bands 0/1 encode yaw/roll, pitch is not encoded, blue is noise."""
    image = bands([(yaw + 99) / 198, (roll + 99) / 198], 4, channel=2)
    image[..., 0] = rng.integers(0, 256, image.shape[:2])
    return image


def write_pose_npz(path: Path, poses: np.ndarray, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    images = np.stack([pose_image(yaw, roll, rng) for yaw, _, roll in np.clip(poses, -99, 99)])
    return write_npz(path, image=images, pose=poses)


def random_poses(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(-90, 90, n), rng.uniform(-40, 40, n), rng.uniform(-30, 30, n)], axis=1)


def make_aflw(root: Path) -> Path:
    """300W_LP.npz (200 + 3 outside ±99°) and AFLW2000.npz (60 + 5 outside ±99°) side by side."""
    root.mkdir(parents=True, exist_ok=True)
    wide_train = np.array([[120.0, 0, 0], [0, -100.0, 0], [0, 0, 99.5]])
    wide_test = np.array([[-150.0, 0, 0], [0, 110.0, 0], [10, 0, -120.0], [100.0, 100.0, 0], [0, 0, 180.0]])
    write_pose_npz(root / "300W_LP.npz", np.concatenate([random_poses(200, 1), wide_train]), seed=1)
    write_pose_npz(root / "AFLW2000.npz", np.concatenate([random_poses(60, 2), wide_test]), seed=2)
    return root


FOLDER_CLASSES = ("anger", "calm", "joy")


def make_folder(root: Path) -> Path:
    """3 classes x 6 images (a band each), a class of 2 images, a corrupt file, an image outside any class folder."""
    for k, name in enumerate(FOLDER_CLASSES):
        for i in range(6):
            write_png(root / name / f"{i}.png", one_hot(k, 3))
    for i in range(2):
        write_png(root / "rare" / f"{i}.png", one_hot(0, 3))
    write_bytes(root / "joy" / "broken.png", b"")
    write_png(root / "loose.png", one_hot(1, 3))
    return root


MAKERS = {"rafdb": make_rafdb, "fer2013": make_fer, "lfw": make_lfw, "cplfw": make_cplfw,
          "disfa": make_disfa, "aflw2000": make_aflw, "folder": make_folder}


def run_planted(data: str, root: Path, n_bands: int, channel: int | None = None, size: int = SIDE, **options):
    """Evaluate the band-reading source on a fixture at ``size`` px (its native size: no resampling blurs the bands)."""
    source = BandSource(n_bands, channel)
    with pytest.warns(UserWarning) if data in ("rafdb", "fer2013", "folder") else contextlib.nullcontext():
        rows = evaluate_real([source], config(data, root, **options), size=size)
    return rows, source


# --------------------------------------------------------------------------- RAF-DB


def test_rafdb_planted_expression_accuracy_per_class_and_counted_skips(tmp_path):
    rows, source = run_planted("rafdb", make_rafdb(tmp_path), 7, seeds=2)
    # 21 test faces, the 3 'fear' ones look like 'surprise': 18/21 for the linear probe and for kNN, every seed
    for task in ("expression", "expression_knn"):
        assert metric(rows, "planted", task, "accuracy", seed=None) == pytest.approx([18 / 21] * 2)
    assert metric(rows, "planted", "expression", "acc_fear") == 0.0
    for name in RAF_CLASSES:
        if name != "fear":
            assert metric(rows, "planted", "expression", f"acc_{name}") == 1.0
    assert metric(rows, "planted", "expression", "mean_class_accuracy") == pytest.approx(6 / 7)
    # label-only reference: the majority training class (all tie: the first, 'surprise')
    assert metric(rows, CHANCE, "expression", "accuracy") == pytest.approx(3 / 21)
    assert info(rows) == {"n_train": 42, "n_test": 21, "n_skipped": 2}  # the corrupt image and the malformed line
    # the pixel-PCA baseline may only see training images
    assert all(set(fit) == {"train"} for fit in source.fit_rows_seen)


def test_rafdb_validation_is_carved_from_train_and_test_labels_never_select(tmp_path):
    cfg = config("rafdb", make_rafdb(tmp_path), seeds=3)
    with pytest.warns(UserWarning):
        prepared = prepare(locate_inputs("rafdb", cfg.root), SIDE)
    y = prepared.image_sets["train"].labels["expression"]
    plans = [rafdb_plan(prepared, seed, cfg) for seed in range(3)]
    for plan in plans:
        train, val = plan.train[1], plan.val[1]
        assert plan.train[0] == plan.val[0] == "train" and plan.test[0] == "test"
        assert not set(train.tolist()) & set(val.tolist()) and len(train) + len(val) == 42
        assert torch.bincount(y[val], minlength=7).tolist() == [1] * 7  # stratified: round(6 * 0.1) -> 1 per class
    assert not torch.equal(plans[0].val[1], plans[1].val[1])  # redrawn per seed
    # scramble every test label: selected hyper-parameters cannot move, test accuracy does
    source = BandSource(7)
    good = evaluate_rafdb([source], prepared, cfg)
    scrambled = prepared.image_sets["test"].labels["expression"].roll(1)
    prepared.image_sets["test"].labels["expression"] = scrambled
    bad = evaluate_rafdb([source], prepared, cfg)
    selected = lambda rows: {(r["seed"], r["metric"]): r["value"] for r in rows if r["metric"].startswith("selected_")}  # noqa: E731
    assert selected(good) and selected(good) == selected(bad)
    assert metric(good, "planted", "expression", "accuracy") != metric(bad, "planted", "expression", "accuracy")


# --------------------------------------------------------------------------- FER-2013


def test_fer2013_public_test_selects_and_private_test_scores(tmp_path):
    rows, _ = run_planted("fer2013", make_fer(tmp_path), 7, size=48, seeds=3)
    # PrivateTest's 2 'happy' faces look 'angry': 12/14 (were validation and test swapped, it would be 14/14)
    assert metric(rows, "planted", "expression", "accuracy", seed=None) == pytest.approx([12 / 14])  # fixed splits: one run
    assert metric(rows, "planted", "expression", "acc_happy") == 0.0 and metric(rows, "planted", "expression", "acc_angry") == 1.0
    assert metric(rows, "planted", "expression", "selected_val_accuracy") == 1.0
    assert info(rows) == {"n_train": 35, "n_val": 14, "n_test": 14, "n_skipped": 1}


# --------------------------------------------------------------------------- LFW / CPLFW


def test_lfw_ten_fold_accuracy_fold_std_auc_and_tar(tmp_path):
    rows, _ = run_planted("lfw", make_lfw(tmp_path), 20, size=40)
    # nine perfect folds and fold 4 at 5/6 (the twin pair is accepted at the threshold chosen on the other nine)
    assert metric(rows, "planted", "verification", "accuracy") == pytest.approx(59 / 60)
    assert metric(rows, "planted", "verification", "accuracy_fold_std") == pytest.approx(0.05)  # population std over folds
    assert metric(rows, "planted", "verification", "n_folds") == 10
    # ROC over 30 + 30 pairs: the twin ties with every genuine pair -> AUC = 29/30 + (1/30)/2; no TAR at zero false accepts
    assert metric(rows, "planted", "verification", "auc") == pytest.approx(59 / 60)
    assert metric(rows, "planted", "verification", "tar_far_1e-3") == 0.0
    assert metric(rows, CHANCE, "verification", "accuracy") == 0.5
    assert {r["seed"] for r in rows} == {0}  # deterministic: one run
    assert info(rows) == {"n_pairs": 60, "n_same": 30, "n_images": 41, "n_folds": 10, "n_skipped": 0}  # P03_0002 is in no pair


def test_cplfw_pair_list_with_images_folder(tmp_path):
    root = make_cplfw(tmp_path)
    inputs = locate_inputs("cplfw", root)
    assert inputs.paths == {"images": root / "images", "pairs": root / "pairs_CPLFW.txt"}
    rows, _ = run_planted("cplfw", root, 10, size=40)
    for name, value in (("accuracy", 1.0), ("accuracy_fold_std", 0.0), ("auc", 1.0), ("tar_far_1e-3", 1.0), ("n_folds", 10)):
        assert metric(rows, "planted", "verification", name) == pytest.approx(value)


def test_roc_metrics_match_a_hand_computed_curve():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    same = torch.tensor([True, False, True, False])
    # ROC points (0, 0) (0, .5) (.5, .5) (.5, 1) (1, 1): AUC 0.75; at FAR <= 1e-3 the best TAR is 0.5
    assert roc_metrics(scores, same) == pytest.approx({"auc": 0.75, "tar_far_1e-3": 0.5})


# --------------------------------------------------------------------------- DISFA


def test_disfa_f1_is_perfect_exactly_at_intensity_two(tmp_path):
    tables = make_disfa(tmp_path)
    rows, source = run_planted("disfa", tmp_path, 8, seeds=2)
    for au in DISFA_AUS:
        assert metric(rows, "planted", "au", f"f1_AU{au}", seed=None) == [1.0, 1.0]
    assert metric(rows, "planted", "au", "f1_mean") == 1.0
    # chance ("every AU present") is 2p / (1 + p) per test fold, averaged over the 3 folds
    folds = [("SN001", "SN002"), ("SN011", "SN013"), ("SN003", "SN004")]
    expected = []
    for fold in folds:
        p = np.mean(np.concatenate([tables[s][:, 0] for s in fold]) >= 2)
        expected.append(2 * p / (1 + p))
    assert metric(rows, CHANCE, "au", "f1_AU1") == pytest.approx(np.mean(expected))
    assert info(rows)["standard_folds"] == 1 and info(rows)["n_frames"] == 120
    assert len(source.fit_rows_seen) == 3  # one feature call (and pixel-PCA fit) per fold, not per fold and seed


def test_disfa_thresholds_below_two_would_not_be_perfect(tmp_path):
    # the same planted data scored at intensity >= 1 (--au-threshold 0.2): the bands no longer separate the labels
    make_disfa(tmp_path)
    source = BandSource(8)
    cfg = config("disfa", tmp_path, seeds=1, probe=ProbeConfig(l2_grid=(1e-2, 1e-4), max_iter=40, au_intensity_threshold=0.2))
    rows = evaluate_real([source], cfg, size=SIDE)
    assert metric(rows, "planted", "au", "f1_mean") < 0.99


def test_disfa_folds_are_subject_exclusive(tmp_path):
    make_disfa(tmp_path)
    cfg = config("disfa", tmp_path, seeds=3)
    prepared = prepare(locate_inputs("disfa", tmp_path), SIDE)
    assert prepared.extra["fold_names"] == (("SN002", "SN001"), ("SN013", "SN011"), ("SN003", "SN004"))  # the standard order
    names = ["SN001", "SN002", "SN003", "SN004", "SN011", "SN013"]
    identity = prepared.image_sets["all"].labels["identity"]
    for fold in range(3):
        for seed in range(3):
            plan = disfa_plan(prepared, fold, seed, cfg)
            subjects = [{names[i] for i in identity[rows].tolist()} for _, rows in (plan.train, plan.val, plan.test)]
            assert subjects[2] == set(prepared.extra["fold_names"][fold])
            assert not (subjects[0] & subjects[1]) and not (subjects[0] | subjects[1]) & subjects[2]
            assert len(subjects[1]) == 1 and len(subjects[0]) == 3
            assert set(plan.fit["all"].tolist()) == set(plan.train[1].tolist()) | set(plan.val[1].tolist())
    # renamed subjects fall back to a round-robin partition of the sorted names
    assert disfa_folds(["b", "a", "d", "c"]) == (("a", "d"), ("b",), ("c",))
    assert disfa_folds([s for fold in DISFA_STANDARD_FOLDS for s in fold]) == DISFA_STANDARD_FOLDS


# --------------------------------------------------------------------------- 300W-LP -> AFLW2000


def test_aflw2000_mae_per_angle_catches_a_swapped_column_and_counts_drops(tmp_path, capsys):
    # channel 0 of the RGB tensor: red, i.e. index 2 of the BGR npz (blue holds noise)
    rows, source = run_planted("aflw2000", make_aflw(tmp_path), 4, channel=0, seeds=2)
    for seed in (0, 1):
        # yaw and roll are encoded, pitch is not: were yaw and pitch swapped, yaw's MAE would be the large one
        assert metric(rows, "planted", "head_pose", "mae_yaw", seed) < 0.6
        assert metric(rows, "planted", "head_pose", "mae_roll", seed) < 0.6
        assert metric(rows, "planted", "head_pose", "mae_pitch", seed) > 10
    mae = metric(rows, "planted", "head_pose", "mae_mean")
    parts = [metric(rows, "planted", "head_pose", f"mae_{a}") for a in ("yaw", "pitch", "roll")]
    assert mae == pytest.approx(sum(parts) / 3)
    assert metric(rows, CHANCE, "head_pose", "mae_yaw") > 30
    assert info(rows) == {"n_train": 200, "n_train_dropped": 3, "n_test": 60, "n_test_dropped": 5, "n_skipped": 0}
    assert "5 AFLW2000 samples dropped" in capsys.readouterr().out
    tables = result_tables(rows, "aflw2000")
    assert "5 AFLW2000 samples dropped (an angle outside ±99°)" in tables["main"].note


def test_aflw2000_accepts_separate_files(tmp_path):
    make_aflw(tmp_path / "both")
    (tmp_path / "test").mkdir()
    (tmp_path / "both" / "AFLW2000.npz").rename(tmp_path / "test" / "AFLW2000.npz")
    inputs = locate_inputs("aflw2000", tmp_path / "test" / "AFLW2000.npz", train_root=tmp_path / "both")
    assert inputs.paths == {"train": (tmp_path / "both" / "300W_LP.npz",), "test": tmp_path / "test" / "AFLW2000.npz"}
    with pytest.raises(DataInputError, match="no 300W-LP .npz.*--train-root"):
        locate_inputs("aflw2000", tmp_path / "test")


def test_aflw2000_reads_fsanet_300wlp_subset_files(tmp_path):
    # FSA-Net ships 300W-LP as eight files in data/type1/ next to AFLW2000.npz: all are used, one after the other
    type1 = tmp_path / "type1"
    type1.mkdir()
    for k, name in enumerate(FSANET_300WLP_FILES):
        write_pose_npz(type1 / f"{name}.npz", random_poses(25, 10 + k), seed=10 + k)
    write_pose_npz(type1 / "AFLW2000.npz", np.concatenate([random_poses(40, 2), [[0, 0, 130.0]]]), seed=2)
    inputs = locate_inputs("aflw2000", type1)
    assert [p.name for p in inputs.paths["train"]] == [f"{name}.npz" for name in FSANET_300WLP_FILES]
    rows, _ = run_planted("aflw2000", type1, 4, channel=0, seeds=1)
    assert info(rows) == {"n_train": 200, "n_train_dropped": 0, "n_test": 40, "n_test_dropped": 1, "n_skipped": 0}
    assert metric(rows, "planted", "head_pose", "mae_yaw") < 0.6 and metric(rows, "planted", "head_pose", "mae_pitch") > 10
    (type1 / "IBUG_Flip.npz").unlink()
    with pytest.raises(DataInputError, match="incomplete.*IBUG_Flip.npz missing"):
        locate_inputs("aflw2000", type1)


# --------------------------------------------------------------------------- class folder


def test_folder_linear_and_knn_with_stratified_splits(tmp_path):
    rows, _ = run_planted("folder", make_folder(tmp_path), 3, seeds=2)
    for task in ("classification", "classification_knn"):
        assert metric(rows, "planted", task, "accuracy", seed=None) == [1.0, 1.0]
    assert {r["metric"] for r in rows if r["task"] == "classification" and r["metric"].startswith("acc_")} == {
        f"acc_{name}" for name in FOLDER_CLASSES}
    assert info(rows) == {"n_images": 18, "n_classes": 3, "n_classes_dropped": 1, "n_images_dropped": 2, "n_skipped": 2}
    cfg = config("folder", tmp_path)
    with pytest.warns(UserWarning):
        prepared = prepare(locate_inputs("folder", tmp_path), SIDE)
    y = prepared.image_sets["all"].labels["label"]
    plan = folder_plan(prepared, 0, cfg)
    sets = [set(rows.tolist()) for _, rows in (plan.train, plan.val, plan.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]) and len(set.union(*sets)) == 18
    counts = [torch.bincount(y[rows], minlength=3).tolist() for _, rows in (plan.train, plan.val, plan.test)]
    assert counts == [[4] * 3, [1] * 3, [1] * 3]
    assert set(plan.fit["all"].tolist()) == sets[0]  # the pixel PCA never sees validation or test images here


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("data, layout, words", [
    ("rafdb", None, "does not exist"),
    ("rafdb", "EmoLabel/", "list_patition_label.txt"),
    ("fer2013", "notes.txt", "fer2013.csv"),
    ("lfw", "Ann/Ann_0001.jpg", "--pairs"),
    ("cplfw", "images/", "--pairs"),
    ("disfa", "ActionUnit_Labels/", "frames"),
    ("aflw2000", "AFLW2000.npz", "no 300W-LP"),
    ("aflw2000", "AFLW2000.npz 300W_LP.npz 300W-LP_flip.npz", "several 300W-LP"),
    ("aflw2000", "aflw2000_a.npz aflw2000_b.npz", "exactly one AFLW2000"),
    ("folder", "file", "expected a folder"),
])
def test_missing_pieces_are_named_before_anything_loads(tmp_path, data, layout, words):
    root = tmp_path / "root"
    if layout == "file":
        write_bytes(root, b"x")
    elif layout is not None:
        root.mkdir()
        for item in layout.split():
            (root / item).mkdir(parents=True) if item.endswith("/") else write_bytes(root / item, b"x")
    with pytest.raises(DataInputError, match=words):
        locate_inputs(data, root)


def test_unusable_lists_fail_with_a_message_not_mid_way(tmp_path):
    make_lfw(tmp_path)
    dev = write_bytes(tmp_path / "pairsDevTest.txt", b"2\nP00 1 2\nP01 1 2\nP00 1 P01 1\nP02 1 P03 1\n")
    with pytest.raises(DataInputError, match="1 fold.*needs >= 2"):
        prepare(locate_inputs("lfw", tmp_path / "lfw", pairs=dev), SIDE)
    broken = tmp_path / "raf"
    write_bytes(broken / "EmoLabel" / "list_patition_label.txt", b"train_00001.jpg 1\ntest_00002.jpg 1\n")
    (broken / "Image" / "aligned").mkdir(parents=True)
    with pytest.raises(DataInputError, match="rafdb: RAFDB: no usable items.*missing image"):
        prepare(locate_inputs("rafdb", broken), SIDE)
    # one training face per class leaves no validation split: refused before any feature is computed
    one_each = tmp_path / "raf1"
    lines = [f"train_{c:05d}.jpg {c + 1}" for c in range(7)] + ["test_00001.jpg 1"]
    write_bytes(one_each / "EmoLabel" / "list_patition_label.txt", ("\n".join(lines) + "\n").encode())
    for name in [f"train_{c:05d}" for c in range(7)] + ["test_00001"]:
        write_png(one_each / "Image" / "aligned" / f"{name}_aligned.jpg", one_hot(0, 7))
    source = BandSource(7)
    with pytest.raises(DataInputError, match="val split is empty"):
        evaluate_real([source], config("rafdb", one_each), size=SIDE)
    assert source.fit_rows_seen == []
    make_disfa(tmp_path / "disfa", subjects=("SN001", "SN002"), frames=2)
    with pytest.raises(DataInputError, match="3 subjects"):
        prepare(locate_inputs("disfa", tmp_path / "disfa"), SIDE)


# --------------------------------------------------------------------------- the evaluate command


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from test_evaluate import save_tiny_checkpoint

    path = tmp_path_factory.mktemp("run") / "pcl" / "last.pt"
    save_tiny_checkpoint(path, "pcl")
    return path


HEADLINE = {"rafdb": ("expression", "accuracy", 1.0), "fer2013": ("expression", "accuracy", 1.0),
            "lfw": ("verification", "accuracy", 1.0), "cplfw": ("verification", "accuracy", 1.0),
            "disfa": ("au", "f1_mean", 1.0), "aflw2000": ("head_pose", "mae_mean", 180.0),
            "folder": ("classification", "accuracy", 1.0)}


@pytest.mark.parametrize("data", list(MAKERS))
def test_cli_evaluates_every_benchmark_end_to_end(tmp_path, tiny_checkpoint, data):
    from pclkit.cli import main

    MAKERS[data](tmp_path / data)
    root = {"lfw": tmp_path / data / "lfw"}.get(data, tmp_path / data)
    out = tmp_path / "results"
    args = ["evaluate", str(tiny_checkpoint), "--data", data, "--root", str(root), "--out", str(out), "--seeds", "2",
            "--features", "F_s,F_p", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    with pytest.warns(UserWarning) if data in ("rafdb", "fer2013", "folder") else contextlib.nullcontext():
        assert main(args) == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["data"] for r in rows} == {data}
    assert {r["method"] for r in rows} == {"pcl", "random init", "pixels (PCA)", CHANCE, DATA_INFO}
    task, name, bound = HEADLINE[data]
    values = [float(r["value"]) for r in rows if (r["task"], r["metric"]) == (task, name) and r["method"] != CHANCE]
    # pcl F_s and F_p, random init F_s, pixels; fixed splits run once, the others per seed
    assert len(values) == 4 * (1 if data in ("fer2013", "lfw", "cplfw") else 2)
    assert all(math.isfinite(v) and 0.0 <= v <= bound for v in values)
    md = (out / "results.md").read_text()
    assert f"### {data}: linear evaluation" in md and f"### {data}: feature comparison" in md
    assert ("per class" in md) == (data in ("rafdb", "fer2013", "folder"))
    assert r"\toprule" in (out / "results.tex").read_text()
    assert list((tmp_path / "cache").glob("*.pt"))  # features cached for the next run


def test_cli_bad_root_is_a_message_and_exit_code_2(tmp_path, tiny_checkpoint, capsys):
    from pclkit.cli import main

    out = tmp_path / "results"
    base = ["evaluate", str(tiny_checkpoint), "--out", str(out), "--quiet"]
    assert main(base + ["--data", "rafdb", "--root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: rafdb root does not exist") and "Traceback" not in err
    assert main(base + ["--data", "disfa"]) == 2
    assert "needs root (--root PATH" in capsys.readouterr().err
    assert not out.exists()
