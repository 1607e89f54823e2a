"""Loaders for real face data (pclkit.data.real, pclkit.data.imageio).

Every loader is tested against tiny fixture files written here in the exact
on-disk format, including each kind of bad input; CMUFaces also against the
real CMU Face Images (skipped with a reason when absent).
"""

from __future__ import annotations

import csv
import io
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pclkit.data import DISFA, FER2013, RAFDB, CMUFaces, FaceFolder, PairList, PoseNPZ, as_tensors
from pclkit.data.imageio import ImageDecodeError, load_image, probe_image, read_rgb, square_tensor
from pclkit.data.itemlist import SkippedItemsWarning

# --------------------------------------------------------------------------- helpers


def pixels(height: int, width: int, seed: int, channels: int = 3) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_image(path: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def write_pgm(path: Path, gray: np.ndarray, maxval: int = 255, plain: bool = False) -> Path:
    height, width = gray.shape
    header = f"P{2 if plain else 5}\n# a comment\n{width} {height}\n{maxval}\n".encode()
    body = " ".join(map(str, gray.ravel())).encode() + b"\n" if plain else gray.astype(np.uint8).tobytes()
    return write_bytes(path, header + body)


def build(factory, *args, **kwargs):
    """Construct a dataset; return it and the list of SkippedItemsWarning messages it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = factory(*args, **kwargs)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedItemsWarning)]
    return dataset, messages


def reasons(dataset) -> dict[str, str]:
    """source -> reason, with sources reduced to their file name (and line)."""
    return {Path(source).name: reason for source, reason in dataset.skipped}


def relative_paths(dataset, root: Path) -> list[str]:
    return [Path(path).relative_to(root).as_posix() for path in dataset.paths]


PIL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".pgm": "PPM"}


def assert_image(image: torch.Tensor, size: int) -> None:
    assert image.dtype == torch.float32 and image.shape == (3, size, size)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


# --------------------------------------------------------------------------- imageio


def test_grayscale_png_becomes_three_equal_channels(tmp_path):
    gray = pixels(10, 10, 0, channels=1)
    rgb = read_rgb(write_image(tmp_path / "g.png", gray))
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], gray)


def test_rgba_drops_alpha_and_16bit_is_scaled(tmp_path):
    rgba = pixels(6, 7, 1, channels=4)
    np.testing.assert_array_equal(read_rgb(write_image(tmp_path / "a.png", rgba)), rgba[..., :3])
    deep = np.array([[0, 257 * 10, 65535]], dtype=np.uint16)
    rgb = read_rgb(write_image(tmp_path / "d.png", deep))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 10, 255])


@pytest.mark.parametrize("plain", [False, True])
def test_pgm_with_small_maxval_matches_pil(tmp_path, plain):
    gray = np.random.default_rng(2).integers(0, 157, (6, 9))
    path = write_pgm(tmp_path / "x.pgm", gray, maxval=156, plain=plain)
    ours = read_rgb(path)
    reference = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(ours, reference)
    assert ours[..., 0].max() <= 255 and probe_image(path) == (9, 6)


def test_bad_pgm_files_are_rejected(tmp_path):
    gray = np.full((4, 5), 7)
    truncated = write_bytes(tmp_path / "t.pgm", write_pgm(tmp_path / "ok.pgm", gray).read_bytes()[:-3])
    over = write_pgm(tmp_path / "over.pgm", np.full((4, 5), 200), maxval=100)
    for path, words in ((truncated, "truncated"), (over, "exceeds maxval")):
        with pytest.raises(ImageDecodeError, match=words) as error:
            read_rgb(path)
        assert error.value.path == str(path)
        # DataLoader workers pickle the error to hand it back
        assert str(pickle.loads(pickle.dumps(error.value))) == str(error.value)


def test_probe_catches_every_kind_of_broken_file(tmp_path):
    good = encoded(pixels(40, 30, 3), "JPEG")
    cases = {
        "empty.jpg": b"",
        "text.png": b"this is not an image\n",
        "random.bmp": np.random.default_rng(0).bytes(500),
        "half.jpg": good[: len(good) // 2],
        "half.png": encoded(pixels(40, 30, 3), "PNG")[:300],
    }
    for name, data in cases.items():
        with pytest.raises(ImageDecodeError) as error:
            probe_image(write_bytes(tmp_path / name, data))
        assert name in str(error.value)
    assert "empty" in str(pytest.raises(ImageDecodeError, probe_image, tmp_path / "empty.jpg").value)
    # a header check is fast but cannot see that a JPEG stops half way
    assert probe_image(tmp_path / "half.jpg", check="header") == (30, 40)
    assert probe_image(write_bytes(tmp_path / "good.jpg", good)) == (30, 40)


def test_square_tensor_crops_the_centre_then_resizes():
    # column j holds value 3*j: the centre crop of a 60x64 image keeps columns 2..61
    columns = np.tile((np.arange(64) * 3).astype(np.uint8), (60, 1))
    native = square_tensor(columns, None)
    assert native.shape == (3, 60, 60)
    np.testing.assert_allclose(native[0, 0].numpy() * 255, np.arange(2, 62) * 3, atol=1e-4)
    resized = square_tensor(columns, 64)
    assert_image(resized, 64)
    assert resized[0, 0, 0] < resized[0, 0, -1]  # orientation kept
    with pytest.raises(ValueError, match="uint8"):
        square_tensor(columns.astype(np.float32), 64)


def test_size_and_check_arguments_are_validated(tmp_path):
    write_image(tmp_path / "a.png", pixels(8, 8, 0))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="size"):
            FaceFolder(tmp_path, size=bad)
    with pytest.raises(ValueError, match="check"):
        FaceFolder(tmp_path, check="nope")
    assert FaceFolder(tmp_path, size=None)[0][0].shape == (3, 8, 8)


# --------------------------------------------------------------------------- FaceFolder


def test_face_folder_finds_images_recursively_in_sorted_order(tmp_path):
    names = ["b/x/1.JPG", "a/2.Png", "a/1.jpeg", "c.bmp", "b/0.pgm"]
    for i, name in enumerate(names):
        array = pixels(12, 16, i, channels=1 if name.endswith("pgm") else 3)
        write_image(tmp_path / name, array, fmt=PIL_FORMATS[Path(name).suffix.lower()])
    write_bytes(tmp_path / "notes.txt", b"not an image")
    write_bytes(tmp_path / ".hidden" / "x.png", b"ignored")
    write_bytes(tmp_path / "a" / "._2.Png", b"macOS litter")
    dataset, messages = build(FaceFolder, tmp_path, size=20)
    assert messages == [] and dataset.skipped == []
    assert relative_paths(dataset, tmp_path) == ["a/1.jpeg", "a/2.Png", "b/0.pgm", "b/x/1.JPG", "c.bmp"]
    image, labels = dataset[2]
    assert_image(image, 20)
    assert labels == {"index": 2} and dataset.class_names == {}
    assert dataset[-1][1]["index"] == 4
    with pytest.raises(IndexError):
        dataset[5]


def test_face_folder_identity_labels_from_subfolders(tmp_path):
    for name in ("zoe/1.png", "adam/1.png", "adam/deep/2.png", "loose.png"):
        write_image(tmp_path / name, pixels(8, 8, len(name)))
    dataset, messages = build(FaceFolder, tmp_path, labels_from_subfolders=True)
    assert dataset.class_names == {"identity": ["adam", "zoe"]}
    identities = {path: dataset[i][1]["identity"] for i, path in enumerate(relative_paths(dataset, tmp_path))}
    assert identities == {"adam/1.png": 0, "adam/deep/2.png": 0, "zoe/1.png": 1}
    assert reasons(dataset) == {"loose.png": "not inside an identity sub-folder"}
    assert len(messages) == 1 and "loose.png" in messages[0]


def test_face_folder_skips_each_kind_of_bad_file_with_one_warning(tmp_path):
    write_image(tmp_path / "good.jpg", pixels(16, 16, 0))
    jpeg = encoded(pixels(32, 32, 1), "JPEG")
    write_bytes(tmp_path / "empty.png", b"")
    write_bytes(tmp_path / "text.jpg", b"hello")
    write_bytes(tmp_path / "noise.png", np.random.default_rng(1).bytes(256))
    write_bytes(tmp_path / "truncated.jpg", jpeg[: len(jpeg) // 2])
    dataset, messages = build(FaceFolder, tmp_path)
    assert len(dataset) == 1 and Path(dataset.paths[0]).name == "good.jpg"
    skipped = reasons(dataset)
    assert set(skipped) == {"empty.png", "text.jpg", "noise.png", "truncated.jpg"}
    assert "empty" in skipped["empty.png"] and "truncated" in skipped["truncated.jpg"].lower()
    assert len(messages) == 1
    assert "skipped 4" in messages[0] and all(name in messages[0] for name in skipped)


def test_face_folder_errors_when_nothing_is_usable(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        FaceFolder(tmp_path / "missing")
    write_bytes(tmp_path / "bad.png", b"")
    with pytest.raises(ValueError, match="no usable items.*bad.png"):
        FaceFolder(tmp_path)
    (tmp_path / "bad.png").unlink()
    with pytest.raises(ValueError, match="no usable items"):
        FaceFolder(tmp_path)


def test_file_that_breaks_after_indexing_raises_naming_it(tmp_path):
    path = write_image(tmp_path / "a.png", pixels(8, 8, 0))
    dataset = FaceFolder(tmp_path)
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="a.png"):
        dataset[0]


def test_header_check_defers_truncation_to_a_named_error(tmp_path):
    jpeg = encoded(pixels(64, 64, 1), "JPEG")  # cut inside the entropy-coded data, past the header
    write_bytes(tmp_path / "cut.jpg", jpeg[: len(jpeg) * 3 // 4])
    write_bytes(tmp_path / "text.jpg", b"not a jpeg")
    dataset, messages = build(FaceFolder, tmp_path, check="header")
    assert len(dataset) == 1 and list(reasons(dataset)) == ["text.jpg"]
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        dataset[0]


# --------------------------------------------------------------------------- CMU faces (fixture tree)


def write_cmu(root: Path, name: str, scale: int = 2, value: int = 100) -> Path:
    user = name.split("_", 1)[0]
    width, height = {1: (128, 120), 2: (64, 60), 4: (32, 30)}[scale]
    return write_pgm(root / user / name, np.full((height, width), value), maxval=156)


def test_cmu_fixture_labels_bad_files_and_scales(tmp_path):
    write_cmu(tmp_path, "bob_up_sad_sunglasses_2.pgm")
    write_cmu(tmp_path, "amy_left_happy_open_2.pgm", value=156)
    write_cmu(tmp_path, "amy_straight_angry_open_4.pgm", scale=4)  # other scale: ignored
    write_cmu(tmp_path, "amy_right_neutral_open.pgm", scale=1)  # other scale: ignored
    write_bytes(tmp_path / "amy" / "amy_right_sad_open_2.bad", b"P5\n64 60\n156\n")
    write_pgm(tmp_path / "amy" / "amy_up_sad_open_2.pgm", np.zeros((30, 32)))  # wrong size for scale 2
    write_cmu(tmp_path, "amy_sideways_sad_open_2.pgm")  # unknown pose
    write_cmu(tmp_path, "amy_README.pgm")  # not a CMU name
    write_pgm(tmp_path / "amy" / "bob_up_happy_open_2.pgm", np.zeros((60, 64)))  # user/folder mismatch
    write_bytes(tmp_path / "README.md", b"# not in a user folder: ignored")
    dataset, messages = build(CMUFaces, tmp_path, scale=2)
    assert len(dataset) == 2
    assert dataset.class_names["identity"] == ["amy", "bob"]
    assert dataset.class_names["pose"] == ["straight", "left", "right", "up"]
    labels = [dataset[i][1] for i in range(2)]
    assert labels[0] == {"identity": 0, "pose": 1, "expression": 1, "sunglasses": 0, "index": 0}
    assert labels[1] == {"identity": 1, "pose": 3, "expression": 2, "sunglasses": 1, "index": 1}
    image = dataset[0][0]
    assert_image(image, 64)
    assert torch.allclose(image, torch.ones_like(image))  # maxval 156 is white
    skipped = reasons(dataset)
    assert set(skipped) == {
        "amy_right_sad_open_2.bad",
        "amy_up_sad_open_2.pgm",
        "amy_sideways_sad_open_2.pgm",
        "amy_README.pgm",
        "bob_up_happy_open_2.pgm",
    }
    assert ".bad" in skipped["amy_right_sad_open_2.bad"] and "32x30" in skipped["amy_up_sad_open_2.pgm"]
    assert "differs from its folder" in skipped["bob_up_happy_open_2.pgm"]
    assert len(messages) == 1 and "skipped 5" in messages[0]
    assert len(build(CMUFaces, tmp_path, scale=4)[0]) == 1
    with pytest.raises(ValueError, match="scale"):
        CMUFaces(tmp_path, scale=3)


# --------------------------------------------------------------------------- CMU faces (real data)

KNOWN_CMU = {
    # file name -> (pose, expression, sunglasses)
    "an2i/an2i_left_angry_open_2.pgm": ("left", "angry", 0),
    "an2i/an2i_up_happy_sunglasses_2.pgm": ("up", "happy", 1),
    "mitchell/mitchell_straight_sad_open_2.pgm": ("straight", "sad", 0),
    "sz24/sz24_right_neutral_sunglasses_2.pgm": ("right", "neutral", 1),
}


@pytest.fixture(scope="module")
def cmu_scale2(cmu_root):
    return build(CMUFaces, cmu_root, scale=2)


def test_real_cmu_scale2_has_624_images_of_20_people(cmu_scale2):
    dataset, messages = cmu_scale2
    assert len(dataset) == 624 and messages == [] and dataset.skipped == []
    assert len(dataset.class_names["identity"]) == 20
    assert dataset.class_names["identity"] == sorted(dataset.class_names["identity"])
    labels = [dataset.item_labels(i) for i in range(len(dataset))]  # labels only: no decoding needed
    assert {item["identity"] for item in labels} == set(range(20))
    assert {item["pose"] for item in labels} == {0, 1, 2, 3}
    assert {item["expression"] for item in labels} == {0, 1, 2, 3}
    assert {item["sunglasses"] for item in labels} == {0, 1}


def test_real_cmu_labels_of_known_files(cmu_scale2, cmu_root):
    dataset, _ = cmu_scale2
    position = {path: i for i, path in enumerate(relative_paths(dataset, cmu_root))}
    names = dataset.class_names
    for name, (pose, expression, sunglasses) in KNOWN_CMU.items():
        image, labels = dataset[position[name]]
        assert names["identity"][labels["identity"]] == name.split("/")[0]
        assert names["pose"][labels["pose"]] == pose
        assert names["expression"][labels["expression"]] == expression
        assert labels["sunglasses"] == sunglasses
        assert_image(image, 64)
        assert float(image.std()) > 0.05  # a real photo, not a blank
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])  # grayscale source


def test_real_cmu_full_scale_reports_bad_files_once(cmu_root):
    dataset, messages = build(CMUFaces, cmu_root, scale=1, size=32)
    bad = sorted(Path(source).name for source, _ in dataset.skipped)
    assert len(dataset) == 313 and len(bad) == 7 and all(name.endswith(".bad") for name in bad)
    assert "mitchell_up_neutral_sunglasses.bad" in bad
    assert len(messages) == 1 and "skipped 7" in messages[0]
    assert all(name in messages[0] for name in bad)


def test_real_cmu_native_resolution_and_as_tensors(cmu_root):
    native = CMUFaces(cmu_root, scale=4, size=None)
    assert len(native) == 624 and native[0][0].shape == (3, 30, 30)
    images, labels = as_tensors(CMUFaces(cmu_root, scale=4, size=32), progress=False)
    assert images.shape == (624, 3, 32, 32) and images.dtype == torch.uint8
    assert set(labels) == {"identity", "pose", "expression", "sunglasses", "index"}
    assert labels["identity"].shape == (624,) and int(labels["identity"].max()) == 19
    torch.testing.assert_close(labels["index"], torch.arange(624))


# --------------------------------------------------------------------------- RAF-DB


def write_raf(root: Path, lines: list[str], images: dict[str, np.ndarray | bytes]) -> None:
    write_bytes(root / "EmoLabel" / "list_patition_label.txt", ("\n".join(lines) + "\n").encode())
    (root / "Image" / "aligned").mkdir(parents=True, exist_ok=True)
    for name, content in images.items():
        path = root / "Image" / "aligned" / name
        if isinstance(content, bytes):
            write_bytes(path, content)
        else:
            write_image(path, content, fmt="JPEG")


def test_rafdb_reads_list_and_aligned_images(tmp_path):
    stems = ["train_00001", "train_00002", "test_0001"]
    images = {f"{stem}_aligned.jpg": pixels(100, 100, i) for i, stem in enumerate(stems)}
    write_raf(tmp_path, ["train_00001.jpg 1", "train_00002.jpg 7", "", "test_0001.jpg 4"], images)
    train, messages = build(RAFDB, tmp_path, split="train", size=32)
    assert messages == [] and len(train) == 2
    assert [train[i][1]["expression"] for i in range(2)] == [0, 6]
    raf_order = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
    assert train.class_names["expression"] == raf_order
    assert_image(train[0][0], 32)
    test = RAFDB(tmp_path, split="test")
    assert len(test) == 1 and test[0][1] == {"expression": 3, "index": 0}
    assert Path(test.paths[0]).name == "test_0001_aligned.jpg"


def test_rafdb_skips_bad_lines_and_images(tmp_path):
    lines = [
        "train_00001.jpg 2",  # good
        "train_00002.jpg",  # no label
        "train_00003.jpg 0",  # label out of range
        "train_00004.jpg 8",  # label out of range
        "train_00005.jpg happy",  # not an integer
        "train_00006.jpg 3",  # image missing
        "train_00007.jpg 3",  # image corrupt
        "train_00001.jpg 2",  # duplicate
        "garbage line here",  # malformed
        "test_0001.jpg 9",  # other split: not ours to judge
    ]
    images = {"train_00001_aligned.jpg": pixels(20, 20, 0), "train_00007_aligned.jpg": b"\xff\xd8broken"}
    write_raf(tmp_path, lines, images)
    dataset, messages = build(RAFDB, tmp_path)
    assert len(dataset) == 1 and dataset[0][1]["expression"] == 1
    skipped = reasons(dataset)
    assert set(skipped) == {f"list_patition_label.txt:{n}" for n in (2, 3, 4, 5, 6, 8, 9)} | {"train_00007_aligned.jpg"}
    assert "missing image" in skipped["list_patition_label.txt:6"]
    assert "duplicate" in skipped["list_patition_label.txt:8"]
    assert len(messages) == 1 and "skipped 8" in messages[0]


def test_rafdb_rejects_bad_arguments_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_patition_label.txt"):
        RAFDB(tmp_path)
    write_raf(tmp_path, ["train_00001.jpg 1"], {"train_00001_aligned.jpg": pixels(10, 10, 0)})
    with pytest.raises(ValueError, match="split"):
        RAFDB(tmp_path, split="val")
    with pytest.raises(ValueError, match="no usable items"):
        RAFDB(tmp_path, split="test")


# --------------------------------------------------------------------------- FER-2013


def fer_pixels(seed: int, count: int = 2304) -> str:
    return " ".join(map(str, np.random.default_rng(seed).integers(0, 256, count)))


def write_fer(path: Path, rows: list[list[str]], header=("emotion", "pixels", "Usage")) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_fer2013_selects_usage_and_decodes_pixels(tmp_path):
    rows = [["3", fer_pixels(0), "Training"], ["6", fer_pixels(1), "PublicTest"], ["0", fer_pixels(2), "Training"]]
    path = write_fer(tmp_path / "fer2013.csv", rows)
    train, messages = build(FER2013, path, usage="Training", size=None)
    assert messages == [] and len(train) == 2
    assert [train[i][1]["expression"] for i in range(2)] == [3, 0]
    assert train.class_names["expression"][3] == "happy"
    image = train[1][0]
    expected = np.array(rows[2][1].split(), dtype=np.float32).reshape(48, 48) / 255
    assert image.shape == (3, 48, 48)
    np.testing.assert_allclose(image[2].numpy(), expected, atol=1e-6)
    assert len(FER2013(path, usage="PublicTest")) == 1 and len(FER2013(path, usage=None)) == 3
    assert_image(FER2013(path, usage="PublicTest", size=64)[0][0], 64)


def test_fer2013_skips_bad_rows(tmp_path):
    rows = [
        ["2", fer_pixels(0), "Training"],  # good (line 2)
        ["2", fer_pixels(1, 2303), "Training"],  # one pixel short
        ["2", fer_pixels(2) + " 256", "Training"],  # 2305 values
        ["2", fer_pixels(3).replace("1", "999", 1), "Training"],  # a value above 255 (if any 1 present)
        ["2", fer_pixels(4).replace(" ", " x ", 1), "Training"],  # not an integer
        ["7", fer_pixels(5), "Training"],  # emotion out of range
        ["", fer_pixels(6), "Training"],  # emotion missing
        ["2", fer_pixels(7), "Validation"],  # unknown usage
        ["2", fer_pixels(8)],  # missing field
    ]
    path = write_fer(tmp_path / "fer.csv", rows)
    dataset, messages = build(FER2013, path)
    assert len(dataset) == 1
    skipped = reasons(dataset)
    assert set(skipped) == {f"fer.csv:{n}" for n in range(3, 11)}
    assert "2303 pixels" in skipped["fer.csv:3"] and "2305 pixels" in skipped["fer.csv:4"]
    assert "0..255" in skipped["fer.csv:5"] and "Validation" in skipped["fer.csv:9"]
    assert len(messages) == 1 and "skipped 8" in messages[0]


def test_fer2013_rejects_bad_header_and_usage(tmp_path):
    path = write_fer(tmp_path / "a.csv", [["1", fer_pixels(0)]], header=("emotion", "pixels"))
    with pytest.raises(ValueError, match="Usage"):
        FER2013(path)
    assert len(FER2013(path, usage=None)) == 1  # the challenge's train.csv has no Usage column
    with pytest.raises(ValueError, match="usage"):
        FER2013(path, usage="Validation")
    write_bytes(tmp_path / "empty.csv", b"")
    with pytest.raises(ValueError, match="empty"):
        FER2013(tmp_path / "empty.csv")
    with pytest.raises(FileNotFoundError):
        FER2013(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- LFW / CPLFW pairs


def write_lfw_images(root: Path, people: dict[str, int]) -> None:
    for k, (name, count) in enumerate(people.items()):
        for index in range(1, count + 1):
            write_image(root / name / f"{name}_{index:04d}.jpg", pixels(24, 24, 10 * k + index), fmt="JPEG")


def test_lfw_pairs_same_flag_and_folds(tmp_path):
    write_lfw_images(tmp_path, {"Ann_A": 3, "Bob_B": 2, "Cy_C": 1})
    lines = ["2\t1", "Ann_A\t1\t2", "Bob_B 1 Cy_C 1", "Bob_B 1 2", "Ann_A 3 Bob_B 2"]
    pairs_file = write_bytes(tmp_path / "pairs.txt", ("\n".join(lines) + "\n").encode())
    dataset, messages = build(PairList, tmp_path, pairs_file, fmt="lfw", size=16)
    assert messages == [] and len(dataset) == 4
    items = [dataset[i] for i in range(4)]
    assert [labels["same"] for _, _, labels in items] == [True, False, True, False]
    assert [labels["fold"] for _, _, labels in items] == [0, 0, 1, 1]
    image_a, image_b, labels = items[1]
    assert_image(image_a, 16) and labels["index"] == 1
    assert [Path(p).name for p in dataset.pairs[1]] == ["Bob_B_0001.jpg", "Cy_C_0001.jpg"]
    torch.testing.assert_close(image_b, load_image(tmp_path / "Cy_C" / "Cy_C_0001.jpg", 16))


def test_lfw_bad_lines_keep_fold_positions(tmp_path):
    write_lfw_images(tmp_path, {"Ann_A": 2, "Bob_B": 1})
    write_bytes(tmp_path / "Bob_B" / "Bob_B_0002.jpg", b"")  # corrupt image
    lines = ["2", "Ann_A 1 2", "Ann_A one 2", "Ann_A 1 Bob_B 1", "Ann_A 1 Zed_Z 1"]
    pairs_file = write_bytes(tmp_path / "devtrain.txt", ("\n".join(lines) + "\n").encode())
    dataset, messages = build(PairList, tmp_path, pairs_file)
    assert len(dataset) == 2 and [dataset[i][2]["fold"] for i in range(2)] == [0, 0]
    skipped = reasons(dataset)
    assert set(skipped) == {"devtrain.txt:3", "devtrain.txt:5"} and "missing image" in skipped["devtrain.txt:5"]
    assert len(messages) == 1
    # line 4 of a 2-fold file: the malformed line 3 still counts for the fold
    lines = ["2 1", "Ann_A 1 2", "bad", "Ann_A 1 Bob_B 2", "Ann_A 1 Bob_B 1"]
    write_bytes(pairs_file, ("\n".join(lines) + "\n").encode())
    dataset, _ = build(PairList, tmp_path, pairs_file)
    assert [dataset[i][2]["fold"] for i in range(len(dataset))] == [0, 1]
    assert "empty" in reasons(dataset)["devtrain.txt:4"]


def test_lfw_header_contradiction_is_an_error(tmp_path):
    write_lfw_images(tmp_path, {"Ann_A": 2})
    for text, words in (("10 300\nAnn_A 1 2\n", "header says"), ("ten\nAnn_A 1 2\n", "header"), ("", "empty")):
        pairs_file = write_bytes(tmp_path / "p.txt", text.encode())
        with pytest.raises(ValueError, match=words):
            PairList(tmp_path, pairs_file)
    with pytest.raises(ValueError, match="format"):
        PairList(tmp_path, pairs_file, fmt="ytf")


def test_cplfw_pairs_from_consecutive_lines(tmp_path):
    for k, name in enumerate(["A_1.jpg", "A_2.jpg", "B_1.jpg", "C_1.jpg"]):
        write_image(tmp_path / "images" / name, pixels(30, 30, k), fmt="JPEG")
    lines = []
    for pair in range(20):  # 20 pairs -> 10 folds of 2
        same = pair % 2 == 0
        lines += [f"images/A_1.jpg {int(same)}", f"images/{'A_2' if same else 'B_1'}.jpg {int(same)}"]
    lines[6], lines[7] = "images/A_1.jpg 1", "images/C_1.jpg 0"  # labels disagree
    lines[10], lines[11] = "images/A_1.jpg 1", "images/Gone_1.jpg 1"  # missing image
    pairs_file = write_bytes(tmp_path / "pairs_CPLFW.txt", ("\n".join(lines) + "\n").encode())
    dataset, messages = build(PairList, tmp_path, pairs_file, fmt="cplfw", size=16)
    assert len(dataset) == 18 and len(messages) == 1
    assert set(reasons(dataset)) == {"pairs_CPLFW.txt:7", "pairs_CPLFW.txt:11"}
    labels = [dataset.item_labels(i) for i in range(len(dataset))]
    assert [item["same"] for item in labels[:3]] == [True, False, True]
    assert [item["fold"] for item in labels] == [0, 0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
    odd = write_bytes(tmp_path / "odd.txt", b"images/A_1.jpg 1\nimages/A_2.jpg 1\nimages/B_1.jpg 0\n")
    with pytest.raises(ValueError, match="even"):
        PairList(tmp_path, odd, fmt="cplfw")


# --------------------------------------------------------------------------- FSA-Net pose npz


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_pose_npz_converts_bgr_and_keeps_angle_order(tmp_path):
    images = np.zeros((4, 8, 8, 3), np.uint8)
    images[..., 0], images[..., 1], images[..., 2] = 10, 20, 250  # B, G, R
    poses = np.array([[30.0, -10.0, 5.0], [120.0, 0.0, 0.0], [0.0, -99.5, 0.0], [-98.0, 40.0, -20.0]])
    path = write_npz(tmp_path / "AFLW2000.npz", image=images, pose=poses)
    dataset, messages = build(PoseNPZ, path, size=None)
    assert messages == [] and len(dataset) == 2 and dataset.rows == [0, 3] and dataset.outside_range == [1, 2]
    image, labels = dataset[0]
    np.testing.assert_allclose(image[:, 0, 0].numpy() * 255, [250, 20, 10], atol=1e-4)  # RGB now
    assert labels["pose"].dtype == torch.float32
    torch.testing.assert_close(labels["pose"], torch.tensor([30.0, -10.0, 5.0]))
    everything = PoseNPZ(path, max_angle=None)
    assert len(everything) == 4 and everything.outside_range == []
    assert_image(everything[1][0], 64)
    tensors_images, tensors_labels = as_tensors(dataset, progress=False)
    assert tensors_images.shape == (2, 3, 8, 8) and tensors_labels["pose"].shape == (2, 3)


def test_pose_npz_bad_input(tmp_path):
    images = np.zeros((2, 8, 8, 3), np.uint8)
    path = write_npz(tmp_path / "nan.npz", image=images, pose=np.array([[1.0, 2, 3], [np.nan, 0, 0]]))
    dataset, messages = build(PoseNPZ, path)
    assert len(dataset) == 1 and reasons(dataset) == {"nan.npz[1]": "non-finite pose [nan, 0.0, 0.0]"}
    assert len(messages) == 1
    cases = {
        "nokey.npz": ({"image": images}, "lacks array"),
        "float.npz": ({"image": images.astype(np.float32), "pose": np.zeros((2, 3))}, "uint8"),
        "gray.npz": ({"image": images[..., 0], "pose": np.zeros((2, 3))}, r"\(N, H, W, 3\)"),
        "pose2.npz": ({"image": images, "pose": np.zeros((2, 2))}, "yaw/pitch/roll"),
        "count.npz": ({"image": images, "pose": np.zeros((3, 3))}, "2 images but 3 poses"),
    }
    for name, (arrays, words) in cases.items():
        with pytest.raises(ValueError, match=words):
            PoseNPZ(write_npz(tmp_path / name, **arrays))
    with pytest.raises(ValueError, match="cannot read"):
        PoseNPZ(write_bytes(tmp_path / "junk.npz", b"not a zip"))
    np.save(tmp_path / "single.npy", images)
    with pytest.raises(ValueError, match="single array"):
        PoseNPZ(tmp_path / "single.npy")
    with pytest.raises(ValueError, match="no usable items"):
        PoseNPZ(write_npz(tmp_path / "wide.npz", image=images, pose=np.full((2, 3), 150.0)))


# --------------------------------------------------------------------------- DISFA

AUS = (1, 2, 4, 6, 9, 12, 25, 26)


def write_disfa_labels(root: Path, subject: str, table: dict[int, dict[int, int]], skip_aus=()) -> None:
    """table: frame -> {au: intensity}; an AU absent from a frame's dict gets no line."""
    for au in AUS:
        if au in skip_aus:
            continue
        lines = [f"{frame},{values[au]}" for frame, values in sorted(table.items()) if au in values]
        write_bytes(root / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt", ("\n".join(lines) + "\n").encode())


def test_disfa_reads_au_intensities_per_frame(tmp_path):
    table = {frame: {au: (frame + k) % 6 for k, au in enumerate(AUS)} for frame in (1, 2, 3)}
    write_disfa_labels(tmp_path, "SN002", table)
    write_disfa_labels(tmp_path, "SN001", table)
    for subject in ("SN001", "SN002"):
        for frame in (1, 2, 3):
            write_image(tmp_path / "frames" / subject / f"{frame:05d}.png", pixels(12, 12, frame))
    dataset, messages = build(DISFA, tmp_path, size=16)
    assert messages == [] and len(dataset) == 6
    assert dataset.class_names == {"identity": ["SN001", "SN002"]}
    image, labels = dataset[4]  # SN002 frame 2
    assert_image(image, 16)
    raw = torch.tensor([(2 + k) % 6 for k in range(8)])
    assert labels["identity"] == 1 and labels["aus_raw"].dtype == torch.int64
    torch.testing.assert_close(labels["aus_raw"], raw)
    torch.testing.assert_close(labels["aus"], raw.float() / 5)
    images, stacked = as_tensors(dataset, progress=False)
    assert stacked["aus"].shape == (6, 8) and float(stacked["aus"].max()) <= 1.0


def test_disfa_skips_frames_without_complete_labels(tmp_path):
    full = {au: 1 for au in AUS}
    table = {1: dict(full), 2: {au: 2 for au in AUS if au != 9}, 3: dict(full), 4: dict(full), 5: dict(full)}
    write_disfa_labels(tmp_path, "SN001", table)
    au4 = tmp_path / "ActionUnit_Labels" / "SN001" / "SN001_au4.txt"
    au4.write_text(au4.read_text() + "3;1\n4,6\n5,2\nseven,1\n")  # malformed, out of range, contradiction, malformed
    write_disfa_labels(tmp_path, "SN003", {1: dict(full)}, skip_aus=(26,))  # whole AU file missing
    for name in [f"{frame:05d}.jpg" for frame in range(1, 7)] + ["frame_7.png", "notes.jpg"]:
        write_image(tmp_path / "frames" / "SN001" / name, pixels(10, 10, len(name)), fmt="JPEG")
    write_image(tmp_path / "frames" / "SN001" / "7.jpg", pixels(10, 10, 7), fmt="JPEG")  # same frame as frame_7.png
    write_image(tmp_path / "frames" / "SN003" / "1.jpg", pixels(10, 10, 1), fmt="JPEG")
    write_image(tmp_path / "frames" / "SN009" / "1.jpg", pixels(10, 10, 1), fmt="JPEG")  # no labels at all
    (tmp_path / "frames" / "SN001" / "00003.jpg").write_bytes(b"")  # corrupt frame
    dataset, messages = build(DISFA, tmp_path)
    # frame 1 is complete; 2 lacks AU9; 3 corrupt; 4 has AU4=1 and a bad "4,6" line (skipped line, value kept);
    # 5 contradicts itself for AU4; 6 and 7 have no labels
    kept = [Path(p).name for p in dataset.paths]
    assert kept == ["00001.jpg", "00004.jpg"]
    skipped = reasons(dataset)
    assert "AU9" in skipped["00002.jpg"] and "empty" in skipped["00003.jpg"] and "AU4" in skipped["00005.jpg"]
    assert {"SN001_au4.txt:6", "SN001_au4.txt:7", "SN001_au4.txt:8", "SN001_au4.txt:9"} <= set(skipped)
    assert "out of range" in skipped["SN001_au4.txt:7"] and "twice" in skipped["SN001_au4.txt:8"]
    assert "several files" in skipped["frame_7.png"] and "frame number" in skipped["notes.jpg"]
    assert "missing AU26 label file" in skipped["SN003_au26.txt"] and "AU26" in skipped["1.jpg"]
    assert "without an AU label folder" in skipped["SN009"]
    assert "AU1" in skipped["00006.jpg"]
    assert len(messages) == 1


def test_disfa_label_without_frame_and_layout_errors(tmp_path):
    write_disfa_labels(tmp_path, "SN001", {1: {au: 0 for au in AUS}, 2: {au: 0 for au in AUS}})
    with pytest.raises(FileNotFoundError, match="frames"):
        DISFA(tmp_path)
    write_image(tmp_path / "frames" / "SN001" / "1.jpg", pixels(10, 10, 1), fmt="JPEG")
    dataset, messages = build(DISFA, tmp_path)
    assert len(dataset) == 1 and [reason for _, reason in dataset.skipped] == ["AU labels but no frame image"]
    assert dataset.skipped[0][0].endswith("SN001 frame 2") and len(messages) == 1
    with pytest.raises(FileNotFoundError, match="DISFA folder"):
        DISFA(tmp_path / "nowhere")
