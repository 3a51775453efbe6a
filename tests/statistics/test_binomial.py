"""The binomial statistic (jetstream.statistics.binomial) against exact Beta quantiles."""

from __future__ import annotations

import pytest
from scipy import stats

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)
from tests.statistics.data import make_table, rows_by_key


def test_binomial_branch_rows_are_exact_beta_and_any_width_has_bounds():
    t = make_table(1000, 1000)
    for ci in (0.95, 0.8):
        rows, _ = summarise(
            SummaryRequest(t, "conv", "binomial", params={"confidence_interval": ci})
        )
        k = int(t["conv"][:1000].sum())
        r = rows_by_key(rows)[("control", None, None, None)]
        lo, hi = stats.beta(k + 1, 1000 - k + 1).ppf([(1 - ci) / 2, (1 + ci) / 2])
        assert r.point == pytest.approx((k + 1) / 1002, rel=1e-12)
        assert (r.lower, r.upper) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
        diff = rows_by_key(rows)[("treatment", "difference", "control", None)]
        assert diff.lower is not None and diff.lower < diff.point < diff.upper
        assert diff.ci_width == ci
