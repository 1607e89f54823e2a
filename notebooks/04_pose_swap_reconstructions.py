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
# # 4. Pose-swap reconstructions
#
# PCL's decoder reconstructs an image from a face feature and a pose feature,
# $D(F_f, F_p)$. If the two are disentangled, giving it the pose feature of
# another view should re-pose the face. The paper shows, for a face $s$ and its
# pose-changed view $\hat s$: (a) $s$, (b) $D(F_f, F_p)$, (c) $D(F_f, \hat F_p)$,
# (d) $F_f$ alone, (e) $F_p$ alone, (f) $\hat F_p$ alone. On SynthFaces the true
# re-render of a face at any pose is known, so swaps can be scored (PSNR).
#
# The model comes from `pclkit.runs.resolve_model`, which prints its choice: the main
# job's run (`make reproduce`) when present, else the notebooks' own run, else the
# weights shipped in the package (`pretrained:pcl_synthfaces`), else a run trained here.

# %%
# %matplotlib inline
import os
from pathlib import Path

from pclkit import figures
from pclkit.data.synthfaces import synthfaces_split
from pclkit.runs import describe_run, load_run, resolve_model
from pclkit.style import save_figure
from pclkit.widgets import PoseSwapExplorer

# %% tags=["parameters"]
SMOKE = os.environ.get("PCLKIT_SMOKE", "0") == "1"  # tiny data and models (the tests, CI)
PRESET = None      # None: "smoke" in smoke mode, else "synth_cpu" ("paper" on a GPU with face frames)
RUNS_DIR = os.environ.get("PCLKIT_RUNS_DIR", "runs")  # relative to the repository root
FIGURES_DIR = os.environ.get("PCLKIT_FIGURES_DIR", "figures")
METHOD = "pcl"     # a method whose model has a decoder D(F_f, F_p): "pcl" or "pcfrl"
N_TEST = None      # SynthFaces test faces to pick from (None: 64 in smoke mode, else 512)
N_FACES = 8        # columns of the grids
SEED = 0
PRETRAINED = None  # without a local run, use the weights shipped in pclkit (None: not in smoke mode)

# %%
# Values derived from the parameters. papermill injects its cell right after the parameters
# cell, so `-p SMOKE True` reaches everything here; a parameter left at None takes its mode's default.
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RUNS_DIR, FIGURES_DIR = ROOT / RUNS_DIR, ROOT / FIGURES_DIR  # absolute paths stay as they are
PRESET = PRESET or ("smoke" if SMOKE else "synth_cpu")
N_TEST = N_TEST or (64 if SMOKE else 512)
PRETRAINED = not SMOKE if PRETRAINED is None else PRETRAINED

# %%
source = resolve_model(METHOD, PRESET, RUNS_DIR, pretrained=PRETRAINED)
print(describe_run(source))
model, config = load_run(source)
test = synthfaces_split("test", N_TEST, model.image_size)

# %% [markdown]
# The line above says which run or shipped weights the figures below decode with.
#
# # ## The paper's grid
#
# $\hat s$ is the horizontal flip of $s$, as in the reference code. (d)–(f)
# decode one feature with the other set to zero.

# %%
fig = figures.pose_swap_grid_figure(model, test, N_FACES, pose_change="flip")
save_figure(fig, "pose_swap_grid", FIGURES_DIR)
fig

# %% [markdown]
# Compare $D(F_f, \hat F_p)$ with $\hat s$ above it: if it shows the mirrored face, the pose
# feature carries the flip. $D(F_f, 0)$ shows what the face feature alone encodes,
# $D(0, F_p)$ and $D(0, \hat F_p)$ what the pose features alone encode. A flip is a weak
# pose change (a frontal face barely changes); SynthFaces can re-render the same face at
# another head pose instead:

# %%
fig = figures.pose_swap_grid_figure(model, test, N_FACES, pose_change="render3d")
save_figure(fig, "pose_swap_grid_render3d", FIGURES_DIR)
fig

# %% [markdown]
# Here $\hat s$ differs from $s$ in yaw, pitch and roll, so $D(F_f, \hat F_p)$ shows whether
# the decoder turns the head by the whole angle, part of it, or not at all.

# %% [markdown]
# ## Swaps between faces, against the ground truth
#
# $D(F_f^A, F_p^B)$ should show face A at the head pose of B: the SynthFaces
# re-render of A at B's pose is the truth (PSNR on each swap). The last row,
# $D(F_f^A, F_p^A)$, is what a decoder that ignores $F_p$ would give.

# %%
fig = figures.pose_swap_ground_truth_figure(model, test, N_FACES, SEED)
save_figure(fig, "pose_swap_ground_truth", FIGURES_DIR)
fig

# %% [markdown]
# A swap succeeds when $D(F_f^A, F_p^B)$ looks like the re-render below it (PSNR printed on
# each swap) rather than like the last row; the columns where A and B face opposite sides
# show a decoder that keeps the pose of A most clearly.

# %% [markdown]
# ## Where a swap is a swap
#
# Over every pair of the test faces: how much closer $D(F_f^A, F_p^B)$ is to the truth than to
# face A at its own pose (the margin of the swap-fidelity table), and its PSNR against the truth,
# by how far the head turns between A and B. The dashed lines are the "does it learn" bars.

# %%
margins = figures.swap_margins({"PCL": model}, test, n_pairs=len(test), seed=SEED)
fig = figures.swap_margin_figure(margins)
save_figure(fig, "swap_margin_by_yaw_turn", FIGURES_DIR)
fig

# %% [markdown]
# Where the head barely turns the truth and face A are nearly the same picture, so no decoder can
# be closer to one than to the other; the margin should grow with the turn. The mean over random
# pairs ("all pairs") is what the table reports, and the near-frontal pose prior makes many pairs
# small turns.

# %% [markdown]
# ## Interpolating the pose feature
#
# $D(F_f, (1-\alpha) F_p + \alpha \hat F_p)$ for a face and the same face
# re-rendered at the head pose most different from its own, above the re-render
# at the interpolated angles.

# %%
pairs = figures.contrasting_pose_pairs(test.factors, 2, SEED)  # faces far apart in yaw
fig = figures.pose_interpolation_figure(model, test, pairs)
save_figure(fig, "pose_interpolation", FIGURES_DIR)
fig

# %% [markdown]
# Follow each row from left to right: the head should turn smoothly, step by step with the
# re-render below it, rather than jump from one pose to the other halfway.

# %% [markdown]
# ## Explorer
#
# Pick face A and a pose source (face B, the flip of A, or A re-rendered at B's
# pose), slide α to move the pose feature from $F_p$ to $\hat F_p$, and swap in
# the face feature of the pose source. The reconstruction updates beside the
# SynthFaces re-render at the interpolated pose, with its PSNR and how much closer
# it is to that re-render than to face A as it is. The explorer opens on a pair whose
# heads turn by about 45° of yaw, both within ±45° (chosen by pose alone): a swap can
# only look different from A where the head turns (the figure above), and in the pose
# prior's far tails the decoder has seen few faces.

# %%
face_a, face_b = figures.turning_pair(test.factors, turn=45.0, seed=SEED)
explorer = PoseSwapExplorer(model, test, face_a=face_a, face_b=face_b)
explorer.widget

# %% [markdown]
# Keep α at 0 and the reconstruction should match face A; move α to 1 and it should match the
# re-render on its right, with the PSNR rising as it gets closer and the margin over A growing
# from 0 dB. Then pick a face B whose yaw is close to A's: the margin stays near 0, since the
# truth and A are then nearly the same picture; or one whose yaw is 60° or more from A's: there
# the decoder, which has seen few such poses, often fails (the backdrop goes wrong first).
