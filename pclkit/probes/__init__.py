"""Linear-evaluation protocols on frozen feature arrays.

Every protocol takes features ``x (N, D)`` with their labels and returns test
metrics plus the hyperparameters it selected. Model selection follows the
linear-evaluation practice of MoCo (He et al., CVPR 2020) and SimCLR (Chen et
al., ICML 2020) with one fix over the PCL reference code: hyperparameters are
chosen on the **validation** split only. Protocols are written as a
``select_*`` step that sees train and validation data and never the test split,
followed by scoring on test, so test labels cannot leak into selection.

Protocols (the paper's four tasks, Liu et al., CVPR 2023, and their analogues):

* :func:`classification_probe` -- multinomial logistic regression (expression,
  identity, CMU pose); accuracy and mean class accuracy.
* :func:`au_detection_probe` -- one binary logistic probe per action unit
  (DISFA protocol, Mavadati et al. 2013); F1 per AU and mean.
* :func:`pose_regression_probe` -- ridge regression of yaw, pitch, roll
  (AFLW2000 protocol); MAE per angle in degrees, and R^2.
* :func:`verification_accuracy` -- face verification by cosine similarity with
  10-fold threshold selection (LFW, Huang et al. 2007; CPLFW, Zheng & Deng 2018).
* :func:`knn_probe` -- weighted k-nearest-neighbour classifier (Wu et al.,
  CVPR 2018).

Solvers are full-batch and deterministic (L-BFGS for logistic losses, a closed
form for ridge), so the probe is a function of its inputs; randomness (seeds)
enters only through the data subsets and pairs the caller draws.

Modules: :mod:`~pclkit.probes.containers` (splits, results, settings),
:mod:`~pclkit.probes.solvers` (standardisation, logistic and ridge fits),
:mod:`~pclkit.probes.metrics`, :mod:`~pclkit.probes.tasks` (the probes above)
and :mod:`~pclkit.probes.verification` (pairs and the k-fold protocol).
"""

from __future__ import annotations

from pclkit.probes.containers import ArrayLike, ProbeConfig, ProbeResult, Split, as_features
from pclkit.probes.metrics import best_f1_threshold, binary_f1, class_accuracies, r2_scores
from pclkit.probes.solvers import LinearModel, LogisticProblem, Standardizer, fit_logistic, ridge_path
from pclkit.probes.tasks import (
    SelectedAUProbes,
    SelectedClassifier,
    SelectedRegressor,
    au_detection_probe,
    classification_probe,
    knn_predict,
    knn_probe,
    pose_regression_probe,
    select_au_probes,
    select_classifier,
    select_regressor,
)
from pclkit.probes.verification import (
    Pairs,
    best_accuracy_threshold,
    identity_pairs,
    verification_accuracy,
    verification_probe,
)
from pclkit.threads import torch_threads  # noqa: F401  (the former home of torch_threads; pclkit.features imports it here)

__all__ = [
    "ArrayLike", "ProbeConfig", "ProbeResult", "Split", "as_features",
    "best_f1_threshold", "binary_f1", "class_accuracies", "r2_scores",
    "LinearModel", "LogisticProblem", "Standardizer", "fit_logistic", "ridge_path",
    "SelectedAUProbes", "SelectedClassifier", "SelectedRegressor", "au_detection_probe", "classification_probe",
    "knn_predict", "knn_probe", "pose_regression_probe", "select_au_probes", "select_classifier", "select_regressor",
    "Pairs", "best_accuracy_threshold", "identity_pairs", "verification_accuracy", "verification_probe",
]
