"""``embed``: the frozen features of a folder of face images, written to ``.npz`` or ``.csv``.

::

    python -m pclkit embed runs/pcl IMAGES_DIR --out feats.npz
    python -m pclkit embed pretrained:pcl_synthfaces IMAGES_DIR --out feats.csv

Every image below ``IMAGES_DIR`` (recursive; :class:`pclkit.data.FaceFolder`:
centre square crop, resized to the model's input side) goes through the model
in eval mode (:func:`pclkit.features.extract_features`) and gives the features
the model exposes (``model.feature_dims``): F_s, F_f and F_p of a model with
face and pose branches (PCL), F_s alone of one without (SimCLR).
Unreadable files are skipped and counted, never a crash part-way.

* ``.npz``: ``files`` (relative paths, ``/``-separated, sorted), one float32
  array ``(N, D)`` per feature (``F_s``, ``F_f``, ``F_p``), ``skipped`` and
  ``skipped_reasons`` (what was left out and why), ``checkpoint``, ``method``.
  Read with ``np.load(path)`` (no pickle needed).
* ``.csv``: a header ``file,F_s_0,...,F_s_{D-1},F_f_0,...`` and one row per image.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pclkit.checkpoint import atomic_write
from pclkit.features import extract_features

__all__ = ["Embeddings", "embed_folder", "write_embeddings", "FORMATS"]

#: output formats by file extension
FORMATS = (".npz", ".csv")
#: the per-image features ``embed`` writes (F_f ⊕ F_p is their concatenation, left to the reader)
EMBED_FEATURES = ("F_s", "F_f", "F_p")


@dataclass
class Embeddings:
    """Features of the usable images of a folder, in file order.

    ``files``: relative paths; ``features``: ``{name: float32 (N, D)}``;
    ``skipped``: ``(path, reason)`` of every file left out.
    """

    files: list[str]
    features: dict[str, np.ndarray]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    checkpoint: str = ""
    method: str = ""

    def __len__(self) -> int:
        return len(self.files)


class _SafeItems(Dataset):
    """``(index, image or None, reason)``: a file that fails at read time is reported, not raised."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        from pclkit.data.imageio import ImageDecodeError

        try:
            return index, self.dataset[index][0], ""
        except ImageDecodeError as error:
            return index, None, error.reason


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
    """``(indices of good images, their stacked images, (index, reason) of bad ones)``."""
    good = [(i, image) for i, image, _ in items if image is not None]
    bad = [(i, reason) for i, image, reason in items if image is None]
    images = torch.stack([image for _, image in good]) if good else None
    return [i for i, _ in good], images, bad


def open_folder(images_dir: str | Path, size: int, check: str = "decode") -> Any:
    """A :class:`pclkit.data.FaceFolder` of ``images_dir`` (its skip warning left to the caller's report)."""
    from pclkit.data import FaceFolder
    from pclkit.data.itemlist import SkippedItemsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedItemsWarning)
        return FaceFolder(images_dir, size=size, check=check)


def _batches(
    dataset: Any, batch_size: int, workers: int
) -> Iterator[tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]]:
    loader = DataLoader(_SafeItems(dataset), batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_collate)
    yield from loader


def embed_folder(
    checkpoint: str | os.PathLike,
    images_dir: str | os.PathLike,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    workers: int = 0,
    check: str = "decode",
    progress: bool = True,
) -> Embeddings:
    """Features of every usable image below ``images_dir`` from ``checkpoint``.

    ``checkpoint`` is anything :func:`pclkit.checkpoint.load_model` reads (a
    ``last.pt``, a run folder, ``pretrained:NAME``). Files that cannot be
    decoded (when indexed or when read) land in ``Embeddings.skipped``.
    """
    from tqdm.auto import tqdm

    from pclkit.checkpoint import load_model

    device = torch.device(device)
    model, config = load_model(checkpoint, device=device)
    method = str(config.get("method", ""))
    names = tuple(name for name in EMBED_FEATURES if name in model.feature_dims)  # what the model exposes
    dataset = open_folder(images_dir, int(model.image_size), check)
    root = Path(dataset.root)
    skipped = list(dataset.skipped)
    kept: list[int] = []
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    with tqdm(total=len(dataset), desc="embed", unit="img", disable=not progress, file=sys.stderr) as bar:
        for indices, images, bad in _batches(dataset, batch_size, workers):
            skipped += [(dataset.paths[i], reason) for i, reason in bad]
            if images is not None:
                feats = extract_features(model, images, names, batch_size=len(indices), device=device, progress=False)
                for name in names:
                    chunks[name].append(feats[name].numpy())
                kept += indices
            bar.update(len(indices) + len(bad))
    if not kept:
        raise ValueError(f"no usable image in {root} ({len(skipped)} skipped)")
    files = [Path(dataset.paths[i]).relative_to(root).as_posix() for i in kept]
    features = {name: np.concatenate(parts).astype(np.float32, copy=False) for name, parts in chunks.items()}
    return Embeddings(files, features, skipped, checkpoint=str(checkpoint), method=method)


# --------------------------------------------------------------------------- writing


def write_npz(embeddings: Embeddings, path: str | Path) -> Path:
    """``files``, one array per feature, ``skipped``/``skipped_reasons``, ``checkpoint``, ``method``."""
    arrays: dict[str, np.ndarray] = {
        "files": np.array(embeddings.files, dtype=str),
        **embeddings.features,
        "skipped": np.array([p for p, _ in embeddings.skipped], dtype=str),
        "skipped_reasons": np.array([r for _, r in embeddings.skipped], dtype=str),
        "checkpoint": np.array(embeddings.checkpoint),
        "method": np.array(embeddings.method),
    }
    return atomic_write(Path(path), lambda handle: np.savez(handle, **arrays))


def csv_header(features: dict[str, np.ndarray]) -> list[str]:
    """``["file", "F_s_0", ..., "F_p_{D-1}"]``."""
    return ["file"] + [f"{name}_{j}" for name, values in features.items() for j in range(values.shape[1])]


def csv_field(text: str) -> str:
    """``text`` as one CSV field (RFC 4180 quoting when it holds a comma, quote or line break)."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


def write_csv(embeddings: Embeddings, path: str | Path, block: int = 512) -> Path:
    """One row per image: its relative path, then every feature value (``%.9g``, exact for float32)."""
    values = np.concatenate(list(embeddings.features.values()), axis=1)

    def write(handle: io.BufferedWriter) -> None:
        handle.write((",".join(csv_header(embeddings.features)) + "\n").encode())
        for start in range(0, len(embeddings.files), block):
            rows = io.StringIO()
            np.savetxt(rows, values[start:start + block], fmt="%.9g", delimiter=",")
            names = embeddings.files[start:start + block]
            lines = (f"{csv_field(name)},{row}\n" for name, row in zip(names, rows.getvalue().splitlines()))
            handle.write("".join(lines).encode("utf-8"))

    return atomic_write(Path(path), write)


def write_embeddings(embeddings: Embeddings, path: str | Path) -> Path:
    """Write by extension: ``.npz`` or ``.csv``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return write_npz(embeddings, path)
    if suffix == ".csv":
        return write_csv(embeddings, path)
    raise ValueError(f"unknown output format {suffix or '(none)'!r} of {path}; use one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m pclkit embed``."""
    parser.add_argument("checkpoint", metavar="CKPT", help="last.pt, a run folder, or pretrained:NAME")
    parser.add_argument("images", type=Path, metavar="IMAGES_DIR", help="folder of face images (recursive)")
    parser.add_argument("--out", type=Path, required=True, help="output file: .npz or .csv")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: cuda if available")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    parser.add_argument("--check", choices=["decode", "header"], default="decode",
                        help="verify files by decoding them (default) or by their headers only (large folders)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when nothing could be embedded or the inputs are unusable; 2 for a bad --out."""
    from pclkit.checkpoint import CheckpointError
    from pclkit.trainer import select_device

    if Path(args.out).suffix.lower() not in FORMATS:
        print(f"error: --out must end in {' or '.join(FORMATS)}, got {args.out}", file=sys.stderr)
        return 2
    if args.batch_size < 1 or args.workers < 0:
        print("error: --batch-size must be >= 1 and --workers >= 0", file=sys.stderr)
        return 2
    try:
        embeddings = embed_folder(args.checkpoint, args.images, batch_size=args.batch_size,
                                  device=select_device(args.device), workers=args.workers, check=args.check,
                                  progress=not args.no_progress)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    path = write_embeddings(embeddings, args.out)
    dims = ", ".join(f"{name} {values.shape[1]}-d" for name, values in embeddings.features.items())
    print(f"wrote {path}: {len(embeddings)} images ({dims}; {embeddings.method})")
    if embeddings.skipped:
        from pclkit.data.itemlist import summarise

        print(f"skipped {len(embeddings.skipped)} unreadable file(s): {summarise(embeddings.skipped, limit=5)}",
              file=sys.stderr)
    return 0
