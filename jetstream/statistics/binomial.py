"""binomial: Beta posteriors of a conversion rate (values 0/1, or booleans)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from jetstream.statistics.base import (
    Outcome,
    StatisticInput,
    bounds_quantiles,
    rows_from_draws,
)
from jetstream.statistics.rows import StatisticRow


def binomial(inp: StatisticInput) -> Outcome:
    """Per branch: the exact Beta(k + 1, n - k + 1) mean and quantiles. Comparisons: from
    `num_samples` paired Beta draws (difference, relative uplift), at any interval width."""
    ci = float(inp.params["confidence_interval"])
    num_samples = int(inp.params["num_samples"])
    lo_q, hi_q = bounds_quantiles(ci)
    rows = []
    draws = {}
    for b in inp.branches:
        x = inp.values[b]
        n = x.size
        k = float(np.count_nonzero(x))
        a, c = k + 1.0, n - k + 1.0
        dist = stats.beta(a, c)
        lo, hi = dist.ppf([lo_q, hi_q])
        rows.append(
            StatisticRow(
                metric=inp.metric,
                statistic="binomial",
                branch=b,
                ci_width=ci,
                point=a / (a + c),
                lower=lo,
                upper=hi,
            )
        )
        draws[b] = inp.rng("binomial", b).beta(a, c, size=num_samples)
    comp = rows_from_draws(inp, "binomial", draws, ci, branch_rows=False)
    return Outcome(rows + comp.rows, comp.errors)
