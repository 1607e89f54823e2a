"""``embed``: features of a folder of images to .npz / .csv, bad files skipped and counted."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pclkit import pretrained as pt
from pclkit.checkpoint import load_model, model_state, save_checkpoint
from pclkit.cli import main
from pclkit.config import config_to_dict, resolve_config
from pclkit.embed import embed_folder, open_folder, write_embeddings
from pclkit.features import extract_features
from pclkit.models import build_model

#: the usable images of the folder, in the order embed writes them (sorted relative paths)
GOOD = ["a.png", "sub/b.jpg", "sub/c,odd.png"]


def noise_image(path: Path, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three images of assorted sizes, a corrupt, an empty and a truncated file, and a non-image."""
    root = tmp_path_factory.mktemp("faces")
    (root / "sub").mkdir()
    noise_image(root / "a.png", (40, 48), 0)
    noise_image(root / "sub" / "b.jpg", (64, 64), 1)
    noise_image(root / "sub" / "c,odd.png", (33, 30), 2)
    (root / "bad.jpg").write_bytes(b"this is not a jpeg")
    (root / "empty.png").write_bytes(b"")
    noise_image(root / "trunc.jpg", (64, 64), 3)  # passes a header check, fails when decoded
    data = (root / "trunc.jpg").read_bytes()
    (root / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (root / "notes.txt").write_text("not an image")
    return root


def checkpoint(path: Path, method: str) -> Path:
    config = resolve_config("smoke", {"method": method, "model.width": 4})
    torch.manual_seed(3)
    model = build_model(config.model)
    # non-trivial BatchNorm statistics, so eval mode matters
    for name, buffer in model.named_buffers():
        if name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    save_checkpoint(path, {"config": config_to_dict(config), "model": model_state(model), "step": 3, "epoch": 1})
    return path


@pytest.fixture(scope="module")
def pcl_ckpt(tmp_path_factory) -> Path:
    return checkpoint(tmp_path_factory.mktemp("ckpt") / "pcl.pt", "pcl")


def expected_features(ckpt: str | Path, folder: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Features computed directly: FaceFolder images of the usable files, one batch."""
    model, _ = load_model(ckpt)
    dataset = open_folder(folder, model.image_size)
    images = torch.stack([dataset[i][0] for i in range(len(dataset)) if not dataset.paths[i].endswith("trunc.jpg")])
    return {k: v.numpy() for k, v in extract_features(model, images, names, progress=False).items()}


def test_npz_has_every_feature_per_file_and_counts_bad_files(folder, pcl_ckpt, tmp_path, capsys):
    out = tmp_path / "feats.npz"
    assert main(["embed", str(pcl_ckpt), str(folder), "--out", str(out), "--batch-size", "2", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}: 3 images (F_s 64-d, F_f 64-d, F_p 64-d; pcl)" in captured.out
    assert "skipped 3 unreadable file(s)" in captured.err
    with np.load(out) as data:  # no pickle needed
        assert data["files"].tolist() == GOOD
        assert sorted(Path(p).name for p in data["skipped"].tolist()) == ["bad.jpg", "empty.png", "trunc.jpg"]
        assert str(data["method"]) == "pcl" and str(data["checkpoint"]) == str(pcl_ckpt)
        expected = expected_features(pcl_ckpt, folder, ("F_s", "F_f", "F_p"))
        for name in ("F_s", "F_f", "F_p"):
            assert data[name].dtype == np.float32 and data[name].shape == (3, 64)
            np.testing.assert_allclose(data[name], expected[name], rtol=1e-5, atol=1e-6)


def test_csv_rows_match_the_npz(folder, pcl_ckpt, tmp_path):
    # header check: trunc.jpg is indexed, then fails when read and is skipped there
    embeddings = embed_folder(pcl_ckpt, folder, batch_size=4, check="header", progress=False)
    assert [Path(p).name for p, _ in embeddings.skipped] == ["bad.jpg", "empty.png", "trunc.jpg"]
    assert "truncated" in embeddings.skipped[-1][1]
    write_embeddings(embeddings, tmp_path / "f.npz")
    write_embeddings(embeddings, tmp_path / "f.csv")
    with open(tmp_path / "f.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["file", "F_s_0"] and header[-1] == "F_p_63" and len(header) == 1 + 3 * 64
    assert [row[0] for row in body] == GOOD  # "c,odd.png" is quoted
    with np.load(tmp_path / "f.npz") as data:
        stacked = np.concatenate([data["F_s"], data["F_f"], data["F_p"]], axis=1)
    np.testing.assert_array_equal(np.array([row[1:] for row in body], dtype=np.float32), stacked)  # %.9g is exact


def test_simclr_and_pretrained_references_give_f_s_only(folder, tmp_path, monkeypatch):
    ckpt = checkpoint(tmp_path / "simclr.pt", "simclr")
    monkeypatch.setenv(pt.ENV_WEIGHTS_DIR, str(tmp_path / "weights"))
    pt.export_pretrained(ckpt, "simclr_tiny", weights_dir=tmp_path / "weights", command="test", dtype="fp16")
    embeddings = embed_folder("pretrained:simclr_tiny", folder, progress=False)
    assert list(embeddings.features) == ["F_s"] and embeddings.method == "simclr"
    assert embeddings.files == GOOD and len(embeddings.skipped) == 3
    expected = expected_features("pretrained:simclr_tiny", folder, ("F_s",))
    np.testing.assert_allclose(embeddings.features["F_s"], expected["F_s"], rtol=1e-5, atol=1e-6)


def test_cli_refuses_bad_requests(folder, pcl_ckpt, tmp_path, capsys):
    assert main(["embed", str(pcl_ckpt), str(folder), "--out", str(tmp_path / "f.json")]) == 2
    assert "--out must end in .npz or .csv" in capsys.readouterr().err
    assert main(["embed", str(pcl_ckpt), str(tmp_path / "absent"), "--out", str(tmp_path / "f.npz")]) == 1
    assert "face folder not found" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "none.pt"), str(folder), "--out", str(tmp_path / "f.npz")]) == 1
    assert "no checkpoint at" in capsys.readouterr().err
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"broken")
    assert main(["embed", str(pcl_ckpt), str(only_bad), "--out", str(tmp_path / "f.npz"), "--no-progress"]) == 1
    assert "no usable items" in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists()
