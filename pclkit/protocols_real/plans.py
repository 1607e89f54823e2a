"""Which rows of a real benchmark each seed trains, validates and tests on (:class:`Plan`).

Hyper-parameters are always chosen on a validation split, never on test:
benchmarks without an official validation split hold out ``val_fraction`` of
their training data per seed (stratified for classification; DISFA holds out
training subjects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pclkit.protocols import seeded_generator
from pclkit.protocols_real.image_sets import Prepared
from pclkit.protocols_real.inputs import DataInputError

if TYPE_CHECKING:  # pclkit.evaluate imports this package
    from pclkit.evaluate import EvalConfig

#: the pixel baseline's PCA is fitted on at most this many (seeded) training images
PIXEL_FIT_MAX = 5000


def _holdout_count(n: int, fraction: float) -> int:
    """How many of ``n`` rows to hold out: ``round(n * fraction)``, at least 1 and leaving at least 1 (0 when n < 2)."""
    return 0 if n < 2 else min(n - 1, max(1, int(round(n * fraction))))


def stratified_holdout(labels: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(kept, held)`` sorted row indices: a random ``fraction`` of each class held out (classes of 1 stay kept)."""
    kept, held = [], []
    for c in torch.unique(labels):
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        k = _holdout_count(len(rows), fraction)
        held.append(rows[:k])
        kept.append(rows[k:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


def random_holdout(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(kept, held)`` sorted indices of ``range(n)`` with a random ``fraction`` held out."""
    order = torch.randperm(n, generator=generator)
    k = _holdout_count(n, fraction)
    return order[k:].sort().values, order[:k].sort().values


def stratified_split(labels: Tensor, fractions: tuple[float, float], generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Per class ``fractions`` = (train, val) of the rows, the rest test; every class of >= 3 rows is in all three."""
    train, val, test = [], [], []
    test_fraction = 1.0 - fractions[0] - fractions[1]
    for c in torch.unique(labels):
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        n_test = _holdout_count(len(rows), test_fraction)
        n_val = _holdout_count(len(rows) - n_test, fractions[1] / max(fractions[0] + fractions[1], 1e-12))
        test.append(rows[:n_test])
        val.append(rows[n_test:n_test + n_val])
        train.append(rows[n_test + n_val:])
    return tuple(torch.cat(s).sort().values for s in (train, val, test))  # type: ignore[return-value]


@dataclass(frozen=True)
class Plan:
    """Which rows of which image set a seed trains, validates and tests on: ``(set name, rows)`` per role.

    ``fit`` are the rows an unsupervised baseline (the pixel PCA) may be fitted
    on: training images only, never test images.
    """

    train: tuple[str, Tensor]
    val: tuple[str, Tensor]
    test: tuple[str, Tensor]
    fit: dict[str, Tensor]


def capped_fit_rows(fit: Mapping[str, Tensor], salt: str) -> dict[str, Tensor]:
    """At most :data:`PIXEL_FIT_MAX` rows per image set (a fixed seeded subset, so the PCA is refitted only when rows change)."""
    out = {}
    for name, rows in fit.items():
        if len(rows) > PIXEL_FIT_MAX:
            keep = torch.randperm(len(rows), generator=seeded_generator(0, f"pixel-fit:{salt}"))[:PIXEL_FIT_MAX]
            rows = rows[keep].sort().values
        out[name] = rows
    return out


def _require_rows(data: str, plan: Plan) -> Plan:
    for role in ("train", "val", "test"):
        if len(getattr(plan, role)[1]) == 0:
            raise DataInputError(f"{data}: the {role} split is empty: too few usable images for this protocol")
    return plan


def rafdb_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """RAF-DB: a stratified ``cfg.val_fraction`` of the train list held out for validation (per seed); test list."""
    y = prepared.image_sets["train"].labels["expression"]
    train, val = stratified_holdout(y, cfg.val_fraction, seeded_generator(seed, "rafdb-val"))
    test = torch.arange(len(prepared.image_sets["test"]))
    fit = capped_fit_rows({"train": torch.arange(len(y))}, "rafdb")
    return _require_rows("rafdb", Plan(("train", train), ("train", val), ("test", test), fit))


def fer2013_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """FER-2013: the official Training / PublicTest / PrivateTest (the same for every seed)."""
    rows = {name: torch.arange(len(prepared.image_sets[name])) for name in ("train", "val", "test")}
    fit = capped_fit_rows({"train": rows["train"]}, "fer2013")
    return Plan(("train", rows["train"]), ("val", rows["val"]), ("test", rows["test"]), fit)


def folder_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """A class folder: stratified ``cfg.folder_split`` train / val fractions, the rest test (per seed)."""
    y = prepared.image_sets["all"].labels["label"]
    train, val, test = stratified_split(y, tuple(cfg.folder_split), seeded_generator(seed, "folder-split"))
    return _require_rows(
        "folder", Plan(("all", train), ("all", val), ("all", test), capped_fit_rows({"all": train}, f"folder:{seed}"))
    )


def aflw2000_plan(prepared: Prepared, seed: int, cfg: EvalConfig) -> Plan:
    """300W-LP minus a random ``cfg.val_fraction`` (validation, per seed) -> AFLW2000."""
    n = len(prepared.image_sets["train"])
    if n < 2:
        raise DataInputError("aflw2000: 300W-LP needs >= 2 usable samples to hold out a validation split")
    train, val = random_holdout(n, cfg.val_fraction, seeded_generator(seed, "300wlp-val"))
    test = torch.arange(len(prepared.image_sets["test"]))
    return Plan(("train", train), ("train", val), ("test", test), capped_fit_rows({"train": torch.arange(n)}, "300wlp"))


def disfa_plan(prepared: Prepared, fold: int, seed: int, cfg: EvalConfig) -> Plan:
    """DISFA fold ``fold``: its subjects are the test set; validation subjects are drawn from the other two folds per seed."""
    identity = prepared.image_sets["all"].labels["identity"]
    folds = prepared.extra["folds"]
    training = torch.cat([f for k, f in enumerate(folds) if k != fold])
    order = training[torch.randperm(len(training), generator=seeded_generator(seed, f"disfa-val:{fold}"))]
    n_val = _holdout_count(len(order), cfg.val_fraction)
    val_subjects, train_subjects = order[:n_val], order[n_val:]
    rows = {name: torch.nonzero(torch.isin(identity, subjects)).flatten()
            for name, subjects in (("train", train_subjects), ("val", val_subjects), ("test", folds[fold]))}
    fit = capped_fit_rows({"all": torch.nonzero(torch.isin(identity, training)).flatten()}, f"disfa:{fold}")
    return _require_rows("disfa", Plan(("all", rows["train"]), ("all", rows["val"]), ("all", rows["test"]), fit))


#: benchmark -> its per-seed plan (DISFA plans per fold and seed: :func:`disfa_plan`)
SEED_PLANNERS = {"rafdb": rafdb_plan, "fer2013": fer2013_plan, "folder": folder_plan, "aflw2000": aflw2000_plan}


def check_plans(prepared: Prepared, cfg: EvalConfig) -> None:
    """Draw every seed's (and fold's) splits once, so an impossible one fails before any feature is computed."""
    seeds = range(cfg.seeds)
    if prepared.data == "disfa":
        for fold in range(len(prepared.extra["folds"])):
            for seed in seeds:
                disfa_plan(prepared, fold, seed, cfg)
        return
    planner = SEED_PLANNERS.get(prepared.data)
    if planner is not None:
        for seed in seeds:
            planner(prepared, seed, cfg)
