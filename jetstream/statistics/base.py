"""What every statistic receives and returns, and the helpers that turn Monte Carlo draws
into rows with intervals and two-sided p-values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from jetstream.statistics.rows import (
    DIFFERENCE,
    MSG_NONPOSITIVE_REFERENCE,
    RELATIVE_UPLIFT,
    StatisticError,
    StatisticRow,
)
from jetstream.statistics.seeds import derive_seed

Array = np.ndarray


@attrs.frozen
class StatisticInput:
    """The cleaned data of one metric, split by branch.

    `values[b]` are the metric's non-null values in branch `b` (only branches with data);
    `covariates[b]` the covariate aligned with them (None when no covariate is used);
    `columns[b]` other per-client columns aligned with them (population_ratio).
    `branches` lists every branch with data in a stable order, `references` the branches
    used in turn as the reference of comparisons.
    """

    metric: str
    values: Mapping[str, Array]
    branches: tuple[str, ...]
    references: tuple[str, ...]
    params: Mapping[str, Any]
    seed: int = 0
    covariates: Mapping[str, Array] | None = None
    columns: Mapping[str, Mapping[str, Array]] = attrs.field(factory=dict)

    def rng(self, *parts: str | int) -> np.random.Generator:
        """A generator for one stream (e.g. one branch), independent of the others and of
        which branches happen to be references."""
        return np.random.default_rng(derive_seed(self.seed, *parts))

    def pairs(self) -> list[tuple[str, str]]:
        """(branch, reference) pairs to compare, in a stable order."""
        return [(b, r) for r in self.references for b in self.branches if b != r]


@attrs.frozen
class Outcome:
    rows: list[StatisticRow] = attrs.field(factory=list)
    errors: list[StatisticError] = attrs.field(factory=list)


def bounds_quantiles(ci_width: float) -> tuple[float, float]:
    alpha = 1.0 - ci_width
    return alpha / 2.0, 1.0 - alpha / 2.0


def two_sided_p_from_draws(draws: Array) -> Array:
    """Two-sided Monte Carlo p-value for "no effect" (zero), along axis 0:
    2 * min(P(d <= 0), P(d >= 0)) with the (count + 1) / (N + 1) correction, so a p-value
    is never exactly 0 (its floor is 2 / (N + 1))."""
    n = draws.shape[0]
    le = (np.count_nonzero(draws <= 0, axis=0) + 1) / (n + 1)
    ge = (np.count_nonzero(draws >= 0, axis=0) + 1) / (n + 1)
    return np.minimum(1.0, 2.0 * np.minimum(le, ge))


def rows_from_draws(
    inp: StatisticInput,
    label: str,
    draws: Mapping[str, Array],
    ci_width: float,
    parameters: Sequence[str | None] = (None,),
    branch_rows: bool = True,
) -> Outcome:
    """Rows for per-branch draws: one per branch (point = mean of the draws, bounds = the
    empirical quantiles), and for each (branch, reference) pair a `difference` (t - r) and
    a `relative_uplift` (t / r - 1), pairing draws by index. Each draws array has shape
    (num_samples,) or (num_samples, len(parameters))."""
    lo_q, hi_q = bounds_quantiles(ci_width)
    out = Outcome()
    d2 = {b: (d[:, None] if d.ndim == 1 else d) for b, d in draws.items()}
    if branch_rows:
        for b in inp.branches:
            if b not in d2:
                continue
            d = d2[b]
            point = d.mean(axis=0)
            lo, hi = np.quantile(d, [lo_q, hi_q], axis=0)
            for j, param in enumerate(parameters):
                out.rows.append(
                    StatisticRow(
                        metric=inp.metric,
                        statistic=label,
                        parameter=param,
                        branch=b,
                        ci_width=ci_width,
                        point=point[j],
                        lower=lo[j],
                        upper=hi[j],
                    )
                )
    for b, r in inp.pairs():
        if b not in d2 or r not in d2:
            continue
        diff = d2[b] - d2[r]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = d2[b] / d2[r] - 1.0
        if np.any(d2[r].mean(axis=0) <= 0):
            out.errors.append(
                StatisticError(
                    metric=inp.metric,
                    statistic=label,
                    level="warning",
                    message=MSG_NONPOSITIVE_REFERENCE.format(metric=inp.metric, branch=r),
                )
            )
        for comparison, arr in ((DIFFERENCE, diff), (RELATIVE_UPLIFT, rel)):
            point = arr.mean(axis=0)
            lo, hi = np.quantile(arr, [lo_q, hi_q], axis=0)
            p = two_sided_p_from_draws(diff)
            for j, param in enumerate(parameters):
                out.rows.append(
                    StatisticRow(
                        metric=inp.metric,
                        statistic=label,
                        parameter=param,
                        branch=b,
                        comparison=comparison,
                        comparison_to_branch=r,
                        ci_width=ci_width,
                        point=point[j],
                        lower=lo[j],
                        upper=hi[j],
                        p_value=p[j],
                    )
                )
    return out
