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
# # 1. Pretraining: SimCLR and PCL
#
# **SimCLR** (Chen et al., 2020) pulls two augmented views of a face together in
# the shared feature $F_s$. **PCL** (Liu et al., CVPR 2023) splits $F_s$ into a
# face-aware feature $F_f$ and a pose-related feature $F_p$ and trains them with
#
# $$L = L_{dis} + L_{orth} + \alpha_{pose} L_{pose} + \alpha_{face} L_{face},$$
#
# where $L_{dis}$ reconstructs each view from its own $F_f$ and the $F_p$ of the
# view it must reproduce, $L_{orth}$ keeps the branches orthogonal, $L_{pose}$
# contrasts same-pose views against pose-changed views of the same image, and
# $L_{face}$ is SimCLR on $F_f$. The weights $\alpha$ follow Dynamic Weight
# Average. This notebook first shows the views of one training step and the four
# loss terms on a small batch, then trains (or loads) both methods.
#
# `pclkit.runs.resolve_model` picks the runs and prints which: the main job's runs
# (`make reproduce`) when present, else runs cached by the notebooks; a missing one is
# trained here (delete its folder to retrain). The weights shipped in the package are
# not used here: they carry no loss curves.

# %%
# %matplotlib inline
import math
import os
from pathlib import Path

import torch
from IPython.display import Image, display

from pclkit import figures, viz
from pclkit.config import resolve_config
from pclkit.data.synthfaces import synthfaces_split
from pclkit.losses import nt_xent, orthogonality, pose_contrastive, swap_reconstruction
from pclkit.methods import MAIN_COMPARISON, get_method, method_label
from pclkit.models import build_model
from pclkit.runlog import read_metrics
from pclkit.runs import describe_run, load_run, resolve_model
from pclkit.style import save_figure
from pclkit.views import ViewBuilder
from pclkit.widgets import LiveLossPlot

# %% tags=["parameters"]
SMOKE = os.environ.get("PCLKIT_SMOKE", "0") == "1"  # tiny data and models (the tests, CI)
PRESET = None     # None: "smoke" in smoke mode, else "synth_cpu" ("paper" on a GPU with face frames)
RUNS_DIR = os.environ.get("PCLKIT_RUNS_DIR", "runs")  # relative to the repository root
FIGURES_DIR = os.environ.get("PCLKIT_FIGURES_DIR", "figures")
METHODS = MAIN_COMPARISON  # methods to train and compare, the baseline first
OVERRIDES = {}    # config overrides for new runs, e.g. {"optim.epochs": 20}
BATCH = 16        # images in the batch of the views and losses below
SHOWN = 6         # of which the views figure shows the first SHOWN
SEED = 0

# %%
# Values derived from the parameters. papermill injects its cell right after the parameters
# cell, so `-p SMOKE True` reaches everything here; a parameter left at None takes its mode's default.
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RUNS_DIR, FIGURES_DIR = ROOT / RUNS_DIR, ROOT / FIGURES_DIR  # absolute paths stay as they are
PRESET = PRESET or ("smoke" if SMOKE else "synth_cpu")

# %% [markdown]
# ## Setup

# %%
config = resolve_config(PRESET, {"method": "pcl", **OVERRIDES})
print(f"preset {config.preset}: {config.model.encoder} encoder at {config.model.image_size} px, "
      f"{config.data.n} SynthFaces training images, batch {config.optim.batch_size}, {config.optim.epochs} epochs, "
      f"lr {config.optim.lr:g}, tau {config.loss.temperature}, M = {config.views.num_negatives} pose negatives, "
      f"pose change '{config.views.pose_change}', {config.loss.schedule} schedule, {config.runtime.precision}")

# %% [markdown]
# These are the settings PCL trains with below; SimCLR uses the same data, encoder, batch
# and face views, and only the $L_{face}$ term on $F_s$.
#
# ## The views of one step
#
# A step starts from a batch of clean images $s$. The method says which view families
# it needs (`get_method(...).steps()`), and `pclkit.views.ViewBuilder` makes them:
# two **face views** per image for $L_{face}$ (quadrant patches or whole-face crops,
# each with its own colour augmentation), two **pose positives** (colour-augmented
# copies of the full frame: same pose), $M$ **pose negatives** (colour-augmented
# copies of the pose-changed view $\hat s$ of the *same* image), and the **noisy
# reconstruction inputs** $s + n$, $\hat s + n$ whose clean versions are the targets of
# $L_{dis}$.

# %%
method = get_method(config.method)(config)
parts = tuple(dict.fromkeys(part for step in method.steps() for part in step.view_parts))
batch = synthfaces_split("train", BATCH, config.model.image_size,
                         pose_limits=config.data.pose_limits, prior=config.data.pose_prior)
images = figures.dataset_images(batch, range(BATCH))  # (B, 3, S, S) in [0, 1]
generator = torch.Generator().manual_seed(SEED)
M = config.views.num_negatives
views = ViewBuilder(config).build(images, generator, parts, factors=batch.factors)
shown = {
    "$s$": images,
    "face view a": views.face_a,
    "face view b": views.face_b,
    "pose positive a": views.pose_a,
    "pose positive b": views.pose_b,
    **{f"pose negative {m + 1}": views.pose_neg[:, m] for m in range(M if views.pose_neg is not None else 0)},
    "$\\hat s$ (target)": views.target_hat,
    "$s + n$": views.recon_in,
    "$\\hat s + n$": views.recon_hat_in,
}
fig = viz.plot_image_rows({label: rows[:SHOWN] for label, rows in shown.items() if rows is not None})
print(f"{method}: view families {parts}; encoder input {views.encoder_input()[0].shape[0]} images for a batch of "
      f"{views.batch_size}" + (" (noisy s and ŝ double as the first pose positive and negative)"
                               if views.recon_shared else ""))
fig

# %% [markdown]
# Read each column top to bottom: the pose positives keep the pose of $s$ and change only
# its appearance (colour, grey, edge maps, noise), while every pose negative shows the same
# face at the pose of $\hat s$, so $L_{pose}$ can tell them apart only by head pose. The face
# views are patches or crops of the face (in `synth_cpu` the second is cut from $\hat s$, so
# the two views of a face also differ in pose), so $L_{face}$ must match them by identity
# and expression.
#
# ## Each loss on this batch
#
# One encoder pass over all views (`views.encoder_input()`) gives $F_s$, $F_f$ and $F_p$ for
# every row; each loss below takes its rows. The model is **randomly initialised**, so the two
# contrastive losses should sit at their chance levels, given with their formulas.

# %%
model = build_model(config.model).eval()
inputs, spans = views.encoder_input()
with torch.no_grad():
    features = model.forward_features(inputs)  # {"F_s": (N, D_s), "F_f": (N, D), "F_p": (N, D)}


def rows(group: str, step: int = 1) -> slice:
    """The rows of one view group in the encoder batch."""
    start, stop = spans[group]
    return slice(start, stop, step)


B = views.batch_size
print({name: tuple(value.shape) for name, value in features.items()}, f"B = {B}, M = {M}")

# %% [markdown]
# Each feature has one row per encoder input ($2B$ face views, $2B$ pose positives,
# $BM$ pose negatives and, unless shared, $2B$ noisy inputs).
#
# ### $L_{face}$: NT-Xent (Chen et al., 2020, Eq. 1)
#
# With $z = g_f(F_f)$ of the $2B$ face views, $\mathrm{sim}$ the cosine similarity and
# $k'$ the other view of row $k$:
#
# $$\ell_k = -\log \frac{\exp(\mathrm{sim}(z_k, z_{k'})/\tau)}{\sum_{m \neq k} \exp(\mathrm{sim}(z_k, z_m)/\tau)},
# \qquad L_{face} = \frac{1}{2B} \sum_{k=1}^{2B} \ell_k .$$
#
# A random model cannot tell the positive from the other $2B-2$ rows, so $L_{face}
# \approx \ln(2B-1)$. SimCLR's loss is the same function on $g(F_s)$.

# %%
with torch.no_grad():
    z_a, z_b = model.project_face(features["F_f"][spans["face_a"][0]:spans["face_b"][1]]).chunk(2)
    loss_face = nt_xent(z_a, z_b, config.loss.temperature)
print(f"L_face = {loss_face:.3f}   ln(2B - 1) = {math.log(2 * B - 1):.3f}")

# %% [markdown]
# The two numbers should agree to about a tenth; training drives $L_{face}$ well below
# $\ln(2B-1)$ as the two views of a face find each other.
#
# ### $L_{pose}$: pose contrast (Liu et al., 2023, Eq. 4–5)
#
# With $p = g_p(F_p)$, the two pose positives $p_i, p_j$ of an image and its own $M$ pose
# negatives $\hat p_{i,m}$:
#
# $$\ell_p(i, j) = -\log \frac{e^{s(p_i, p_j)/\tau}}{e^{s(p_i, p_j)/\tau}
# + \sum_{m=1}^{M} e^{s(p_i, \hat p_{i,m})/\tau}}, \qquad L_{pose} = \ell_p(i, j) + \ell_p(j, i),$$
#
# averaged over the batch. By chance each direction picks the positive among $M + 1$
# candidates: $L_{pose} \approx 2 \ln(M + 1)$.

# %%
with torch.no_grad():
    pose_proj = model.project_pose(features["F_p"][spans["pose_a"][0]:spans["pose_neg"][1]])  # (2B + BM, P)
    anchor, positive = pose_proj[:B], pose_proj[B:2 * B]
    negatives = pose_proj[2 * B:].reshape(B, M, -1)  # (B, M, P): image i meets only its own negatives
    loss_pose = pose_contrastive(anchor, positive, negatives, config.loss.pose_temperature,
                                 positive_in_denominator=config.loss.pose_positive_in_denominator)
print(f"L_pose = {loss_pose:.3f}   2 ln(M + 1) = {2 * math.log(M + 1):.3f}")

# %% [markdown]
# Again chance level. A trained pose branch must separate the image from *itself* at another
# pose, so $L_{pose}$ falls only if $F_p$ encodes head pose.
#
# ### $L_{orth}$ and $L_{dis}$ on the noisy inputs
#
# $L_{orth}$ pushes the face and pose features of the same input apart, for $s$ and for
# $\hat s$ (`loss.orth_mode` picks the form; the paper writes
# $\frac{1}{N}\sum_i (F_{f,i}^\top F_{p,i})^2$, Eq. 3). $L_{dis}$ (Eq. 2) decodes every
# face feature with the pose feature of the view it must reproduce:
#
# $$L_{dis} = |s - D(F_f, F_p)| + |\hat s - D(F_f, \hat F_p)| + |s - D(\hat F_f, F_p)|
# + |\hat s - D(\hat F_f, \hat F_p)| .$$

# %%
if views.recon_shared:  # s + n is the first pose positive, ŝ + n the first pose negative of each image
    rows_s, rows_hat = rows("pose_a"), rows("pose_neg", M)
else:
    rows_s, rows_hat = rows("recon_in"), rows("recon_hat_in")
face, face_hat = features["F_f"][rows_s], features["F_f"][rows_hat]
pose, pose_hat = features["F_p"][rows_s], features["F_p"][rows_hat]
with torch.no_grad():
    loss_orth = (orthogonality(face, pose, config.loss.orth_mode)
                 + orthogonality(face_hat, pose_hat, config.loss.orth_mode))
    swap = swap_reconstruction(views.target, views.target_hat, face, face_hat, pose, pose_hat, model.decode)
print(f"L_orth ({config.loss.orth_mode}) = {loss_orth:.4f}")
print(f"L_dis = {swap.total:.3f} = "
      + " + ".join(f"{value:.3f} ({name})" for name, value in swap.named_terms().items()))
fig = viz.plot_image_rows({"$s$": views.target[:SHOWN], "$D(F_f, F_p)$": swap.reconstructions[0, :SHOWN],
                           "$\\hat s$": views.target_hat[:SHOWN],
                           "$D(\\hat F_f, \\hat F_p)$": swap.reconstructions[3, :SHOWN]})
fig

# %% [markdown]
# An untrained decoder paints nearly the same flat image whatever features it gets, so its
# four $L_{dis}$ terms are almost equal; after training the reconstructions should look like
# their targets. $L_{orth}$ is 0 for orthogonal branches; its `xcorr` form (`synth_cpu`) sums
# squared correlations estimated from $B$ rows, which are noisy on a small batch, so compare
# its values only at the same $B$.
#
# The trainer computes the same terms in one call, `method.loss_terms` (then weights
# them with `method.term_scales`):

# %%
with torch.no_grad():
    terms = method.loss_terms(model, views, features, spans, generator)
print({name: round(float(value), 4) for name, value in terms.items()})

# %% [markdown]
# These match the four values above: the notebook's formulas are the ones the trainer
# optimises (with `views.negative_mix` on, the trainer would also mix the pose negatives).

# %% [markdown]
# ## Train (or load)
#
# Each run shows a progress bar and its loss terms as they are logged. With
# `runtime.monitor_every` (every 2 epochs in `synth_cpu`, off in `smoke`) the
# trainer also probes the features during pretraining on a fixed set of
# SynthFaces **validation** images (`pclkit.monitor.ProbeMonitor`: kNN
# expression and identity accuracy, ridge yaw $R^2$ of $F_s$, $F_f$, $F_p$);
# the live view adds those panels as the values arrive.

# %%
trained = {}  # method name -> run folder
for name in METHODS:
    live = LiveLossPlot(title=f"{method_label(name)}, preset {PRESET}", every=1 if SMOKE else 10)
    display(live.widget)
    trained[name] = resolve_model(name, PRESET, RUNS_DIR, pretrained=False, overrides=OVERRIDES, live_plot=live)
    if not live.history:  # a cached run: draw the curve it logged
        live.extend(read_metrics(Path(trained[name]) / "metrics.jsonl"))
    print(describe_run(trained[name]))

# %% [markdown]
# The printed lines say which run each method uses and how long it trained; the live plots
# show its loss terms falling as it trains (or the curve a cached run logged).
#
# ## Loss curves
#
# Every loss term per logged step and, for PCL, the Dynamic Weight Average
# weights per epoch (1 for the first two epochs). Runs that logged the probe
# monitor get a second row: its three tasks against epoch, one colour per
# feature and one line style per run.

# %%
fig = figures.pretraining_curves_figure({method_label(name): folder for name, folder in trained.items()})
save_figure(fig, "pretraining_curves", FIGURES_DIR)
fig

# %% [markdown]
# Check that every term has levelled off by the last epoch (if not, more epochs would help)
# and watch the DWA weights: the term whose loss falls slowest gets the larger weight. In the
# monitor row, $F_f$ should lead on expression and identity and $F_p$ on yaw.
#
# ## The same batch after training
#
# The loss terms of the trained PCL model on the batch above, beside the random model's.

# %%
pcl_model, _ = load_run(trained["pcl"])
with torch.no_grad():
    after = method.loss_terms(pcl_model, views, pcl_model.forward_features(inputs), spans, generator)
for name in terms:
    print(f"L_{name:<5} random {float(terms[name]):8.4f}   trained {float(after[name]):8.4f}")

# %% [markdown]
# After a full `synth_cpu` run every term should be below its random value, and $L_{pose}$
# far below its chance level $2 \ln(M + 1)$; the `smoke` preset trains two tiny epochs, so
# its numbers mean little (they may even be higher).
#
# ## Reconstructions at the end of training
#
# Rows: $s$, $D(F_f, F_p)$, $D(F_f, \hat F_p)$, $\hat s$, $D(\hat F_f, \hat F_p)$,
# $D(\hat F_f, F_p)$ — each reconstruction takes its pose from the view it reproduces.

# %%
snapshot = Path(trained["pcl"]) / "recon" / "final.png"
Image(filename=snapshot) if snapshot.exists() else print(f"no final snapshot in {snapshot.parent}")

# %% [markdown]
# Row 2 should look like $s$ and row 5 like $\hat s$. The swaps are the test: row 3 should
# take the pose of $\hat s$ and row 6 the pose of $s$; if they keep the pose of the view their
# face feature came from, the decoder ignores $F_p$.
