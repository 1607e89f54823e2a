"""How sharp can the main job's decoder get in its budget? A plain autoencoder as the ceiling.

PCL's swaps stay blurred (swap PSNR ~18 dB, self-reconstruction ~20 dB at 512
steps). Is that the contrastive objectives taking information out of F_f, or the
encoder + decoder architecture and the step budget? This script trains the
``synth_cpu`` PCL model's encoder and decoder as a **plain autoencoder**:
s -> (F_f, F_p) -> D(F_f, F_p) ≈ s, L1 only (no L_face, L_pose, L_orth, no pose
change), on the main job's training faces, batch and optimiser, for ``--steps``
steps, then reports PSNR / SSIM of D(E(s)) against s on validation faces
(identities never trained on). If the autoencoder is no sharper than PCL's
self-reconstruction, the budget and architecture are the limit, not the method.

    python benchmarks/decoder_ceiling.py --steps 512                       # the main job's budget
    python benchmarks/decoder_ceiling.py --steps 512 --noise 0             # without L_dis's input noise
    python benchmarks/decoder_ceiling.py --steps 512 --set model.decoder_stage_width=96
    python benchmarks/decoder_ceiling.py --steps 256 --task swap           # L_dis's swap terms alone

``--task swap`` trains the same model on L_dis's two swap terms only (PCL Eq. 2
with ``loss.dis_terms=swaps``): D(F_f(ŝ + n), F_p(s + n)) ≈ s and
D(F_f(s + n), F_p(ŝ + n)) ≈ ŝ, with ŝ the face re-rendered at another pose from
the recipe's pose bank -- PCL's reconstruction task without L_face, L_pose and
L_orth. Both tasks are also scored with the swap-fidelity protocol on the odd
validation identities (``benchmarks/recipe_search.py``'s parts, 256 pairs), so
the numbers sit beside the recipe search's.

Appends one JSON line per run to ``benchmarks/results/decoder_ceiling.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from recipe_search import validation_parts  # this folder's script: the same validation parts

from pclkit.augment import add_gaussian_noise
from pclkit.config import resolve_config
from pclkit.data.synthfaces import synthfaces_split
from pclkit.evaluate import EvalConfig
from pclkit.image_metrics import psnr, ssim
from pclkit.losses import swap_reconstruction
from pclkit.models import build_model
from pclkit.optim import WarmupCosine, build_optimizer
from pclkit.protocols import swap_fidelity
from pclkit.trainer import build_pose_bank

LOG = Path("benchmarks/results/decoder_ceiling.jsonl")


def reconstruct(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """D(F_f, F_p) of each image's own features: (B, 3, S, S) -> (B, 3, S, S)."""
    features = model.forward_features(images)
    return model.decode(features["F_f"], features["F_p"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--noise", type=float, default=None, help="input noise sigma (default: the preset's recon_noise)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="config override, KEY=VALUE")
    parser.add_argument("--n-val", type=int, default=512)
    parser.add_argument("--task", choices=("autoencoder", "swap"), default="autoencoder",
                        help="D(E(s)) ≈ s, or L_dis's swap terms across the pose bank's re-renders")
    args = parser.parse_args()

    config = resolve_config("synth_cpu", args.overrides)
    sigma = config.views.recon_noise if args.noise is None else args.noise
    torch.manual_seed(config.seed)
    size = config.model.image_size
    data = config.data
    train_set = synthfaces_split("train", data.n, size, data.seed, data.pose_limits, data.pose_prior)
    train, _ = train_set.tensors()
    bank = build_pose_bank(config, train_set) if args.task == "swap" else None
    if args.task == "swap" and bank is None:
        raise SystemExit("--task swap needs views.render3d_bank > 0 (the recipe's pose bank)")
    val, _ = synthfaces_split("val", args.n_val, size, data.seed, data.pose_limits, data.pose_prior).tensors()
    train, val = train.float() / 255, val.float() / 255

    model = build_model(config.model).to(memory_format=torch.channels_last).train()
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(args.steps, config.optim.warmup_steps))
    generator = torch.Generator().manual_seed(config.seed)
    batch = config.optim.batch_size
    start = time.perf_counter()
    for step in range(args.steps):
        index = torch.randint(len(train), (batch,), generator=generator)
        target = train[index]
        if bank is None:
            inputs = add_gaussian_noise(target, generator, sigma=sigma) if sigma > 0 else target
            loss = F.l1_loss(reconstruct(model, inputs.contiguous(memory_format=torch.channels_last)), target)
        else:
            target_hat, _ = bank.rows(index).pick(generator)  # (B, 3, S, S): the same faces at other poses
            both = torch.cat([target, target_hat])
            inputs = add_gaussian_noise(both, generator, sigma=sigma) if sigma > 0 else both
            features = model.forward_features(inputs.contiguous(memory_format=torch.channels_last))
            face, face_hat = features["F_f"].chunk(2)
            pose, pose_hat = features["F_p"].chunk(2)
            loss = swap_reconstruction(target, target_hat, face, face_hat, pose, pose_hat, model.decode,
                                       swaps_only=True).total  # L_dis as PCL trains it (dis_terms=swaps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 64 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  L1 {loss.item():.4f}  {time.perf_counter() - start:6.1f} s", flush=True)
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        recon = torch.cat([reconstruct(model, chunk) for chunk in val.split(128)])
    model.requires_grad_(False)  # the protocol checks that the model is frozen
    parts = validation_parts(data.pose_limits, data.pose_prior, size)
    swaps = swap_fidelity(model, parts["test"], 256, 0, EvalConfig(progress=False, n_swap=256)).metrics
    result = {
        "task": args.task, "steps": args.steps, "noise": sigma, "overrides": args.overrides,
        "train_seconds": round(seconds, 1), "final_l1": round(loss.item(), 4),
        "val_psnr": round(psnr(recon, val).mean().item(), 2), "val_ssim": round(ssim(recon, val).mean().item(), 3),
        **{key: round(swaps[key], 3) for key in ("psnr_swap", "psnr_swap_vs_a", "psnr_swap_vs_b", "ssim_swap",
                                                  "psnr_recon")},
    }
    print(json.dumps(result))
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
