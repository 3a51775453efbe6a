"""Coverage of the always-valid intervals (`sequential_mean`) under daily peeking (a
section of `make validate-stats`).

Each simulated experiment enrolls CLIENTS_PER_DAY new clients per branch and day in two
branches for DAYS days; the metric is gamma(2, 1) per client (skewed, mean 2) in control
and the same times LIFT in treatment, so the true difference (2 (LIFT - 1)) and relative
uplift (LIFT - 1) are known. After every day the statistic (the pipeline's implementation,
`drop_highest = 0`: the plain mean) is computed on all clients enrolled so far; an
experiment is covered when the interval contains the truth at every one of the DAYS looks.
The fixed-horizon 95% interval (mean +/- 1.96 SE) on the same data is the comparison.
"""

from __future__ import annotations

import numpy as np

from jetstream.statistics import registry
from jetstream.statistics.base import StatisticInput

DAYS = 28
CLIENTS_PER_DAY = 200
SHAPE = 2.0
LIFT = 1.05
Z = 1.959963984540054


def simulate(runs: int, tuning_clients: int, seed: int) -> dict[str, float]:
    spec = registry["sequential_mean"]
    params = spec.resolve_params(
        {"drop_highest": 0.0, "tuning_clients": tuning_clients, "confidence_interval": 0.95}
    )
    truth = {"difference": SHAPE * (LIFT - 1), "relative_uplift": LIFT - 1}
    rng = np.random.default_rng(seed)
    n = DAYS * CLIENTS_PER_DAY
    seq_all = {c: 0 for c in truth}
    fixed_all = {c: 0 for c in truth}
    fixed_last = 0
    ratio = []
    for _ in range(runs):
        c = rng.gamma(SHAPE, 1.0, n)
        t = rng.gamma(SHAPE, 1.0, n) * LIFT
        seq_ok = dict.fromkeys(truth, True)
        fixed_ok = dict.fromkeys(truth, True)
        for day in range(1, DAYS + 1):
            m = day * CLIENTS_PER_DAY
            values = {"control": c[:m], "treatment": t[:m]}
            out = spec.function(
                StatisticInput(
                    metric="x",
                    values=values,
                    branches=("control", "treatment"),
                    references=("control",),
                    params=params,
                )
            )
            rows = {r.comparison: r for r in out.rows if r.branch == "treatment"}
            for comparison, value in truth.items():
                r = rows[comparison]
                seq_ok[comparison] &= r.lower <= value <= r.upper
            diff = values["treatment"].mean() - values["control"].mean()
            se = np.sqrt(values["treatment"].var(ddof=1) / m + values["control"].var(ddof=1) / m)
            covered = abs(diff - truth["difference"]) <= Z * se
            fixed_ok["difference"] &= bool(covered)
            m_c = values["control"].mean()
            rel = values["treatment"].mean() / m_c - 1
            se_rel = np.sqrt(
                values["treatment"].var(ddof=1) / m / m_c**2
                + values["treatment"].mean() ** 2 * values["control"].var(ddof=1) / m / m_c**4
            )
            fixed_ok["relative_uplift"] &= bool(abs(rel - truth["relative_uplift"]) <= Z * se_rel)
            if day == DAYS:
                fixed_last += bool(covered)
                d = rows["difference"]
                ratio.append((d.upper - d.lower) / (2 * Z * se))
        for comparison in truth:
            seq_all[comparison] += seq_ok[comparison]
            fixed_all[comparison] += fixed_ok[comparison]
    return {
        "seq_difference": seq_all["difference"] / runs,
        "seq_relative_uplift": seq_all["relative_uplift"] / runs,
        "fixed_difference": fixed_all["difference"] / runs,
        "fixed_relative_uplift": fixed_all["relative_uplift"] / runs,
        "fixed_last_look": fixed_last / runs,
        "width_ratio": float(np.mean(ratio)),
    }


def section(runs: int, seed: int = 20261204) -> list[str]:
    n = 2 * DAYS * CLIENTS_PER_DAY
    lines = [
        "## Always-valid intervals under daily peeking (sequential_mean)",
        "",
        f"{runs} simulated experiments per row (`benchmarks/sequential_simulation.py`): "
        f"two branches, {CLIENTS_PER_DAY} new clients per branch and day for {DAYS} days "
        f"({n} clients at the last look), gamma({SHAPE:g}, 1) per client, treatment x "
        f"{LIFT}. After every day both intervals are computed on the clients enrolled so "
        "far; coverage over the whole experiment = share of experiments whose interval "
        f"contains the truth at all {DAYS} looks (must be >= 95% for the sequential "
        "interval, minus 3 SE of the binomial at 0.95). Width ratio = the sequential "
        "difference interval's width over the fixed-horizon one's at the last look.",
        "",
        "| tuning_clients | comparison | coverage, all looks: sequential | fixed-horizon "
        "| fixed-horizon, last look only (difference) | width ratio at last look | pass |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    slack = 3 * (0.95 * 0.05 / runs) ** 0.5
    for tuning in (n, 100_000):
        r = simulate(runs, tuning, seed + tuning)
        for comparison in ("difference", "relative_uplift"):
            cov = r[f"seq_{comparison}"]
            lines.append(
                f"| {tuning:,} | {comparison} | {cov:.4f} | {r[f'fixed_{comparison}']:.4f} | "
                f"{r['fixed_last_look']:.4f} | {r['width_ratio']:.3f} | "
                f"{'yes' if cov >= 0.95 - slack else '**no**'} |"
            )
    lines.append("")
    return lines
