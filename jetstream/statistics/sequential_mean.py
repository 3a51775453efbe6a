"""sequential_mean: branch means and their comparisons with always-valid intervals (the
normal-mixture confidence sequence of `jetstream.statistics.sequential`), for results
looked at every day or week as the data grow. Label `mean_sequential`."""

from __future__ import annotations

from jetstream.statistics.base import Outcome, StatisticInput
from jetstream.statistics.means import clip_at_quantile
from jetstream.statistics.rows import (
    DIFFERENCE,
    MSG_NONPOSITIVE_REFERENCE,
    RELATIVE_UPLIFT,
    StatisticError,
    StatisticRow,
)
from jetstream.statistics.sequential import always_valid_p, confidence_sequence

LABEL = "mean_sequential"


def sequential_mean(inp: StatisticInput) -> Outcome:
    """Per branch: the mean (after clipping at the branch's `1 - drop_highest` quantile)
    with a confidence sequence over its n clients; per (branch, reference) pair: the
    difference with the sequence over the n clients of both branches and the variance
    s_t^2/n_t + s_r^2/n_r, and the relative uplift with the delta-method variance of
    m_t/m_r. The p-value is the always-valid one of the difference. `tuning_clients` is
    the number of clients (both branches) at which the comparison intervals are
    narrowest."""
    p = inp.params
    ci = float(p["confidence_interval"])
    alpha = 1.0 - ci
    drop = float(p["drop_highest"])
    n_star = float(p["tuning_clients"])
    out = Outcome()
    means: dict[str, float] = {}
    variances: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for b in inp.branches:
        x = clip_at_quantile(inp.values[b], drop)
        sizes[b] = int(x.size)
        means[b] = float(x.mean())
        variances[b] = float(x.var(ddof=1)) / x.size if x.size > 1 else float("nan")
        lo, hi = confidence_sequence(means[b], variances[b], x.size, alpha, n_star)
        out.rows.append(
            StatisticRow(
                metric=inp.metric,
                statistic=LABEL,
                branch=b,
                ci_width=ci,
                point=means[b],
                lower=float(lo),
                upper=float(hi),
            )
        )
    for b, r in inp.pairs():
        n = sizes[b] + sizes[r]
        diff = means[b] - means[r]
        v_diff = variances[b] + variances[r]
        p_value = float(always_valid_p(diff, v_diff, n, alpha, n_star))
        comparisons = [(DIFFERENCE, diff, v_diff)]
        if means[r] > 0:
            m_t, m_r = means[b], means[r]
            v_rel = variances[b] / m_r**2 + m_t**2 * variances[r] / m_r**4
            comparisons.append((RELATIVE_UPLIFT, m_t / m_r - 1.0, v_rel))
        else:
            out.errors.append(
                StatisticError(
                    metric=inp.metric,
                    statistic=LABEL,
                    level="warning",
                    message=MSG_NONPOSITIVE_REFERENCE.format(metric=inp.metric, branch=r),
                )
            )
        for comparison, point, variance in comparisons:
            lo, hi = confidence_sequence(point, variance, n, alpha, n_star)
            out.rows.append(
                StatisticRow(
                    metric=inp.metric,
                    statistic=LABEL,
                    branch=b,
                    comparison=comparison,
                    comparison_to_branch=r,
                    ci_width=ci,
                    point=point,
                    lower=float(lo),
                    upper=float(hi),
                    p_value=p_value,
                )
            )
    return out
