"""One training iteration of the public reference PCL code beside pclkit's ``paper`` step, on this CPU.

The reference is github.com/DreamMr/PCL (Liu et al., CVPR 2023). Its code is
imported from a checkout given on the command line and called as its training
loop calls it; nothing of it is copied here. Export a checkout from the bare
mirror, then run::

    mkdir -p /tmp/pcl_ref && git -C /work/.mirror/DreamMr+PCL/repo archive HEAD | tar -x -C /tmp/pcl_ref
    python benchmarks/reference_side_by_side.py /tmp/pcl_ref            # 3 rounds, 2 threads, batch 32
    python benchmarks/reference_side_by_side.py /tmp/pcl_ref --quick --threads 1   # does it run?

What is timed
-------------
Wall seconds of one iteration (median of ``--steps`` after ``--warmup``), on one
fixed batch of random 64x64 images (no data loading), with
``torch.set_num_threads(--threads)``. The figure compared is **encoder images
per second** = images passed through the encoder in one iteration / seconds per
iteration. Each measurement runs in a fresh process with CUDA hidden, and the
two sides alternate (reference, pclkit, reference, pclkit, ... for
``--rounds`` rounds) because a shared VM drifts by tens of percent in minutes.

* **reference**: its model built as its training code builds it
  (``utils.create_model(config)`` -> ``Models.exppose.ExpPose``: ``ExpPoseModel``
  in ``nn.DataParallel``, Adam lr 1e-4 / wd 1e-3, ``GradScaler``) with the
  values of ``configs/remote_PCL_vox.yaml``, then one iteration of ``main.py``'s
  ``train()`` (main.py:36-52): three calls of ``ExpPose.optimize_parameters``
  with ``state`` ``pfe`` (L_dis reconstruction + its orthogonality ``diff_loss``),
  ``exp`` (face NT-Xent) and ``pose`` (pose contrast), each its own forward,
  backward and Adam step. Batch sizes: the pfe and exp loaders use
  ``config['batch_size']`` (main.py:316-331; 256 in the config, ``--batch``
  here), the pose loader a fixed 10 (main.py:332-339; ``--pose-batch``).
  Cases: ``B/B/10`` (its schedule) and ``B/B/B`` (equal work with pclkit).
* **pclkit**: :func:`pclkit.stepbench.benchmark_step` of the ``paper`` preset
  (FaceCycle encoder, channels_last as the preset has it) with
  ``optim.batch_size=B``, ``views.num_negatives=M``, ``runtime.precision=fp32``
  (or bf16), ``runtime.device=cpu``, ``data.source=synth`` (the batch is random
  images anyway), once with the default ``loss.schedule=joint`` (all views in
  one encoder pass, one optimiser step) and once with ``loss.schedule=alternating``
  (the reference's three optimiser sub-steps recon / face / pose, each on its
  own batch of B). pclkit has one batch size for all sub-steps, so the
  reference's B/B/10 mix has no pclkit twin; B/B/B is the equal-work pair.

How encoder images are counted
------------------------------
Reference, per iteration with batch sizes (B_pfe, B_exp, B_pose) and M pose negatives:

* pfe: ``ExpPose.forward`` (Models/exppose.py:420-426) passes ``img_normal`` and
  ``img_flip`` (data_process/pfedb.py:111-119) through
  ``ExpPoseModel.forward(recon_only=True)``, which encodes each once
  (Models/networks.py:384-385): ``2 * B_pfe``; its four decodes are not counted.
* exp: two views per image (data_process/expdb.py:115), concatenated
  (exppose.py:428-430) and encoded once (networks.py:372): ``2 * B_exp``.
* pose: two views per image (data_process/posecondb.py:117) plus M negatives,
  appearance-augmented copies of the flipped image (posecondb.py:123-129;
  **M = 100 in its code**), concatenated (exppose.py:432-437) and encoded at
  networks.py:376 and :380: ``(2 + M) * B_pose``.

Total ``2 B_pfe + 2 B_exp + (2 + M) B_pose``. The figures quoted for this
benchmark, 308 for 32/32/10 and 704 for 32/32/32, are this count with
**M = 16** (64 + 64 + 18 x 10 and 64 + 64 + 18 x 32), hence ``--negatives``
defaults to 16, a CPU-sized M used on both sides; with the reference's own
M = 100 (``--negatives 100``) the counts are 1,148 and 3,392. The negatives
are made by its data loader, so M changes only the input, not its code.
pclkit, per step at batch B: face views 2B + pose positives 2B + pose negatives
M B + noisy s and ŝ for L_dis / L_orth 2B = ``(6 + M) B`` (704 at B = 32,
M = 16), the same in the joint and the alternating schedule. Both sides count
with a forward hook on the encoder (the reference's ``FaceCycleBackbone``,
pclkit's ``encoder.trunk``) and the script checks the counts against the formulas.

What is stubbed on the reference side
-------------------------------------
Its data sets (they read VoxCeleb frames) are replaced by random tensors of
the same layout; ``.cuda()`` of tensors and modules is the identity and CUDA is
hidden (``CUDA_VISIBLE_DEVICES=""``), so ``nn.DataParallel`` calls the module
directly and its ``torch.cuda.amp`` autocast and ``GradScaler`` switch
themselves off; ``utils.init`` (seeds, log folders) is replaced by its
``utils.set_seed`` alone; the yaml is read with ``yaml.safe_load`` (its
``utils.read_config`` calls ``yaml.load`` without a Loader, an error on
PyYAML >= 6); no tensorboard, no tqdm, no checkpoints.

bf16 cases (the reference under ``torch.autocast('cpu', dtype=torch.bfloat16)``,
pclkit with ``runtime.precision=bf16``) run only where
``pclkit.runtime.resolve_precision('auto', cpu)`` is ``bf16`` (native bf16);
on AVX2-only CPUs bf16 is emulated ~10x slower, so they are skipped there.

Output: per-round s/step and img/s, pclkit / reference ratios per round, a
markdown table, and (except with ``--quick``) ``benchmarks/results/reference_side_by_side.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "benchmarks" / "results" / "reference_side_by_side.json"
REFERENCE_CONFIG = "configs/remote_PCL_vox.yaml"
#: the pose loader's batch size, fixed in the reference's main.py:334
REFERENCE_POSE_BATCH = 10
#: the number of pose negatives its PoseConDB makes (data_process/posecondb.py:123)
REFERENCE_NEGATIVES = 100
#: utils.accuracy(logits, labels, (1, 5)) in its exp and pose steps needs >= 5 logits per row
MIN_LOGITS = 5


# -- the two sides, each run in a fresh process ------------------------------------------------


def reference_encoder_images(batches: tuple[int, int, int], negatives: int) -> int:
    """Encoder images of one reference iteration: 2 B_pfe + 2 B_exp + (2 + M) B_pose (see the module docstring)."""
    pfe, exp, pose = batches
    return 2 * pfe + 2 * exp + (2 + negatives) * pose


def pclkit_encoder_images(batch: int, negatives: int) -> int:
    """Encoder images of one pclkit ``paper`` PCL step: (6 + M) B (joint or alternating)."""
    return (6 + negatives) * batch


@contextlib.contextmanager
def cuda_calls_stay_on_cpu() -> Iterator[None]:
    """Make ``Tensor.cuda()`` and ``Module.cuda()`` return their object unchanged (restored on exit)."""
    import torch

    saved = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved  # type: ignore[method-assign]


def reference_batches(batches: tuple[int, int, int], negatives: int, size: int) -> dict[str, dict[str, Any]]:
    """Random stand-ins for one batch of each of its loaders, in the layout its DataLoader collates.

    PfeDB: ``img_normal`` and its horizontal flip ``img_flip``; ExpDB: ``exp_images``, a list of two
    (B, 3, S, S) views; PoseConDB: ``exp_images`` (two views) and ``neg_images``, a list of M (B, 3, S, S).
    """
    import torch

    generator = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:
        return torch.rand(n, 3, size, size, generator=generator)

    pfe, exp, pose = batches
    normal = images(pfe)
    return {
        "pfe": {"img_normal": normal, "img_flip": torch.flip(normal, dims=[3])},
        "exp": {"exp_images": [images(exp), images(exp)]},
        "pose": {"exp_images": [images(pose), images(pose)], "neg_images": [images(pose) for _ in range(negatives)]},
    }


def time_iterations(iteration: Callable[[], None], steps: int, warmup: int, counted: list[int]) -> dict[str, Any]:
    """Median wall / CPU seconds of ``iteration`` after ``warmup`` calls, and the encoder images of the last one."""
    wall, cpu = [], []
    for _ in range(warmup + steps):
        counted.clear()
        start, cpu_start = time.perf_counter(), time.process_time()
        iteration()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)

    from pclkit.stepbench import upper_median  # the statistic pclkit's own step benchmark takes

    return {"seconds_per_step": upper_median(wall[warmup:]), "step_seconds": wall[warmup:],
            "cpu_seconds_per_step": upper_median(cpu[warmup:]), "encoder_images_per_step": sum(counted)}


def run_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """Time ``--steps`` iterations of the reference's training loop (main.py:36-52) in this process."""
    import torch
    import yaml

    ref = Path(spec["reference"]).resolve()
    sys.path.insert(0, str(ref))
    config = yaml.safe_load((ref / REFERENCE_CONFIG).read_text())
    batches: tuple[int, int, int] = tuple(spec["batches"])  # type: ignore[assignment]
    config["batch_size"] = batches[0]  # the pfe and exp loaders' batch (main.py:318, 326)
    with cuda_calls_stay_on_cpu():
        utils = importlib.import_module("utils")  # the reference's utils.py
        utils.set_seed(config["seed"], cuda=False)
        model = utils.create_model(config)  # Models.exppose.ExpPose, as main.py:283 builds it
        network = model.model.module  # ExpPoseModel inside nn.DataParallel
        counted: list[int] = []
        network.encoder.register_forward_hook(lambda module, inputs, out: counted.append(inputs[0].shape[0]))
        data = reference_batches(batches, spec["negatives"], config["img_size"])
        epoch = config["start_epochs"]  # > warm_up (-1): all three sub-steps run
        bf16 = spec["precision"] == "bf16"

        def iteration() -> None:
            for state in ("pfe", "exp", "pose"):  # main.py:37-52
                # bf16: the whole sub-step (forward, its backward and Adam step) runs inside CPU autocast
                with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                    model.optimize_parameters({**data[state], "epoch": epoch, "state": state})

        result = time_iterations(iteration, spec["steps"], spec["warmup"], counted)
    expected = reference_encoder_images(batches, spec["negatives"])
    if result["encoder_images_per_step"] != expected:
        raise RuntimeError(f"reference encoded {result['encoder_images_per_step']} images, expected {expected}")
    return result


def run_pclkit(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`pclkit.stepbench.benchmark_step` of the ``paper`` preset at the spec's batch, M, precision, schedule."""
    from pclkit.config import resolve_config
    from pclkit.stepbench import benchmark_step

    overrides = [
        "data.source=synth", "runtime.device=cpu", f"optim.batch_size={spec['batch']}",
        f"views.num_negatives={spec['negatives']}", f"runtime.precision={spec['precision']}",
        f"loss.schedule={spec['schedule']}", f"runtime.encoder_chunks={spec.get('encoder_chunks', 1)}",
    ]
    config = resolve_config("paper", overrides)
    result = benchmark_step(config, steps=spec["steps"], warmup=spec["warmup"], profile=spec["parts"])
    result["overrides"] = overrides
    result["channels_last"] = config.runtime.channels_last
    expected = pclkit_encoder_images(spec["batch"], spec["negatives"])
    if int(result["encoder_images_per_step"]) != expected:
        raise RuntimeError(f"pclkit encoded {result['encoder_images_per_step']} images, expected {expected}")
    return result


def worker(spec: dict[str, Any]) -> None:
    """Entry point of the child process: set threads, run one side, print ``RESULT <json>``."""
    import torch

    torch.set_num_threads(spec["threads"])
    result = run_reference(spec) if spec["side"] == "reference" else run_pclkit(spec)
    result["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(result), flush=True)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` in a fresh Python process (CUDA hidden) and return its result."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    job = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                         env=env, cwd=REPO, capture_output=True, text=True)
    if job.returncode != 0:
        raise RuntimeError(f"{spec['side']} case failed (exit {job.returncode}):\n{job.stderr[-4000:]}")
    return json.loads(next(line for line in job.stdout.splitlines() if line.startswith("RESULT "))[7:])


# -- the driver ----------------------------------------------------------------------------------


def machine_info(threads: int) -> dict[str, Any]:
    """Torch version, CPU model and capability, cores, threads and whether bf16 is native."""
    import torch

    from pclkit.runtime import resolve_precision

    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu_model": model,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_count": os.cpu_count(),
            "threads": threads, "native_bf16": resolve_precision("auto", torch.device("cpu")) == "bf16"}


def build_cases(args: argparse.Namespace, precisions: list[str]) -> list[dict[str, Any]]:
    """The cases of one round, reference and pclkit alternating."""
    base = {"steps": args.steps, "warmup": args.warmup, "threads": args.threads, "negatives": args.negatives}
    cases = []
    for precision in precisions:
        mix = (args.batch, args.batch, args.pose_batch)
        equal = (args.batch, args.batch, args.batch)
        pairs = [
            ({"side": "reference", "batches": mix, "mix": "its mix"}, {"side": "pclkit", "schedule": "joint"}),
            ({"side": "reference", "batches": equal, "mix": "equal"}, {"side": "pclkit", "schedule": "alternating"}),
        ]
        for ref_case, ours in pairs:
            ref_case.update(base, precision=precision, reference=str(args.reference))
            ref_case["name"] = f"reference {ref_case['mix']} {'/'.join(map(str, ref_case['batches']))} {precision}"
            ref_case["images"] = reference_encoder_images(ref_case["batches"], args.negatives)
            ours.update(base, precision=precision, batch=args.batch, parts=args.parts)
            ours["name"] = f"pclkit paper {ours['schedule']} {args.batch} {precision}"
            ours["images"] = pclkit_encoder_images(args.batch, args.negatives)
            cases += [ref_case, ours]
        if args.encoder_chunks > 1:  # the joint step with its encoder pass in ghost batches
            chunked = {**base, "side": "pclkit", "schedule": "joint", "precision": precision, "batch": args.batch,
                       "parts": args.parts, "encoder_chunks": args.encoder_chunks,
                       "images": pclkit_encoder_images(args.batch, args.negatives)}
            chunked["name"] = f"pclkit paper joint {args.batch} chunks {args.encoder_chunks} {precision}"
            cases.append(chunked)
    return cases


def ratios(cases: list[dict[str, Any]], rates: dict[str, list[float]]) -> list[dict[str, Any]]:
    """pclkit img/s / reference img/s per round, for every pclkit and reference case of one precision."""
    out = []
    for ours in (c for c in cases if c["side"] == "pclkit"):
        for ref in (c for c in cases if c["side"] == "reference" and c["precision"] == ours["precision"]):
            per_round = [a / b for a, b in zip(rates[ours["name"]], rates[ref["name"]])]
            out.append({"pclkit": ours["name"], "reference": ref["name"],
                        "equal_work": ref["mix"] == "equal" and ref["images"] == ours["images"],
                        "per_round": [round(r, 3) for r in per_round], "median": round(statistics.median(per_round), 3)})
    return out


def markdown(cases: list[dict[str, Any]], seconds: dict[str, list[float]], rates: dict[str, list[float]],
             pairs: list[dict[str, Any]]) -> str:
    """The two tables: each case's s/step per round and median img/s, then the ratios."""
    lines = ["| case | encoder images / step | s / step per round | img/s (median) |", "|---|---:|---|---:|"]
    for case in cases:
        per_round = " · ".join(f"{s:.2f}" for s in seconds[case["name"]])
        lines.append(f"| {case['name']} | {case['images']} | {per_round} | {statistics.median(rates[case['name']]):.1f} |")
    lines += ["", "| pclkit / reference (img/s) | equal work | per round | median |", "|---|---|---|---:|"]
    for pair in pairs:
        per_round = " · ".join(f"{r:.2f}" for r in pair["per_round"])
        lines.append(f"| {pair['pclkit']} / {pair['reference']} | {'yes' if pair['equal_work'] else 'no (other mix)'} "
                     f"| {per_round} | **{pair['median']:.2f}x** |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path, help="a checkout of github.com/DreamMr/PCL (holding Models/, utils.py)")
    parser.add_argument("--steps", type=int, default=3, help="timed iterations per measurement (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations before them")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of all cases")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads on both sides")
    parser.add_argument("--batch", type=int, default=32, help="B: pfe and exp batch of the reference, pclkit's batch")
    parser.add_argument("--pose-batch", type=int, default=REFERENCE_POSE_BATCH,
                        help="the reference's pose batch in its own mix (main.py:334 fixes 10)")
    parser.add_argument("--negatives", type=int, default=16,
                        help=f"M pose negatives on both sides (the reference's loader makes {REFERENCE_NEGATIVES}; "
                             "the quoted 308 / 704 images are M = 16)")
    parser.add_argument("--parts", action="store_true",
                        help="also profile pclkit by part (adds FLOPs and seconds_by_part, incl. its view building, "
                             "which the reference does in DataLoader workers); doubles pclkit's time")
    parser.add_argument("--json", type=Path, help=f"where to write the results (default {DEFAULT_JSON}; none with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 round, 1 step, no warm-up, batch 3, M = 4: does it run?")
    parser.add_argument("--encoder-chunks", type=int, default=1,
                        help="also time pclkit's joint step with runtime.encoder_chunks=K (ghost batches; K > 1)")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=None,
                        help="only these precisions (default: fp32, and bf16 where it is native)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.rounds = 1, 0, 1
        args.batch, args.negatives = min(args.batch, 3), min(args.negatives, 4)
        args.pose_batch = min(args.pose_batch, args.batch)
    elif args.json is None:
        args.json = DEFAULT_JSON
    if not (args.reference / "Models" / "exppose.py").is_file():
        parser.error(f"{args.reference} holds no Models/exppose.py (export a checkout of DreamMr/PCL)")
    # its utils.accuracy(..., topk=(1, 5)) (utils.py:185): exp logits have 2B - 1 columns, pose logits 1 + M
    if 2 * args.batch - 1 < MIN_LOGITS or 1 + args.negatives < MIN_LOGITS or args.pose_batch < 1:
        parser.error("the reference's top-5 accuracy needs --batch >= 3 and --negatives >= 4 (and --pose-batch >= 1)")
    if min(args.steps, args.rounds, args.threads) < 1 or args.warmup < 0:
        parser.error("--steps, --rounds, --threads must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info(args.threads)
    precisions = ["fp32"]
    if machine["native_bf16"]:
        precisions.append("bf16")
    else:
        print(f"bf16 cases skipped: this CPU ({machine['cpu_capability']}) has no native bf16, "
              "so bf16 is emulated (~10x slower than fp32) and would measure the emulation.", flush=True)
    if args.precisions is not None:
        precisions = [p for p in precisions if p in args.precisions]
    cases = build_cases(args, precisions)
    seconds: dict[str, list[float]] = {case["name"]: [] for case in cases}
    rates: dict[str, list[float]] = {case["name"]: [] for case in cases}
    results: dict[str, list[dict[str, Any]]] = {case["name"]: [] for case in cases}
    for round_index in range(args.rounds):
        for case in cases:
            result = measure(case)
            step = result["seconds_per_step"]
            seconds[case["name"]].append(step)
            rates[case["name"]].append(case["images"] / step)
            results[case["name"]].append(result)
            views = result.get("seconds_by_part", {}).get("views")  # pclkit with --parts
            print(f"round {round_index + 1}: {case['name']:44s} {step:8.2f} s/step  "
                  f"{case['images'] / step:7.1f} encoder img/s"
                  + (f"  (of which {views:.2f} s making views)" if views is not None else ""), flush=True)
        for pair in ratios(cases, {k: v[-1:] for k, v in rates.items()}):
            print(f"round {round_index + 1}: {pair['pclkit']} / {pair['reference']} = {pair['median']:.2f}x", flush=True)
    pairs = ratios(cases, rates)
    table = markdown(cases, seconds, rates, pairs)
    print("\n" + table)
    if args.json is None:
        return
    report = {
        "machine": machine,
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "reference_negatives_in_its_code": REFERENCE_NEGATIVES,
        "cases": {case["name"]: {
            "side": case["side"], "precision": case["precision"],
            "batches": case.get("batches") or [case["batch"]] * 3,
            "schedule": case.get("schedule", "its 3 sub-steps: pfe, exp, pose"),
            "negatives": args.negatives, "encoder_images_per_step": case["images"],
            "seconds_per_step": [round(s, 4) for s in seconds[case["name"]]],
            "encoder_img_per_s": [round(r, 2) for r in rates[case["name"]]],
            "encoder_img_per_s_median": round(statistics.median(rates[case["name"]]), 2),
            "rounds": results[case["name"]],  # each round's raw result (pclkit's img_per_s there is source images / s)
        } for case in cases},
        "ratios_pclkit_over_reference": pairs,
        "table": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        main()
