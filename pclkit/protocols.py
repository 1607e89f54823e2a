"""Linear-evaluation protocols on SynthFaces and the CMU faces: data, splits, task suites, chance rows, swap fidelity.

Liu et al. (CVPR 2023) evaluate PCL with frozen features and linear probes on
expression recognition, face verification, AU detection and head pose. The
analogues run here (the paper's real benchmarks: :mod:`pclkit.protocols_real`):

* SynthFaces (:func:`synthfaces_tasks`): 7-class expression, identity-pair
  verification (also cross-pose, |Δyaw| > 45°), 8-AU detection, yaw/pitch/roll
  regression; probes train on the ``train`` split, select on ``val`` and are
  scored on ``test`` (the identities of the three splits are disjoint);
  verification pairs use the test identities. Weighted kNN (Wu et al., CVPR
  2018) on expression, and identity decodability of F_f and F_p.
* CMU faces (:func:`cmu_tasks`): 4-class expression and 4-class pose with
  subject-disjoint train/val/test subjects (12/4/4, redrawn per seed), and
  verification on identity pairs in identity-disjoint folds.
* :func:`chance_rows`: what the labels alone give; :func:`swap_fidelity`:
  swapped reconstructions D(F_f^A, F_p^B) scored against the rendered truth.

The encoders stay frozen (He et al., MoCo, CVPR 2020): :func:`frozen_encoders`
asserts after an evaluation that no encoder parameter or buffer changed and
none was trainable. Every protocol returns tidy rows ``{data, method, feature,
task, metric, seed, value}`` (:func:`result_rows`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from pclkit.features import FeatureCache, ImageSet, cached
from pclkit.probes import (
    ProbeConfig,
    ProbeResult,
    Split,
    au_detection_probe,
    binary_f1,
    class_accuracies,
    classification_probe,
    identity_pairs,
    knn_probe,
    pose_regression_probe,
    r2_scores,
    verification_probe,
)
from pclkit.swap import decode_pairs, draw_swap_pairs
from pclkit.threads import torch_threads

if TYPE_CHECKING:  # pclkit.evaluate imports this module
    from pclkit.evaluate import EvalConfig

#: method labels of the reference rows reported beside the learned methods
PIXELS = "pixels (PCA)"
RANDOM_INIT = "random init"
SUPERVISED = "supervised"
CHANCE = "chance"
#: rows that describe the data (counts of images, skips, drops), not a result
DATA_INFO = "dataset info"
REFERENCE_LABELS: tuple[str, ...] = (PIXELS, RANDOM_INIT, SUPERVISED, CHANCE, DATA_INFO)
#: features whose identity decodability the disentanglement report reads
BRANCH_FEATURES: tuple[str, ...] = ("F_f", "F_p")


def result_rows(data: str, method: str, feature: str, task: str, seed: int, result: ProbeResult) -> list[dict[str, Any]]:
    """Tidy rows of one protocol result; selected hyperparameters get the metric prefix ``selected_``."""
    rows = [dict(data=data, method=method, feature=feature, task=task, metric=m, seed=seed, value=float(v))
            for m, v in result.metrics.items()]
    rows += [dict(data=data, method=method, feature=feature, task=task, metric=f"selected_{m}", seed=seed, value=float(v))
             for m, v in result.selected.items()]
    return rows


# --------------------------------------------------------------------------- the encoders stay frozen


@contextmanager
def frozen_encoders(models: Mapping[str, nn.Module]) -> Iterator[None]:
    """Linear evaluation with frozen encoders, checked like MoCo's ``main_lincls`` (He et al., CVPR 2020).

    On entry every parameter of each model gets ``requires_grad=False`` and its
    state (parameters and buffers, e.g. BatchNorm running statistics) is
    copied. When the block ends, a parameter that became trainable or a state
    entry that changed raises ``RuntimeError`` naming the model and the entry:
    a probe must read features, never fit the encoder. ``models`` maps a label
    to a model; the ``requires_grad`` flags are restored afterwards.
    """
    flags = {label: [p.requires_grad for p in model.parameters()] for label, model in models.items()}
    for model in models.values():
        model.requires_grad_(False)
    before = {label: {k: v.detach().clone() for k, v in model.state_dict().items()} for label, model in models.items()}
    try:
        yield
        for label, model in models.items():
            trainable = [name for name, p in model.named_parameters() if p.requires_grad]
            if trainable:
                raise RuntimeError(f"linear evaluation must keep the encoder frozen, but parameters of {label!r} "
                                   f"became trainable: {trainable[:5]}")
            state = model.state_dict()
            changed = [k for k, v in before[label].items() if k not in state or not torch.equal(state[k], v)]
            if changed:
                raise RuntimeError(f"linear evaluation must not change the encoder, but entries of {label!r} "
                                   f"changed: {changed[:5]} (a probe trained or ran the model in training mode)")
    finally:
        for label, model in models.items():
            for p, flag in zip(model.parameters(), flags[label]):
                p.requires_grad_(flag)


def source_models(sources: Sequence[Any]) -> dict[str, nn.Module]:
    """``{label: model}`` of the feature sources that run a model (a pixel baseline runs none)."""
    return {source.method: source.model for source in sources if isinstance(getattr(source, "model", None), nn.Module)}


# --------------------------------------------------------------------------- evaluation images


def synthfaces_parts(cfg: EvalConfig, size: int, cache: FeatureCache | None, synth_config: Any = None) -> dict[str, ImageSet]:
    """SynthFaces ``train``/``val``/``test`` image sets at ``size`` px; rendered images are cached like features.

    ``synth_config`` (a :class:`pclkit.data.synthfaces.SynthConfig`; default the
    standard one at ``cfg.pose_limits`` and ``cfg.pose_prior``) changes
    identity counts or ranges, e.g. for small tests.
    """
    from pclkit.data.synthfaces import DEFAULT_POSE_LIMITS, SynthFaces, renderer_source_hash, symmetric_pose_config

    synth_config = synth_config or symmetric_pose_config(cfg.pose_limits or DEFAULT_POSE_LIMITS, prior=cfg.pose_prior)
    version = renderer_source_hash()
    image_sets = {}
    for split, n in (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test)):
        dataset = SynthFaces(split, n=n, size=size, seed=cfg.data_seed, config=synth_config)
        identity = {"data": "synthfaces", "split": split, "n": n, "seed": cfg.data_seed, "size": size,
                    "renderer": version, "synth_config": repr(synth_config)}

        def load(dataset: SynthFaces = dataset, identity: dict = identity) -> Tensor:
            render = lambda: {"images": dataset.tensors(progress=cfg.progress)[0]}  # noqa: E731
            return cached(cache, {**identity, "kind": "images"}, render)["images"]

        labels = {**dataset.factors.labels(), "index": torch.arange(n)}
        image_sets[split] = ImageSet(split, labels, identity, load, factors=dataset.factors)
    return image_sets


def cmu_parts(cfg: EvalConfig, size: int) -> dict[str, ImageSet]:
    """All usable CMU face images at ``size`` px as one image set ``all`` (splits are drawn per seed)."""
    from pclkit.data import CMUFaces, as_tensors

    dataset = CMUFaces(cfg.cmu_root, scale=cfg.cmu_scale, size=size)
    images, labels = as_tensors(dataset, progress=cfg.progress)
    identity = {"data": "cmu", "root": str(Path(cfg.cmu_root).resolve()), "scale": cfg.cmu_scale, "n": len(dataset), "size": size}
    return {"all": ImageSet("all", labels, identity, lambda: images, _images=images)}


# --------------------------------------------------------------------------- splits


def seeded_generator(seed: int, salt: str) -> torch.Generator:
    """A generator per (seed, purpose), so adding one protocol never shifts another's random draws."""
    return torch.Generator().manual_seed(int(hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()[:12], 16))


def subsample(n: int, fraction: float, seed: int, salt: str) -> Tensor:
    """Sorted random ``fraction`` of ``range(n)`` (all of it when ``fraction == 1``)."""
    if fraction >= 1.0:
        return torch.arange(n)
    k = max(1, int(round(n * fraction)))
    return torch.randperm(n, generator=seeded_generator(seed, salt))[:k].sort().values


def within_identity_split(
    identity: Tensor, seed: int, fractions: tuple[float, float] = (0.6, 0.2), max_identities: int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Rows split per identity into train/val/test (``fractions`` train and val, rest test).

    Identity *classification* needs every identity in every split, unlike
    verification, which uses unseen identities. With ``max_identities``, a
    seeded random subset of identities is used (the probe's cost grows with
    the number of classes).
    """
    gen = seeded_generator(seed, "within-identity")
    identities = torch.unique(identity)
    if max_identities is not None and max_identities < len(identities):
        identities = identities[torch.randperm(len(identities), generator=gen)[:max_identities]].sort().values
    train, val, test = [], [], []
    for ident in identities:
        rows = torch.nonzero(identity == ident).flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)]
        if len(rows) < 3:
            continue
        n_tr = max(1, int(round(len(rows) * fractions[0])))
        n_va = max(1, int(round(len(rows) * fractions[1])))
        n_tr = min(n_tr, len(rows) - 2)
        train.append(rows[:n_tr])
        val.append(rows[n_tr:n_tr + n_va])
        test.append(rows[n_tr + n_va:])
    if not train:
        raise ValueError("identity classification needs identities with at least 3 images")
    return torch.cat(train), torch.cat(val), torch.cat(test)


def class_indices(identity: Tensor, rows: Sequence[Tensor]) -> Tensor:
    """Identity integers -> class indices 0..K-1 over the identities present in ``rows``.

    (SynthFaces identity integers are global: test identities start at 2,000,000.)
    Entries of identities outside ``rows`` are meaningless and never read.
    """
    present = torch.unique(identity[torch.cat(list(rows))])
    return torch.searchsorted(present, identity).clamp_max(len(present) - 1)


def subject_split(identity: Tensor, counts: tuple[int, int, int], seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rows of disjoint random subject groups of sizes ``counts`` (train, val, test)."""
    subjects = torch.unique(identity)
    if sum(counts) > len(subjects):
        raise ValueError(f"subject split {counts} needs {sum(counts)} subjects, the data has {len(subjects)}")
    order = subjects[torch.randperm(len(subjects), generator=seeded_generator(seed, "subjects"))]
    groups = (order[:counts[0]], order[counts[0]:counts[0] + counts[1]], order[counts[0] + counts[1]:sum(counts)])
    return tuple(torch.nonzero(torch.isin(identity, g)).flatten() for g in groups)  # type: ignore[return-value]


# --------------------------------------------------------------------------- task suites


def synthfaces_tasks(source: Any, image_sets: Mapping[str, ImageSet], seed: int, cfg: EvalConfig) -> list[dict[str, Any]]:
    """All SynthFaces protocols for every feature of ``source`` at one seed -> tidy rows.

    Probes train on a seed-dependent ``cfg.train_fraction`` of the ``train``
    split, select on ``val`` and report ``test``; verification pairs and the
    identity probe (a within-identity split) use the test identities.
    """
    feats = source.features(image_sets, fit_rows={"train": torch.arange(len(image_sets["train"]))})
    lab = {name: image_sets[name].labels for name in image_sets}
    test_id = lab["test"]["identity"]
    identity_rows = within_identity_split(test_id, seed, max_identities=cfg.identity_classes)
    lab["test"] = {**lab["test"], "identity_class": class_indices(test_id, identity_rows)}
    folds = cfg.probe.verification_folds
    plan = {
        "train_rows": subsample(len(image_sets["train"]), cfg.train_fraction, seed, "probe-train"),
        "pairs": identity_pairs(test_id, cfg.n_pairs, seeded_generator(seed, "pairs"), folds),
        "cross_pairs": identity_pairs(test_id, cfg.n_pairs, seeded_generator(seed, "pairs-cross"), folds,
                                      yaw=lab["test"]["pose"][:, 0], min_abs_delta_yaw=cfg.cross_pose_yaw),
        "identity_rows": identity_rows,
    }
    rows: list[dict[str, Any]] = []
    with torch_threads(cfg.probe.solver_threads):
        for name, by_set in feats.items():
            for task, result in synthfaces_feature_results(name, by_set, lab, plan, cfg.probe):
                rows += result_rows("synthfaces", source.method, name, task, seed, result)
    return rows


def synthfaces_feature_results(
    name: str, x: Mapping[str, Tensor], lab: Mapping[str, Mapping[str, Tensor]], plan: Mapping[str, Any], probe: ProbeConfig
) -> list[tuple[str, ProbeResult]]:
    """``(task, result)`` of every SynthFaces protocol on feature ``name`` (``x[split] (N, D)``)."""
    from pclkit.data.synthfaces import AU_NAMES

    def split(set_name: str, key: str, index: Tensor | None = None) -> Split:
        return Split(x[set_name], lab[set_name][key]) if index is None else Split(x[set_name][index], lab[set_name][key][index])

    def sets(key: str) -> tuple[Split, Split, Split]:
        return split("train", key, plan["train_rows"]), split("val", key), split("test", key)

    results = [
        ("expression", classification_probe(*sets("expression"), 7, probe)),
        ("expression_knn", knn_probe(sets("expression")[0], split("test", "expression"), 7, probe)),
        ("au", au_detection_probe(*sets("aus"), tuple(AU_NAMES), probe)),
        ("head_pose", pose_regression_probe(*sets("pose"), config=probe)),
        ("verification", verification_probe(x["test"], plan["pairs"])),
        ("verification_cross_pose", verification_probe(x["test"], plan["cross_pairs"])),
    ]
    if name in BRANCH_FEATURES:
        id_sets = [split("test", "identity_class", rows) for rows in plan["identity_rows"]]
        results.append(("identity", classification_probe(*id_sets, config=probe)))
    return results


def cmu_tasks(source: Any, image_sets: Mapping[str, ImageSet], seed: int, cfg: EvalConfig) -> list[dict[str, Any]]:
    """CMU faces protocols at one seed -> tidy rows.

    Expression and pose probes use disjoint random subject groups
    (``cfg.cmu_subjects`` = train/val/test, redrawn per seed); verification
    uses all subjects in identity-disjoint folds; the identity probe a
    within-identity split.
    """
    labels = dict(image_sets["all"].labels)
    identity = labels["identity"]
    subject_rows = subject_split(identity, cfg.cmu_subjects, seed)
    feats = source.features(image_sets, fit_rows={"all": subject_rows[0]})
    pairs = identity_pairs(identity, cfg.n_pairs, seeded_generator(seed, "pairs"), cfg.probe.verification_folds)
    identity_rows = within_identity_split(identity, seed, max_identities=cfg.identity_classes)
    labels["identity_class"] = class_indices(identity, identity_rows)
    rows: list[dict[str, Any]] = []
    with torch_threads(cfg.probe.solver_threads):
        for name, by_set in feats.items():
            x = by_set["all"]

            def sets(key: str, index_sets: tuple[Tensor, ...] = subject_rows, *, x: Tensor = x) -> list[Split]:
                return [Split(x[index], labels[key][index]) for index in index_sets]

            results = [
                ("expression", classification_probe(*sets("expression"), 4, cfg.probe)),
                ("expression_knn", knn_probe(sets("expression")[0], sets("expression")[2], 4, cfg.probe)),
                ("pose", classification_probe(*sets("pose"), 4, cfg.probe)),
                ("verification", verification_probe(x, pairs)),
            ]
            if name in BRANCH_FEATURES:
                results.append(("identity", classification_probe(*sets("identity_class", identity_rows), config=cfg.probe)))
            for task, result in results:
                rows += result_rows("cmu", source.method, name, task, seed, result)
    return rows


def chance_rows(image_sets: Mapping[str, ImageSet], seed: int, cfg: EvalConfig) -> list[dict[str, Any]]:
    """What the labels alone give: the reference a probe must beat.

    Classification: the majority class of the probe-training set; AU detection:
    "every AU present" (F1 = 2p / (1 + p) at prevalence p, the best
    constant); head pose: the training mean; verification: 50% (pairs are
    balanced by construction).
    """
    rows: list[dict[str, Any]] = []

    def emit(task: str, metrics: dict[str, float]) -> None:
        rows.extend(result_rows(cfg.data, CHANCE, CHANCE, task, seed, ProbeResult(metrics)))

    def majority(train_y: Tensor, test_y: Tensor, n_classes: int) -> dict[str, float]:
        guess = torch.full_like(test_y, int(torch.bincount(train_y, minlength=n_classes).argmax()))
        return class_accuracies(guess, test_y, n_classes)

    if cfg.data == "synthfaces":
        from pclkit.data.synthfaces import AU_NAMES

        train_rows = subsample(len(image_sets["train"]), cfg.train_fraction, seed, "probe-train")
        train = {k: v[train_rows] for k, v in image_sets["train"].labels.items()}
        test = image_sets["test"].labels
        emit("expression", majority(train["expression"], test["expression"], 7))
        present = test["aus"] >= cfg.probe.au_intensity_threshold
        f1 = {
            f"f1_{name}": binary_f1(torch.ones(len(present), dtype=torch.bool), present[:, a]) for a, name in enumerate(AU_NAMES)
        }
        emit("au", {**f1, "f1_mean": float(torch.tensor(list(f1.values())).nanmean())})
        guess = train["pose"].float().mean(0).expand_as(test["pose"])
        mae, r2 = (guess - test["pose"]).abs().mean(0), r2_scores(guess, test["pose"].float())
        metrics = {f"mae_{n}": v.item() for n, v in zip(("yaw", "pitch", "roll"), mae)}
        metrics |= {"mae_mean": mae.mean().item(), "r2_mean": r2.mean().item()}
        emit("head_pose", metrics)
        emit("verification_cross_pose", {"accuracy": 0.5})
    else:
        labels = image_sets["all"].labels
        tr, _, te = subject_split(labels["identity"], cfg.cmu_subjects, seed)
        emit("expression", majority(labels["expression"][tr], labels["expression"][te], 4))
        emit("pose", majority(labels["pose"][tr], labels["pose"][te], 4))
    emit("verification", {"accuracy": 0.5})
    return rows


# --------------------------------------------------------------------------- swap fidelity


def can_swap(source: Any) -> bool:
    """Whether swap fidelity applies: a trained model that decodes (F_f, F_p) (a method's ``has_decoder``)."""
    model = getattr(source, "model", None)
    return source.method != RANDOM_INIT and callable(getattr(model, "decode", None))


def swap_fidelity(model: nn.Module, image_set: ImageSet, n_pairs: int, seed: int, cfg: EvalConfig) -> ProbeResult:
    """Swap reconstructions scored against SynthFaces ground truth (PSNR dB, SSIM; Wang et al. 2004).

    For random test pairs (A, B), A != B (:func:`pclkit.swap.draw_swap_pairs`):
    ``swap`` compares D(F_f^A, F_p^B) with ``render(Factors.combine(face_from=A,
    pose_from=B))``; two controls compare the same D(F_f^A, F_p^B) with
    render(face A, pose A) = image A (``swap_vs_a``: high if the decoder ignores
    F_p) and with render(face B, pose B) = image B (``swap_vs_b``: high if F_p
    carries B's face); a real swap beats both. ``noswap`` compares
    D(F_f^A, F_p^A) with the swap target; ``recon`` compares D(F_f^A, F_p^A)
    with image A.
    """
    from pclkit.data.synthfaces import Factors, render
    from pclkit.features import check_frozen, to_model_input
    from pclkit.image_metrics import psnr, ssim

    check_frozen(model)
    a, b = draw_swap_pairs(len(image_set), n_pairs, seeded_generator(seed, "swap"))
    images = image_set.images()
    size = int(model.image_size)
    scores: dict[str, list[Tensor]] = {}
    with torch.inference_mode():
        for start in range(0, len(a), cfg.batch_size):
            ia, ib = a[start:start + cfg.batch_size], b[start:start + cfg.batch_size]
            xa, xb = to_model_input(images[ia], size, cfg.device), to_model_input(images[ib], size, cfg.device)
            fa, fb = model.forward_features(xa), model.forward_features(xb)
            swapped, recon = (
                x.float().cpu() for x in decode_pairs(model.decode, [(fa["F_f"], fb["F_p"]), (fa["F_f"], fa["F_p"])])
            )
            target = render(Factors.combine(image_set.factors[ia], image_set.factors[ib]), size)
            # the truth passes through the same 8-bit quantisation as the inputs
            target = (target * 255).round() / 255
            xa, xb = xa.float().cpu(), xb.float().cpu()
            compared = {"swap": (swapped, target), "swap_vs_a": (swapped, xa), "swap_vs_b": (swapped, xb),
                        "noswap": (recon, target), "recon": (recon, xa)}
            for key, (pred, truth) in compared.items():
                scores.setdefault(f"psnr_{key}", []).append(psnr(pred, truth))
                scores.setdefault(f"ssim_{key}", []).append(ssim(pred, truth))
    metrics = {k: torch.cat(v).mean().item() for k, v in scores.items()}
    metrics["n_pairs"] = float(len(a))
    return ProbeResult(metrics, {})
