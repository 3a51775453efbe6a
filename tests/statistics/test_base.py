"""Rows from draws (jetstream.statistics.base): every comparison has a two-sided p-value."""

from __future__ import annotations

import pytest

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)
from tests.statistics.data import make_table, rows_by_key


def test_every_comparison_row_has_a_two_sided_p_value():
    t = make_table(2000, 2000, effect=1.3)
    for statistic, metric, params in [
        ("bootstrap_mean", "y", {"num_samples": 1000}),
        ("binomial", "conv", {"num_samples": 1000}),
        ("deciles", "y", {"num_samples": 500}),
        ("linear_model_mean", "y", {}),
        ("population_ratio", "r", {"numerator": "num", "denominator": "den", "num_samples": 1000}),
    ]:
        rows, _ = summarise(SummaryRequest(t, metric, statistic, params=params))
        comps = [r for r in rows if r.comparison]
        assert comps and all(r.p_value is not None and 0 < r.p_value <= 1 for r in comps)
        assert all(r.p_value is None for r in rows if r.comparison is None)
    rows, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 1000}))
    d = rows_by_key(rows)[("treatment", "difference", "control", None)]
    assert d.p_value == pytest.approx(2 / 1001)  # a strong effect: the Monte Carlo floor
