"""Does the main job learn? The checks a user needs before trusting the figures.

A self-supervised run is only worth looking at if its features beat what
needs no training (a randomly initialised copy of the encoder, raw-pixel PCA),
its decoder reconstructs faces and really swaps poses, and its two branches
split face from pose. :func:`learning_checks` turns the tidy evaluation rows
of :mod:`pclkit.evaluate` (SynthFaces) into a list of named pass/fail checks
with the numbers behind them; :func:`learning_markdown` prints them.

The thresholds are the project's bar for the embedded demonstration (they
are not from the PCL paper, which cannot measure swaps against ground truth):

1. F_s of every learned method beats random init and pixels on verification,
   cross-pose verification and expression by more than the pooled std; the
   best expression accuracy is at least 35 %; AU F1 is above chance by more
   than its std.
2. The swap D(F_f^A, F_p^B) has PSNR >= 20 dB and SSIM >= 0.6 against
   render(face A, pose B), and beats its PSNR against render(face A, pose A)
   and render(face B, pose B) by >= 1.5 dB each.
3. F_p pose R^2 >= 0.9, F_f pose R^2 <= 0.3; identity and expression read
   better from F_f than from F_p.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pclkit.methods import MAIN_COMPARISON, get_method, method_label
from pclkit.protocols import CHANCE, PIXELS, RANDOM_INIT
from pclkit.tables import aggregate

#: the project's bar (see the module docstring)
MIN_BEST_EXPRESSION = 0.35
MIN_SWAP_PSNR = 20.0
MIN_SWAP_SSIM = 0.6
MIN_SWAP_MARGIN_DB = 1.5
MIN_POSE_R2_FROM_F_P = 0.9
MAX_POSE_R2_FROM_F_F = 0.3
#: the untrained references every learned method must beat, with the feature each is read from
BASELINES: dict[str, str] = {RANDOM_INIT: "F_s", PIXELS: "pixels"}


def _check(name: str, value: float, bar: str, passed: bool) -> dict[str, Any]:
    return {"check": name, "value": value, "bar": bar, "passed": bool(passed)}


def learning_checks(rows: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None,
                    decoder_method: str | None = None, data: str = "synthfaces") -> list[dict[str, Any]]:
    """Named pass/fail checks from tidy evaluation rows; checks whose inputs are missing are skipped.

    ``methods`` are the learned methods' labels (default: those of
    :data:`pclkit.methods.MAIN_COMPARISON`); ``decoder_method`` is the label
    whose swaps and branches are checked (default: the last of them with a decoder).
    """
    if methods is None:
        methods = [method_label(name) for name in MAIN_COMPARISON]
    if decoder_method is None:
        decoder_method = next((method_label(n) for n in reversed(MAIN_COMPARISON) if get_method(n).has_decoder), "")
    stats = aggregate([r for r in rows if r["data"] == data])

    def stat(method: str, feature: str, task: str, metric: str) -> Any:
        return stats.get((data, method, feature, task, metric))

    def beats(ours: Any, theirs: Any) -> tuple[float, bool]:
        ours_std = ours.std if ours.std == ours.std else 0.0  # NaN (the std of a single value) counts as 0
        theirs_std = theirs.std if theirs.std == theirs.std else 0.0
        spread = (ours_std**2 + theirs_std**2) ** 0.5
        gap = ours.mean - theirs.mean
        return gap, gap > spread

    out: list[dict[str, Any]] = []
    for method in methods:
        for task, label in (("verification", "verification"), ("verification_cross_pose", "cross-pose verification"),
                            ("expression", "expression")):
            ours = stat(method, "F_s", task, "accuracy")
            for baseline, feature in BASELINES.items():
                theirs = stat(baseline, feature, task, "accuracy")
                if ours is None or theirs is None:
                    continue
                gap, ok = beats(ours, theirs)
                out.append(_check(f"{method} F_s beats {baseline} on {label}", 100 * gap,
                                  "gap (points) > pooled std", ok))
    expression = [s for s in (stat(m, "F_s", "expression", "accuracy") for m in methods) if s is not None]
    if expression:
        best = max(s.mean for s in expression)
        out.append(_check("best expression accuracy (F_s)", 100 * best, f">= {100 * MIN_BEST_EXPRESSION:.0f} %",
                          best >= MIN_BEST_EXPRESSION))
    chance_au = stat(CHANCE, CHANCE, "au", "f1_mean")
    for method in methods:
        au = stat(method, "F_s", "au", "f1_mean")
        if au is not None and chance_au is not None:
            gap, ok = beats(au, chance_au)
            out.append(_check(f"{method} AU F1 above chance", 100 * gap, "gap (points) > pooled std", ok))

    def swap(metric: str) -> Any:
        return stat(decoder_method, "decoder", "swap", metric)

    if swap("psnr_swap") is not None:
        psnr = swap("psnr_swap").mean
        out.append(_check("swap PSNR vs render(face A, pose B)", psnr, f">= {MIN_SWAP_PSNR:g} dB", psnr >= MIN_SWAP_PSNR))
        if swap("ssim_swap") is not None:
            ssim = swap("ssim_swap").mean
            out.append(_check("swap SSIM vs render(face A, pose B)", ssim, f">= {MIN_SWAP_SSIM:g}", ssim >= MIN_SWAP_SSIM))
        for control, label in (("psnr_swap_vs_a", "render(face A, pose A)"), ("psnr_swap_vs_b", "render(face B, pose B)")):
            if swap(control) is not None:
                margin = psnr - swap(control).mean
                out.append(_check(f"swap closer to the truth than to {label}", margin,
                                  f">= {MIN_SWAP_MARGIN_DB:g} dB", margin >= MIN_SWAP_MARGIN_DB))

    r2_p, r2_f = stat(decoder_method, "F_p", "head_pose", "r2_mean"), stat(decoder_method, "F_f", "head_pose", "r2_mean")
    if r2_p is not None:
        out.append(_check("pose R² from F_p", r2_p.mean, f">= {MIN_POSE_R2_FROM_F_P:g}", r2_p.mean >= MIN_POSE_R2_FROM_F_P))
    if r2_f is not None:
        out.append(_check("pose R² from F_f", r2_f.mean, f"<= {MAX_POSE_R2_FROM_F_F:g}", r2_f.mean <= MAX_POSE_R2_FROM_F_F))
    for task, label in (("identity", "identity"), ("expression", "expression")):
        face, pose = stat(decoder_method, "F_f", task, "accuracy"), stat(decoder_method, "F_p", task, "accuracy")
        if face is not None and pose is not None:
            out.append(_check(f"{label} reads better from F_f than from F_p", 100 * (face.mean - pose.mean),
                              "F_f − F_p (points) > 0", face.mean > pose.mean))
    return out


def learning_markdown(checks: Sequence[Mapping[str, Any]]) -> str:
    """The checks as a Markdown table, with a count of how many pass."""
    lines = ["| check | value | bar | |", "|---|---:|---|---|"]
    for c in checks:
        lines.append(f"| {c['check']} | {c['value']:.2f} | {c['bar']} | {'pass' if c['passed'] else '**fail**'} |")
    passed = sum(c["passed"] for c in checks)
    return "\n".join(lines) + f"\n\n{passed} of {len(checks)} checks pass.\n"
