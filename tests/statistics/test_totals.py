"""Counts and sums (jetstream.statistics.totals)."""

from __future__ import annotations

import numpy as np

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)


def test_count_and_sum():
    t = {"branch": np.array(["a", "b", "a"], dtype=object), "x": np.array([1.5, np.nan, 2.0])}
    rows, _ = summarise(SummaryRequest(t, "x", "count", branches=["a", "b"]))
    assert [(r.branch, r.point) for r in rows] == [("a", 2.0)]
    rows, _ = summarise(SummaryRequest(t, "x", "sum"))
    assert [(r.branch, r.point) for r in rows] == [("a", 3.5)]
