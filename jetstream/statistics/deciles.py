"""deciles: bootstrap of the 10th..90th percentiles."""

from __future__ import annotations

import numpy as np

from jetstream.statistics.base import Outcome, StatisticInput, rows_from_draws

QUANTILES = np.arange(1, 10) / 10.0
LABELS = tuple(f"{q:.1f}" for q in QUANTILES)


def decile_draws(x: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of the deciles, shape (num_samples, 9): a bootstrap resample's
    q-quantile is (to within interpolation) the order statistic at rank
    k ~ Binomial(n - 1, q) of the sorted sample, so draw the rank directly."""
    xs = np.sort(x)
    ranks = rng.binomial(xs.size - 1, QUANTILES, size=(num_samples, QUANTILES.size))
    return xs[ranks]


def deciles(inp: StatisticInput) -> Outcome:
    """No clipping; point = mean of the draws (not the sample quantile), as the reference."""
    num_samples = int(inp.params["num_samples"])
    draws = {
        b: decile_draws(inp.values[b], num_samples, inp.rng("deciles", b)) for b in inp.branches
    }
    return rows_from_draws(
        inp, "deciles", draws, float(inp.params["confidence_interval"]), parameters=LABELS
    )
