"""Sample ratio mismatch (jetstream.statistics.sample_ratio) against scipy's chi-square."""

from __future__ import annotations

import pytest
from scipy import stats

from jetstream.statistics import (
    srm,
    srm_check,
)


def test_srm_matches_scipy_chisquare_and_flags():
    counts = {"control": 5100, "treatment": 4900}
    rows = srm(counts, {"control": 1, "treatment": 1})
    chi2, p = stats.chisquare([5100, 4900], [5000, 5000])
    assert [r.point for r in rows] == [0.51, 0.49]
    assert [r.parameter for r in rows] == ["0.5", "0.5"]
    assert all(r.p_value == pytest.approx(p) and r.statistic == "srm" for r in rows)
    _, errors = srm_check(counts, {"control": 1, "treatment": 1})
    assert errors == []  # p = 0.0455
    _, errors = srm_check({"control": 5300, "treatment": 4700}, {"control": 0.5, "treatment": 0.5})
    assert errors and errors[0].level == "error" and "sample ratio mismatch" in errors[0].message
    assert srm({"a": 10}, {"a": 1}) == []
