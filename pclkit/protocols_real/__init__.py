"""Linear evaluation on the PCL paper's real benchmarks (``evaluate --data NAME --root PATH``).

Liu et al. (CVPR 2023) evaluate PCL with frozen features and linear probes on
expression recognition, face verification, AU detection and head pose. This
module runs those protocols on the real data, one function per benchmark
(:func:`evaluate_rafdb`, :func:`evaluate_fer2013`, :func:`evaluate_lfw`,
:func:`evaluate_cplfw`, :func:`evaluate_disfa`, :func:`evaluate_aflw2000`,
:func:`evaluate_folder`); each builds its :class:`~pclkit.features.ImageSet`s
from a loader of :mod:`pclkit.data.real` and runs the probes of
:mod:`pclkit.probes`, returning tidy rows ``{data, method, feature, task,
metric, seed, value}`` (fractions for accuracy/F1/AUC, degrees for MAE).

Protocols (hyper-parameters are always chosen on a validation split, never on test):

* **RAF-DB** basic (Li, Deng & Du, CVPR 2017): 7 classes; probes train on the
  train list minus a stratified ``val_fraction`` held out per seed for
  validation, and are scored on the test list. Accuracy, mean class accuracy,
  accuracy per class; weighted kNN (Wu et al., CVPR 2018).
* **FER-2013** (Goodfellow et al., ICONIP 2013): ``Training`` -> train,
  ``PublicTest`` -> validation, ``PrivateTest`` -> test; same metrics.
* **LFW** ``pairs.txt`` (Huang et al., 2007) and **CPLFW** (Zheng & Deng, 2018):
  cosine similarity; the standard 10-fold protocol (each fold is scored with
  the threshold that is best on the other nine); accuracy, its std over folds,
  ROC-AUC and TAR at FAR = 1e-3 (``sklearn.metrics.roc_curve`` on all pairs).
* **DISFA** (Mavadati et al., IEEE TAC 2013): AU1, 2, 4, 6, 9, 12, 25, 26
  present at intensity >= 2; subject-exclusive 3-fold cross-validation with the
  partition of JAA-Net (Shao et al., ECCV 2018) and ME-GraphAU (Luo et al.,
  IJCAI 2022); validation subjects are carved from the two training folds per
  seed. F1 per AU (mean over folds) and their mean.
* **300W-LP -> AFLW2000** (Zhu et al., CVPR 2016) in FSA-Net's ``.npz`` layout
  (Yang et al., CVPR 2019; 300W-LP as one file or as FSA-Net's eight subset
  files): ridge regression of yaw, pitch, roll trained on
  300W-LP (``val_fraction`` held out per seed), tested on AFLW2000; samples
  with any angle outside ±99° are dropped from both (Ruiz et al., CVPRW 2018; FSA-Net)
  and counted. MAE per angle and mean.
* **folder** of class sub-folders: stratified train/val/test split per seed;
  linear probe and kNN; accuracy, mean class accuracy, per class.

A benchmark whose splits are fixed (FER-2013, LFW, CPLFW) has nothing a seed
could change -- the solvers are deterministic -- so it is run once (seed 0);
the others draw their validation (and, for ``folder``, train/test) split per
seed and report mean ± std over seeds.

Bad input never fails half way: :func:`locate_inputs` checks the root and list
files before any model is loaded, the loaders index and verify everything
before any feature is computed (unusable items are skipped, counted, reported
in one warning and in the ``dataset info`` rows), and whatever makes a
benchmark impossible raises :class:`DataInputError` with a message naming the
path and what was expected.

Modules: :mod:`~pclkit.protocols_real.inputs` (locating and checking the
files), :mod:`~pclkit.protocols_real.image_sets` (loaders -> image sets),
:mod:`~pclkit.protocols_real.plans` (per-seed splits) and
:mod:`~pclkit.protocols_real.benchmarks` (the protocols). Table columns are in
:mod:`pclkit.tables`.
"""

from __future__ import annotations

from pclkit.protocols import CHANCE, DATA_INFO, seeded_generator
from pclkit.protocols_real.benchmarks import (
    EVALUATORS,
    TAR_FARS,
    classification_results,
    disfa_probe_config,
    evaluate_aflw2000,
    evaluate_cplfw,
    evaluate_disfa,
    evaluate_fer2013,
    evaluate_folder,
    evaluate_lfw,
    evaluate_pairs,
    evaluate_rafdb,
    evaluate_real,
    info_rows,
    per_class_accuracies,
    per_class_probe,
    roc_metrics,
    tar_metric_name,
    verification_results,
)
from pclkit.protocols_real.image_sets import (
    DISFA_STANDARD_FOLDS,
    MAX_ANGLE,
    PREPARERS,
    PROTOCOL_VERSION,
    Prepared,
    check_pairs,
    concat_getter,
    concat_labels,
    describe_info,
    disfa_folds,
    labels_of,
    lazy_image_set,
    load_uint8,
    prepare,
    prepare_aflw2000,
    prepare_disfa,
    prepare_fer2013,
    prepare_folder,
    prepare_pairs,
    prepare_rafdb,
    stat_digest,
)
from pclkit.protocols_real.inputs import FSANET_300WLP_FILES, REAL_DATASETS, DataInputError, Inputs, locate_inputs
from pclkit.protocols_real.plans import (
    PIXEL_FIT_MAX,
    SEED_PLANNERS,
    Plan,
    aflw2000_plan,
    capped_fit_rows,
    check_plans,
    disfa_plan,
    fer2013_plan,
    folder_plan,
    rafdb_plan,
    random_holdout,
    stratified_holdout,
    stratified_split,
)

__all__ = [
    "CHANCE", "DATA_INFO", "seeded_generator",
    "EVALUATORS", "TAR_FARS", "classification_results", "disfa_probe_config", "evaluate_aflw2000", "evaluate_cplfw",
    "evaluate_disfa", "evaluate_fer2013", "evaluate_folder", "evaluate_lfw", "evaluate_pairs", "evaluate_rafdb",
    "evaluate_real", "info_rows", "per_class_accuracies", "per_class_probe", "roc_metrics", "tar_metric_name",
    "verification_results",
    "DISFA_STANDARD_FOLDS", "MAX_ANGLE", "PREPARERS", "PROTOCOL_VERSION", "Prepared", "check_pairs", "concat_getter",
    "concat_labels", "describe_info", "disfa_folds", "labels_of", "lazy_image_set", "load_uint8", "prepare",
    "prepare_aflw2000", "prepare_disfa", "prepare_fer2013", "prepare_folder", "prepare_pairs", "prepare_rafdb", "stat_digest",
    "FSANET_300WLP_FILES", "REAL_DATASETS", "DataInputError", "Inputs", "locate_inputs",
    "PIXEL_FIT_MAX", "SEED_PLANNERS", "Plan", "aflw2000_plan", "capped_fit_rows", "check_plans", "disfa_plan",
    "fer2013_plan", "folder_plan", "rafdb_plan", "random_holdout", "stratified_holdout", "stratified_split",
]
