"""Notebook widgets: the pose-swap explorer, the SynthFaces factor explorer, the live loss plot.

The only module of the package that imports ipywidgets (``pip install
'pclkit[notebooks]'``). Each widget keeps one ``ipywidgets.Image`` per picture
and replaces its PNG bytes in place, so nothing flickers; the pictures come
from :mod:`pclkit.viz`, and tests drive the widgets by setting ``slider.value``
(no browser needed).

* :class:`PoseSwapExplorer` -- D(F_f, (1 - α) F_p^A + α F_p^B) of a model with a
  decoder (PCL, Liu et al., CVPR 2023, Eq. 2) beside the SynthFaces ground truth;
* :class:`SynthFacesExplorer` -- sliders over the factors of one SynthFaces face;
* :class:`LiveLossPlot` -- a trainer callback that redraws the loss curves as records arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from pclkit.callbacks import TrainerCallback
from pclkit.style import figure_size, paper_style
from pclkit.viz import (
    as_float_batch,
    decode_swap,
    draw_loss_curves,
    draw_monitor_panels,
    encode,
    feature_rows,
    figure_png,
    ground_truth_swap,
    plot_loss_curves,
    png_bytes,
    psnr,
    require_decoder,
    to_numpy_image,
)

try:
    import ipywidgets as widgets
except ImportError as error:  # pragma: no cover - the notebooks extra is missing
    raise ImportError("pclkit.widgets needs ipywidgets 8: pip install 'pclkit[notebooks]'") from error

__all__ = ["LiveLossPlot", "PoseSwapExplorer", "SwapState", "SynthFacesExplorer"]

#: features of one image as :func:`pclkit.viz.encode` returns them: ``{"F_s": (1, D_s), "F_f": (1, D), ...}``
Features = Mapping[str, Tensor]


def _captioned(image: Any, caption: Any) -> Any:
    """A caption above an image widget."""
    return widgets.VBox([caption, image], layout=widgets.Layout(align_items="center", margin="0 6px"))


@dataclass(frozen=True)
class SwapState:
    """What the pose-swap explorer shows: images ``(H, W, 3)`` in [0, 1], PSNR in dB (None without ground truth).

    ``psnr_vs_a`` is the reconstruction's PSNR against face A as it is (with the ground truth only): a
    swap that really moves the pose is closer to the truth than to A, by ``psnr - psnr_vs_a`` dB (the
    per-pair form of the swap-fidelity table's margin). ``yaw_a`` / ``yaw_b``: the head yaw of A and
    of the pose source in degrees (SynthFaces only).
    """

    image_a: np.ndarray
    image_b: np.ndarray
    reconstruction: np.ndarray
    truth: np.ndarray | None
    psnr: float | None
    psnr_vs_a: float | None = None
    yaw_a: float | None = None
    yaw_b: float | None = None


class PoseSwapExplorer:
    """Pick faces A and B, slide the pose feature from ``F_p`` (A) to ``F_p̂`` (the pose source), see ``D``.

    The reconstruction is ``D(F_f, (1 - α) F_p^A + α F_p^B)`` (:func:`decode_swap`),
    with ``F_f`` from A, or from the pose source when "swap face" is on. The pose
    source is face B, the flip of A, or (SynthFaces) A re-rendered at B's head
    pose. On SynthFaces the ground truth beside it is the re-render of the face
    at the interpolated head pose (:func:`ground_truth_swap`) with its PSNR and how
    much closer the reconstruction is to it than to face A as it is; for the flip it
    is approximate (a flip also mirrors light and hair). A swap can only differ from A
    where the head turns: :func:`pclkit.figures.turning_pair` picks a pair that turns by
    about 45°.

    ``explorer.widget`` is the UI; ``explorer.state`` the last :class:`SwapState`.
    Sliders that need a decoder pass use ``continuous_update=False``.

    Args:
        model: a model with a decoder ``decode(F_f, F_p)`` (e.g. :class:`pclkit.models.PCLModel`).
        dataset: items ``(image (3, S, S), labels)``; SynthFaces (with ``factors``) adds the ground truth.
        face_a, face_b: initial indices.
        display_scale: nearest-neighbour enlargement of the displayed images.
    """

    def __init__(self, model: nn.Module, dataset: Any, face_a: int = 0, face_b: int = 1, display_scale: int = 3) -> None:
        require_decoder(model, "the pose-swap explorer")
        self.model = model
        self.dataset = dataset
        self.factors = getattr(dataset, "factors", None)
        self.display_scale = display_scale
        last = len(dataset) - 1
        self.face_a = widgets.IntSlider(value=min(face_a, last), min=0, max=last, description="face A",
                                        continuous_update=False)
        self.face_b = widgets.IntSlider(value=min(face_b, last), min=0, max=last, description="face B",
                                        continuous_update=False)
        sources = [("face B", "face_b"), ("flip of A", "flip")]
        if self.factors is not None:
            sources.append(("A at B's pose (re-render)", "rerender"))
        self.pose_source = widgets.ToggleButtons(options=sources, value="face_b", description="pose from",
                                                 style={"button_width": "auto"})
        self.alpha = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="α: F_p → F_p̂",
                                         continuous_update=False, readout_format=".2f",
                                         style={"description_width": "initial"})
        self.swap_face = widgets.Checkbox(value=False, description="take F_f from the pose source", indent=False,
                                          layout=widgets.Layout(width="auto", margin="0 0 0 24px"))
        self.image_a = widgets.Image(format="png")
        self.image_b = widgets.Image(format="png")
        self.reconstruction_image = widgets.Image(format="png")
        self.truth_image = widgets.Image(format="png")
        for image, name in ((self.image_a, "a"), (self.image_b, "b"), (self.reconstruction_image, "reconstruction"),
                            (self.truth_image, "truth")):
            image.add_class(f"pclkit-{name}")  # stable hooks for browser tests and custom CSS
        self.readout = widgets.HTML()
        self._captions = {name: widgets.HTML() for name in ("a", "b", "recon", "truth")}
        self._cache_key: tuple[int, int, str] | None = None
        self._cache: tuple[Tensor, Tensor, Features, Features, Any, Any] | None = None
        self.state: SwapState | None = None
        self._widget = self._layout()
        for control in (self.face_a, self.face_b, self.pose_source, self.alpha, self.swap_face):
            control.observe(self.update, names="value")
        self.update()

    @property
    def widget(self) -> Any:
        """The explorer's UI (an ``ipywidgets.VBox``)."""
        return self._widget

    def _layout(self) -> Any:
        controls = widgets.VBox([widgets.HBox([self.face_a, self.face_b]), self.pose_source,
                                 widgets.HBox([self.alpha, self.swap_face])])
        pictures = widgets.HBox([
            _captioned(self.image_a, self._captions["a"]),
            _captioned(self.image_b, self._captions["b"]),
            _captioned(self.reconstruction_image, self._captions["recon"]),
            _captioned(self.truth_image, self._captions["truth"]),
        ])
        return widgets.VBox([controls, pictures, self.readout])

    def _views(self) -> tuple[Tensor, Tensor, Features, Features, Any, Any]:
        """Images A and pose source ``(3, S, S)``, their features, and their SynthFaces factors (or None)."""
        key = (self.face_a.value, self.face_b.value, self.pose_source.value)
        if key != self._cache_key or self._cache is None:
            self._cache = self._compute_views(*key)
            self._cache_key = key
        return self._cache

    def _compute_views(self, index_a: int, index_b: int, source: str) -> tuple[Tensor, Tensor, Features, Features, Any, Any]:
        image_a = as_float_batch(self.dataset[index_a][0])[0]
        factors_a = self.factors[index_a:index_a + 1] if self.factors is not None else None
        factors_b = self.factors[index_b:index_b + 1] if self.factors is not None else None
        if source == "face_b":
            image_b = as_float_batch(self.dataset[index_b][0])[0]
        elif source == "flip":
            image_b, factors_b = self._flip(image_a, factors_a)
        elif source == "rerender":
            from pclkit.data.synthfaces import Factors, render

            factors_b = Factors.combine(factors_a, factors_b)
            image_b = render(factors_b, size=image_a.shape[-1])[0]
        else:
            raise ValueError(f"unknown pose source {source!r}")
        feats = encode(self.model, torch.stack([image_a, image_b]))
        feats_a, feats_b = feature_rows(feats, 0), feature_rows(feats, 1)
        return image_a, image_b, feats_a, feats_b, factors_a, factors_b

    @staticmethod
    def _flip(image: Tensor, factors: Any) -> tuple[Tensor, Any]:
        """Horizontal flip of ``image (3, S, S)`` and its mirrored SynthFaces factors (None without factors)."""
        from pclkit.augment import make_pose_change

        flipped, _ = make_pose_change("flip")(image[None], None, torch.Generator().manual_seed(0))
        return flipped[0], (factors.mirrored() if factors is not None else None)

    def compute(self) -> SwapState:
        """The images and PSNR for the current control values (no widget is touched)."""
        image_a, image_b, feats_a, feats_b, factors_a, factors_b = self._views()
        alpha, swap = float(self.alpha.value), bool(self.swap_face.value)
        reconstruction = to_numpy_image(decode_swap(self.model, feats_a, feats_b, alpha, swap)[0])
        truth = score = score_vs_a = yaw_a = yaw_b = None
        shown_a = to_numpy_image(image_a)
        if factors_a is not None and factors_b is not None:
            face_from = factors_b if swap and self.pose_source.value == "face_b" else factors_a
            truth = ground_truth_swap(face_from, factors_a, factors_b, alpha, size=image_a.shape[-1])
            score, score_vs_a = psnr(reconstruction, truth), psnr(reconstruction, shown_a)
            yaw_a, yaw_b = float(factors_a.pose[0, 0]), float(factors_b.pose[0, 0])
        return SwapState(shown_a, to_numpy_image(image_b), reconstruction, truth, score, score_vs_a, yaw_a, yaw_b)

    def update(self, change: Any = None) -> None:
        """Recompute and replace the PNG bytes of the image widgets in place."""
        state = self.compute()
        scale = self.display_scale
        self.image_a.value = png_bytes(state.image_a, scale)
        self.image_b.value = png_bytes(state.image_b, scale)
        self.reconstruction_image.value = png_bytes(state.reconstruction, scale)
        if state.truth is not None:
            self.truth_image.value = png_bytes(state.truth, scale)
        self.truth_image.layout.visibility = "visible" if state.truth is not None else "hidden"
        self._set_captions(state)
        self.state = state

    def _set_captions(self, state: SwapState) -> None:
        source = self.pose_source.value
        alpha = float(self.alpha.value)
        face = "F_f of the pose source" if self.swap_face.value else "F_f of A"
        yaw_a = "" if state.yaw_a is None else f", yaw {state.yaw_a:.0f}°"
        yaw_b = "" if state.yaw_b is None else f", yaw {state.yaw_b:.0f}°"
        self._captions["a"].value = f"<b>A</b> (face {self.face_a.value}{yaw_a})"
        self._captions["b"].value = {"face_b": f"<b>pose source</b>: face {self.face_b.value}{yaw_b}",
                                     "flip": f"<b>pose source</b>: flip of A{yaw_b}",
                                     "rerender": f"<b>pose source</b>: A at B's pose{yaw_b}"}[source]
        self._captions["recon"].value = f"<b>D</b>({face}, F_p at α={alpha:.2f})"
        approx = " (approx.)" if source == "flip" else ""
        self._captions["truth"].value = f"<b>ground truth</b>{approx}" if state.truth is not None else ""
        if state.psnr is None:
            self.readout.value = "no ground truth for this dataset"
            return
        margin = state.psnr - state.psnr_vs_a
        verdict = (f"<b>{margin:.2f} dB</b> closer to the truth than to A" if margin >= 0
                   else f"<b>{-margin:.2f} dB</b> closer to A than to the truth")
        self.readout.value = (f"PSNR vs ground truth: <b>{state.psnr:.2f} dB</b>; vs face A as it is: "
                              f"{state.psnr_vs_a:.2f} dB — {verdict}")


class LiveLossPlot(TrainerCallback):
    """A loss plot that redraws in place (one ``ipywidgets.Image``) as metric records arrive.

    Call the object with each record (``{"step": 10, "loss": 1.2, ...}``);
    ``widget`` shows the curves, ``history`` holds the step records and
    ``monitor`` the probe-monitor records (:mod:`pclkit.monitor`). Once a
    monitor record has arrived, the picture also shows its panels (expression
    and identity accuracy, yaw R^2 per feature). It is a
    :class:`pclkit.callbacks.TrainerCallback` (see :meth:`follow`).
    """

    def __init__(self, title: str = "", x_key: str = "step", keys: Sequence[str] | None = None, every: int = 1) -> None:
        self.title, self.x_key, self.keys, self.every = title, x_key, keys, max(1, every)
        self.history: list[dict[str, Any]] = []
        self.monitor: list[dict[str, Any]] = []
        self.image = widgets.Image(format="png")

    @property
    def widget(self) -> Any:
        return self.image

    def __call__(self, record: Mapping[str, Any]) -> None:
        """Add one record and redraw: step records every ``every``, monitor records at once (others are ignored)."""
        kind = record.get("kind", "step")
        if kind == "monitor":
            self.monitor.append(dict(record))
            self.redraw()
        elif kind == "step":
            self.history.append(dict(record))
            if len(self.history) % self.every == 0:
                self.redraw()

    def on_record(self, trainer: Any, record: Mapping[str, Any]) -> None:
        """The trainer-callback hook: same as calling the plot with ``record``."""
        self(record)

    def extend(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add many records (e.g. a finished run's ``metrics.jsonl``) and redraw once."""
        self.history.extend(dict(r) for r in records if r.get("kind", "step") == "step")
        self.monitor.extend(dict(r) for r in records if r.get("kind") == "monitor")
        self.redraw()

    def follow(self, trainer: Any) -> None:
        """Draw every record a :class:`pclkit.trainer.Trainer` writes to its ``metrics.jsonl``.

        Registers this plot with ``trainer.add_callback`` (records are written to
        the file first). Only the main rank logs, so elsewhere nothing is drawn.
        """
        trainer.add_callback(self)

    def figure(self) -> Figure:
        """The loss curves; beside them the monitor panels once monitor records exist."""
        if not self.monitor:
            return plot_loss_curves(self.history, x_key=self.x_key, keys=self.keys, title=self.title)
        from pclkit.monitor import MONITOR_TASKS

        with paper_style():
            fig = Figure(figsize=figure_size("text", aspect=0.34), layout="constrained")
            axes = fig.subplots(1, 1 + len(MONITOR_TASKS), width_ratios=[1.4] + [1.0] * len(MONITOR_TASKS))
            draw_loss_curves(axes[0], self.history, x_key=self.x_key, keys=self.keys)
            draw_monitor_panels(axes[1:], {self.title or "run": self.monitor})
            if self.title:
                fig.suptitle(self.title)
        return fig

    def redraw(self) -> None:
        """Render the current history into the image widget."""
        self.image.value = figure_png(self.figure())


class SynthFacesExplorer:
    """Sliders over the SynthFaces factors of one face, re-rendered on release.

    Identity, expression (sets the AU sliders to its prototype), the 8 AU
    intensities, yaw, pitch and roll; canonical light and background. Rendering
    one face takes a fraction of a second on a CPU, so sliders use
    ``continuous_update=False``. ``widget`` is the UI, ``image`` the picture,
    :meth:`factors` the current :class:`pclkit.data.synthfaces.Factors`.
    """

    def __init__(self, split: str = "train", size: int = 96, display_scale: int = 2) -> None:
        from pclkit.data import synthfaces as synth

        self.size, self.display_scale = size, display_scale
        ids = synth.DEFAULT_CONFIG.identity_range(split)
        (yaw_lo, yaw_hi), (pitch_lo, pitch_hi), (roll_lo, roll_hi) = synth.DEFAULT_CONFIG.pose_range
        self.identity = widgets.IntSlider(value=ids.start, min=ids.start, max=ids.stop - 1, description="identity",
                                          continuous_update=False)
        self.expression = widgets.Dropdown(options=[(name, i) for i, name in enumerate(synth.EXPRESSIONS)], value=0,
                                           description="expression")
        self.aus = [widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, continuous_update=False,
                                        description=f"{name} {text}", style={"description_width": "150px"})
                    for name, text in zip(synth.AU_NAMES, synth.AU_DESCRIPTIONS)]
        self.yaw = widgets.FloatSlider(value=0.0, min=yaw_lo, max=yaw_hi, step=5.0, description="yaw °",
                                       continuous_update=False)
        self.pitch = widgets.FloatSlider(value=0.0, min=pitch_lo, max=pitch_hi, step=5.0, description="pitch °",
                                         continuous_update=False)
        self.roll = widgets.FloatSlider(value=0.0, min=roll_lo, max=roll_hi, step=5.0, description="roll °",
                                        continuous_update=False)
        self.image = widgets.Image(format="png")
        self.image.add_class("pclkit-synthface")
        self._holding = False
        self._widget = widgets.HBox([
            widgets.VBox([self.identity, self.expression, self.yaw, self.pitch, self.roll]),
            widgets.VBox(self.aus),
            self.image,
        ])
        self.expression.observe(self._set_prototype, names="value")
        for control in (self.identity, self.yaw, self.pitch, self.roll, *self.aus):
            control.observe(self.update, names="value")
        self.update()

    @property
    def widget(self) -> Any:
        return self._widget

    def factors(self) -> Any:
        """The face on screen as a one-row :class:`Factors` (canonical nuisance)."""
        from pclkit.data.synthfaces import make_factors

        aus = torch.tensor([[slider.value for slider in self.aus]], dtype=torch.float32)
        pose = torch.tensor([[self.yaw.value, self.pitch.value, self.roll.value]], dtype=torch.float32)
        return make_factors([self.identity.value], [self.expression.value], aus=aus, pose=pose)

    def render(self) -> np.ndarray:
        """The current face, ``(size, size, 3)`` in [0, 1]."""
        from pclkit.data.synthfaces import render

        return to_numpy_image(render(self.factors(), size=self.size)[0])

    def _set_prototype(self, change: Any = None) -> None:
        from pclkit.data.synthfaces import EXPRESSION_PROTOTYPES

        self._holding = True  # one render for the whole prototype, not one per AU slider
        try:
            for slider, value in zip(self.aus, EXPRESSION_PROTOTYPES[self.expression.value].tolist()):
                slider.value = round(value, 2)
        finally:
            self._holding = False
        self.update()

    def update(self, change: Any = None) -> None:
        """Re-render and replace the image bytes in place."""
        if self._holding:
            return
        self.image.value = png_bytes(self.render(), self.display_scale)
