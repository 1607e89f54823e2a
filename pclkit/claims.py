"""The paper's claims checked on tidy evaluation rows, and its ablation followed row by row.

Liu et al. (CVPR 2023) claim that PCL's features beat SimCLR's on the four
tasks (Tables 1-4) and that each loss term adds to the last (Table 5: SimCLR;
+L_dis; +L_orth; +L_pose; +DWA = PCL). :func:`check_claims` compares the
method of :data:`pclkit.methods.MAIN_COMPARISON` (its last entry) with its
baseline (the first) per metric and gives a verdict only when the difference
exceeds the pooled std; :func:`ablation_study` follows each metric along the
ablation rows of the method registry (:func:`pclkit.methods.ablation_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pclkit.methods import MAIN_COMPARISON, ablation_rows, get_method, method_label, method_names
from pclkit.protocols import CHANCE
from pclkit.tables import Stat, aggregate


def ablation_labels() -> dict[str, str]:
    """Display label of each ablation row, in the registry's order (PCL: SimCLR, +L_dis, +L_orth, +L_pose, PCL).

    A row named after a method shows the method's label; any other row shows
    the loss terms it switches on (``loss.use_<term>``) over the row before it.
    """
    labels: dict[str, str] = {}
    previous: Mapping[str, Any] = {}
    for row, overrides in ablation_rows().items():
        if row in method_names():
            labels[row] = method_label(row)
        else:
            added = [key.split("use_", 1)[1] for key, on in overrides.items()
                     if key.startswith("loss.use_") and on and not previous.get(key)]
            labels[row] = "+" + ", +".join(f"L_{term}" for term in added) if added else row
        previous = overrides
    return labels


def _ours() -> str:
    return method_label(MAIN_COMPARISON[-1])


def _baseline() -> str:
    return method_label(MAIN_COMPARISON[0])


@dataclass(frozen=True)
class Claim:
    """A paper claim checked as ``method`` better than ``baseline`` (display labels) on one metric of ``feature``."""

    text: str
    task: str
    metric: str
    higher_is_better: bool
    method: str = field(default_factory=_ours)
    baseline: str = field(default_factory=_baseline)
    feature: str = "F_s"


def _claim(what: str, task: str, metric: str, higher_is_better: bool = True) -> Claim:
    return Claim(f"{_ours()} beats {_baseline()} on {what}", task, metric, higher_is_better)


MAIN_CLAIMS = (
    _claim("expression recognition (F_s)", "expression", "accuracy"),
    _claim("face verification (F_s)", "verification", "accuracy"),
    _claim("cross-pose verification (F_s)", "verification_cross_pose", "accuracy"),
    _claim("AU detection, mean F1 (F_s)", "au", "f1_mean"),
    _claim("head pose, mean MAE (F_s)", "head_pose", "mae_mean", higher_is_better=False),
    _claim("pose classification (CMU, F_s)", "pose", "accuracy"),
)


def successor_claims(methods: Sequence[str]) -> list[Claim]:
    """"<successor> beats <predecessor> on ..." for each method in ``methods`` that names a predecessor
    (``Method.successor_of``, e.g. PCFRL and ProS after PCL) which ran too.

    Both successors are this project's reconstructions of unpublished code, so the claim text says so.
    """
    out = []
    for name in methods:
        before = get_method(name).successor_of
        if before is None or before not in methods:
            continue
        label, baseline = method_label(name), method_label(before)
        for claim in MAIN_CLAIMS:
            what = claim.text.split(" on ", 1)[1]
            out.append(Claim(f"{label} (reconstruction) beats {baseline} on {what}", claim.task, claim.metric,
                             claim.higher_is_better, method=label, baseline=baseline))
    return out


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


def _finite(value: float) -> float:
    """``value``, or 0 for NaN (the std of a single value)."""
    return value if value == value else 0.0


def check_claims(rows: Sequence[Mapping[str, Any]], data: str, claims: Sequence[Claim] = MAIN_CLAIMS) -> list[dict[str, Any]]:
    """Each claim with both means ± std and a verdict; claims whose metric was not measured are skipped."""
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
        chance = stats.get((data, CHANCE, CHANCE, claim.task, claim.metric))
        best = max(sign * ours.mean, sign * base.mean)
        best_std = ours.std if sign * ours.mean >= sign * base.mean else base.std
        above = chance is None or best - sign * chance.mean > _finite(best_std)
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

    The paper's ablation adds one loss term per row and reports gains all the
    way down. ``monotone`` asks the same of the means (no tolerance: with few
    seeds a step smaller than its std is noise, so read the stds too);
    ``at_chance`` flags a metric on which no row beats the chance row by its
    std, where monotonicity says nothing. ``None`` when a row is missing.
    """
    stats = aggregate([r for r in rows if r["data"] == data])
    labels = list(ablation_labels().values())
    metrics = []
    for task, metric, header, higher in ABLATION_METRICS:
        values = [stats.get((data, label, "F_s", task, metric)) for label in labels]
        if any(v is None for v in values):
            if task == "expression":
                return None
            continue
        sign = 1.0 if higher else -1.0
        steps = [sign * (b.mean - a.mean) for a, b in zip(values, values[1:])]
        chance = stats.get((data, CHANCE, CHANCE, task, metric))
        at_chance = chance is not None and all(sign * (v.mean - chance.mean) <= _finite(v.std) for v in values)
        metrics.append({"task": task, "metric": metric, "header": header, "higher_is_better": higher,
                        "values": [(v.mean, v.std) for v in values], "monotone": all(d >= 0 for d in steps),
                        "at_chance": at_chance})
    return {"labels": labels, "metrics": metrics}


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


def _mean_std(stat: Stat) -> str:
    return f"{stat.mean:.4g}" + (f" ± {stat.std:.2g}" if stat.std == stat.std else " (one value)")


def claims_markdown(claims: Sequence[Mapping[str, Any]], ablation: Mapping[str, Any] | None) -> str:
    """The claims table; a verdict needs a gain or loss larger than the pooled std (one value: 'unclear')."""
    lines = [f"| claim | data | {_ours()} | {_baseline()} | chance | verdict |", "|---|---|---|---|---|---|"]
    for c in claims:
        chance = "–" if c.get("chance") is None else f"{c['chance']:.4g}"
        lines.append(f"| {c['claim']} | {c['data']} | {_mean_std(c['ours'])} | {_mean_std(c['baseline'])} "
                     f"| {chance} | {c['verdict']} |")
    if ablation is not None:
        lines += ["", "### Ablation", "", ablation_markdown(ablation)]
    return "\n".join(lines) + "\n"


def claims_json(claims: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The claims with each :class:`~pclkit.tables.Stat` as ``[mean, std]`` (for ``claims.json``)."""
    return [{**c, "ours": [c["ours"].mean, c["ours"].std], "baseline": [c["baseline"].mean, c["baseline"].std]} for c in claims]
