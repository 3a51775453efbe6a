"""Speed, memory and accuracy of jetstream.statistics on a 1M-client, 2-branch dataset.

    python -m benchmarks.statistics_bench [--clients 1000000] [--exact-draws 300]

Writes benchmarks/results/statistics.json. The dataset mimics the shared reference data
(conversion 0/1, heavy-tailed `searches` counts, lognormal `active_hours`, `days_of_use`
0..28, `ad_clicks`, pre-period covariates). Times exclude imports and data generation;
peak memory is tracemalloc's peak (numpy allocations included) in a separate pass.

The accuracy section runs the *exact* Bayesian bootstrap (Dirichlet weights over every
client) at full size with fewer draws, and compares the binned method's draw
distribution with it, in units of the accuracy bands of shared/reference/README.md
(point 2.8%, bounds 5.7% of the 95% CI width, i.e. about 0.11 and 0.22 posterior SDs).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "statistics.json"

CASES: list[tuple[str, str, dict, str | None, float | None]] = [
    # (statistic, metric, params, covariate, reference seconds on 1M, 2 cores, minus import)
    ("bootstrap_mean", "active_hours", {}, None, 185.0 - 3.3),
    ("bootstrap_mean", "searches", {}, None, 3.6 - 3.3),
    (
        "population_ratio",
        "ad_ctr",
        {"numerator": "ad_clicks", "denominator": "searches"},
        None,
        495.0 - 3.3,
    ),
    ("binomial", "conversion", {}, None, 3.5 - 3.3),
    ("deciles", "active_hours", {}, None, 3.5 - 3.3),
    ("linear_model_mean", "active_hours", {}, "active_hours_pre", 4.6 - 3.3),
    ("linear_model_mean", "active_hours", {}, None, None),
    ("per_client_dau_impact", "days_of_use", {}, "days_of_use_pre", 4.6 - 3.3),
    ("kernel_density_estimate", "active_hours", {}, None, 6.2 - 3.3),
    ("empirical_cdf", "searches", {"log_space": True}, None, 3.5 - 3.3),
    ("count", "searches", {}, None, None),
    ("sum", "searches", {}, None, None),
]
TARGETS = {"bootstrap_mean/active_hours": 2.5, "population_ratio/ad_ctr": 6.3}


def make_dataset(n: int, seed: int = 20261122) -> dict[str, np.ndarray]:
    """Per-client columns shaped like shared/reference/data (2 branches, ~50/50)."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    lift = np.where(treated, 1.05, 1.0)
    active_pre = rng.lognormal(0.0, 1.0, n)
    active = np.round(active_pre**0.6 * rng.lognormal(0.0, 0.8, n) * 1.0 * lift, 6)
    searches_rate = rng.gamma(0.6, 6.0, n) * np.where(treated, 1.03, 1.0)
    searches = rng.poisson(searches_rate)
    searches_pre = rng.poisson(searches_rate)
    days_pre = rng.binomial(28, rng.beta(2.0, 2.5, n))
    days = np.minimum(28, days_pre + rng.integers(-3, 4, n) + treated.astype(int))
    days = np.maximum(days, 0)
    ad_clicks = rng.binomial(searches, np.where(treated, 0.055, 0.05))
    conversion = (rng.random(n) < np.where(treated, 0.35, 0.34)).astype(np.int64)
    return {
        "branch": np.where(treated, "treatment", "control").astype(object),
        "conversion": conversion,
        "searches": searches,
        "active_hours": active,
        "days_of_use": days,
        "ad_clicks": ad_clicks,
        "active_hours_pre": np.round(active_pre, 6),
        "searches_pre": searches_pre,
        "days_of_use_pre": days_pre,
    }


def _run(table, statistic, metric, params, covariate):
    from jetstream.statistics import SummaryRequest, summarise

    return summarise(
        SummaryRequest(table, metric, statistic, params=params, covariate=covariate, seed=1)
    )


def time_cases(table: dict, repeat: int = 1) -> list[dict]:
    out = []
    for statistic, metric, params, covariate, reference in CASES:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows, errors = _run(table, statistic, metric, params, covariate)
            best = min(best, time.perf_counter() - t0)
        tracemalloc.start()
        _run(table, statistic, metric, params, covariate)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        name = f"{statistic}/{metric}" + (f"+{covariate}" if covariate else "")
        out.append(
            {
                "case": name,
                "seconds": round(best, 3),
                "reference_seconds": reference,
                "target_seconds": TARGETS.get(name),
                "peak_memory_mb": round(peak / 2**20, 1),
                "rows": len(rows),
                "errors": [e.message for e in errors],
            }
        )
        print(f"{name:50s} {best:7.3f} s  peak {peak / 2**20:8.1f} MB", flush=True)
    return out


def accuracy_vs_exact(x: np.ndarray, exact_draws: int, fast_draws: int = 10000) -> dict:
    """Binned vs exact Bayesian bootstrap of the (clipped) mean of x."""
    from jetstream.statistics.means import clip_at_quantile
    from jetstream.statistics.resampling import (
        bayesian_bootstrap_means,
        exact_bayesian_bootstrap_means,
    )

    x = clip_at_quantile(np.asarray(x, dtype=np.float64), 0.005)
    t0 = time.perf_counter()
    exact = exact_bayesian_bootstrap_means(x, exact_draws, np.random.default_rng(11))
    exact_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = bayesian_bootstrap_means(x, fast_draws, np.random.default_rng(12))
    fast_s = time.perf_counter() - t0
    theory_sd = float(x.std() / np.sqrt(x.size + 1))  # exact SD of the weighted mean
    width = 2 * 1.959964 * theory_sd  # 95% CI width under normality
    mean_diff = float(fast.mean() - exact.mean())
    se_mean_diff = float(np.sqrt(exact.var() / exact_draws + fast.var() / fast_draws))
    sd_exact, sd_fast = float(exact.std(ddof=1)), float(fast.std(ddof=1))
    se_sd_exact = sd_exact / np.sqrt(2 * (exact_draws - 1))
    q = [0.025, 0.975]
    fast_q = np.quantile(fast, q)
    exact_q = np.quantile(exact, q)
    return {
        "n": int(x.size),
        "distinct_values": int(np.unique(x).size),
        "exact_draws": exact_draws,
        "exact_seconds": round(exact_s, 2),
        "fast_draws": fast_draws,
        "fast_seconds": round(fast_s, 3),
        "theory_sd": theory_sd,
        "exact_sd": sd_exact,
        "exact_sd_monte_carlo_se": float(se_sd_exact),
        "fast_sd": sd_fast,
        "fast_sd_over_theory": sd_fast / theory_sd,
        "point_diff_in_ci_widths": mean_diff / width,
        "point_diff_monte_carlo_se_in_ci_widths": se_mean_diff / width,
        "point_band": 0.028,
        "bounds_diff_in_ci_widths": [float(d) for d in (fast_q - exact_q) / width],
        "bounds_band": 0.057,
        "fast_skewness": float(((fast - fast.mean()) ** 3).mean() / fast.std() ** 3),
        "exact_skewness": float(((exact - exact.mean()) ** 3).mean() / exact.std() ** 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--exact-draws", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import jetstream.statistics  # noqa: F401  (imports excluded from timings)

    table = make_dataset(args.clients)
    print(f"dataset: {args.clients} clients", flush=True)
    timings = time_cases(table, args.repeat)
    control = table["active_hours"][table["branch"] == "control"]
    accuracy = {"active_hours_control_full": accuracy_vs_exact(control, args.exact_draws)}
    print(json.dumps(accuracy, indent=1), flush=True)
    sub = control[: min(control.size, 100_000)]
    accuracy["active_hours_control_100k"] = accuracy_vs_exact(sub, 2000)
    print(json.dumps(accuracy["active_hours_control_100k"], indent=1), flush=True)
    result = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor(),
            "numpy": np.__version__,
        },
        "clients": args.clients,
        "branches": 2,
        "timings": timings,
        "max_peak_memory_mb": max(t["peak_memory_mb"] for t in timings),
        "bootstrap_accuracy_vs_exact": accuracy,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
