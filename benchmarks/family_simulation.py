"""Family-wise error rate of A/A experiments under the pipeline's multiple-comparison
adjustment (a section of `make validate-stats`).

Each simulated experiment has a control and T treatments, all identical, K metrics
(per-client values multivariate normal with correlation 0.5 between metrics: metrics of
one experiment are correlated), and W windows of fresh clients. Every (metric, treatment,
window) gets a Welch t-test p-value; the rows the pipeline publishes for it (difference
and relative uplift, in both directions: the engine compares every pair both ways) go
through `adjust_p_values(rows, method, reference="control")` exactly as the export task
calls it on one period's rows. A family-wise error is any primary-family row with
p_value_adjusted < 0.05 (unadjusted: any p_value < 0.05).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from jetstream.statistics.multiple_testing import adjust_p_values
from jetstream.statistics.rows import DIFFERENCE, RELATIVE_UPLIFT, StatisticRow

CLIENTS = 400  # per branch and window
RHO = 0.5
ALPHA = 0.05
CONFIGS = ((5, 1, 1), (5, 3, 4), (10, 2, 8))  # (K metrics, T treatments, W windows)


def _p_values(rng: np.random.Generator, k: int, t: int, w: int) -> np.ndarray:
    """(W, T, K) p-values of treatment vs control."""
    cov = np.full((k, k), RHO) + (1 - RHO) * np.eye(k)
    chol = np.linalg.cholesky(cov)
    data = rng.standard_normal((w, t + 1, CLIENTS, k)) @ chol.T
    control = data[:, :1]
    return sps.ttest_ind(data[:, 1:], control, axis=2, equal_var=False).pvalue


def _rows(p: np.ndarray) -> list[StatisticRow]:
    rows = []
    w_, t_, k_ = p.shape
    for w in range(w_):
        for t in range(t_):
            for k in range(k_):
                for comparison in (DIFFERENCE, RELATIVE_UPLIFT):
                    for branch, ref in ((f"t{t}", "control"), ("control", f"t{t}")):
                        rows.append(
                            StatisticRow(
                                metric=f"m{k}",
                                statistic="mean",
                                branch=branch,
                                comparison=comparison,
                                comparison_to_branch=ref,
                                p_value=float(p[w, t, k]),
                                segment="all",
                                analysis_basis="enrollments",
                                window_index=str(w + 1),
                            )
                        )
    return rows


def simulate(k: int, t: int, w: int, sims: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    errors = {"none": 0, "holm": 0, "bh": 0}
    for _ in range(sims):
        p = _p_values(rng, k, t, w)
        errors["none"] += bool((p < ALPHA).any())
        rows = _rows(p)
        for method in ("holm", "bh"):
            out = adjust_p_values(rows, method, reference="control")
            errors[method] += any((r.p_value_adjusted or 1.0) < ALPHA for r in out)
    return {m: n / sims for m, n in errors.items()}


def section(sims: int, seed: int = 20261203) -> list[str]:
    lines = [
        "## Family-wise error rate of A/A experiments",
        "",
        f"{sims} simulated A/A experiments per row (`benchmarks/family_simulation.py`): "
        f"K metrics correlated {RHO} per client, T treatments identical to the control, "
        f"W windows of {CLIENTS} fresh clients per branch; each hypothesis (metric, "
        "treatment vs control, window) publishes a difference and a relative-uplift row "
        "in both directions, adjusted by `adjust_p_values(rows, method, "
        'reference="control")` as the export task does. FWER = share of experiments with '
        "at least one primary-family row below 0.05. Holm must be <= 5%; under A/A every "
        "discovery is false, so the FDR of Benjamini-Hochberg is its FWER too. "
        "SE = sqrt(r (1 - r) / sims).",
        "",
        "| K metrics | T treatments | W windows | hypotheses | FWER unadjusted | FWER holm "
        "| FWER bh | holm <= 5% |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for k, t, w in CONFIGS:
        r = simulate(k, t, w, sims, seed + 1000 * k + 100 * t + w)
        se = (r["holm"] * (1 - r["holm"]) / sims) ** 0.5
        ok = r["holm"] <= ALPHA + 3 * ((ALPHA * (1 - ALPHA) / sims) ** 0.5)
        lines.append(
            f"| {k} | {t} | {w} | {k * t * w} | {r['none']:.4f} | {r['holm']:.4f} "
            f"(SE {se:.4f}) | {r['bh']:.4f} | {'yes' if ok else '**no**'} |"
        )
    lines.append("")
    return lines
