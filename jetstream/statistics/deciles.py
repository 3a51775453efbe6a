"""deciles: bootstrap of the 10th..90th percentiles."""

from __future__ import annotations

import numpy as np

from jetstream.statistics.base import Outcome, StatisticInput, rows_from_draws

QUANTILES = np.arange(1, 10) / 10.0
LABELS = tuple(f"{q:.1f}" for q in QUANTILES)


def decile_draws(x: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of the deciles, shape (num_samples, 9): a bootstrap resample's
    q-quantile is (to within interpolation) the order statistic at rank
    k ~ Binomial(n - 1, q) of the sorted sample, so draw the rank directly.

    Ranks are drawn one decile at a time (numpy's binomial sampler reuses its set-up for a
    constant (n, p), ~1.5x faster than broadcasting the nine p's), and the result is
    column-major, so that the quantiles and counts taken along the draws axis downstream
    read contiguous memory.

    Calibration (docs/statistics-validation.md): for continuous data the per-branch
    interval [x_(k_lo), x_(k_hi)] covers the true q-quantile with probability
    P(k_lo + 1 <= B <= k_hi), B ~ Binomial(n, q), whatever the distribution; with the
    production 10,000 draws that is 0.949-0.950 for every decile at n = 2,500 (1,000 draws
    lose ~0.2 points to the Monte Carlo noise of the bounds)."""
    xs = np.sort(x)
    ranks = np.empty((QUANTILES.size, num_samples), dtype=np.int64)
    for j, q in enumerate(QUANTILES):
        ranks[j] = rng.binomial(xs.size - 1, q, size=num_samples)
    return xs[ranks].T


def deciles(inp: StatisticInput) -> Outcome:
    """No clipping; point = mean of the draws (not the sample quantile), as the reference."""
    num_samples = int(inp.params["num_samples"])
    draws = {
        b: decile_draws(inp.values[b], num_samples, inp.rng("deciles", b)) for b in inp.branches
    }
    return rows_from_draws(
        inp, "deciles", draws, float(inp.params["confidence_interval"]), parameters=LABELS
    )
