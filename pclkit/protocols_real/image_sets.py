"""A real benchmark's image sets, built from the loaders of :mod:`pclkit.data.real`: labels now, images on demand.

The loaders index and verify everything before any feature is computed:
unusable items are skipped, counted, reported in one warning and in the
``dataset info`` rows (:attr:`Prepared.info`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from pclkit.features import ImageSet
from pclkit.probes import Pairs
from pclkit.protocols_real.inputs import DataInputError, Inputs

#: AFLW2000 / 300W-LP samples with any |angle| above this are dropped (FSA-Net, Hopenet)
MAX_ANGLE = 99.0
#: DISFA's subject-exclusive 3-fold partition (JAA-Net, ME-GraphAU)
DISFA_STANDARD_FOLDS: tuple[tuple[str, ...], ...] = (
    ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
)
#: bump when a protocol's image preparation changes, so cached features are not reused
PROTOCOL_VERSION = 1


@dataclass
class Prepared:
    """A benchmark ready to probe: its image sets and what the protocol needs besides images.

    ``image_sets[name]`` holds labels (tensors ``(N, ...)``) and images on demand;
    ``class_names`` names the classes of classification benchmarks; ``info``
    counts images, skips and drops (reported as ``dataset info`` rows);
    ``extra`` holds protocol data (verification pairs, DISFA folds).
    """

    data: str
    image_sets: dict[str, ImageSet]
    class_names: list[str] = field(default_factory=list)
    info: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _open(data: str, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Construct a loader; turn its 'missing file' / 'nothing usable' errors into :class:`DataInputError`."""
    try:
        return factory(*args, **kwargs)
    except (FileNotFoundError, ValueError) as error:
        raise DataInputError(f"{data}: {error}") from error


def stat_digest(paths: Iterable[str | os.PathLike]) -> str:
    """Short hash of each file's path, size and modification time (cache keys change when data changes)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_uint8(n: int, get: Callable[[int], Tensor], progress: bool = False, desc: str = "images", chunk: int = 256) -> Tensor:
    """Images ``get(i)`` (float ``(3, S, S)`` in [0, 1]) for ``i < n`` -> uint8 ``(n, 3, S, S)``, converted per chunk."""
    out: Tensor | None = None
    for start in tqdm(range(0, n, chunk), desc=desc, disable=not progress, leave=False):
        batch = torch.stack([get(i) for i in range(start, min(n, start + chunk))])
        batch = (batch.clamp_(0, 1) * 255).round_().to(torch.uint8)
        if out is None:
            out = torch.empty((n, *batch.shape[1:]), dtype=torch.uint8)
        out[start:start + len(batch)] = batch
    if out is None:
        raise DataInputError(f"{desc}: no images to load")
    return out


def labels_of(dataset: Any, keys: Sequence[str]) -> dict[str, Tensor]:
    """Label tensors ``{key: (N, ...)}`` (+ ``index``) of all a loader's items, without decoding images."""
    items = [dataset.item_labels(i) for i in range(len(dataset))]
    out = {}
    for key in keys:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if values and isinstance(values[0], Tensor) else torch.tensor(values)
    out["index"] = torch.arange(len(items))
    return out


def lazy_image_set(name: str, identity: dict[str, Any], labels: dict[str, Tensor], get: Callable[[int], Tensor],
                   progress: bool) -> ImageSet:
    """An :class:`ImageSet` whose images ``get(i)`` are decoded only if some features are not cached."""
    n = int(labels["index"].shape[0])
    return ImageSet(name, labels, {**identity, "part": name, "n": n, "protocol": PROTOCOL_VERSION},
                    lambda: load_uint8(n, get, progress, desc=f"{identity['data']} {name}"))


def _identity(data: str, size: int, files: Iterable[str | os.PathLike]) -> dict[str, Any]:
    return {"data": data, "size": size, "content": stat_digest(files)}


def _skipped(*datasets: Any) -> float:
    return float(len({item for dataset in datasets for item in dataset.skipped}))


def prepare_rafdb(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """RAF-DB basic: image sets ``train`` (train list) and ``test`` (test list), label ``expression`` (RAF order)."""
    from pclkit.data.real import RAF_EXPRESSIONS, RAFDB

    root = inputs.paths["root"]
    splits = {split: _open("rafdb", RAFDB, root, split=split, size=size) for split in ("train", "test")}
    list_file = root / "EmoLabel" / "list_patition_label.txt"
    image_sets = {}
    for split, dataset in splits.items():
        identity = _identity("rafdb", size, [list_file, *dataset.paths])
        image_sets[split] = lazy_image_set(split, identity, labels_of(dataset, ["expression"]), lambda i, d=dataset: d[i][0],
                                           progress)
    info = {"n_train": len(splits["train"]), "n_test": len(splits["test"]), "n_skipped": _skipped(*splits.values())}
    return Prepared("rafdb", image_sets, list(RAF_EXPRESSIONS), info)


def prepare_fer2013(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """FER-2013: image sets ``train`` (Training), ``val`` (PublicTest), ``test`` (PrivateTest)."""
    from pclkit.data.real import FER2013, FER_EXPRESSIONS

    csv_path = inputs.paths["csv"]
    usages = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    splits = {split: _open("fer2013", FER2013, csv_path, usage=usage, size=size) for split, usage in usages.items()}
    image_sets = {split: lazy_image_set(split, {**_identity("fer2013", size, [csv_path]), "usage": usages[split]},
                                        labels_of(dataset, ["expression"]), lambda i, d=dataset: d[i][0], progress)
                  for split, dataset in splits.items()}
    info = {f"n_{split}": len(dataset) for split, dataset in splits.items()}
    info["n_skipped"] = _skipped(*splits.values())
    return Prepared("fer2013", image_sets, list(FER_EXPRESSIONS), info)


def prepare_pairs(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """LFW / CPLFW: one image set ``pairs`` of the distinct images of the pair list, and the :class:`Pairs`."""
    from pclkit.data.imageio import load_image
    from pclkit.data.real import PairList

    data = inputs.data
    pair_list = _open(data, PairList, inputs.paths["images"], inputs.paths["pairs"], fmt=data, size=size)
    paths = sorted({path for pair in pair_list.pairs for path in pair})
    position = {path: i for i, path in enumerate(paths)}
    labels = labels_of(pair_list, ["same", "fold"])
    pairs = Pairs(
        torch.tensor([position[a] for a, _ in pair_list.pairs]),
        torch.tensor([position[b] for _, b in pair_list.pairs]),
        labels["same"].bool(),
        labels["fold"].long(),
    )
    check_pairs(data, pairs, inputs.paths["pairs"])
    identity = _identity(data, size, [inputs.paths["pairs"], *paths])
    images = lazy_image_set(
        "pairs", identity, {"index": torch.arange(len(paths))}, lambda i: load_image(paths[i], size), progress
    )
    info = {"n_pairs": len(pairs), "n_same": float(pairs.same.sum()), "n_images": len(paths),
            "n_folds": float(len(torch.unique(pairs.fold))), "n_skipped": _skipped(pair_list)}
    return Prepared(data, {"pairs": images}, [], info, {"pairs": pairs})


def check_pairs(data: str, pairs: Pairs, pairs_file: Path) -> None:
    """Refuse pair lists the 10-fold protocol cannot score (one fold, or only one kind of pair)."""
    folds = len(torch.unique(pairs.fold))
    if folds < 2:
        raise DataInputError(f"{data}: {pairs_file} has {folds} fold of usable pairs; the k-fold protocol needs >= 2 "
                             f"(use the View 2 list: LFW pairs.txt, CPLFW pairs_CPLFW.txt)")
    if bool(pairs.same.all()) or not bool(pairs.same.any()):
        raise DataInputError(f"{data}: {pairs_file} has only {'same' if pairs.same.all() else 'different'}-person pairs usable")


def disfa_folds(subjects: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Subject-exclusive 3-fold partition of ``subjects``.

    The standard partition (:data:`DISFA_STANDARD_FOLDS`) when every subject is
    named in it and each of its folds keeps a subject; otherwise the sorted
    subjects dealt round-robin into 3 folds (e.g. renamed or subset data).
    """
    present = set(subjects)
    standard = tuple(tuple(s for s in fold if s in present) for fold in DISFA_STANDARD_FOLDS)
    if present <= {s for fold in DISFA_STANDARD_FOLDS for s in fold} and all(standard):
        return standard
    ordered = sorted(present)
    return tuple(tuple(ordered[k::3]) for k in range(3))


def prepare_disfa(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """DISFA: one image set ``all`` with ``aus_raw`` (intensities 0..5) and ``identity``; ``extra["folds"]`` subject folds."""
    from pclkit.data.real import DISFA

    dataset = _open("disfa", DISFA, inputs.paths["root"], size=size)
    labels = labels_of(dataset, ["aus_raw", "identity"])
    names = dataset.class_names["identity"]
    subjects = [names[i] for i in torch.unique(labels["identity"]).tolist()]
    folds = disfa_folds(subjects)
    if sum(1 for fold in folds if fold) < 3 or len(subjects) < 3:
        raise DataInputError(f"disfa: subject-exclusive 3-fold evaluation needs >= 3 subjects with frames, "
                             f"found {len(subjects)} ({', '.join(subjects)}) in {inputs.paths['root']}")
    label_files = sorted(str(p) for p in (inputs.paths["root"] / "ActionUnit_Labels").rglob("*.txt"))
    images = lazy_image_set("all", _identity("disfa", size, [*label_files, *dataset.paths]), labels,
                            lambda i: dataset[i][0], progress)
    standard = tuple(tuple(s for s in fold if s in set(subjects)) for fold in DISFA_STANDARD_FOLDS)
    info = {"n_frames": len(dataset), "n_subjects": len(subjects), "n_skipped": _skipped(dataset),
            "standard_folds": float(folds == standard)}
    fold_ids = tuple(torch.tensor([names.index(s) for s in fold]) for fold in folds)
    return Prepared("disfa", {"all": images}, [], info, {"folds": fold_ids, "fold_names": folds})


def prepare_aflw2000(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """300W-LP (image set ``train``) and AFLW2000 (``test``) with ``pose`` = (yaw, pitch, roll) degrees, ±99° filter."""
    from pclkit.data.real import PoseNPZ

    image_sets, info, loaded = {}, {}, []
    for split, files in (("train", inputs.paths["train"]), ("test", (inputs.paths["test"],))):
        datasets = [_open("aflw2000", PoseNPZ, path, size=size, max_angle=MAX_ANGLE) for path in files]
        loaded += datasets
        identity = {**_identity("aflw2000", size, files), "max_angle": MAX_ANGLE}
        image_sets[split] = lazy_image_set(split, identity, concat_labels([labels_of(d, ["pose"]) for d in datasets]),
                                           concat_getter(datasets), progress)
        info[f"n_{split}"] = sum(len(d) for d in datasets)
        info[f"n_{split}_dropped"] = sum(len(d.outside_range) for d in datasets)
    info["n_skipped"] = _skipped(*loaded)
    return Prepared("aflw2000", image_sets, [], info)


def concat_labels(labels: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Label dicts of several loaders, one after the other (``index`` renumbered)."""
    out = {key: torch.cat([item[key] for item in labels]) for key in labels[0] if key != "index"}
    out["index"] = torch.arange(sum(len(item["index"]) for item in labels))
    return out


def concat_getter(datasets: Sequence[Any]) -> Callable[[int], Tensor]:
    """``get(i)``: image ``i`` of the datasets laid end to end."""
    starts = np.cumsum([0] + [len(d) for d in datasets])

    def get(i: int) -> Tensor:
        k = int(np.searchsorted(starts, i, side="right")) - 1
        return datasets[k][i - int(starts[k])][0]

    return get


def prepare_folder(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """A folder of class sub-folders: one image set ``all`` with label ``label``; classes with < 3 images are dropped."""
    from pclkit.data.real import FaceFolder

    dataset = _open("folder", FaceFolder, inputs.paths["root"], size=size, labels_from_subfolders=True)
    classes = labels_of(dataset, ["identity"])["identity"]
    counts = torch.bincount(classes, minlength=len(dataset.class_names["identity"]))
    kept = torch.nonzero(counts >= 3).flatten()
    if len(kept) < 2:
        raise DataInputError(f"folder: a stratified train/val/test split needs >= 2 classes with >= 3 images; "
                             f"{inputs.paths['root']} has {int((counts >= 3).sum())}")
    rows = torch.nonzero(torch.isin(classes, kept)).flatten().tolist()
    remap = torch.full((len(counts),), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    labels = {"label": remap[classes[rows]], "index": torch.arange(len(rows))}
    images = lazy_image_set("all", _identity("folder", size, [dataset.paths[i] for i in rows]), labels,
                            lambda i: dataset[rows[i]][0], progress)
    names = [dataset.class_names["identity"][c] for c in kept.tolist()]
    info = {"n_images": len(rows), "n_classes": len(kept), "n_classes_dropped": float(len(counts) - len(kept)),
            "n_images_dropped": float(len(dataset) - len(rows)), "n_skipped": _skipped(dataset)}
    return Prepared("folder", {"all": images}, names, info)


#: benchmark -> the function that indexes and verifies its data
PREPARERS: dict[str, Callable[[Inputs, int, bool], Prepared]] = {
    "rafdb": prepare_rafdb,
    "fer2013": prepare_fer2013,
    "lfw": prepare_pairs,
    "cplfw": prepare_pairs,
    "disfa": prepare_disfa,
    "aflw2000": prepare_aflw2000,
    "folder": prepare_folder,
}


def prepare(inputs: Inputs, size: int, progress: bool = False) -> Prepared:
    """Index and verify benchmark ``inputs.data`` at ``size`` px (labels now, images on demand)."""
    return PREPARERS[inputs.data](inputs, size, progress)


_INFO_TEXT = {
    "n_train": "{:.0f} train", "n_val": "{:.0f} validation", "n_test": "{:.0f} test", "n_pairs": "{:.0f} pairs",
    "n_same": "{:.0f} same-person", "n_images": "{:.0f} images", "n_folds": "{:.0f} folds", "n_frames": "{:.0f} frames",
    "n_subjects": "{:.0f} subjects", "n_classes": "{:.0f} classes",
    "n_train_dropped": "{:.0f} 300W-LP samples dropped (an angle outside ±99°)",
    "n_test_dropped": "{:.0f} AFLW2000 samples dropped (an angle outside ±99°)",
    "n_classes_dropped": "{:.0f} classes with < 3 images left out", "n_images_dropped": "{:.0f} images of those classes",
    "n_skipped": "{:.0f} unusable items skipped",
}


def describe_info(data: str, info: Mapping[str, float]) -> str:
    """One line of counts, e.g. ``"12271 train, 3068 test, 0 unusable items skipped"``."""
    texts = [_INFO_TEXT[k].format(v) for k, v in info.items() if k in _INFO_TEXT]
    if data == "disfa":
        texts.append("standard 3-fold partition" if info.get("standard_folds") else "subjects dealt round-robin into 3 folds")
    return ", ".join(texts)
