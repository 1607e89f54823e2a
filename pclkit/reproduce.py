"""``python -m pclkit reproduce``: the main job.

Pretrains SimCLR and PCL (``synth_cpu`` preset) on SynthFaces, evaluates every
run on the paper's four tasks (SynthFaces, and CMU faces when present),
regenerates the figures and prints a summary shaped like the poster's tables,
with a verdict for each of the paper's claims.

* ``--seeds N`` repeats pretraining with N seeds (tables report mean ± std over
  pretraining seeds × probe seeds);
* ``--ablation`` adds the paper's ablation rows (SimCLR; +L_dis; +L_orth;
  +L_pose; +DWA = PCL), the named rows of :func:`pclkit.methods.ablation_rows`;
* ``--pose-view flip roll render3d`` trains PCL once per pose-changing view;
* ``--methods simclr pcl pcfrl pros`` compares other registered methods on the
  same data, budget and protocol (default: SimCLR and PCL, the paper's table);
  the successors' claims against PCL are then checked too.

Completed runs are reused (a run folder whose ``last.pt`` has finished all its
steps), interrupted ones resumed, so re-running the command after a crash or
with more options only does the missing work. A run folder whose saved config
differs from the one requested is an error, never silently reused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pclkit.claims import (
    ablation_labels,
    ablation_study,
    check_claims,
    claims_json,
    claims_markdown,
    successor_claims,
)
from pclkit.config import config_to_dict, load_config_file, parse_overrides, resolve_config
from pclkit.learning import learning_checks, learning_markdown
from pclkit.methods import DEFAULT_METHOD, MAIN_COMPARISON, ablation_rows, method_label, method_names
from pclkit.runs import MAIN_JOB_DIR, default_cmu_root, method_preset, run_name

#: pose changes a study row can use; "preset" keeps the preset's own (views.pose_change and its options)
POSE_VIEWS = ("preset", "flip", "roll", "render3d")


@dataclass(frozen=True)
class RunSpec:
    """One pretraining run of the study."""

    label: str  # method label in the tables
    row: str  # a method name or a key of pclkit.methods.ablation_rows()
    seed: int
    pose_view: str
    folder: Path

    @property
    def method(self) -> str:
        return str(ablation_rows().get(self.row, {"method": self.row})["method"])

    def overrides(self) -> dict[str, Any]:
        view = {} if self.pose_view == "preset" else {"views.pose_change": self.pose_view, "views.pose_change_options": {}}
        row = ablation_rows().get(self.row, {"method": self.row})
        return {**row, "seed": self.seed, **view}


@dataclass(frozen=True)
class ReproducePlan:
    """What the main job trains and evaluates (all defaults = ``make reproduce``)."""

    preset: str = "synth_cpu"
    methods: tuple[str, ...] = MAIN_COMPARISON
    seeds: int = 1
    ablation: bool = False
    pose_views: tuple[str, ...] = ("preset",)
    cmu_root: Path | None = None
    runs_dir: Path = Path("runs") / MAIN_JOB_DIR
    results_dir: Path = Path("results/reproduce")
    figures_dir: Path = Path("figures")
    eval_seeds: int = 3
    supervised_minutes: float = 0.0
    quick: bool = False  # small evaluation and figure sizes: checks the pipeline, numbers are noisy
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def runs(self) -> list[RunSpec]:
        """The runs of the study per seed: ``methods`` (default SimCLR, PCL) or, with ``ablation``,
        every ablation row; then the method (PCL) once per extra pose view."""
        specs: list[RunSpec] = []
        labels = ablation_labels() if self.ablation else {name: method_label(name) for name in self.methods}
        method = DEFAULT_METHOD
        main_view = self.pose_views[0]
        for seed in range(self.seeds):
            for row, label in labels.items():
                specs.append(self._spec(label, row, seed, main_view))
            for view in self.pose_views[1:]:
                specs.append(self._spec(f"{method_label(method)} ({view})", method, seed, view))
        return specs

    def _spec(self, label: str, row: str, seed: int, view: str) -> RunSpec:
        # SimCLR's face views depend on the pose change too when views.face_across_pose is on
        folder = self.runs_dir / run_name(self.preset, row, seed, variant=None if view == "preset" else view)
        return RunSpec(label=label, row=row, seed=seed, pose_view=view, folder=folder)


# --------------------------------------------------------------------------- pretraining


def pretrain_run(spec: RunSpec, plan: ReproducePlan) -> Path:
    """Train ``spec`` (or reuse/resume its folder) and return its ``last.pt``."""
    from pclkit.trainer import Trainer

    config = resolve_config(method_preset(plan.preset, spec.method), {**spec.overrides(), **plan.overrides})
    checkpoint = spec.folder / "last.pt"
    resume = checkpoint.is_file()
    if resume:
        saved = config_to_dict(load_config_file(spec.folder / "config.yaml"))
        wanted = config_to_dict(config)
        saved.get("optim", {}).pop("max_steps", None)
        wanted.get("optim", {}).pop("max_steps", None)
        if saved != wanted:
            raise RuntimeError(
                f"{spec.folder} holds a run with a different config; delete it or pass another --runs folder"
            )
        # the checkpoint counts completed epochs: a finished run needs no Trainer
        # (building one would render the whole training set again for nothing)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if int(state.get("epoch", 0)) >= config.optim.epochs:
            print(f"[reproduce] reusing finished run {spec.folder}")
            return checkpoint
    trainer = Trainer(config, spec.folder, resume=resume)
    print(f"[reproduce] {'resuming' if resume else 'training'} {spec.label} (seed {spec.seed}) -> {spec.folder}")
    return trainer.fit()


# --------------------------------------------------------------------------- supervised reference


def supervised_reference(plan: ReproducePlan) -> Path | None:
    """Run (or reuse) the supervised SynthFaces reference of ``benchmarks/`` for the tables."""
    if plan.supervised_minutes <= 0:
        return None
    out = plan.results_dir / "supervised.json"
    if out.is_file():
        return out
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "synthfaces_learnability.py"
    if not script.is_file():
        print(f"[reproduce] {script} not found: no supervised reference row")
        return None
    import subprocess

    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(script), "--minutes", str(plan.supervised_minutes), "--json", str(out)]
    print(f"[reproduce] supervised reference: {' '.join(cmd)}")
    subprocess.run(cmd, check=True)
    return out


def committed_supervised_reference(plan: ReproducePlan) -> Path | None:
    """A supervised reference measured earlier: ``results_dir/supervised.json`` or the one in ``benchmarks/results/``."""
    for path in (plan.results_dir / "supervised.json",
                 Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "synthfaces_learnability.json"):
        if path.is_file():
            return path
    return None


# --------------------------------------------------------------------------- evaluation

#: EvalConfig sizes of ``--quick`` (pipeline checks and tests; 200 test identities x 3 images)
QUICK_EVAL: dict[str, Any] = {"n_train": 600, "n_val": 300, "n_test": 600, "n_pairs": 400, "n_swap": 16,
                              "identity_classes": 20}


def evaluate_runs(plan: ReproducePlan, checkpoints: Sequence[Path], labels: Sequence[str], data: str,
                  supervised: Path | None) -> list[dict[str, Any]]:
    """Linear evaluation of all runs on ``data``; writes ``results_dir/<data>/``."""
    from pclkit.evaluate import EvalConfig, evaluate_checkpoints, write_results

    sizes = QUICK_EVAL if plan.quick else {}
    config = EvalConfig(  # SynthFaces pose limits: the runs' own (evaluate.resolve_pose_limits)
        data=data,
        seeds=plan.eval_seeds,
        progress=sys.stderr.isatty() or not plan.quick,
        **sizes,
        cmu_root=str(plan.cmu_root) if data == "cmu" else None,
        supervised_json=str(supervised) if supervised and data == "synthfaces" else None,
    )
    start = time.perf_counter()
    rows = evaluate_checkpoints([str(c) for c in checkpoints], config, list(labels))
    meta = {"checkpoints": [str(c) for c in checkpoints], "labels": list(labels),
            "seconds": round(time.perf_counter() - start, 1)}
    write_results(rows, plan.results_dir / data, meta)
    return rows


# --------------------------------------------------------------------------- figures


def make_figures(plan: ReproducePlan, folders: Sequence[Path]) -> list[Path]:
    """Regenerate all figures from the first seed's runs (as ``python -m pclkit figures`` does)."""
    from pclkit.figures import make_all

    return make_all(list(folders), plan.figures_dir, n=300 if plan.quick else 2000,
                    embeddings="tsne" if plan.quick else "tsne,umap", cmu=plan.cmu_root,
                    results=plan.results_dir / "synthfaces" / "results.csv", seed=0)


# --------------------------------------------------------------------------- command line


def cost_markdown(specs: Sequence[RunSpec]) -> str:
    """Per method: steps, pretraining minutes and encoder images/s (mean over its seeds; this machine)."""
    from pclkit.runs import training_cost

    costs: dict[str, list[dict[str, float]]] = {}
    for spec in specs:
        try:
            cost = training_cost(spec.folder)
        except FileNotFoundError:
            continue
        costs.setdefault(spec.label, []).append(cost)
    lines = ["| method | steps | minutes | encoder img/s |", "|---|---:|---:|---:|"]
    for label, runs in costs.items():
        mean = {key: sum(run[key] for run in runs) / len(runs) for key in ("steps", "minutes", "img_per_s")}
        lines.append(f"| {label} | {mean['steps']:.0f} | {mean['minutes']:.1f} | {mean['img_per_s']:.0f} |")
    return "\n".join(lines) + "\n\nMean over pretraining seeds, measured on the machine above (epoch wall time).\n"


def machine_summary() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    return f"{cpu}; {device}; torch {torch.__version__}; Python {platform.python_version()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="synth_cpu", help="pretraining preset (default synth_cpu)")
    parser.add_argument("--methods", nargs="+", choices=method_names(), default=list(MAIN_COMPARISON),
                        help=f"methods to compare (default: {' '.join(MAIN_COMPARISON)})")
    parser.add_argument("--seeds", type=int, default=1, help="pretraining seeds per method (default 1)")
    parser.add_argument("--ablation", action="store_true", help="add the paper's ablation rows")
    parser.add_argument("--pose-view", nargs="+", choices=POSE_VIEWS, default=["preset"],
                        help="pose-changing view(s) for PCL; the first is the main one (default: the preset's own)")
    parser.add_argument(
        "--cmu", type=Path, default=None, help="CMU faces folder (default: ../shared/data/cmu_faces or $PCLKIT_CMU)"
    )
    parser.add_argument("--no-cmu", action="store_true", help="skip the CMU faces evaluation")
    parser.add_argument("--runs", type=Path, default=ReproducePlan.runs_dir, help="folder of the run folders")
    parser.add_argument("--results", type=Path, default=ReproducePlan.results_dir, help="folder for tables")
    parser.add_argument("--figures", type=Path, default=ReproducePlan.figures_dir, help="folder for figures")
    parser.add_argument("--eval-seeds", type=int, default=ReproducePlan.eval_seeds, help="probe seeds per run")
    parser.add_argument(
        "--supervised-minutes",
        type=float,
        default=0.0,
        help="also train the supervised reference for this many minutes (0: reuse results/…/supervised.json if present)",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip figure generation")
    parser.add_argument("--quick", action="store_true",
                        help="small evaluation/figure sizes (pipeline check; use with --preset smoke)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a pretraining config key for every run (e.g. --set optim.epochs=2)")
    parser.add_argument("--synth-cache", type=Path, default=Path(".cache") / "synth",
                        help="folder for rendered SynthFaces and pose banks, shared by the runs "
                             "($PCLKIT_SYNTH_CACHE takes precedence)")


def plan_from_args(args: argparse.Namespace) -> ReproducePlan:
    overrides = parse_overrides(args.overrides)
    cmu = None if args.no_cmu else (args.cmu or default_cmu_root())
    if args.seeds < 1:
        raise SystemExit("--seeds must be >= 1")
    return ReproducePlan(
        preset=args.preset, methods=tuple(dict.fromkeys(args.methods)), seeds=args.seeds, ablation=args.ablation,
        pose_views=tuple(args.pose_view),
        cmu_root=cmu, runs_dir=args.runs, results_dir=args.results, figures_dir=args.figures,
        eval_seeds=args.eval_seeds, supervised_minutes=args.supervised_minutes, quick=args.quick,
        overrides=overrides,
    )


@contextlib.contextmanager
def synthfaces_disk_cache(folder: Path) -> Iterator[None]:
    """Cache rendered SynthFaces (and pose banks) in ``folder`` unless ``$PCLKIT_SYNTH_CACHE`` names one.

    Every run of the study trains on the same faces and pose bank: rendered once, then read
    back (and a second ``make reproduce`` renders nothing). The variable is restored afterwards.
    """
    if os.environ.get("PCLKIT_SYNTH_CACHE"):
        yield
        return
    os.environ["PCLKIT_SYNTH_CACHE"] = str(folder)
    try:
        yield
    finally:
        del os.environ["PCLKIT_SYNTH_CACHE"]


def run(args: argparse.Namespace) -> int:
    with synthfaces_disk_cache(args.synth_cache):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    start = time.perf_counter()
    specs = plan.runs()
    print(f"[reproduce] {len(specs)} pretraining runs ({plan.preset}); machine: {machine_summary()}")
    checkpoints = [pretrain_run(spec, plan) for spec in specs]
    train_seconds = time.perf_counter() - start

    supervised = supervised_reference(plan) or committed_supervised_reference(plan)
    labels = [spec.label for spec in specs]
    rows = evaluate_runs(plan, checkpoints, labels, "synthfaces", supervised)
    if plan.cmu_root is not None:
        rows += evaluate_runs(plan, checkpoints, labels, "cmu", None)
    eval_seconds = time.perf_counter() - start - train_seconds

    if not args.no_figures:
        first_seed = [spec.folder for spec in specs if spec.seed == 0]
        make_figures(plan, first_seed)
    total = time.perf_counter() - start

    claims = []
    for data in ["synthfaces"] + (["cmu"] if plan.cmu_root else []):
        claims += check_claims(rows, data) + check_claims(rows, data, successor_claims(plan.methods))
    ablation = ablation_study(rows) if plan.ablation else None
    checks = learning_checks(rows)
    summary = [
        "# pclkit reproduce",
        "",
        f"Machine: {machine_summary()}",
        f"Wall time: {total / 60:.1f} min (pretraining {train_seconds / 60:.1f}, evaluation {eval_seconds / 60:.1f}, "
        f"figures {(total - train_seconds - eval_seconds) / 60:.1f})",
        f"Command: python -m pclkit reproduce {' '.join(sys.argv[2:]) if len(sys.argv) > 2 else ''}".rstrip(),
        "",
        "## Does it learn? (SynthFaces test split)",
        "",
        learning_markdown(checks),
        "## Paper claims",
        "",
        claims_markdown(claims, ablation),
    ]
    summary += ["## Cost of pretraining", "", cost_markdown(specs), ""]
    for data in ["synthfaces"] + (["cmu"] if plan.cmu_root else []):
        summary += [(plan.results_dir / data / "results.md").read_text(), ""]
    text = "\n".join(summary)
    (plan.results_dir / "summary.md").write_text(text)
    if ablation is not None:
        (plan.results_dir / "ablation.json").write_text(json.dumps(ablation, indent=2))
    (plan.results_dir / "learning.json").write_text(json.dumps(checks, indent=2))
    (plan.results_dir / "claims.json").write_text(json.dumps(claims_json(claims), indent=2))
    print(text)
    print(f"[reproduce] wrote {plan.results_dir / 'summary.md'}; total {total / 60:.1f} min")
    return 0
