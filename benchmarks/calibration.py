"""Calibration of the statistics' intervals by simulation.

    python -m benchmarks.calibration --out docs/statistics-validation.md [--n-sims 5000]

Every simulated experiment has 10,000 clients in four branches of 2,500: three identical
("a1", "a2", "a3": an A/A/A test) and one treatment "t" with a known effect. For each
statistic with intervals we record

* coverage: how often the nominal 95% interval contains the known value of the
  statistic's estimand — per branch (all four branches pooled) and for t vs a1
  (difference and relative uplift);
* false-positive rate: how often the difference interval excludes 0 for each unordered
  pair of the identical branches (a1-a2, a1-a3, a2-a3).

A check passes when it is within 3 standard errors (binomial, at the nominal rate) of 95%
(coverage) or 5% (false positives). Results are cached per chunk of experiments in a JSON
lines file next to the output, so an interrupted run resumes where it stopped. Monte Carlo
statistics use 1,000 draws here (10,000 in production) to fit the time budget: the
intervals' coverage does not depend on the number of draws beyond its small Monte Carlo
noise, which if anything lowers coverage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from scipy import optimize, stats

PER_BRANCH = 2500
NULL_BRANCHES = ("a1", "a2", "a3")
TREATMENT = "t"
BRANCHES = (*NULL_BRANCHES, TREATMENT)
DRAWS = 1000
CHUNK = 50
DROP = 0.005

# Data-generating process (see simulate()).
LIFT = 1.05  # active_hours multiplied in treatment
P_CONV = (0.30, 0.32)
P_CLICK = (0.05, 0.055)
SEARCH_SHAPE, SEARCH_SCALE = 0.6, 6.0
DAYS_A, DAYS_B = 2.0, 2.5
DAYS_KEEP = 0.97  # treatment: 1 - pi -> 0.97 (1 - pi)

# Cheapest first, so an interrupted run has complete results for most statistics.
STATISTICS: dict[str, tuple[str, dict, str | None]] = {
    "binomial": ("conv", {"num_samples": DRAWS}, None),
    "linear_model_mean": ("y", {}, None),
    "linear_model_mean+covariate": ("y", {}, "y_pre"),
    "per_client_dau_impact+covariate": ("days", {}, "days_pre"),
    "deciles": ("y", {"num_samples": DRAWS}, None),
    "population_ratio": (
        "ctr",
        {"numerator": "clicks", "denominator": "searches", "num_samples": DRAWS},
        None,
    ),
    "bootstrap_mean": ("y", {"num_samples": DRAWS}, None),
    "bootstrap_mean+clip_uncertainty": (
        "y",
        {"num_samples": DRAWS, "clip_uncertainty": "delta"},
        None,
    ),
}


def simulate(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = PER_BRANCH * len(BRANCHES)
    branch = np.repeat(np.array(BRANCHES, dtype=object), PER_BRANCH)
    treated = branch == TREATMENT
    y_pre = rng.lognormal(0.0, 1.0, n)
    # log y = 0.6 log y_pre + 0.8 z: y is lognormal(0, 1) and correlated with y_pre.
    y = np.exp(0.6 * np.log(y_pre) + 0.8 * rng.standard_normal(n)) * np.where(treated, LIFT, 1)
    conv = (rng.random(n) < np.where(treated, P_CONV[1], P_CONV[0])).astype(float)
    searches = rng.poisson(rng.gamma(SEARCH_SHAPE, SEARCH_SCALE, n))
    clicks = rng.binomial(searches, np.where(treated, P_CLICK[1], P_CLICK[0]))
    pi = rng.beta(DAYS_A, DAYS_B, n)
    days_pre = rng.binomial(28, pi)
    days = rng.binomial(28, np.where(treated, 1 - DAYS_KEEP * (1 - pi), pi))
    return {
        "branch": branch,
        "y": y,
        "y_pre": y_pre,
        "conv": conv,
        "searches": searches.astype(float),
        "clicks": clicks.astype(float),
        "days": days.astype(float),
        "days_pre": days_pre.astype(float),
    }


# ------------------------------------------------------------------ known truths


def _lognormal_clipped_mean(q: float, scale: float = 1.0) -> float:
    """E[min(scale * Y, q)] for Y ~ lognormal(0, 1)."""
    lq = math.log(q / scale)
    return scale * math.exp(0.5) * stats.norm.cdf(lq - 1.0) + q * stats.norm.sf(lq)


def _nb_clipped_mean(r: float, p: float, level: float) -> float:
    dist = stats.nbinom(r, p)
    q = dist.ppf(level)
    k = np.arange(0, int(q))
    return float(np.sum(k * dist.pmf(k)) + q * dist.sf(q - 1))


def truths() -> dict[str, dict[str, float]]:
    """{statistic: {"a": per-branch value of null branches, "t": of treatment,
    "difference": t - a, "relative_uplift": t / a - 1}}; deciles get one entry per label."""
    out: dict[str, dict[str, float]] = {}

    def entry(a: float, t: float) -> dict[str, float]:
        return {"a": a, "t": t, "difference": t - a, "relative_uplift": t / a - 1}

    # bootstrap_mean: each branch clipped at its own 99.5% quantile.
    q = math.exp(stats.norm.ppf(1 - DROP))
    a = _lognormal_clipped_mean(q)
    out["bootstrap_mean"] = entry(a, LIFT * a)
    out["bootstrap_mean+clip_uncertainty"] = out["bootstrap_mean"]

    # linear models: pooled clip at the mixture's 99.5% quantile.
    def mixture_cdf(x: float) -> float:
        return 0.75 * stats.norm.cdf(math.log(x)) + 0.25 * stats.norm.cdf(math.log(x / LIFT))

    qp = optimize.brentq(lambda x: mixture_cdf(x) - (1 - DROP), 1.0, 1000.0)
    lm = entry(_lognormal_clipped_mean(qp), _lognormal_clipped_mean(qp, LIFT))
    out["linear_model_mean"] = lm
    out["linear_model_mean+covariate"] = lm

    out["binomial"] = entry(*P_CONV)

    mean_pi = DAYS_A / (DAYS_A + DAYS_B)
    dau = entry(28 * mean_pi, 28 * (1 - DAYS_KEEP * (1 - mean_pi)))
    total = PER_BRANCH * len(BRANCHES)
    dau["difference"] *= total
    out["per_client_dau_impact+covariate"] = dau

    # population_ratio: numerator and denominator clipped separately at 99.5%.
    p_search = 1 / (1 + SEARCH_SCALE)
    den = _nb_clipped_mean(SEARCH_SHAPE, p_search, 1 - DROP)
    ratios = []
    for pc in P_CLICK:
        num = _nb_clipped_mean(SEARCH_SHAPE, 1 / (1 + SEARCH_SCALE * pc), 1 - DROP)
        ratios.append(num / den)
    out["population_ratio"] = entry(*ratios)

    for i in range(1, 10):
        qa = math.exp(stats.norm.ppf(i / 10))
        out[f"deciles/0.{i}"] = entry(qa, LIFT * qa)
    return out


# ------------------------------------------------------------------ one chunk


def run_chunk(statistic: str, chunk: int) -> dict:
    """Simulate experiments chunk*CHUNK .. +CHUNK and count covered / excluded intervals."""
    from jetstream.statistics import derive_seed, summarise

    metric, params, covariate = STATISTICS[statistic]
    name = statistic.split("+")[0]
    truth = truths()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [hits, trials]
    for i in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        rng = np.random.default_rng(derive_seed("calibration", statistic, i))
        table = simulate(rng)
        rows, errors = summarise(
            table,
            metric,
            name,
            params=params,
            covariate=covariate,
            seed=derive_seed("calibration-draws", statistic, i),
        )
        for r in rows:
            key = f"deciles/{r.parameter}" if name == "deciles" else statistic
            tr = truth[key]
            if r.lower is None or r.upper is None:
                continue
            label = f"{r.parameter}/" if name == "deciles" else ""
            if r.comparison is None:
                value = tr["t"] if r.branch == TREATMENT else tr["a"]
                kind = f"{label}coverage: branch"
            elif r.branch == TREATMENT and r.comparison_to_branch == "a1":
                value = tr[r.comparison]
                kind = f"{label}coverage: {r.comparison} t vs a1"
            elif (
                r.comparison == "difference"
                and r.branch in NULL_BRANCHES
                and r.comparison_to_branch in NULL_BRANCHES
                and r.branch > r.comparison_to_branch
            ):
                kind = f"{label}false positives: {r.comparison_to_branch}-{r.branch}"
                c = counts[kind]
                c[0] += int(r.lower > 0 or r.upper < 0)
                c[1] += 1
                continue
            else:
                continue
            c = counts[kind]
            c[0] += int(r.lower <= value <= r.upper)
            c[1] += 1
    return {"statistic": statistic, "chunk": chunk, "counts": dict(counts)}


# ------------------------------------------------------------------ driver and report


def _load_cache(path: Path) -> dict[tuple[str, int], dict]:
    done: dict[tuple[str, int], dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by an interruption
            done[(rec["statistic"], rec["chunk"])] = rec
    return done


def _aggregate(records: list[dict]) -> dict[str, dict[str, list[int]]]:
    agg: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for rec in records:
        for kind, (hits, trials) in rec["counts"].items():
            agg[rec["statistic"]][kind][0] += hits
            agg[rec["statistic"]][kind][1] += trials
    return agg


def report(agg: dict[str, dict[str, list[int]]], n_sims: int, seconds: float) -> str:
    lines = [
        "# Statistics validation: interval calibration",
        "",
        "Generated by `python -m benchmarks.calibration --out docs/statistics-validation.md`",
        f"(target {n_sims} simulated experiments per statistic: the trials column counts "
        f"intervals; {PER_BRANCH * len(BRANCHES)} clients in 4 branches of {PER_BRANCH}; "
        f"wall time of the last invocation {seconds / 60:.1f} min). See the module "
        "docstring of `benchmarks/calibration.py` for the data-generating process and the "
        "known truths.",
        "",
        "A row passes when its rate is within 3 standard errors of the nominal rate "
        "(95% coverage, 5% false positives); SE = sqrt(p (1 - p) / trials) at the nominal p. "
        "Per-branch coverage pools the four branches. Deciles are summarised over the nine "
        "deciles (each decile's own rows are in the cache file).",
        "",
        "| statistic | check | trials | rate | nominal | (rate - nominal) / SE | pass |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    all_pass = True
    for statistic in STATISTICS:
        kinds = agg.get(statistic, {})
        if statistic == "deciles":
            merged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for kind, (h, t) in kinds.items():
                merged[kind.split("/", 1)[1] + " (9 deciles)"][0] += h
                merged[kind.split("/", 1)[1] + " (9 deciles)"][1] += t
            kinds = merged
        for kind in sorted(kinds):
            hits, trials = kinds[kind]
            nominal = 0.05 if kind.startswith("false") else 0.95
            rate = hits / trials
            se = math.sqrt(nominal * (1 - nominal) / trials)
            z = (rate - nominal) / se
            ok = abs(z) <= 3
            all_pass &= ok
            lines.append(
                f"| {statistic} | {kind} | {trials} | {rate:.4f} | {nominal:.2f} | "
                f"{z:+.2f} | {'yes' if ok else '**no**'} |"
            )
    lines += ["", f"All checks pass: {'yes' if all_pass else 'no'}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Interval calibration by simulation.")
    parser.add_argument("--out", type=Path, default=Path("docs/statistics-validation.md"))
    parser.add_argument("--n-sims", type=int, default=5000)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="JSON lines cache (default: benchmarks/results/calibration.jsonl)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="*", default=None, help="statistics to run")
    parser.add_argument(
        "--report-only", action="store_true", help="render the cached chunks, run nothing"
    )
    args = parser.parse_args(argv)
    cache = args.cache or Path(__file__).resolve().parent / "results" / "calibration.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    chunks = math.ceil(args.n_sims / CHUNK)
    names = args.only or list(STATISTICS)
    done = _load_cache(cache)
    todo = [(s, c) for s in names for c in range(chunks) if (s, c) not in done]
    if args.report_only:
        todo = []
    print(f"{len(todo)} chunks of {CHUNK} experiments to run ({len(done)} cached)", flush=True)
    start = time.time()
    with ProcessPoolExecutor(max_workers=args.workers) as pool, cache.open("a") as fh:
        futures = [pool.submit(run_chunk, s, c) for s, c in todo]
        for k, fut in enumerate(as_completed(futures), 1):
            rec = fut.result()
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            if k % 10 == 0 or k == len(futures):
                print(f"{k}/{len(futures)} chunks, {time.time() - start:.0f} s", flush=True)
    done = _load_cache(cache)
    records = [done[(s, c)] for s in names for c in range(chunks) if (s, c) in done]
    text = report(_aggregate(records), args.n_sims, time.time() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
