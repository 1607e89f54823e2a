# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Face versus pose embeddings
#
# The paper's figure: t-SNE of SimCLR features and of PCL's $F_f$ and $F_p$,
# coloured by expression (happy vs neutral) and by head-pose yaw. A face-aware
# feature should group expressions and ignore yaw; a pose feature should order
# the points by yaw. We add $F_s$ and UMAP, and repeat the figure on the real
# CMU faces (coloured by the 4 head poses and the 20 identities).
#
# The models come from `pclkit.runs.resolve_model`, which prints its choice: the main
# job's run (`make reproduce`) when present, else the notebooks' own run, else the
# weights shipped in the package (`pretrained:<method>_synthfaces`), else a run trained here.

# %%
# %matplotlib inline
import os
from pathlib import Path

import torch
from IPython.display import display

from pclkit import figures
from pclkit.data import CMUFaces, as_tensors
from pclkit.data.synthfaces import synthfaces_split
from pclkit.methods import MAIN_COMPARISON, method_label
from pclkit.runs import cmu_search_paths, default_cmu_root, describe_run, load_run, resolve_model
from pclkit.style import save_figure

# %% tags=["parameters"]
SMOKE = os.environ.get("PCLKIT_SMOKE", "0") == "1"  # tiny data and models (the tests, CI)
PRESET = None      # None: "smoke" in smoke mode, else "synth_cpu" ("paper" on a GPU with face frames)
RUNS_DIR = os.environ.get("PCLKIT_RUNS_DIR", "runs")  # relative to the repository root
FIGURES_DIR = os.environ.get("PCLKIT_FIGURES_DIR", "figures")
CMU_ROOT = None    # CMU Face Images folder (None: $PCLKIT_CMU or ../shared/data/cmu_faces); skipped when absent
METHODS = MAIN_COMPARISON  # methods compared, the baseline first (add "pcfrl", "pros" for the successors)
N_POINTS = None    # SynthFaces test images embedded (None: 200 in smoke mode, else 2000)
N_CMU = None       # CMU images embedded (None: 200 in smoke mode, else all; 0: all)
PROJECTIONS = ("tsne", "umap")
SHOWN_EXPRESSIONS = ("neutral", "happy")  # as in the paper; any of the 7 classes
SEED = 0
PRETRAINED = None  # without a local run, use the weights shipped in pclkit (None: not in smoke mode)

# %%
# Values derived from the parameters. papermill injects its cell right after the parameters
# cell, so `-p SMOKE True` reaches everything here; a parameter left at None takes its mode's default.
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RUNS_DIR, FIGURES_DIR = ROOT / RUNS_DIR, ROOT / FIGURES_DIR  # absolute paths stay as they are
CMU_ROOT = ROOT / CMU_ROOT if CMU_ROOT else default_cmu_root()  # None when the data is absent
PRESET = PRESET or ("smoke" if SMOKE else "synth_cpu")
N_POINTS = N_POINTS or (200 if SMOKE else 2000)
N_CMU = (200 if SMOKE else 0) if N_CMU is None else N_CMU
PRETRAINED = not SMOKE if PRETRAINED is None else PRETRAINED

# %%
models = {}
for name in METHODS:
    source = resolve_model(name, PRESET, RUNS_DIR, pretrained=PRETRAINED)
    print(describe_run(source))
    models[method_label(name)], _ = load_run(source)
size = next(iter(models.values())).image_size

# %% [markdown]
# One line per method says which run or shipped weights it uses; the embeddings below are
# of those models.
#
# ## SynthFaces

# %%
test = synthfaces_split("test", N_POINTS, size)
images, labels = as_tensors(test)
feature_sets = figures.embedding_feature_sets(models, images)
colourings = figures.synthfaces_colourings(labels, SHOWN_EXPRESSIONS)
print({name: tuple(f.shape) for name, f in feature_sets.items()})

# %% [markdown]
# One feature set per column of the figures below, each with one row per test image.

# %%
for projection in PROJECTIONS:
    fig = figures.embeddings_figure(feature_sets, colourings, projection, SEED)
    save_figure(fig, f"embeddings_{projection}", FIGURES_DIR)
    display(fig)

# %% [markdown]
# Read each column top to bottom: in the expression row, points of one colour
# should cluster for a face-aware feature; in the yaw row, a pose feature shows a
# colour gradient from −90° to 90°.
#
# ## CMU faces

# %%
if CMU_ROOT is not None:
    cmu = CMUFaces(CMU_ROOT, scale=2, size=size)
    cmu_images, cmu_labels = as_tensors(cmu)
    if 0 < N_CMU < len(cmu_images):
        keep = torch.randperm(len(cmu_images), generator=torch.Generator().manual_seed(SEED))[:N_CMU]
        cmu_images, cmu_labels = cmu_images[keep], {k: v[keep] for k, v in cmu_labels.items()}
    cmu_sets = figures.embedding_feature_sets(models, cmu_images)
    for projection in PROJECTIONS:
        fig = figures.embeddings_figure(cmu_sets, figures.cmu_colourings(cmu_labels, cmu.class_names), projection, SEED)
        save_figure(fig, f"embeddings_cmu_{projection}", FIGURES_DIR)
        display(fig)
else:
    print(f"CMU faces not found in {', '.join(map(str, cmu_search_paths()))}: skipped (set PCLKIT_CMU)")

# %% [markdown]
# The same reading on real faces: a pose feature should separate the four head poses
# whoever the person is, a face feature should group the photographs of one person.
