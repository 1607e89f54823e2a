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
# # SynthFaces: faces with known factors
#
# PCL (Liu et al., CVPR 2023) learns from pairs of views that differ in *head pose*
# but show the same face. **SynthFaces**, the dataset embedded in `pclkit`, renders
# procedural 3D faces (ray-cast ellipsoids, Lambert shading) whose every factor is
# known: an **identity** (head shape, skin, hair, eyes, accessories), one of
# **7 expressions** driven by **8 action units** (AU1, AU2, AU4, AU6, AU9, AU12,
# AU25, AU26 — the DISFA set of the paper), a **head pose** (yaw, pitch, roll) and
# nuisance (light, background, framing). Because the factors are known we can
# later ask which feature encodes what, and score a pose-swap reconstruction
# against the true re-render.

# %%
# %matplotlib inline
import os
from pathlib import Path

from pclkit import figures, viz, widgets
from pclkit.data.synthfaces import EXPRESSIONS, SynthFaces
from pclkit.style import save_figure

# %% tags=["parameters"]
SMOKE = os.environ.get("PCLKIT_SMOKE", "0") == "1"  # tiny data and models (the tests, CI)
FIGURES_DIR = os.environ.get("PCLKIT_FIGURES_DIR", "figures")  # relative to the repository root
N_SAMPLES = None      # training images shown (None: 16 in smoke mode, else 32)
SIZE = None           # pixels (None: 32 in smoke mode, else 64)
IDENTITIES = None     # rows of the factors figure (None: 2 in smoke mode, else 4 identities)
EXPLORER_SIZE = None  # pixels of the interactive render (None: 48 in smoke mode, else 128)

# %%
# Values derived from the parameters. papermill injects its cell right after the parameters
# cell, so `-p SMOKE True` reaches everything here; a parameter left at None takes its mode's default.
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
FIGURES_DIR = ROOT / FIGURES_DIR  # an absolute path stays as it is
N_SAMPLES = N_SAMPLES or (16 if SMOKE else 32)
SIZE = SIZE or (32 if SMOKE else 64)
IDENTITIES = IDENTITIES or ((0, 1) if SMOKE else (0, 1, 2, 3))
EXPLORER_SIZE = EXPLORER_SIZE or (48 if SMOKE else 128)

# %% [markdown]
# ## Samples
#
# Training images with their labels. Identities of the `train`, `val` and `test`
# splits are disjoint, as VoxCeleb (pretraining) and LFW (evaluation) are in the paper.

# %%
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

# %% [markdown]
# Match the printed labels to the first row of images: the expression names what the mouth,
# brows and eyes show, and the larger |yaw|, the further the head is turned. Light, background
# and framing (the nuisance factors) vary from image to image too but are not printed.

# %% [markdown]
# ## One face, every expression and pose
#
# Each row is one identity: its seven expressions (frontal, canonical light),
# then the happy face turning from yaw −90° to +90°.

# %%
fig = figures.synthfaces_factors_figure(identities=IDENTITIES, size=SIZE)
save_figure(fig, "synthfaces_factors", FIGURES_DIR)
fig

# %% [markdown]
# Within a row only one factor changes at a time: the left block differs by the mouth,
# brows and eyes alone (the action units), the right block by head pose alone. A feature
# that is good for expression must follow the left block and ignore the right one.

# %% [markdown]
# ## Explore the factors
#
# Choose an expression to load its AU prototype, then move any slider; the face is
# re-rendered when you release it (one render takes a fraction of a second on a CPU).

# %%
explorer = widgets.SynthFacesExplorer(split="train", size=EXPLORER_SIZE)
explorer.widget

# %% [markdown]
# Move one AU slider at a time to see which part of the face it drives (AU12 lifts the
# lip corners, AU26 drops the jaw), then turn yaw: the face keeps its identity and
# expression while the ellipsoids rotate.
