"""bootstrap_mean and population_ratio: Monte Carlo intervals for means and ratios."""

from __future__ import annotations

import numpy as np

from jetstream.statistics.base import Outcome, StatisticInput, rows_from_draws
from jetstream.statistics.resampling import (
    DEFAULT_BINS,
    bayesian_bootstrap_means,
    bootstrap_ratio_of_means,
)
from jetstream.statistics.rows import MSG_ZERO_DENOMINATOR, StatisticError

Array = np.ndarray


def clip_at_quantile(x: Array, drop_highest: float) -> Array:
    """Clip values above the `1 - drop_highest` quantile (linear interpolation)."""
    if drop_highest <= 0 or x.size == 0:
        return x
    return np.minimum(x, np.quantile(x, 1.0 - drop_highest))


def bootstrap_mean(inp: StatisticInput) -> Outcome:
    """Bayesian bootstrap of each branch's mean after clipping each branch at its own
    `1 - drop_highest` quantile. Label `mean`."""
    p = inp.params
    num_samples = int(p["num_samples"])
    draws = {
        b: bayesian_bootstrap_means(
            clip_at_quantile(inp.values[b], float(p["drop_highest"])),
            num_samples,
            inp.rng("bootstrap_mean", b),
            bins=int(p.get("bins", DEFAULT_BINS)),
        )
        for b in inp.branches
    }
    return rows_from_draws(inp, "mean", draws, float(p["confidence_interval"]))


def population_ratio(inp: StatisticInput) -> Outcome:
    """Ordinary bootstrap of clients of mean(numerator) / mean(denominator), numerator and
    denominator clipped separately per branch at their `1 - drop_highest` quantiles."""
    p = inp.params
    numerator, denominator = str(p["numerator"]), str(p["denominator"])
    drop = float(p["drop_highest"])
    out = Outcome()
    draws = {}
    for b in inp.branches:
        num = clip_at_quantile(inp.columns[b][numerator], drop)
        den = clip_at_quantile(inp.columns[b][denominator], drop)
        if den.sum() == 0:
            out.errors.append(
                StatisticError(
                    metric=inp.metric,
                    statistic="population_ratio",
                    message=MSG_ZERO_DENOMINATOR.format(column=denominator, branch=b),
                )
            )
            continue
        draws[b] = bootstrap_ratio_of_means(
            num,
            den,
            int(p["num_samples"]),
            inp.rng("population_ratio", b),
            bins=int(p.get("bins", DEFAULT_BINS)),
        )
    res = rows_from_draws(inp, "population_ratio", draws, float(p["confidence_interval"]))
    return Outcome(res.rows, out.errors + res.errors)
