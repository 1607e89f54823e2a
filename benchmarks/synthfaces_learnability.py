"""Is every SynthFaces label learnable from the pixels? A fully supervised reference.

A small CNN is trained for a few CPU minutes on SynthFaces ``train`` with all
labels at once (expression, identity, AU intensities, head pose), then
evaluated on data it never saw:

* expression accuracy, AU F1 (binary at intensity >= ``AU_THRESHOLD``, the
  linear probes' convention: DISFA level >= 2 of 0..5 rescaled to [0, 1], so
  the supervised row is comparable with the probes) and yaw/pitch/roll
  MAE on the ``test`` split (identities disjoint from training);
* identity accuracy (closed set) on held-out images of the training
  identities: the last ``heldout_per_identity`` occurrences of each training
  identity never enter training.

This is the "fully supervised" row for the project's tables. Run::

    python benchmarks/synthfaces_learnability.py --minutes 4 --json results/learnability.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pclkit.data.synthfaces import AU_NAMES, EXPRESSIONS, SynthConfig, SynthFaces
from pclkit.probes import ProbeConfig
from pclkit.runtime import native_bf16

AU_THRESHOLD = ProbeConfig.au_intensity_threshold
POSE_SCALE = torch.tensor([90.0, 40.0, 30.0])  # degrees: pose targets are divided by these


@dataclass
class LearnabilityConfig:
    minutes: float = 4.0
    n_train_identities: int = 500
    images_per_identity: int = 30
    heldout_per_identity: int = 5
    n_test: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    bf16: bool = True


class SmallCNN(nn.Module):
    """A compact 64x64 CNN (strided stem, four conv stages) with one shared trunk and four heads.

    Sized for a few minutes on one or two CPU cores (~60 MMAC per image).
    """

    def __init__(self, n_identities: int, width: int = 32):
        super().__init__()

        def stage(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)
            )

        self.trunk = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),  # 32x32
            stage(width, 2 * width),  # 16x16
            stage(2 * width, 4 * width),  # 8x8
            stage(4 * width, 8 * width),  # 4x4
            nn.Conv2d(8 * width, 8 * width, 3, padding=1, bias=False), nn.BatchNorm2d(8 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        features = 8 * width
        self.expression = nn.Linear(features, len(EXPRESSIONS))
        self.identity = nn.Linear(features, n_identities)
        self.aus = nn.Linear(features, len(AU_NAMES))
        self.pose = nn.Linear(features, 3)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h = self.trunk(x)
        return {"expression": self.expression(h), "identity": self.identity(h), "aus": self.aus(h), "pose": self.pose(h)}


def _split_train_heldout(labels: dict[str, Tensor], n_ids: int, heldout: int, per_id: int) -> tuple[Tensor, Tensor]:
    """Sample i shows identity i % n_ids for the (i // n_ids)-th time: hold out the last occurrences."""
    occurrence = torch.arange(len(labels["identity"])) // n_ids
    train = occurrence < per_id - heldout
    return train.nonzero()[:, 0], (~train).nonzero()[:, 0]


def _loss(out: dict[str, Tensor], y: dict[str, Tensor]) -> Tensor:
    return (
        F.cross_entropy(out["expression"], y["expression"])
        + F.cross_entropy(out["identity"], y["identity"])
        + F.binary_cross_entropy_with_logits(out["aus"], y["aus"])  # soft targets = intensities
        + F.smooth_l1_loss(out["pose"], y["pose"] / POSE_SCALE, beta=0.1)
    )


def _batches(images: Tensor, labels: dict[str, Tensor], index: Tensor, size: int):
    for start in range(0, len(index), size):
        rows = index[start : start + size]
        x = (images[rows].float() / 255).contiguous(memory_format=torch.channels_last)
        yield x, {k: v[rows] for k, v in labels.items()}


@torch.no_grad()
def _predict(
    model: nn.Module, images: Tensor, labels: dict[str, Tensor], index: Tensor, cfg: LearnabilityConfig
) -> dict[str, Tensor]:
    model.eval()
    outs: dict[str, list[Tensor]] = {}
    for x, _ in _batches(images, labels, index, 256):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            out = model(x)
        for k, v in out.items():
            outs.setdefault(k, []).append(v.float())
    return {k: torch.cat(v) for k, v in outs.items()}


def _f1(pred: Tensor, true: Tensor) -> float:
    tp = float((pred & true).sum())
    fp = float((pred & ~true).sum())
    fn = float((~pred & true).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def run_learnability(cfg: LearnabilityConfig = LearnabilityConfig(), progress: bool = True) -> dict[str, Any]:
    """Train for ``cfg.minutes`` of wall time and return the test metrics (a JSON-able dict)."""
    torch.manual_seed(cfg.seed)
    log = print if progress else (lambda *a, **k: None)
    synth = SynthConfig(identities={"train": cfg.n_train_identities, "val": 100, "test": 200})
    t0 = time.perf_counter()
    train_ds = SynthFaces("train", n=cfg.n_train_identities * cfg.images_per_identity, seed=cfg.seed, config=synth)
    test_ds = SynthFaces("test", n=cfg.n_test, seed=cfg.seed, config=synth)
    train_images, train_labels = train_ds.tensors(progress=progress)
    test_images, test_labels = test_ds.tensors(progress=progress)
    render_s = time.perf_counter() - t0
    log(f"rendered {len(train_ds) + len(test_ds)} images in {render_s:.0f} s")
    train_labels["identity"] = train_labels["identity"] - synth.identity_base["train"]
    train_idx, heldout_idx = _split_train_heldout(
        train_labels, cfg.n_train_identities, cfg.heldout_per_identity, cfg.images_per_identity
    )

    model = SmallCNN(cfg.n_train_identities).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    budget = cfg.minutes * 60
    steps_per_epoch = (len(train_idx) + cfg.batch_size - 1) // cfg.batch_size
    start = time.perf_counter()
    step, epoch = 0, 0
    gen = torch.Generator().manual_seed(cfg.seed)
    while time.perf_counter() - start < budget:
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        model.train()
        running = 0.0
        for x, y in _batches(train_images, train_labels, order, cfg.batch_size):
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                break
            # cosine decay over the time budget (the number of steps is not known in advance)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + torch.cos(torch.tensor(elapsed / budget * torch.pi)).item())
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                out = model(x)
            loss = _loss({k: v.float() for k, v in out.items()}, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach())
            step += 1
        epoch += 1
        log(
            f"epoch {epoch}: {step} steps, mean loss {running / max(steps_per_epoch, 1):.3f}, {time.perf_counter() - start:.0f} s"
        )
    train_s = time.perf_counter() - start

    test = _predict(model, test_images, test_labels, torch.arange(len(test_ds)), cfg)
    heldout = _predict(model, train_images, train_labels, heldout_idx, cfg)
    expression_acc = float((test["expression"].argmax(1) == test_labels["expression"]).float().mean())
    identity_acc = float((heldout["identity"].argmax(1) == train_labels["identity"][heldout_idx]).float().mean())
    au_pred = torch.sigmoid(test["aus"]) >= AU_THRESHOLD
    au_true = test_labels["aus"] >= AU_THRESHOLD
    au_f1 = {name: _f1(au_pred[:, k], au_true[:, k]) for k, name in enumerate(AU_NAMES)}
    pose_mae = (test["pose"] * POSE_SCALE - test_labels["pose"]).abs().mean(0)
    chance_pose = (test_labels["pose"] - test_labels["pose"].median(0).values).abs().mean(0)
    # R² = 1 - SSE / SST per angle, as the linear probes report it (the bar of F_p is on their mean)
    pose_sse = ((test["pose"] * POSE_SCALE - test_labels["pose"]) ** 2).sum(0)
    pose_sst = ((test_labels["pose"] - test_labels["pose"].mean(0)) ** 2).sum(0)
    pose_r2 = 1 - pose_sse / pose_sst
    result = {
        "config": asdict(cfg),
        "steps": step,
        "epochs": epoch,
        "train_images": len(train_idx),
        "render_seconds": round(render_s, 1),
        "train_seconds": round(train_s, 1),
        "test_expression_accuracy": round(expression_acc, 4),
        "test_expression_chance": round(float(torch.bincount(test_labels["expression"]).max()) / len(test_ds), 4),
        "heldout_identity_accuracy": round(identity_acc, 4),
        "identity_chance": round(1 / cfg.n_train_identities, 4),
        "test_au_f1": {k: round(v, 4) for k, v in au_f1.items()},
        "test_au_f1_mean": round(sum(au_f1.values()) / len(au_f1), 4),
        "test_au_positive_rate": {name: round(float(au_true[:, k].float().mean()), 3) for k, name in enumerate(AU_NAMES)},
        "au_threshold": AU_THRESHOLD,
        "test_pose_mae_deg": dict(zip(["yaw", "pitch", "roll"], [round(float(v), 2) for v in pose_mae])),
        "test_pose_mae_median_predictor_deg": dict(zip(["yaw", "pitch", "roll"], [round(float(v), 2) for v in chance_pose])),
        "test_pose_r2": dict(zip(["yaw", "pitch", "roll"], [round(float(v), 4) for v in pose_r2])),
        "test_pose_r2_mean": round(float(pose_r2.mean()), 4),
        "threads": torch.get_num_threads(),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training wall-time budget")
    parser.add_argument("--json", type=Path, default=None, help="write the metrics here")
    parser.add_argument("--images-per-identity", type=int, default=30)
    parser.add_argument("--identities", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bf16", action="store_true",
                        help="train in float32 (default: bf16 only where the CPU computes it natively)")
    args = parser.parse_args(argv)
    cfg = LearnabilityConfig(
        minutes=args.minutes, n_train_identities=args.identities, images_per_identity=args.images_per_identity,
        seed=args.seed, bf16=not args.no_bf16 and native_bf16(torch.device("cpu")),
    )
    result = run_learnability(cfg)
    from pclkit.data.synthfaces import RENDERER_VERSION

    result["renderer_version"] = RENDERER_VERSION  # the tables use it only for data of the same renderer
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
