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
# # 2. Linear evaluation on the four tasks
#
# The paper freezes the encoder and trains linear probes for expression
# recognition (RAF-DB, FER-2013), face verification (LFW, CPLFW), AU detection
# (DISFA) and head pose (AFLW2000). Here the same protocols run on SynthFaces,
# where each task has exact labels: 7-class expression, identity-pair
# verification (also cross-pose pairs, |Δyaw| > 45°), 8-AU detection and
# yaw/pitch/roll regression. Probes are trained on `train`, selected on `val`,
# scored on `test` (disjoint identities); numbers are mean ± std over seeds.
# Baselines: raw pixels (PCA) and a randomly initialised encoder.
#
# The models come from `pclkit.runs.resolve_model`, which prints its choice: the main
# job's run (`make reproduce`) when present, else the notebooks' own run, else the
# weights shipped in the package (`pretrained:<method>_synthfaces`), else a run trained here.

# %%
# %matplotlib inline
import os
from pathlib import Path

from IPython.display import Markdown, display

from pclkit import figures
from pclkit.evaluate import EvalConfig, evaluate_checkpoints
from pclkit.methods import MAIN_COMPARISON, method_label
from pclkit.probes import ProbeConfig
from pclkit.runs import cmu_search_paths, default_cmu_root, describe_run, resolve_model
from pclkit.style import save_figure
from pclkit.tables import result_tables, to_markdown, write_results

# %% tags=["parameters"]
SMOKE = os.environ.get("PCLKIT_SMOKE", "0") == "1"  # tiny data and models (the tests, CI)
PRESET = None      # None: "smoke" in smoke mode, else "synth_cpu" ("paper" on a GPU with face frames)
RUNS_DIR = os.environ.get("PCLKIT_RUNS_DIR", "runs")  # relative to the repository root
FIGURES_DIR = os.environ.get("PCLKIT_FIGURES_DIR", "figures")
CMU_ROOT = None    # CMU Face Images folder (None: $PCLKIT_CMU or ../shared/data/cmu_faces); skipped when absent
METHODS = MAIN_COMPARISON  # methods compared, the baseline first (add "pcfrl", "pros" for the successors)
SEEDS = None       # probe seeds (None: 1 in smoke mode, else 3)
N_TRAIN = None     # SynthFaces images that train the probes (None: 300 in smoke mode, else 3000)
N_VAL = None       # ... that select their regularisation (None: 150 in smoke mode, else 1000)
N_TEST = None      # ... that score them (None: 600 in smoke mode, else 2000)
N_PAIRS = None     # verification pairs (None: 200 in smoke mode, else 3000)
N_SWAP = None      # pose swaps scored (None: 16 in smoke mode, else 128)
CACHE = None       # cache features under .cache/features (None: not in smoke mode)
PRETRAINED = None  # without a local run, use the weights shipped in pclkit (None: not in smoke mode)

# %%
# Values derived from the parameters. papermill injects its cell right after the parameters
# cell, so `-p SMOKE True` reaches everything here; a parameter left at None takes its mode's default.
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RUNS_DIR, FIGURES_DIR = ROOT / RUNS_DIR, ROOT / FIGURES_DIR  # absolute paths stay as they are
CMU_ROOT = ROOT / CMU_ROOT if CMU_ROOT else default_cmu_root()  # None when the data is absent
TABLES_DIR = FIGURES_DIR / "tables"
PRESET = PRESET or ("smoke" if SMOKE else "synth_cpu")
SEEDS = SEEDS or (1 if SMOKE else 3)
N_TRAIN = N_TRAIN or (300 if SMOKE else 3000)
N_VAL = N_VAL or (150 if SMOKE else 1000)
N_TEST = N_TEST or (600 if SMOKE else 2000)
N_PAIRS = N_PAIRS or (200 if SMOKE else 3000)
N_SWAP = N_SWAP or (16 if SMOKE else 128)
CACHE = not SMOKE if CACHE is None else CACHE
CACHE_DIR = str(ROOT / ".cache" / "features") if CACHE else None
PRETRAINED = not SMOKE if PRETRAINED is None else PRETRAINED
# smoke mode: one regularisation strength per probe instead of the validation grid
PROBE = ProbeConfig(l2_grid=(1e-2,), ridge_grid=(1.0,), max_iter=20) if SMOKE else ProbeConfig()

# %%
runs = {method_label(name): resolve_model(name, PRESET, RUNS_DIR, pretrained=PRETRAINED) for name in METHODS}
for folder in runs.values():
    print(describe_run(folder))

# %% [markdown]
# One line per method says which run or shipped weights it uses and how long that model
# trained; the tables below are only as good as those runs.

# %%
config = EvalConfig(seeds=SEEDS, n_train=N_TRAIN, n_val=N_VAL, n_test=N_TEST, n_pairs=N_PAIRS,
                    n_swap=N_SWAP, cache_dir=CACHE_DIR, probe=PROBE)
rows = evaluate_checkpoints(list(runs.values()), config, names=list(runs))
tables = result_tables(rows, "synthfaces")

# %% [markdown]
# ## Main table
#
# SimCLR and PCL on $F_s$ (what the paper probes) next to the baselines, laid
# out like the paper's comparison: one column per task, best in bold.

# %%
display(Markdown(to_markdown(tables["main"])))

# %% [markdown]
# Compare each method with the random-encoder and pixel rows first: only the gap above
# them is learned. The paper's claim is that PCL beats SimCLR on every task; the ± columns
# say whether a difference is larger than the spread over seeds.
#
# ## Which feature? $F_f$ / $F_p$ / $F_s$ / $F_f \oplus F_p$
#
# The paper's feature comparison: $F_f$ should carry expression and identity,
# $F_p$ head pose; the paper reports its best RAF-DB accuracy with $F_s$ and its
# best DISFA F1 with $F_f \oplus F_p$.

# %%
display(Markdown(to_markdown(tables["features"])))
fig = figures.linear_eval_features_figure(rows, "synthfaces")
save_figure(fig, "linear_eval_features", FIGURES_DIR)
fig

# %% [markdown]
# Look for the crossing: in a disentangled model the $F_f$ bars are high for expression and
# identity and low for pose, and the $F_p$ bars the other way round.
#
# ## Disentanglement and swap fidelity
#
# How much pose (R²), identity and expression each branch carries, and how well
# $D(F_f^A, F_p^B)$ matches the re-render of face A at the pose of B.

# %%
for name in ("disentanglement", "swap", "au"):
    if name in tables:
        display(Markdown(to_markdown(tables[name])))
files = write_results(rows, TABLES_DIR / "synthfaces")
print("tables written:", ", ".join(str(p) for p in files.values()))

# %% [markdown]
# In a disentangled model the pose R² of $F_f$ is near 0 and that of $F_p$ near 1; a swap
# PSNR above the no-swap PSNR means the decoder does move face A to B's pose. The tables are
# also written as CSV, Markdown and LaTeX (paths above).
#
# ## CMU faces
#
# Real photographs of 20 people (4 poses, 4 expressions): subject-disjoint
# expression and pose probes and identity-pair verification. Skipped when the
# data is not present (see the README for where to get it).

# %%
if CMU_ROOT is not None:
    cmu_config = EvalConfig(data="cmu", cmu_root=str(CMU_ROOT), seeds=SEEDS, n_pairs=N_PAIRS,
                            cache_dir=CACHE_DIR, probe=PROBE)
    cmu_rows = evaluate_checkpoints(list(runs.values()), cmu_config, names=list(runs))
    cmu_tables = result_tables(cmu_rows, "cmu")
    for name in ("main", "features", "disentanglement"):
        display(Markdown(to_markdown(cmu_tables[name])))
    write_results(cmu_rows, TABLES_DIR / "cmu")
    fig = figures.linear_eval_features_figure(cmu_rows, "cmu", figures.CMU_FEATURE_PANELS)
    save_figure(fig, "linear_eval_features_cmu", FIGURES_DIR)
    display(fig)
else:
    print(f"CMU faces not found in {', '.join(map(str, cmu_search_paths()))}: skipped (set PCLKIT_CMU)")

# %% [markdown]
# The same questions on real photographs of unseen people, with models pretrained only on
# SynthFaces: compare each method with the random encoder and pixels, as above.
