"""The 'does it learn?' checks read the right rows and apply the bar."""

from __future__ import annotations

import pytest

from pclkit.learning import learning_checks, learning_markdown


def rows_for(method: str, feature: str, task: str, metric: str, values: list[float]) -> list[dict]:
    return [{"data": "synthfaces", "method": method, "feature": feature, "task": task, "metric": metric,
             "seed": seed, "value": v} for seed, v in enumerate(values)]


def planted(pcl_expression: float, swap_vs_b: float) -> list[dict]:
    rows: list[dict] = []
    for task in ("verification", "verification_cross_pose", "expression"):
        low = -0.35 if task == "expression" else 0.0  # baselines read expression near 25 %
        rows += rows_for("random init", "F_s", task, "accuracy", [0.60 + low, 0.61 + low, 0.59 + low])
        rows += rows_for("pixels (PCA)", "pixels", task, "accuracy", [0.62 + low] * 3)
        simclr = [pcl_expression - 0.005] * 3 if task == "expression" else [0.70, 0.71, 0.69]
        rows += rows_for("SimCLR", "F_s", task, "accuracy", simclr)
        rows += rows_for("PCL", "F_s", task, "accuracy", [pcl_expression] * 3 if task == "expression" else [0.72] * 3)
    rows += rows_for("chance", "chance", "au", "f1_mean", [0.45] * 3)
    rows += rows_for("PCL", "F_s", "au", "f1_mean", [0.60] * 3)
    rows += rows_for("PCL", "decoder", "swap", "psnr_swap", [22.0] * 3)
    rows += rows_for("PCL", "decoder", "swap", "ssim_swap", [0.7] * 3)
    rows += rows_for("PCL", "decoder", "swap", "psnr_swap_vs_a", [19.0] * 3)
    rows += rows_for("PCL", "decoder", "swap", "psnr_swap_vs_b", [swap_vs_b] * 3)
    rows += rows_for("PCL", "F_p", "head_pose", "r2_mean", [0.95] * 3)
    rows += rows_for("PCL", "F_f", "head_pose", "r2_mean", [0.2] * 3)
    rows += rows_for("PCL", "F_f", "identity", "accuracy", [0.5] * 3)
    rows += rows_for("PCL", "F_p", "identity", "accuracy", [0.2] * 3)
    return rows


def test_every_check_passes_on_planted_good_rows_and_the_bar_bites():
    checks = {c["check"]: c for c in learning_checks(planted(pcl_expression=0.40, swap_vs_b=15.0))}
    assert all(c["passed"] for c in checks.values()), [k for k, c in checks.items() if not c["passed"]]
    assert checks["best expression accuracy (F_s)"]["value"] == pytest.approx(40.0)
    assert "SimCLR AU F1 above chance" not in checks  # no SimCLR AU rows: skipped, not failed
    bad = {c["check"]: c for c in learning_checks(planted(pcl_expression=0.26, swap_vs_b=21.0))}
    assert not bad["best expression accuracy (F_s)"]["passed"]
    assert not bad["swap closer to the truth than to render(face B, pose B)"]["passed"]
    assert not bad["PCL F_s beats pixels (PCA) on expression"]["passed"]
    assert "checks pass" in learning_markdown(list(bad.values()))
