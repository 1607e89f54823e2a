"""Plots, widgets and figure export (pclkit.viz, pclkit.widgets, pclkit.style) -- no browser needed."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from pclkit import viz, widgets
from pclkit.models import build_model
from pclkit.style import COLUMN_WIDTH_IN, TEXT_WIDTH_IN, figure_size, paper_style, save_figure

SIZE = 64


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A tiny untrained PCL model (random weights, fixed seed) with calibrated BatchNorm statistics.

    With BN's initial running statistics (mean 0, var 1) the untrained decoder's
    output hardly depends on its input; a few forward passes in train mode (no
    gradients) set the statistics to the real activation scale, so swaps show.
    """
    torch.manual_seed(0)
    tiny = build_model(method="pcl", width=8, proj_hidden_dim=32, proj_dim=16, decoder_width=16)
    for module in tiny.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average
    calibration = torch.rand(32, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    tiny.train()
    with torch.no_grad():
        for _ in range(3):
            features = tiny.forward_features(calibration)
            tiny.decode(features["F_f"], features["F_p"])
    return tiny.eval()


class ImageList:
    """A minimal dataset without SynthFaces factors: random images, items ``(image, labels)``."""

    def __init__(self, n: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, SIZE, SIZE, generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict]:
        return self.images[i], {"index": i}


def reference_reconstruction(model: torch.nn.Module, image: torch.Tensor) -> np.ndarray:
    """D(F_f, F_p) of one image computed directly through the model API, (H, W, 3)."""
    with torch.no_grad():
        features = model.eval().forward_features(image[None])
        return model.decode(features["F_f"], features["F_p"])[0].permute(1, 2, 0).numpy()


def shown(image_widget, scale: int) -> np.ndarray:
    """The picture an ``ipywidgets.Image`` holds, back at model resolution."""
    return viz.decode_png(image_widget.value)[::scale, ::scale]


# -- pure functions ---------------------------------------------------------


def test_render_swap_at_alpha_zero_is_own_reconstruction(model):
    data = ImageList()
    out = viz.render_swap(model, data.images[0], data.images[1], alpha=0.0)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference_reconstruction(model, data.images[0]), atol=1e-5)


def test_render_swap_at_alpha_one_takes_pose_of_b(model):
    data = ImageList()
    a, b = data.images[0], data.images[1]
    with torch.no_grad():
        face_a = model.forward_features(a[None])["F_f"]
        feats_b = model.forward_features(b[None])
        expected = model.decode(face_a, feats_b["F_p"])[0].permute(1, 2, 0).numpy()
        expected_swapped = model.decode(feats_b["F_f"], feats_b["F_p"])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(viz.render_swap(model, a, b, 1.0), expected, atol=1e-5)
    np.testing.assert_allclose(viz.render_swap(model, a, b, 1.0, swap_face=True), expected_swapped, atol=1e-5)


def test_render_swap_is_pure(model):
    data = ImageList()
    a, b = data.images[0].clone(), data.images[1].clone()
    params_before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()  # the caller's mode must survive
    try:
        first = viz.render_swap(model, a, b, 0.5)
        second = viz.render_swap(model, a, b, 0.5)
        assert model.training
    finally:
        model.eval()
    np.testing.assert_array_equal(first, second)
    assert torch.equal(a, data.images[0]) and torch.equal(b, data.images[1])
    for key, value in model.state_dict().items():  # BN running stats untouched too
        assert torch.equal(value, params_before[key]), key


def test_render_swap_changes_with_alpha(model):
    data = ImageList()
    outs = [viz.render_swap(model, data.images[0], data.images[1], alpha) for alpha in (0.0, 0.5, 1.0)]
    assert np.abs(outs[0] - outs[1]).max() > 1e-4
    assert np.abs(outs[1] - outs[2]).max() > 1e-4


def test_swap_grid_rows_in_paper_order(model):
    data = ImageList()
    images, flipped = data.images[:3], data.images[:3].flip(-1)
    rows = viz.swap_grid(model, images, flipped)
    assert list(rows) == list(viz.SWAP_GRID_ROWS)
    for batch in rows.values():
        assert batch.shape == (3, 3, SIZE, SIZE)
    np.testing.assert_allclose(rows["ff_fp"][0].permute(1, 2, 0).numpy(), reference_reconstruction(model, images[0]),
                               atol=1e-5)
    assert torch.equal(rows["s_hat"], flipped)
    assert not torch.allclose(rows["ff_fp"], rows["ff_fphat"])


def test_swap_grid_and_interpolation_work_with_a_narrow_pose_code():
    narrow = build_model(method="pcl", width=8, proj_hidden_dim=32, proj_dim=16, decoder_width=16,
                         decoder_fusion="concat", pose_dim=4).eval()
    images = ImageList().images[:2]
    rows = viz.swap_grid(narrow, images, images.flip(-1))
    assert all(batch.shape == (2, 3, SIZE, SIZE) for batch in rows.values())


def test_encode_returns_the_models_feature_dict_and_swaps_need_a_decoder(model):
    data = ImageList()
    feats = viz.encode(model, data.images[:2])
    assert set(feats) == {"F_s", "F_f", "F_p"} and feats["F_f"].shape[0] == 2
    simclr = build_model(method="simclr", width=8, proj_hidden_dim=32, proj_dim=16).eval()
    assert set(viz.encode(simclr, data.images[:2])) == {"F_s"}
    assert viz.has_decoder(model) and not viz.has_decoder(simclr)
    with pytest.raises(ValueError, match="decoder"):
        viz.swap_grid(simclr, data.images[:2], data.images[:2].flip(-1))


def test_swap_grid_decodes_every_row_in_one_call_with_the_separate_results(model, monkeypatch):
    data = ImageList()
    images, flipped = data.images[:3], data.images[:3].flip(-1)
    calls = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda face, pose: calls.append(face.shape[0]) or decode(face, pose))
    rows = viz.swap_grid(model, images, flipped)
    assert calls == [5 * 3]  # the five reconstructions of three faces in one decoder call
    monkeypatch.undo()
    with torch.no_grad():
        feats, feats_hat = model.forward_features(images), model.forward_features(flipped)
        zeros = torch.zeros_like(feats["F_f"])
        expected = {"ff_fphat": model.decode(feats["F_f"], feats_hat["F_p"]), "fp": model.decode(zeros, feats["F_p"])}
    for key, value in expected.items():
        torch.testing.assert_close(rows[key], value, atol=1e-5, rtol=1e-4)


def test_psnr():
    a = np.zeros((4, 4, 3), np.float32)
    b = np.full((4, 4, 3), 0.1, np.float32)
    assert viz.psnr(a, b) == pytest.approx(20.0, abs=1e-4)
    assert viz.psnr(a, a) == pytest.approx(100.0)  # identical images: the 100 dB cap


def test_yaw_bins():
    labels, names = viz.yaw_bins(np.array([-90.0, -60.0, -45.0, -1.0, 0.0, 44.9, 45.0, 90.0, 95.0]))
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, -1]
    assert len(names) == 4 and names[0].startswith("-90")


def test_select_classes():
    labels, names = viz.select_classes(np.array([0, 1, 2, 1]), ["neutral", "happy", "sad"], ["happy", "neutral"])
    assert labels.tolist() == [1, 0, -1, 0] and names == ["happy", "neutral"]
    with pytest.raises(ValueError, match="unknown classes"):
        viz.select_classes(np.array([0]), ["neutral"], ["joy"])


def test_embed_2d_tsne_separates_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 32)) * 5
    features = np.concatenate([centres[0] + rng.normal(size=(30, 32)), centres[1] + rng.normal(size=(30, 32))])
    points = viz.embed_2d(features, "tsne", seed=0)
    assert points.shape == (60, 2)
    gap = np.linalg.norm(points[:30].mean(0) - points[30:].mean(0))
    spread = max(points[:30].std(0).max(), points[30:].std(0).max())
    assert gap > 2 * spread
    with pytest.raises(ValueError, match="tsne' or 'umap"):
        viz.embed_2d(features, "pca")


# -- figure builders ----------------------------------------------------------


def test_plot_image_rows_layout(model):
    data = ImageList(n=5)
    rows = viz.swap_grid(model, data.images, data.images.flip(-1))
    fig = viz.plot_image_rows({viz.SWAP_GRID_ROWS[k]: v for k, v in rows.items()}, max_columns=4)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 7 * 4
    assert fig.get_size_inches()[0] == pytest.approx(TEXT_WIDTH_IN)


def test_plot_embedding_grid_layout():
    rng = np.random.default_rng(0)
    points = {name: rng.normal(size=(20, 2)) for name in ("SimCLR", "F_s", "F_f", "F_p")}
    colourings = [viz.Colouring("expression", rng.integers(-1, 2, 20), ["neutral", "happy"]),
                  viz.Colouring("yaw", *viz.yaw_bins(rng.uniform(-90, 90, 20)))]
    fig = viz.plot_embedding_grid(points, colourings)
    assert len(fig.axes) == 8
    assert [ax.get_title() for ax in fig.axes[:4]] == list(points)
    assert fig.axes[3].get_legend() is not None and fig.axes[7].get_legend() is not None
    with pytest.raises(ValueError, match="points but"):
        viz.plot_embedding_grid({"F_s": points["F_s"][:5]}, colourings)


def test_plot_loss_curves_picks_loss_keys():
    history = [{"step": s, "loss": 2.0 / (s + 1), "loss_face": 1.0 / (s + 1), "lr": 1e-4} for s in range(5)]
    ax = viz.plot_loss_curves(history).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["total", "$L_{face}$"]  # lr is not a loss
    assert ax.get_yscale() == "linear"  # a factor of 10: linear
    wide = [{**r, "loss_orth": 1e-4} for r in history]
    assert viz.plot_loss_curves(wide).axes[0].get_yscale() == "log"


def _records(epochs: int = 3, steps_per_epoch: int = 4) -> list[dict]:
    """A two-term run's metrics.jsonl records: steps, epoch means with DWA weights, the learning rate."""
    records = []
    for epoch in range(epochs):
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i + 1
            records.append({"kind": "step", "step": step, "loss": 3.0 / step, "loss_face": 2.0 / step,
                            "loss_pose": 1.0 / step, "lr": 1e-3 * (1 - step / 20)})
        records.append({"kind": "epoch", "epoch": epoch, "step": (epoch + 1) * steps_per_epoch, "loss_face": 1.0 / (epoch + 1),
                        "loss_pose": 0.5 / (epoch + 1), "alpha_face": 1.0 + 0.1 * epoch, "alpha_pose": 1.0 - 0.1 * epoch})
    return records


def test_one_loss_plotter_draws_faint_steps_with_epoch_means_and_the_dwa_weights():
    records = _records()
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    fig = Figure()
    ax_loss, ax_dwa = fig.subplots(1, 2)
    viz.draw_loss_curves(ax_loss, steps, epoch_means=epochs)
    lines = ax_loss.get_lines()
    assert [line.get_label() for line in lines if not line.get_label().startswith("_")] == ["total", "$L_{face}$",
                                                                                         "$L_{pose}$"]
    means = [line for line in lines if line.get_label() == "_nolegend_"]
    assert len(means) == 2 and all(len(line.get_xdata()) == 3 for line in means)  # one dot per epoch
    assert ax_loss.get_yscale() == "log"  # 3 / 1 down to 1 / 12: a factor of 36
    assert viz.draw_dwa_weights(ax_dwa, {"run": epochs}) == 2
    assert list(ax_dwa.get_lines()[0].get_xdata()) == [1, 2, 3]  # epochs count from 1


def test_training_curves_figure_and_the_runs_curves_png(tmp_path: Path):
    import json

    from pclkit.runlog import plot_curves

    fig = viz.plot_training_curves(_records(), title="demo")
    assert [ax.get_title() for ax in fig.axes] == ["loss terms (dots: epoch means)", "Dynamic Weight Average",
                                                   "learning rate"]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(r) for r in _records()) + "\n")
    out = plot_curves(metrics, tmp_path / "curves.png", title="demo")
    assert out == tmp_path / "curves.png" and out.read_bytes().startswith(b"\x89PNG")
    metrics.write_text(json.dumps({"kind": "epoch", "epoch": 0, "step": 1}) + "\n")
    assert plot_curves(metrics, tmp_path / "none.png") is None  # no step records: nothing to plot


# -- widgets --------------------------------------------------------------


def test_explorer_slider_drives_reconstruction(model):
    data = ImageList()
    explorer = widgets.PoseSwapExplorer(model, data, face_a=0, face_b=1, display_scale=2)
    assert explorer.widget is not None
    at_zero = shown(explorer.reconstruction_image, 2)
    # at alpha = 0 the image is D(F_f, F_p) of face A (up to 8-bit PNG rounding)
    np.testing.assert_allclose(at_zero, reference_reconstruction(model, data.images[0]), atol=1 / 255 + 1e-6)
    assert explorer.state is not None and explorer.state.truth is None  # no factors, no ground truth

    explorer.alpha.value = 1.0
    at_one = shown(explorer.reconstruction_image, 2)
    assert np.abs(at_one - at_zero).max() > 2 / 255
    np.testing.assert_allclose(explorer.state.reconstruction,
                               viz.render_swap(model, data.images[0], data.images[1], 1.0), atol=1e-6)

    explorer.swap_face.value = True
    np.testing.assert_allclose(explorer.state.reconstruction,
                               viz.render_swap(model, data.images[0], data.images[1], 1.0, swap_face=True), atol=1e-6)

    explorer.face_a.value = 2
    np.testing.assert_allclose(shown(explorer.image_a, 2), data.images[2].permute(1, 2, 0).numpy(), atol=1 / 255)


def test_explorer_refuses_simclr():
    simclr = build_model(method="simclr", width=8, proj_hidden_dim=32, proj_dim=16)
    with pytest.raises(ValueError, match="decoder"):
        widgets.PoseSwapExplorer(simclr, ImageList())


def test_only_the_widgets_module_imports_ipywidgets():
    import subprocess
    import sys

    code = ("import sys, pclkit.viz, pclkit.figures, pclkit.runs, pclkit.runlog; "
            "print('ipywidgets' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert not hasattr(viz, "LiveLossPlot")  # plots in viz, widgets in pclkit.widgets


def test_live_loss_plot_redraws_in_place():
    plot = widgets.LiveLossPlot(title="smoke", every=2)
    image = plot.widget
    plot({"step": 0, "loss": 3.0})
    assert bytes(image.value) == b""
    plot({"step": 1, "loss": 2.0})
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")
    plot({"step": 2, "loss": 1.5})
    plot({"step": 3, "loss": 1.0})
    assert plot.widget is image and bytes(image.value) != first
    assert len(plot.history) == 4


# -- style and export -------------------------------------------------------


def _draw_test_figure() -> Figure:
    with paper_style():
        fig = Figure(figsize=figure_size("column"), layout="constrained")
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 3, 2], label="$F_f \\oplus F_p$")
        ax.set_xlabel("yaw (°)")
        ax.set_title("PCL — α")
        ax.legend()
    return fig


def test_figure_sizes_are_cvpr_widths():
    assert figure_size("column")[0] == COLUMN_WIDTH_IN == 3.25
    assert figure_size("text", aspect=0.5) == (6.875, 3.4375)
    with pytest.raises(ValueError):
        figure_size("page")


def test_save_figure_writes_pdf_svg_png_with_type42_fonts(tmp_path: Path):
    paths = save_figure(_draw_test_figure(), "demo", out_dir=tmp_path / "figs")
    assert [p.name for p in paths] == ["demo.pdf", "demo.svg", "demo.png"]
    pdf = paths[0].read_bytes()
    subtypes = set(re.findall(rb"/Subtype\s*/(\w+)", pdf))
    assert b"Type3" not in subtypes, subtypes
    assert subtypes & {b"CIDFontType2", b"TrueType"}, subtypes  # Type 42 = embedded TrueType
    assert b"/CreationDate" not in pdf
    svg = paths[1].read_text()
    assert "<dc:date>" not in svg
    from PIL import Image

    with Image.open(paths[2]) as png:
        assert png.size == (975, 731)  # 3.25 in x 300 dpi


def test_save_figure_is_type42_even_outside_the_style(tmp_path: Path):
    with matplotlib.rc_context({"pdf.fonttype": 3}):
        fig = Figure()
        fig.subplots().set_title("default rcParams, Type 3 requested")
        pdf_path = save_figure(fig, "plain", out_dir=tmp_path, formats=("pdf",))[0]
    assert b"/Type3" not in pdf_path.read_bytes()


def test_save_figure_bytes_are_deterministic(tmp_path: Path):
    fig = _draw_test_figure()
    first = [p.read_bytes() for p in save_figure(fig, "a", out_dir=tmp_path / "one")]
    second = [p.read_bytes() for p in save_figure(_draw_test_figure(), "a", out_dir=tmp_path / "two")]
    assert first[0] == second[0], "PDF bytes differ between two saves"
    assert first[1] == second[1], "SVG bytes differ between two saves"


def test_save_figure_rejects_paths_in_name(tmp_path: Path):
    with pytest.raises(ValueError, match="file stem"):
        save_figure(_draw_test_figure(), "sub/dir", out_dir=tmp_path)
    with pytest.raises(ValueError, match="file stem"):
        save_figure(_draw_test_figure(), "fig.pdf", out_dir=tmp_path)


def test_style_leaves_global_rcparams_alone(tmp_path: Path):
    before = dict(matplotlib.rcParams)
    with paper_style():
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["font.size"] == 8
    save_figure(_draw_test_figure(), "x", out_dir=tmp_path, formats=("svg",))
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


# -- SynthFaces: ground truth and the factor explorer -------------------------


@pytest.fixture(scope="module")
def faces():
    from pclkit.data.synthfaces import SynthFaces

    return SynthFaces("test", n=3, size=SIZE)


def test_explorer_ground_truth_on_synthfaces(model, faces):
    explorer = widgets.PoseSwapExplorer(model, faces, face_a=0, face_b=1)
    state = explorer.state
    # at alpha = 0 the truth is face A at its own pose: the dataset image itself
    np.testing.assert_allclose(state.truth, viz.to_numpy_image(faces[0][0]), atol=1 / 255 + 1e-6)
    assert state.psnr is not None and np.isfinite(state.psnr)
    assert "dB" in explorer.readout.value
    # at alpha = 0 the truth is A itself, so the swap is exactly as close to one as to the other
    assert state.psnr_vs_a == pytest.approx(state.psnr, abs=0.2) and " dB</b> closer to " in explorer.readout.value

    explorer.pose_source.value = "rerender"  # pose source: A re-rendered at B's pose
    explorer.alpha.value = 1.0
    np.testing.assert_allclose(explorer.state.truth, explorer.state.image_b, atol=1e-6)
    yaw_a, yaw_b = faces.factors.pose[0, 0].item(), faces.factors.pose[1, 0].item()
    assert abs(yaw_a - yaw_b) > 1.0  # so the truth really moved
    assert np.abs(explorer.state.truth - state.truth).max() > 0.1
    assert explorer.state.yaw_a == pytest.approx(yaw_a) and explorer.state.yaw_b == pytest.approx(yaw_b)
    assert f"yaw {yaw_b:.0f}°" in explorer._captions["b"].value
    reconstruction, image_a = explorer.state.reconstruction, explorer.state.image_a
    expected_vs_a = 10 * np.log10(1.0 / np.mean((reconstruction - image_a) ** 2))
    assert explorer.state.psnr_vs_a == pytest.approx(expected_vs_a, abs=1e-3)
    closer_to = "the truth than to A" if explorer.state.psnr >= explorer.state.psnr_vs_a else "A than to the truth"
    assert f"closer to {closer_to}" in explorer.readout.value

    explorer.pose_source.value = "flip"
    np.testing.assert_allclose(explorer.state.image_b, viz.to_numpy_image(faces[0][0])[:, ::-1], atol=1e-6)


def test_synthfaces_explorer_rerenders_on_slider_change():
    from pclkit.data.synthfaces import EXPRESSION_PROTOTYPES, EXPRESSIONS

    explorer = widgets.SynthFacesExplorer(split="test", size=32, display_scale=1)
    frontal = viz.decode_png(explorer.image.value)
    assert frontal.shape == (32, 32, 3)
    explorer.yaw.value = 60.0
    turned = viz.decode_png(explorer.image.value)
    assert np.abs(turned - frontal).mean() > 0.01
    np.testing.assert_allclose(turned, explorer.render(), atol=1 / 255 + 1e-6)

    explorer.expression.value = EXPRESSIONS.index("surprise")
    assert [s.value for s in explorer.aus] == pytest.approx(EXPRESSION_PROTOTYPES[3].tolist(), abs=0.01)
    factors = explorer.factors()
    assert factors.pose[0].tolist() == [60.0, 0.0, 0.0] and factors.expression.item() == 3


def test_knn_agreement_reads_planted_clusters_and_random_labels_at_chance():
    from pclkit.viz import knn_agreement

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 100)
    clustered = rng.normal(size=(300, 2)) * 0.1 + labels[:, None] * 10.0
    accuracy, chance = knn_agreement(clustered, labels)
    assert accuracy == 1.0 and chance == pytest.approx(1 / 3)
    shuffled = rng.permutation(labels)
    accuracy, _ = knn_agreement(clustered, shuffled)
    assert accuracy < 0.5
    hidden = labels.copy()
    hidden[:100] = -1  # hidden points are left out
    assert knn_agreement(clustered, hidden)[1] == pytest.approx(0.5)


def test_swap_margin_by_yaw_turn_bins_pairs_and_scores_their_margin_over_face_a():
    from pclkit.image_metrics import psnr
    from pclkit.swap import margin_by_yaw_turn

    torch.manual_seed(0)
    truth, image_a = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    swapped = 0.9 * truth + 0.1 * image_a  # nearer the truth than A
    bins = margin_by_yaw_turn(swapped, truth, image_a, torch.tensor([5.0, 15.0, 50.0, 60.0]))
    assert list(bins) == ["0-10", "10-20", "40-180"]  # the empty 20-40 bin is left out
    assert bins["40-180"]["pairs"] == 2
    margin = psnr(swapped, truth) - psnr(swapped, image_a)
    assert bins["40-180"]["margin_over_a"] == pytest.approx(float(margin[2:].mean()), abs=1e-5)
    assert bins["0-10"]["psnr_swap"] == pytest.approx(float(psnr(swapped[:1], truth[:1])), abs=1e-5)
    assert all(b["margin_over_a"] > 0 for b in bins.values())


def test_swap_margin_figure_draws_one_bar_per_model_and_bin(model, faces):
    from pclkit import figures

    margins = figures.swap_margins({"PCL": model}, faces, n_pairs=3, seed=0)["PCL"]
    assert margins["all"]["pairs"] == 3 and sum(v["pairs"] for k, v in margins.items() if k != "all") == 3
    fig = figures.swap_margin_figure({"PCL": margins, "PCL'": margins})
    left, right = fig.axes[:2]
    assert len(left.patches) == len(right.patches) == 2 * len(margins)  # two models x (bins + "all pairs")
    assert left.get_xticklabels()[-1].get_text().startswith("all pairs")


def test_turning_pair_picks_the_turn_nearest_the_target_within_the_yaw_limit():
    from types import SimpleNamespace

    from pclkit.figures import turning_pair

    yaw = torch.tensor([0.0, 44.0, -40.0, 80.0, 10.0, -5.0])
    factors = SimpleNamespace(pose=torch.stack([yaw, torch.zeros(6), torch.zeros(6)], 1))
    a, b = turning_pair(factors, turn=45.0, limit=45.0, candidates=64)
    assert a != b and abs(yaw[a]) <= 45 and abs(yaw[b]) <= 45
    turns = [abs(float(yaw[j] - yaw[i])) for i in range(6) for j in range(6)
             if i != j and abs(yaw[i]) <= 45 and abs(yaw[j]) <= 45]
    assert abs(abs(float(yaw[b] - yaw[a])) - 45.0) <= min(abs(t - 45.0) for t in turns) + 5.0
    with pytest.raises(ValueError, match="within ±1"):
        turning_pair(SimpleNamespace(pose=torch.tensor([[50.0, 0, 0], [60.0, 0, 0]])), limit=1.0)
