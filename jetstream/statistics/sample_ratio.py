"""Sample ratio mismatch: a chi-square goodness-of-fit test of enrolled clients per branch
against the configured ratios."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

from jetstream.statistics.rows import StatisticError, StatisticRow, format_parameter

SRM_ALPHA = 0.001
SRM_LABEL = "srm"
MSG_SRM = (
    "sample ratio mismatch: observed shares {observed} differ from configured {expected} "
    "(chi2 = {chi2:.3f}, p = {p:.3g} < {alpha})"
)
MSG_SRM_BAD_INPUT = "cannot test sample ratio: {problem}"


def srm(counts: Mapping[str, int], ratios: Mapping[str, float]) -> list[StatisticRow]:
    """One row per branch: `point` = the branch's observed share of clients,
    `parameter` = its configured share (ratios normalised to sum to 1), `lower`/`upper`
    = None, and `p_value` = the chi-square test's p-value (df = branches - 1), the same on
    every row. A branch in `ratios` but not in `counts` counts 0. Returns [] when the test
    is undefined (fewer than two branches, no clients, a non-positive ratio); use
    `srm_check` to get the reason and the p < SRM_ALPHA flag."""
    rows, _ = srm_check(counts, ratios)
    return rows


def srm_check(
    counts: Mapping[str, int], ratios: Mapping[str, float], metric: str = "enrollments"
) -> tuple[list[StatisticRow], list[StatisticError]]:
    """As `srm`, plus an error-level StatisticError when p < SRM_ALPHA (or a warning
    explaining why the test could not run)."""
    branches = list(ratios)
    problem = None
    if len(branches) < 2:
        problem = "fewer than two branches are configured"
    elif any(float(ratios[b]) <= 0 for b in branches):
        problem = "every configured ratio must be positive"
    elif any(b not in ratios for b in counts):
        problem = f"branches {sorted(set(counts) - set(ratios))} have clients but no ratio"
    observed = np.array([float(counts.get(b, 0)) for b in branches])
    if problem is None and observed.sum() <= 0:
        problem = "no clients are enrolled"
    if problem is not None:
        return [], [
            StatisticError(
                metric=metric,
                statistic=SRM_LABEL,
                level="warning",
                message=MSG_SRM_BAD_INPUT.format(problem=problem),
            )
        ]
    share = np.array([float(ratios[b]) for b in branches])
    share = share / share.sum()
    total = observed.sum()
    expected = total * share
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    p = float(stats.chi2.sf(chi2, len(branches) - 1))
    rows = [
        StatisticRow(
            metric=metric,
            statistic=SRM_LABEL,
            parameter=format_parameter(share[i]),
            branch=b,
            point=observed[i] / total,
            p_value=p,
        )
        for i, b in enumerate(branches)
    ]
    errors = []
    if p < SRM_ALPHA:
        errors.append(
            StatisticError(
                metric=metric,
                statistic=SRM_LABEL,
                message=MSG_SRM.format(
                    observed={
                        b: round(o / total, 4) for b, o in zip(branches, observed, strict=True)
                    },
                    expected={b: round(float(s), 4) for b, s in zip(branches, share, strict=True)},
                    chi2=chi2,
                    p=p,
                    alpha=SRM_ALPHA,
                ),
            )
        )
    return rows, errors


def srm_chi2(counts: Mapping[str, int], ratios: Mapping[str, float]) -> tuple[float, float]:
    """(chi2 statistic, p-value) for the same test."""
    branches = list(ratios)
    observed = np.array([float(counts.get(b, 0)) for b in branches])
    share = np.array([float(ratios[b]) for b in branches])
    expected = observed.sum() * share / share.sum()
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    return chi2, float(stats.chi2.sf(chi2, len(branches) - 1))
