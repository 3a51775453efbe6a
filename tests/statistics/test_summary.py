"""`summarise` (jetstream.statistics.summary): bad requests and degenerate inputs give error
rows, not exceptions; reference branches decide the comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from jetstream.statistics import (
    StatisticError,
    SummaryRequest,
    registry,
    summarise,
)
from jetstream.statistics import rows as msgs
from tests.statistics.data import make_table


def test_unknown_statistic_and_bad_params_are_errors():
    t = make_table(50, 50)
    rows, errors = summarise(SummaryRequest(t, "y", "nope"))
    assert rows == [] and errors[0].level == "error" and "unknown statistic" in errors[0].message
    rows, errors = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"bogus": 1}))
    assert rows == [] and "bogus" in errors[0].message
    rows, errors = summarise(
        SummaryRequest(t, "y", "bootstrap_mean", params={"confidence_interval": 1.5})
    )
    assert rows == [] and "confidence_interval" in errors[0].message
    rows, errors = summarise(SummaryRequest(t, "missing", "count"))
    assert errors[0].message == msgs.MSG_MISSING_COLUMN.format(column="missing")
    rows, errors = summarise(
        SummaryRequest(t, "y", "population_ratio", params={"numerator": "num"})
    )
    assert "denominator" in errors[0].message


def test_all_null_metric_is_an_error():
    t = make_table(20, 20)
    t["y"] = np.full(40, np.nan)
    rows, errors = summarise(SummaryRequest(t, "y", "bootstrap_mean"))
    assert rows == []
    assert errors == [
        StatisticError(
            metric="y", statistic="bootstrap_mean", message=msgs.MSG_ALL_NULL.format(metric="y")
        )
    ]


@pytest.mark.parametrize("statistic", sorted(registry))
def test_empty_branch_is_reported_and_others_still_computed(statistic):
    t = make_table(300, 300)
    params = {"numerator": "num", "denominator": "den"} if statistic == "population_ratio" else {}
    if "num_samples" in registry[statistic].defaults:
        params["num_samples"] = 200
    metric = "conv" if statistic == "binomial" else "y"
    rows, errors = summarise(
        SummaryRequest(
            t,
            metric,
            statistic,
            params=params,
            covariate="pre",
            branches=["control", "treatment", "empty"],
        )
    )
    assert rows, errors
    assert all(r.branch != "empty" and r.comparison_to_branch != "empty" for r in rows)
    assert any(
        e.message == msgs.MSG_EMPTY_BRANCH.format(branch="empty", metric=metric) for e in errors
    )


def test_single_branch_gives_branch_rows_and_a_warning():
    t = make_table(300, 0)
    rows, errors = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 200}))
    assert [r.comparison for r in rows] == [None]
    assert errors[0].message == msgs.MSG_SINGLE_BRANCH.format(branch="control")


def test_reference_branch_missing_is_an_error():
    t = make_table(100, 100)
    rows, errors = summarise(
        SummaryRequest(
            t, "y", "bootstrap_mean", params={"num_samples": 100}, reference_branch="ghost"
        )
    )
    assert all(r.comparison is None for r in rows)
    assert any(e.message == msgs.MSG_NO_REFERENCE.format(branch="ghost") for e in errors)


def test_reference_branch_restricts_comparisons_default_is_both_ways():
    t = make_table(300, 300)
    rows, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 200}))
    pairs = {(r.branch, r.comparison_to_branch) for r in rows if r.comparison}
    assert pairs == {("control", "treatment"), ("treatment", "control")}
    rows, _ = summarise(
        SummaryRequest(
            t, "y", "bootstrap_mean", params={"num_samples": 200}, reference_branch="control"
        )
    )
    pairs = {(r.branch, r.comparison_to_branch) for r in rows if r.comparison}
    assert pairs == {("treatment", "control")}
