"""Per-call time of each statistic in the shape of the analysis benchmark's daily run.

    python -m benchmarks.statistics_daily [--clients 1000000] [--repeat 3] [--codes]

1M clients in 3 branches (object-dtype branch column, as the engine passes it), a
lognormal metric with a lognormal pre-period covariate, a 0/1 conversion and a
numerator/denominator pair. Prints the best-of-`repeat` seconds of one `summarise` call
per statistic (imports and data generation excluded). `--codes` passes the branch column
pre-factorised (`branch_codes=(codes, names)`), `--rows` a `BranchRows` built once, as the
engine can when it calls summarise many times over the same rows. Not a test: timings
only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

BRANCHES = ("control", "treatment-a", "treatment-b")

CASES: list[tuple[str, str, dict, str | None]] = [
    ("count", "active_hours", {}, None),
    ("bootstrap_mean", "active_hours", {}, None),
    ("linear_model_mean", "active_hours", {}, "active_hours_pre"),
    ("linear_model_mean", "active_hours", {}, None),
    ("deciles", "active_hours", {}, None),
    ("binomial", "conversion", {}, None),
    ("population_ratio", "ratio", {"numerator": "clicks", "denominator": "searches"}, None),
]


def make_table(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 3, n)
    lift = np.array([1.0, 1.03, 1.05])[code]
    pre = rng.lognormal(0.0, 1.0, n)
    searches = rng.poisson(rng.gamma(0.6, 6.0, n))
    return {
        "branch": np.array(BRANCHES, dtype=object)[code],
        "active_hours": np.round(pre**0.6 * rng.lognormal(0.0, 0.8, n) * lift, 6),
        "active_hours_pre": np.round(pre, 6),
        "conversion": (rng.random(n) < 0.34 * lift).astype(np.int64),
        "searches": searches,
        "clicks": rng.binomial(searches, 0.05),
        "ratio": np.zeros(n),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--codes", action="store_true", help="pass (codes, names) each call")
    parser.add_argument("--rows", action="store_true", help="pass one prebuilt BranchRows")
    args = parser.parse_args(argv)

    from jetstream.statistics import BranchRows, SummaryRequest, summarise

    table = make_table(args.clients)
    extra: dict = {}
    if args.codes:
        names, codes = np.unique(table["branch"].astype(str), return_inverse=True)
        extra["branch_codes"] = (codes, tuple(str(b) for b in names))
    if args.rows:
        names, codes = np.unique(table["branch"].astype(str), return_inverse=True)
        extra["branch_codes"] = BranchRows.from_codes(codes, [str(b) for b in names])
    for statistic, metric, params, covariate in CASES:
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            summarise(
                SummaryRequest(
                    table,
                    metric,
                    statistic,
                    params=params,
                    covariate=covariate,
                    branches=list(BRANCHES),
                    seed=1,
                    **extra,
                )
            )
            best = min(best, time.perf_counter() - t0)
        name = statistic + ("+covariate" if covariate else "")
        print(f"{name:30s} {best:7.3f} s", flush=True)


if __name__ == "__main__":
    main()
