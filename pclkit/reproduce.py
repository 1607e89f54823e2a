"""``python -m pclkit reproduce``: the main job.

Pretrains SimCLR and PCL (``synth_cpu`` preset) on SynthFaces, evaluates every
run on the paper's four tasks (SynthFaces, and CMU faces when present),
regenerates the figures and prints a summary shaped like the poster's tables,
with a verdict for each of the paper's claims.

* ``--seeds N`` repeats pretraining with N seeds (tables report mean ± std over
  pretraining seeds × probe seeds);
* ``--ablation`` adds the poster's ablation rows (SimCLR; +L_dis; +L_orth;
  +L_pose; +DWA = PCL);
* ``--pose-view flip roll render3d`` trains PCL once per pose-changing view.

Completed runs are reused (a run folder whose ``last.pt`` has finished all its
steps), interrupted ones resumed, so re-running the command after a crash or
with more options only does the missing work. A run folder whose saved config
differs from the one requested is an error, never silently reused.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from pclkit.config import ABLATION_ROWS, config_to_dict, load_config_file, resolve_config
from pclkit.learning import learning_checks, learning_markdown

#: display name of each ablation row, in the poster's order
ABLATION_LABELS: dict[str, str] = {
    "simclr": "SimCLR",
    "dis": "+L_dis",
    "dis_orth": "+L_orth",
    "dis_orth_pose": "+L_pose",
    "pcl": "PCL",  # = +DWA, the full method
}
#: pose changes a study row can use; "preset" keeps the preset's own (views.pose_change and its options)
POSE_VIEWS = ("preset", "flip", "roll", "render3d")


@dataclass(frozen=True)
class RunSpec:
    """One pretraining run of the study."""

    label: str  # method name in the tables
    row: str  # key of ABLATION_ROWS
    seed: int
    pose_view: str
    folder: Path

    def overrides(self) -> dict[str, Any]:
        view = {} if self.pose_view == "preset" else {"views.pose_change": self.pose_view, "views.pose_change_options": {}}
        return {**ABLATION_ROWS[self.row], "seed": self.seed, **view}


@dataclass(frozen=True)
class ReproducePlan:
    """What the main job trains and evaluates (all defaults = ``make reproduce``)."""

    preset: str = "synth_cpu"
    seeds: int = 1
    ablation: bool = False
    pose_views: tuple[str, ...] = ("preset",)
    cmu_root: Path | None = None
    runs_dir: Path = Path("runs/reproduce")
    results_dir: Path = Path("results/reproduce")
    figures_dir: Path = Path("figures")
    eval_seeds: int = 3
    supervised_minutes: float = 0.0
    quick: bool = False  # small evaluation and figure sizes: checks the pipeline, numbers are noisy
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def runs(self) -> list[RunSpec]:
        """The runs of the study: SimCLR and PCL per seed, then ablation and pose-view rows."""
        specs: list[RunSpec] = []
        rows = list(ABLATION_LABELS) if self.ablation else ["simclr", "pcl"]
        main_view = self.pose_views[0]
        for seed in range(self.seeds):
            for row in rows:
                label = ABLATION_LABELS[row]
                specs.append(self._spec(label, row, seed, main_view))
            for view in self.pose_views[1:]:
                specs.append(self._spec(f"PCL ({view})", "pcl", seed, view))
        return specs

    def _spec(self, label: str, row: str, seed: int, view: str) -> RunSpec:
        # SimCLR's face views depend on the pose change too when views.face_across_pose is on
        view_part = "" if view == "preset" else f"_{view}"
        folder = self.runs_dir / f"{self.preset}_{row}{view_part}_s{seed}"
        return RunSpec(label=label, row=row, seed=seed, pose_view=view, folder=folder)


# --------------------------------------------------------------------------- pretraining


def pretrain_run(spec: RunSpec, plan: ReproducePlan) -> Path:
    """Train ``spec`` (or reuse/resume its folder) and return its ``last.pt``."""
    from pclkit.train import Trainer

    config = resolve_config(plan.preset, {**spec.overrides(), **plan.overrides})
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


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A paper claim checked as ``method`` better than ``baseline`` on one metric."""

    text: str
    task: str
    metric: str
    higher_is_better: bool
    method: str = "PCL"
    baseline: str = "SimCLR"
    feature: str = "F_s"


MAIN_CLAIMS = (
    Claim("PCL beats SimCLR on expression recognition (F_s)", "expression", "accuracy", True),
    Claim("PCL beats SimCLR on face verification (F_s)", "verification", "accuracy", True),
    Claim("PCL beats SimCLR on cross-pose verification (F_s)", "verification_cross_pose", "accuracy", True),
    Claim("PCL beats SimCLR on AU detection, mean F1 (F_s)", "au", "f1_mean", True),
    Claim("PCL beats SimCLR on head pose, mean MAE (F_s)", "head_pose", "mae_mean", False),
    Claim("PCL beats SimCLR on pose classification (CMU, F_s)", "pose", "accuracy", True),
)


def verdict(diff: float, spread: float, above_chance: bool = True) -> str:
    """'confirmed' if the gain exceeds the pooled std, 'refuted' if the loss does, else 'unclear'.

    A comparison where the better of the two does not beat the chance row by its
    std says nothing about the claim: 'uninformative (at chance)'.
    """
    if not above_chance:
        return "uninformative (at chance)"
    if diff > spread:
        return "confirmed"
    if diff < -spread:
        return "refuted"
    return "unclear"


def check_claims(rows: Sequence[Mapping[str, Any]], data: str, claims: Sequence[Claim] = MAIN_CLAIMS) -> list[dict[str, Any]]:
    """Each claim with both means ± std and a verdict; claims whose metric was not measured are skipped."""
    from pclkit.tables import aggregate

    stats = aggregate([r for r in rows if r["data"] == data])
    out = []
    for claim in claims:
        ours = stats.get((data, claim.method, claim.feature, claim.task, claim.metric))
        base = stats.get((data, claim.baseline, claim.feature, claim.task, claim.metric))
        if ours is None or base is None:
            continue
        sign = 1.0 if claim.higher_is_better else -1.0
        diff = sign * (ours.mean - base.mean)
        spread = (ours.std ** 2 + base.std ** 2) ** 0.5
        chance = stats.get((data, "chance", "chance", claim.task, claim.metric))
        best = max(sign * ours.mean, sign * base.mean)
        best_std = ours.std if sign * ours.mean >= sign * base.mean else base.std
        above = chance is None or best - sign * chance.mean > (best_std if best_std == best_std else 0.0)
        out.append({"claim": claim.text, "data": data, "ours": ours, "baseline": base,
                    "chance": None if chance is None else chance.mean, "verdict": verdict(diff, spread, above)})
    return out


#: the metrics followed along the ablation: (task, metric, header, higher is better)
ABLATION_METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("expression", "accuracy", "Expr. acc", True),
    ("verification", "accuracy", "Verif. acc", True),
    ("verification_cross_pose", "accuracy", "Cross-pose verif.", True),
    ("au", "f1_mean", "AU F1", True),
    ("head_pose", "mae_mean", "Pose MAE (°)", False),
)


def ablation_study(rows: Sequence[Mapping[str, Any]], data: str = "synthfaces") -> dict[str, Any] | None:
    """Each ablation row's F_s result per metric, and whether each metric improves monotonically.

    The poster's ablation adds one loss term per row and reports gains all the
    way down. ``monotone`` asks the same of the means (no tolerance: with few
    seeds a step smaller than its std is noise, so read the stds too);
    ``at_chance`` flags a metric on which no row beats the chance row by its
    std, where monotonicity says nothing. ``None`` when a row is missing.
    """
    from pclkit.tables import aggregate

    stats = aggregate([r for r in rows if r["data"] == data])
    metrics = []
    for task, metric, header, higher in ABLATION_METRICS:
        values = [stats.get((data, label, "F_s", task, metric)) for label in ABLATION_LABELS.values()]
        if any(v is None for v in values):
            if task == "expression":
                return None
            continue
        sign = 1.0 if higher else -1.0
        steps = [sign * (b.mean - a.mean) for a, b in zip(values, values[1:])]
        chance = stats.get((data, "chance", "chance", task, metric))
        at_chance = chance is not None and all(sign * (v.mean - chance.mean) <= (v.std if v.std == v.std else 0.0) for v in values)
        metrics.append({"task": task, "metric": metric, "header": header, "higher_is_better": higher,
                        "values": [(v.mean, v.std) for v in values], "monotone": all(d >= 0 for d in steps),
                        "at_chance": at_chance})
    return {"labels": list(ABLATION_LABELS.values()), "metrics": metrics}


def ablation_markdown(ablation: Mapping[str, Any]) -> str:
    """The ablation as a Markdown table (rows = ablation steps) plus a monotone / not line per metric."""
    metrics = ablation["metrics"]
    scale = [100.0 if m["higher_is_better"] else 1.0 for m in metrics]  # accuracies and F1 in %, MAE in degrees
    lines = ["| row | " + " | ".join(m["header"] for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for i, label in enumerate(ablation["labels"]):
        cells = []
        for m, k in zip(metrics, scale):
            mean, std = m["values"][i]
            cells.append(f"{mean * k:.1f}" + (f" ± {std * k:.1f}" if std == std else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    verdicts = []
    for m in metrics:
        word = "monotone" if m["monotone"] else "not monotone"
        verdicts.append(f"{m['header']}: {word}" + (" (all rows at chance: uninformative)" if m["at_chance"] else ""))
    return "\n".join(lines) + "\n\nAlong the rows (F_s; higher is better except pose MAE): " + "; ".join(verdicts) + "."


def _mean_std(stat: Any) -> str:
    return f"{stat.mean:.4g}" + (f" ± {stat.std:.2g}" if stat.std == stat.std else " (one value)")


def claims_markdown(claims: Sequence[Mapping[str, Any]], ablation: Mapping[str, Any] | None) -> str:
    """The claims table; a verdict needs a gain or loss larger than the pooled std (one value: 'unclear')."""
    lines = ["| claim | data | PCL | SimCLR | chance | verdict |", "|---|---|---|---|---|---|"]
    for c in claims:
        chance = "–" if c.get("chance") is None else f"{c['chance']:.4g}"
        lines.append(f"| {c['claim']} | {c['data']} | {_mean_std(c['ours'])} | {_mean_std(c['baseline'])} "
                     f"| {chance} | {c['verdict']} |")
    if ablation is not None:
        lines += ["", "### Ablation", "", ablation_markdown(ablation)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- figures


def make_figures(plan: ReproducePlan, folders: Sequence[Path]) -> None:
    """Regenerate all figures from the first seed's runs (``python -m pclkit figures``)."""
    from pclkit import figures

    args = argparse.Namespace(
        run=list(folders), out=plan.figures_dir, n=300 if plan.quick else 2000,
        embeddings="tsne" if plan.quick else "tsne,umap",
        cmu=plan.cmu_root, results=plan.results_dir / "synthfaces" / "results.csv", seed=0,
    )
    figures.run(args)


# --------------------------------------------------------------------------- command line


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


def default_cmu_root() -> Path | None:
    from pclkit.figures import default_cmu_root as find

    return find()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="synth_cpu", help="pretraining preset (default synth_cpu)")
    parser.add_argument("--seeds", type=int, default=1, help="pretraining seeds per method (default 1)")
    parser.add_argument("--ablation", action="store_true", help="add the poster's ablation rows")
    parser.add_argument("--pose-view", nargs="+", choices=POSE_VIEWS, default=["preset"],
                        help="pose-changing view(s) for PCL; the first is the main one (default: the preset's own)")
    parser.add_argument("--cmu", type=Path, default=None, help="CMU faces folder (default: ../shared/data/cmu_faces or $PCLKIT_CMU)")
    parser.add_argument("--no-cmu", action="store_true", help="skip the CMU faces evaluation")
    parser.add_argument("--runs", type=Path, default=ReproducePlan.runs_dir, help="folder of the run folders")
    parser.add_argument("--results", type=Path, default=ReproducePlan.results_dir, help="folder for tables")
    parser.add_argument("--figures", type=Path, default=ReproducePlan.figures_dir, help="folder for figures")
    parser.add_argument("--eval-seeds", type=int, default=ReproducePlan.eval_seeds, help="probe seeds per run")
    parser.add_argument("--supervised-minutes", type=float, default=0.0,
                        help="also train the supervised reference for this many minutes (0: reuse results/…/supervised.json if present)")
    parser.add_argument("--no-figures", action="store_true", help="skip figure generation")
    parser.add_argument("--quick", action="store_true",
                        help="small evaluation/figure sizes (pipeline check; use with --preset smoke)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a pretraining config key for every run (e.g. --set optim.epochs=2)")


def plan_from_args(args: argparse.Namespace) -> ReproducePlan:
    from pclkit.config import parse_override

    overrides = {}
    for text in args.overrides:
        parts, value = parse_override(text)
        overrides[".".join(parts)] = value
    cmu = None if args.no_cmu else (args.cmu or default_cmu_root())
    if args.seeds < 1:
        raise SystemExit("--seeds must be >= 1")
    return ReproducePlan(
        preset=args.preset, seeds=args.seeds, ablation=args.ablation, pose_views=tuple(args.pose_view),
        cmu_root=cmu, runs_dir=args.runs, results_dir=args.results, figures_dir=args.figures,
        eval_seeds=args.eval_seeds, supervised_minutes=args.supervised_minutes, quick=args.quick,
        overrides=overrides,
    )


def run(args: argparse.Namespace) -> int:
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

    claims = check_claims(rows, "synthfaces") + (check_claims(rows, "cmu") if plan.cmu_root else [])
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
    for data in ["synthfaces"] + (["cmu"] if plan.cmu_root else []):
        summary += [(plan.results_dir / data / "results.md").read_text(), ""]
    text = "\n".join(summary)
    (plan.results_dir / "summary.md").write_text(text)
    if ablation is not None:
        (plan.results_dir / "ablation.json").write_text(json.dumps(ablation, indent=2))
    (plan.results_dir / "learning.json").write_text(json.dumps(checks, indent=2))
    (plan.results_dir / "claims.json").write_text(json.dumps(
        [{**c, "ours": [c["ours"].mean, c["ours"].std], "baseline": [c["baseline"].mean, c["baseline"].std]} for c in claims],
        indent=2))
    print(text)
    print(f"[reproduce] wrote {plan.results_dir / 'summary.md'}; total {total / 60:.1f} min")
    return 0
