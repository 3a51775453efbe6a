"""Pre-treatments (jetstream.statistics.pretreatments): removal, censoring, log normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)
from jetstream.statistics.pretreatments import apply_pre_treatment


def _apply(name, values, **args):
    return apply_pre_treatment(name, np.array(values, dtype=float), args, analysis_period_days=7)


def test_remove_nulls_and_indefinites():
    v = [1.0, np.nan, np.inf, -np.inf, 2.0]
    _, keep = _apply("remove_nulls", v)
    assert keep.tolist() == [True, False, True, True, True]
    _, keep = _apply("remove_indefinites", v)
    assert keep.tolist() == [True, False, False, False, True]


def test_censor_highest_and_lowest_values():
    v = list(range(1, 11))  # quantile(0.9) of 1..10 = 9.1, quantile(0.1) = 1.9
    _, keep = _apply("censor_highest_values", v, fraction=0.9)
    assert keep.tolist() == [True] * 9 + [False]
    _, keep = _apply("censor_lowest_values", v, fraction=0.1)
    assert keep.tolist() == [False] + [True] * 9
    _, keep = _apply("censor_highest_values", v, fraction=0.8)  # 8.2: drop 9, 10
    assert keep.sum() == 8


def test_censor_thresholds_are_strict():
    v = [1.0, 2.0, 3.0, np.nan]
    _, keep = _apply("censor_values_below_threshold", v, threshold=2.0)
    assert keep.tolist() == [False, False, True, False]
    _, keep = _apply("censor_values_above_threshold", v, threshold=2.0)
    assert keep.tolist() == [True, False, False, False]


def test_normalize_log_zero_fill():
    out, _ = _apply("normalize_over_analysis_period", [14.0, 7.0])
    assert out.tolist() == [2.0, 1.0]  # 7 days injected
    out, _ = _apply("normalize_over_analysis_period", [14.0], analysis_period_length=2)
    assert out.tolist() == [7.0]
    out, _ = _apply("log", [100.0, 1.0, 0.0])
    assert out[:2].tolist() == [2.0, 0.0] and out[2] == -np.inf
    out, _ = _apply("log", [np.e**2], base=None)
    assert out[0] == pytest.approx(2.0)
    out, _ = _apply("zero_fill", [np.nan, 3.0])
    assert out.tolist() == [0.0, 3.0]


def test_pre_treatments_drop_rows_from_every_column():
    t = {
        "branch": np.array(["a", "a", "b", "b"], dtype=object),
        "x": np.array([1.0, 100.0, 2.0, np.nan]),
    }
    rows, errors = summarise(
        SummaryRequest(
            t, "x", "sum", pre_treatments=[("censor_values_above_threshold", {"threshold": 50})]
        )
    )
    assert {r.branch: r.point for r in rows} == {"a": 1.0, "b": 2.0}
    rows, _ = summarise(SummaryRequest(t, "x", "count", pre_treatments=[("zero_fill", {})]))
    assert {r.branch: r.point for r in rows} == {"a": 2.0, "b": 2.0}
    rows, _ = summarise(SummaryRequest(t, "x", "count"))  # nulls dropped after pre-treatments
    assert {r.branch: r.point for r in rows} == {"a": 2.0, "b": 1.0}
