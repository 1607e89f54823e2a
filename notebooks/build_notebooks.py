"""Write the workbook's notebooks (``notebooks/*.ipynb``) from the Python source below.

The notebooks are generated so that they can be reviewed as plain Python and
stay free of outputs: edit this file, then run

    python notebooks/build_notebooks.py          # rewrite the .ipynb files
    python notebooks/build_notebooks.py --check  # exit 1 if a notebook differs from this source

Every notebook has a kernelspec (``python3``, so JupyterLab opens it without
asking for a kernel), a ``parameters`` cell with the smoke switch
(``PCLKIT_SMOKE=1``), and defines no dataset or model of its own: everything
comes from :mod:`pclkit`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

#: the paths every notebook reads from the environment (tests point them at temporary folders)
PATHS = '''\
import os
from pathlib import Path

SMOKE = os.environ.get("PCLKIT_SMOKE", "0") == "1"  # CI / quick check: tiny data and models
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
FIGURES_DIR = Path(os.environ.get("PCLKIT_FIGURES_DIR", ROOT / "figures"))
RUNS_DIR = Path(os.environ.get("PCLKIT_RUNS_DIR", ROOT / "runs"))
CMU_ROOT = Path(os.environ.get("PCLKIT_CMU", ROOT.parent / "shared" / "data" / "cmu_faces"))
PRESET = "smoke" if SMOKE else "synth_cpu"  # or "paper" on a GPU with a folder of face frames
'''


def md(text: str) -> tuple[str, str]:
    return ("markdown", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


def parameters(extra: str = "") -> tuple[str, str]:
    """The parameters cell: shared paths and switches, then the notebook's own knobs."""
    return ("parameters", (PATHS + ("\n" + extra.strip("\n") if extra else "")).strip("\n"))


# --------------------------------------------------------------------------- 00


SYNTHFACES = [
    md("""
# SynthFaces: faces with known factors

PCL (Liu et al., CVPR 2023) learns from pairs of views that differ in *head pose*
but show the same face. **SynthFaces**, the dataset embedded in `pclkit`, renders
procedural 3D faces (ray-cast ellipsoids, Lambert shading) whose every factor is
known: an **identity** (head shape, skin, hair, eyes, accessories), one of
**7 expressions** driven by **8 action units** (AU1, AU2, AU4, AU6, AU9, AU12,
AU25, AU26 — the DISFA set of the paper), a **head pose** (yaw, pitch, roll) and
nuisance (light, background, framing). Because the factors are known we can
later ask which feature encodes what, and score a pose-swap reconstruction
against the true re-render.
"""),
    parameters("""
N_SAMPLES = 16 if SMOKE else 32          # training images shown
SIZE = 32 if SMOKE else 64               # pixels
IDENTITIES = (0, 1) if SMOKE else (0, 1, 2, 3)
EXPLORER_SIZE = 48 if SMOKE else 128     # pixels of the interactive render
"""),
    code("""
%matplotlib inline
from IPython.display import display

from pclkit import figures, viz
from pclkit.data.synthetic import EXPRESSIONS, SynthFaces
from pclkit.style import save_figure
"""),
    md("""
## Samples

Training images with their labels. Identities of the `train`, `val` and `test`
splits are disjoint, as VoxCeleb (pretraining) and LFW (evaluation) are in the paper.
"""),
    code("""
train = SynthFaces("train", n=N_SAMPLES, size=SIZE)
images = figures.dataset_images(train, range(N_SAMPLES))
rows = {f"images {start}–{start + 7}": images[start:start + 8] for start in range(0, N_SAMPLES, 8)}
fig = viz.plot_image_rows(rows, max_columns=8)
save_figure(fig, "synthfaces_samples", FIGURES_DIR)
for i in range(8):
    _, labels = train[i]
    yaw, pitch, roll = labels["pose"].tolist()
    print(f"{i}: identity {labels['identity']:>3}  {EXPRESSIONS[labels['expression']]:<9}"
          f"  yaw {yaw:+6.1f}°  pitch {pitch:+5.1f}°  roll {roll:+5.1f}°")
fig
"""),
    md("""
## One face, every expression and pose

Each row is one identity: its seven expressions (frontal, canonical light),
then the happy face turning from yaw −90° to +90°.
"""),
    code("""
fig = figures.synthfaces_factors_figure(identities=IDENTITIES, size=SIZE)
save_figure(fig, "synthfaces_factors", FIGURES_DIR)
fig
"""),
    md("""
## Explore the factors

Choose an expression to load its AU prototype, then move any slider; the face is
re-rendered when you release it (one render takes a fraction of a second on a CPU).
"""),
    code("""
explorer = viz.SynthFacesExplorer(split="train", size=EXPLORER_SIZE)
explorer.widget
"""),
]


# --------------------------------------------------------------------------- 01


PRETRAINING = [
    md("""
# 1. Pretraining: SimCLR and PCL

**SimCLR** (Chen et al., 2020) pulls two augmented views of a face together in
the shared feature $F_s$. **PCL** (Liu et al., CVPR 2023) splits $F_s$ into a
face-aware feature $F_f$ and a pose-related feature $F_p$ and trains them with

$$L = L_{dis} + L_{orth} + \\alpha_{pose} L_{pose} + \\alpha_{face} L_{face},$$

where $L_{dis}$ reconstructs each view from its own $F_f$ and the $F_p$ of the
view it must reproduce, $L_{orth}$ keeps the branches orthogonal, $L_{pose}$
contrasts same-pose views against pose-changed views of the same image, and
$L_{face}$ is SimCLR on $F_f$. The weights $\\alpha$ follow Dynamic Weight
Average. The main job's runs (`runs/reproduce/<preset>_<method>_s0`, from
`make reproduce`) are used when present, else runs cached under
`runs/<preset>_<method>`; a missing one is trained here (delete the folder to
retrain). The weights shipped in the package are not used here: they carry no
loss curves.
"""),
    parameters("""
METHODS = ("simclr", "pcl")
OVERRIDES = {}  # config overrides for new runs, e.g. {"optim.epochs": 20}
"""),
    code("""
%matplotlib inline
from IPython.display import Image, display

from pclkit import figures, viz
from pclkit.config import resolve_config
from pclkit.runlog import read_metrics
from pclkit.style import save_figure
"""),
    md("## Setup"),
    code("""
config = resolve_config(PRESET, {"method": "pcl", **OVERRIDES})
print(f"preset {config.preset}: {config.model.encoder} encoder at {config.model.image_size} px, "
      f"{config.data.n} SynthFaces training images, batch {config.optim.batch_size}, {config.optim.epochs} epochs, "
      f"lr {config.optim.lr:g}, tau {config.loss.temperature}, M = {config.views.num_negatives} pose negatives, "
      f"pose change '{config.views.pose_change}', {config.loss.schedule} schedule, {config.runtime.precision}")
"""),
    md("""
## Train (or load)

Each run shows a progress bar and its loss terms as they are logged. With
`runtime.monitor_every` (every 2 epochs in `synth_cpu`, off in `smoke`) the
trainer also probes the features during pretraining on a fixed set of
SynthFaces **validation** images (`pclkit.monitor.ProbeMonitor`: kNN
expression and identity accuracy, ridge yaw $R^2$ of $F_s$, $F_f$, $F_p$);
the live view adds those panels as the values arrive.
"""),
    code("""
runs = {}
for method in METHODS:
    label = figures.METHOD_LABELS[method]
    live = viz.LiveLossPlot(title=f"{label}, preset {PRESET}", every=1 if SMOKE else 10)
    display(live.widget)
    runs[label] = figures.resolve_model(method, PRESET, RUNS_DIR, pretrained=False, overrides=OVERRIDES,
                                        live_plot=live)
    if not live.history:  # a cached run: draw the curve it logged
        live.extend(read_metrics(runs[label] / "metrics.jsonl"))
    print(figures.describe_run(runs[label]))
"""),
    md("""
## Loss curves

Every loss term per logged step and, for PCL, the Dynamic Weight Average
weights per epoch (1 for the first two epochs). Runs that logged the probe
monitor get a second row: its three tasks against epoch, one colour per
feature and one line style per run.
"""),
    code("""
fig = figures.pretraining_curves_figure(runs)
save_figure(fig, "pretraining_curves", FIGURES_DIR)
fig
"""),
    md("""
## Reconstructions at the end of training

Rows: $s$, $D(F_f, F_p)$, $D(F_f, \\hat F_p)$, $\\hat s$, $D(\\hat F_f, \\hat F_p)$,
$D(\\hat F_f, F_p)$ — each reconstruction takes its pose from the view it reproduces.
"""),
    code("""
snapshot = runs["PCL"] / "recon" / "final.png" if "PCL" in runs else None
Image(filename=snapshot) if snapshot is not None and snapshot.exists() else print("no final snapshot")
"""),
]


# --------------------------------------------------------------------------- 02


LINEAR_EVALUATION = [
    md("""
# 2. Linear evaluation on the four tasks

The paper freezes the encoder and trains linear probes for expression
recognition (RAF-DB, FER-2013), face verification (LFW, CPLFW), AU detection
(DISFA) and head pose (AFLW2000). Here the same protocols run on SynthFaces,
where each task has exact labels: 7-class expression, identity-pair
verification (also cross-pose pairs, |Δyaw| > 45°), 8-AU detection and
yaw/pitch/roll regression. Probes are trained on `train`, selected on `val`,
scored on `test` (disjoint identities); numbers are mean ± std over seeds.
Baselines: raw pixels (PCA) and a randomly initialised encoder.

The models come from `figures.resolve_model`, which prints its choice: the main job's
run (`runs/reproduce/<preset>_<method>_s0`, from `make reproduce`) when present, else
this notebook's run (`runs/<preset>_<method>`), else the weights shipped in the
package (`pretrained:<method>_synthfaces`), else a run trained here.
"""),
    parameters("""
SEEDS = 1 if SMOKE else 3
N_TRAIN, N_VAL, N_TEST = (300, 150, 600) if SMOKE else (3000, 1000, 2000)
N_PAIRS = 200 if SMOKE else 3000
CACHE_DIR = None if SMOKE else str(ROOT / ".cache" / "features")
TABLES_DIR = FIGURES_DIR / "tables"
PRETRAINED = not SMOKE  # without a local run, use the weights shipped in pclkit/weights
"""),
    code("""
%matplotlib inline
from IPython.display import Markdown, display

from pclkit import figures
from pclkit.evaluate import EvalConfig, evaluate_checkpoints, result_tables, write_results
from pclkit.probes import ProbeConfig
from pclkit.style import save_figure
from pclkit.tables import to_markdown

runs = {figures.METHOD_LABELS[m]: figures.resolve_model(m, PRESET, RUNS_DIR, pretrained=PRETRAINED)
        for m in ("simclr", "pcl")}
for folder in runs.values():
    print(figures.describe_run(folder))
# smoke mode: one regularisation strength per probe instead of the validation grid
probe = ProbeConfig(l2_grid=(1e-2,), ridge_grid=(1.0,), max_iter=20) if SMOKE else ProbeConfig()
"""),
    code("""
config = EvalConfig(seeds=SEEDS, n_train=N_TRAIN, n_val=N_VAL, n_test=N_TEST, n_pairs=N_PAIRS,
                    n_swap=16 if SMOKE else 128, cache_dir=CACHE_DIR, probe=probe)
rows = evaluate_checkpoints(list(runs.values()), config, names=list(runs))
tables = result_tables(rows, "synthfaces")
"""),
    md("""
## Main table

SimCLR and PCL on $F_s$ (what the paper probes) next to the baselines, laid
out like the paper's comparison: one column per task, best in bold.
"""),
    code("""
display(Markdown(to_markdown(tables["main"])))
"""),
    md("""
## Which feature? $F_f$ / $F_p$ / $F_s$ / $F_f \\oplus F_p$

The paper's feature comparison: $F_f$ should carry expression and identity,
$F_p$ head pose; the paper reports its best RAF-DB accuracy with $F_s$ and its
best DISFA F1 with $F_f \\oplus F_p$.
"""),
    code("""
display(Markdown(to_markdown(tables["features"])))
fig = figures.linear_eval_features_figure(rows, "synthfaces")
save_figure(fig, "linear_eval_features", FIGURES_DIR)
fig
"""),
    md("""
## Disentanglement and swap fidelity

How much pose (R²), identity and expression each branch carries, and how well
$D(F_f^A, F_p^B)$ matches the re-render of face A at the pose of B.
"""),
    code("""
for name in ("disentanglement", "swap", "au"):
    if name in tables:
        display(Markdown(to_markdown(tables[name])))
files = write_results(rows, TABLES_DIR / "synthfaces")
print("tables written:", ", ".join(str(p) for p in files.values()))
"""),
    md("""
## CMU faces

Real photographs of 20 people (4 poses, 4 expressions): subject-disjoint
expression and pose probes and identity-pair verification. Skipped when the
data is not present (see the README for where to get it).
"""),
    code("""
if CMU_ROOT.is_dir():
    cmu_config = EvalConfig(data="cmu", cmu_root=str(CMU_ROOT), seeds=SEEDS, n_pairs=N_PAIRS,
                            cache_dir=CACHE_DIR, probe=probe)
    cmu_rows = evaluate_checkpoints(list(runs.values()), cmu_config, names=list(runs))
    cmu_tables = result_tables(cmu_rows, "cmu")
    for name in ("main", "features", "disentanglement"):
        display(Markdown(to_markdown(cmu_tables[name])))
    write_results(cmu_rows, TABLES_DIR / "cmu")
    fig = figures.linear_eval_features_figure(cmu_rows, "cmu", figures.CMU_FEATURE_PANELS)
    save_figure(fig, "linear_eval_features_cmu", FIGURES_DIR)
    display(fig)
else:
    print(f"CMU faces not found at {CMU_ROOT}: skipped (set PCLKIT_CMU)")
"""),
]


# --------------------------------------------------------------------------- 03


EMBEDDINGS = [
    md("""
# 3. Face versus pose embeddings

The paper's figure: t-SNE of SimCLR features and of PCL's $F_f$ and $F_p$,
coloured by expression (happy vs neutral) and by head-pose yaw. A face-aware
feature should group expressions and ignore yaw; a pose feature should order
the points by yaw. We add $F_s$ and UMAP, and repeat the figure on the real
CMU faces (coloured by the 4 head poses and the 20 identities).

The models come from `figures.resolve_model`, which prints its choice: the main job's
run (`runs/reproduce/<preset>_<method>_s0`, from `make reproduce`) when present, else
this notebook's run (`runs/<preset>_<method>`), else the weights shipped in the
package (`pretrained:<method>_synthfaces`), else a run trained here.
"""),
    parameters("""
N_POINTS = 200 if SMOKE else 2000        # SynthFaces test images embedded
N_CMU = 200 if SMOKE else None           # CMU images embedded (None: all)
METHODS_2D = ("tsne", "umap")
SHOWN_EXPRESSIONS = ("neutral", "happy")  # as in the paper; any of the 7 classes
SEED = 0
PRETRAINED = not SMOKE  # without a local run, use the weights shipped in pclkit/weights
"""),
    code("""
%matplotlib inline
import torch
from IPython.display import display

from pclkit import figures
from pclkit.data import CMUFaces, as_tensors
from pclkit.style import save_figure

models = {}
for method in ("simclr", "pcl"):
    source = figures.resolve_model(method, PRESET, RUNS_DIR, pretrained=PRETRAINED)
    print(figures.describe_run(source))
    models[figures.METHOD_LABELS[method]], _ = figures.load_run(source)
size = models["PCL"].image_size
"""),
    md("## SynthFaces"),
    code("""
test = figures.synthfaces("test", N_POINTS, size)
images, labels = as_tensors(test)
feature_sets = figures.embedding_feature_sets(models, images)
colourings = figures.synthfaces_colourings(labels, SHOWN_EXPRESSIONS)
print({name: tuple(f.shape) for name, f in feature_sets.items()})
"""),
    code("""
for method in METHODS_2D:
    fig = figures.embeddings_figure(feature_sets, colourings, method, SEED)
    save_figure(fig, f"embeddings_{method}", FIGURES_DIR)
    display(fig)
"""),
    md("""
Read each column top to bottom: in the expression row, points of one colour
should cluster for a face-aware feature; in the yaw row, a pose feature shows a
colour gradient from −90° to 90°.

## CMU faces
"""),
    code("""
if CMU_ROOT.is_dir():
    cmu = CMUFaces(CMU_ROOT, scale=2, size=size)
    cmu_images, cmu_labels = as_tensors(cmu)
    if N_CMU is not None and N_CMU < len(cmu_images):
        keep = torch.randperm(len(cmu_images), generator=torch.Generator().manual_seed(SEED))[:N_CMU]
        cmu_images, cmu_labels = cmu_images[keep], {k: v[keep] for k, v in cmu_labels.items()}
    cmu_sets = figures.embedding_feature_sets(models, cmu_images)
    for method in METHODS_2D:
        fig = figures.embeddings_figure(cmu_sets, figures.cmu_colourings(cmu_labels, cmu.class_names), method, SEED)
        save_figure(fig, f"embeddings_cmu_{method}", FIGURES_DIR)
        display(fig)
else:
    print(f"CMU faces not found at {CMU_ROOT}: skipped (set PCLKIT_CMU)")
"""),
]


# --------------------------------------------------------------------------- 04


POSE_SWAP = [
    md("""
# 4. Pose-swap reconstructions

PCL's decoder reconstructs an image from a face feature and a pose feature,
$D(F_f, F_p)$. If the two are disentangled, giving it the pose feature of
another view should re-pose the face. The paper shows, for a face $s$ and its
pose-changed view $\\hat s$: (a) $s$, (b) $D(F_f, F_p)$, (c) $D(F_f, \\hat F_p)$,
(d) $F_f$ alone, (e) $F_p$ alone, (f) $\\hat F_p$ alone. On SynthFaces the true
re-render of a face at any pose is known, so swaps can be scored (PSNR).

The model comes from `figures.resolve_model`, which prints its choice: the main job's
run (`runs/reproduce/<preset>_pcl_s0`, from `make reproduce`) when present, else
this notebook's run (`runs/<preset>_pcl`), else the weights shipped in the
package (`pretrained:pcl_synthfaces`), else a run trained here.
"""),
    parameters("""
N_TEST = 64 if SMOKE else 512   # SynthFaces test faces to pick from
N_FACES = 8                     # columns of the grids
SEED = 0
PRETRAINED = not SMOKE  # without a local run, use the weights shipped in pclkit/weights
"""),
    code("""
%matplotlib inline
from pclkit import figures, viz
from pclkit.style import save_figure

source = figures.resolve_model("pcl", PRESET, RUNS_DIR, pretrained=PRETRAINED)
print(figures.describe_run(source))
model, config = figures.load_run(source)
test = figures.synthfaces("test", N_TEST, model.image_size)
"""),
    md("""
## The paper's grid

$\\hat s$ is the horizontal flip of $s$, as in the reference code. (d)–(f)
decode one feature with the other set to zero.
"""),
    code("""
fig = figures.pose_swap_grid_figure(model, test, N_FACES, pose_change="flip")
save_figure(fig, "pose_swap_grid", FIGURES_DIR)
fig
"""),
    md("""
A flip is a weak pose change (a frontal face barely changes). SynthFaces can
re-render the same face at another head pose instead:
"""),
    code("""
fig = figures.pose_swap_grid_figure(model, test, N_FACES, pose_change="render3d")
save_figure(fig, "pose_swap_grid_render3d", FIGURES_DIR)
fig
"""),
    md("""
## Swaps between faces, against the ground truth

$D(F_f^A, F_p^B)$ should show face A at the head pose of B: the SynthFaces
re-render of A at B's pose is the truth (PSNR on each swap). The last row,
$D(F_f^A, F_p^A)$, is what a decoder that ignores $F_p$ would give.
"""),
    code("""
fig = figures.pose_swap_ground_truth_figure(model, test, N_FACES, SEED)
save_figure(fig, "pose_swap_ground_truth", FIGURES_DIR)
fig
"""),
    md("""
## Interpolating the pose feature

$D(F_f, (1-\\alpha) F_p + \\alpha \\hat F_p)$ for a face and the same face
re-rendered at the head pose most different from its own, above the re-render
at the interpolated angles.
"""),
    code("""
pairs = figures.contrasting_pose_pairs(test.factors, 2, SEED)  # faces far apart in yaw
fig = figures.pose_interpolation_figure(model, test, pairs)
save_figure(fig, "pose_interpolation", FIGURES_DIR)
fig
"""),
    md("""
## Explorer

Pick face A and a pose source (face B, the flip of A, or A re-rendered at B's
pose), slide α to move the pose feature from $F_p$ to $\\hat F_p$, and swap in
the face feature of the pose source. The reconstruction updates beside the
SynthFaces re-render at the interpolated pose and its PSNR.
"""),
    code("""
explorer = viz.PoseSwapExplorer(model, test, face_a=0, face_b=1)
explorer.widget
"""),
]


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "00_synthfaces.ipynb": SYNTHFACES,
    "01_pretraining.ipynb": PRETRAINING,
    "02_linear_evaluation.ipynb": LINEAR_EVALUATION,
    "03_face_vs_pose_embeddings.ipynb": EMBEDDINGS,
    "04_pose_swap_reconstructions.ipynb": POSE_SWAP,
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A v4 notebook without outputs, with stable cell ids and the python3 kernelspec."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    stem = name.split("_")[0]
    for i, (kind, source) in enumerate(cells):
        cell_id = f"nb{stem}-{i:02d}"
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source, id=cell_id)
        else:
            cell = nbformat.v4.new_code_cell(source, id=cell_id)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ from this source")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: notebooks/)")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = render(build(name, cells))
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("out of date (run python notebooks/build_notebooks.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
