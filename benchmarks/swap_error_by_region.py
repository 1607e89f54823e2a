"""Where a swap's error lies: the head or the backdrop (SynthFaces ground truth, diagnostic).

The swap-fidelity protocol (:func:`pclkit.protocols.swap_fidelity`) scores D(F_f^A, F_p^B)
against render(face A, pose B) over the whole 64 x 64 frame. About half of that frame is the
backdrop, whose colour is a nuisance factor of face A (the decoder gets it wrong even without a
swap: docs/results/recipe_search.md, levers 16 and 20). This script splits each swap's squared
error into backdrop and head pixels, with a per-pixel backdrop mask from two extra renders of the truth (backdrop black and
backdrop white: a pixel whose colour follows the backdrop is backdrop), and reports

* ``psnr``: the protocol's swap PSNR over the whole frame;
* ``error_share_backdrop``: the backdrop's share of the swap's summed squared error;
* ``psnr_backdrop_true``: the swap's PSNR with its backdrop pixels replaced by the truth's (what
  the swap would score if the decoder knew A's backdrop colour);
* ``psnr_head`` / ``psnr_backdrop``: PSNR over head / backdrop pixels only;
* the same for the plain reconstruction D(F_f^A, F_p^A) against image A (``recon_*``);
* ``margin_by_yaw_turn``: the protocol's margin -- PSNR against the truth minus PSNR against image A
  (face A at its own pose) -- per pair, averaged within bins of the yaw turn |yaw_B - yaw_A|. Under
  the near-frontal pose prior many pairs barely turn the head, and there no decoder can be far from
  "face A at its own pose"; the bins show where a swap visibly moves the head.

    python benchmarks/swap_error_by_region.py runs/reproduce/synth_cpu_pcl_s0 pretrained:pcl_synthfaces

Test split by default (2,000 faces, the evaluation's default SynthFaces config; ``--split val``
for the validation faces, the split to use when a diagnosis steers a recipe choice), 512 pairs
drawn by the protocol's generator for seed 0 (the protocol scores 128 pairs per probe seed). The
numbers go to ``--json`` if given.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

from pclkit.checkpoint import load_model
from pclkit.data.synthfaces import Factors, render, synthfaces_split
from pclkit.data.synthfaces.factors import NUISANCE_NAMES
from pclkit.features import to_model_input
from pclkit.protocols import seeded_generator
from pclkit.swap import decode_pairs, draw_swap_pairs, margin_by_yaw_turn

BACKDROP = [NUISANCE_NAMES.index(name) for name in ("bg_r", "bg_g", "bg_b")]


def with_backdrop(factors: Factors, value: float) -> Factors:
    """The same faces in front of a flat backdrop of grey level ``value``."""
    nuisance = factors.nuisance.clone()
    nuisance[:, BACKDROP] = value
    return replace(factors, nuisance=nuisance)


def backdrop_mask(factors: Factors, size: int) -> torch.Tensor:
    """(B, 1, S, S) float: 1 where the pixel shows the backdrop, 0 on the head (coverage-weighted at edges)."""
    black, white = render(with_backdrop(factors, 0.0), size), render(with_backdrop(factors, 1.0), size)
    # the backdrop is shaded by a vertical ramp of 0.85-1.08: a full backdrop pixel moves by >= 0.85
    return ((white - black).mean(1, keepdim=True) / 0.85).clamp(0.0, 1.0)


def region_scores(pred: torch.Tensor, truth: torch.Tensor, backdrop: torch.Tensor) -> dict[str, float]:
    """PSNR over the frame, over each region, and with the backdrop set to the truth; error share of the backdrop."""
    squared = (pred - truth).pow(2).mean(1, keepdim=True)  # (B, 1, S, S)
    head = 1.0 - backdrop

    def psnr(error_sum: torch.Tensor, weight: torch.Tensor) -> float:
        mse = error_sum / weight.clamp_min(1e-8)
        return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())

    pixels = torch.ones_like(squared).sum((1, 2, 3))
    error_backdrop = (squared * backdrop).sum((1, 2, 3))
    error_head = (squared * head).sum((1, 2, 3))
    return {
        "psnr": psnr(squared.sum((1, 2, 3)), pixels),
        "psnr_head": psnr(error_head, head.sum((1, 2, 3))),
        "psnr_backdrop": psnr(error_backdrop, backdrop.sum((1, 2, 3))),
        "psnr_backdrop_true": psnr(error_head, pixels),
        "error_share_backdrop": float((error_backdrop / (error_backdrop + error_head)).mean()),
        "backdrop_fraction": float(backdrop.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="run folders, last.pt files or pretrained:NAME")
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--json", default=None)
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="SynthFaces split of the pairs (val when the result steers a recipe)")
    args = parser.parse_args()
    faces = synthfaces_split(args.split, 2000)
    images, _ = faces.tensors(progress=False)
    a, b = draw_swap_pairs(len(faces), args.pairs, seeded_generator(0, "swap"))
    swap_faces = Factors.combine(faces.factors[a], faces.factors[b])  # face of A at the pose of B
    truth = (render(swap_faces, 64) * 255).round() / 255
    mask_swap = backdrop_mask(swap_faces, 64)
    mask_a = backdrop_mask(faces.factors[a], 64)
    xa, xb = to_model_input(images[a], 64, "cpu"), to_model_input(images[b], 64, "cpu")
    yaw_turn = (faces.factors.pose[b, 0] - faces.factors.pose[a, 0]).abs()  # (pairs,) degrees
    results = {}
    for source in args.sources:
        model, _ = load_model(source)
        with torch.inference_mode():
            fa, fb = model.forward_features(xa), model.forward_features(xb)
            pairs = [(fa["F_f"], fb["F_p"]), (fa["F_f"], fa["F_p"])]
            swapped, recon = (x.float() for x in decode_pairs(model.decode, pairs))
        results[source] = {"swap": region_scores(swapped, truth, mask_swap), "recon": region_scores(recon, xa, mask_a)}
        for kind, scores in results[source].items():
            print(source, kind, {k: round(v, 3) for k, v in scores.items()})
        results[source]["margin_by_yaw_turn"] = margin_by_yaw_turn(swapped, truth, xa.float(), yaw_turn)
        for turn, scores in results[source]["margin_by_yaw_turn"].items():
            print(source, f"yaw turn {turn} deg", {k: round(v, 3) for k, v in scores.items()})
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"pairs": args.pairs, "split": args.split, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
