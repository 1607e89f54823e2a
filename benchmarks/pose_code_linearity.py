"""How much head pose a feature holds, read linearly and non-linearly (SynthFaces ground truth, diagnostic).

The disentanglement bar reads pose from F_p with a *linear* ridge probe (R², mean over yaw, pitch and
roll; :mod:`pclkit.probes`). A pose code trained through a non-linear projection head and a cosine
contrastive loss (L_pose) may hold pose that a linear map cannot read. This script fits three
regressors of (yaw, pitch, roll) on each feature of each model and scores R² on held-out faces:

* ``ridge``: standardised features, ridge regression with λ chosen by leave-one-out (sklearn
  ``RidgeCV``) -- what the protocol's probe measures, up to its λ grid;
* ``knn``: the mean pose of the k = 10 nearest training faces (Euclidean, standardised features);
* ``mlp``: a two-layer perceptron (256 hidden units, early stopping on 10 % of the fit rows).

If ``knn`` or ``mlp`` reads far more than ``ridge`` from F_p, the code holds the pose non-linearly; if
neither does, the pose is not in it. The same for F_f: a feature meant to be pose-free should be
pose-free to all three.

``--target backdrop`` reads the backdrop's colour (the SynthFaces nuisance factors bg_r, bg_g, bg_b)
instead of the pose: the swaps' largest single error is the backdrop colour, which the decoder can
only take from F_f or F_p.

    python benchmarks/pose_code_linearity.py pretrained:pcl_synthfaces --json benchmarks/results/pose_code_linearity.json

SynthFaces **validation** faces (identities disjoint from training and test; the split to use when a
diagnosis steers a recipe), the default evaluation config; the first ``--n-fit`` faces fit, the next
``--n-score`` are scored. Faces of one identity may fall on both sides, as in the protocol's pose
probe (pose is not an identity property).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from pclkit.checkpoint import load_model
from pclkit.data.synthfaces import synthfaces_split
from pclkit.data.synthfaces.factors import NUISANCE_NAMES
from pclkit.features import extract_features

ANGLES = ("yaw", "pitch", "roll")
BACKDROP = ("bg_r", "bg_g", "bg_b")


def target_r2(fit_x: np.ndarray, fit_y: np.ndarray, score_x: np.ndarray, score_y: np.ndarray,
            seed: int = 0, columns: tuple[str, ...] = ANGLES) -> dict[str, dict[str, float]]:
    """R² per target column (by default the three angles) and their mean, of each regressor fitted on
    (fit_x (N, D), fit_y (N, len(columns))) and scored on the rest."""
    scaler = StandardScaler().fit(fit_x)
    fit_x, score_x = scaler.transform(fit_x), scaler.transform(score_x)
    target = StandardScaler().fit(fit_y)  # the MLP fits standardised angles; R² is scale-free
    regressors = {
        "ridge": RidgeCV(alphas=np.logspace(-3, 4, 15)),
        "knn": KNeighborsRegressor(n_neighbors=10),
        "mlp": MLPRegressor(hidden_layer_sizes=(256,), early_stopping=True, max_iter=500, random_state=seed),
    }
    out = {}
    for name, regressor in regressors.items():
        predicted = target.inverse_transform(regressor.fit(fit_x, target.transform(fit_y)).predict(score_x))
        scores = {column: float(r2_score(score_y[:, i], predicted[:, i])) for i, column in enumerate(columns)}
        scores["mean"] = float(np.mean([scores[column] for column in columns]))
        out[name] = scores
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="run folders, last.pt files or pretrained:NAME")
    parser.add_argument("--features", default="F_s,F_f,F_p")
    parser.add_argument("--n-fit", type=int, default=3000)
    parser.add_argument("--n-score", type=int, default=1000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--target", choices=("pose", "backdrop"), default="pose",
                        help="what to read: head pose (yaw, pitch, roll) or the backdrop colour (bg_r, bg_g, bg_b)")
    args = parser.parse_args()
    names = tuple(args.features.split(","))
    faces = synthfaces_split("val", args.n_fit + args.n_score)
    images, labels = faces.tensors(progress=False)
    if args.target == "pose":
        columns, target = ANGLES, labels["pose"].numpy().astype(np.float64)  # (N, 3) degrees
    else:
        columns = BACKDROP
        target = faces.factors.nuisance[:, [NUISANCE_NAMES.index(name) for name in BACKDROP]].numpy().astype(np.float64)
    fit, score = slice(0, args.n_fit), slice(args.n_fit, args.n_fit + args.n_score)
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for source in args.sources:
        model, _ = load_model(source)
        available = [name for name in names if name in dict(model.forward_features(images[:2].float() / 255))]
        features = extract_features(model, images, tuple(available), progress=False)
        results[source] = {}
        for name in available:
            x = features[name].numpy().astype(np.float64)
            results[source][name] = target_r2(x[fit], target[fit], x[score], target[score], columns=columns)
            row = results[source][name]
            print(f"{source} {name}: " + "  ".join(
                f"{kind} {row[kind]['mean']:.2f} (" + ", ".join(f"{c} {row[kind][c]:.2f}" for c in columns) + ")"
                for kind in row))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"split": "val", "target": args.target, "n_fit": args.n_fit, "n_score": args.n_score,
                       "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
