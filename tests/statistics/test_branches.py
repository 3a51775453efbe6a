"""Branch rows (jetstream.statistics.branches): codes, labels and the branch column give the
same results."""

from __future__ import annotations

import numpy as np
import pytest

from jetstream.statistics import (
    BranchRows,
    SummaryRequest,
    registry,
    summarise,
)


def _three_branch_table(n: int = 3000, seed: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 3, n)
    pre = rng.lognormal(0, 1, n)
    pre[rng.random(n) < 0.05] = np.nan
    return {
        "branch": np.array(["b", "a", "extra"], dtype=object)[code],
        "y": rng.lognormal(0, 1, n) * (1 + 0.1 * code),
        "pre": pre,
        "conv": (rng.random(n) < 0.3).astype(float),
        "num": rng.poisson(1.0, n).astype(float),
        "den": rng.poisson(10.0, n).astype(float) + 1,
    }


@pytest.mark.parametrize("statistic", sorted(registry))
def test_branch_codes_and_branch_rows_give_the_same_rows_as_the_branch_column(statistic):
    t = _three_branch_table()
    params = {"numerator": "num", "denominator": "den"} if statistic == "population_ratio" else {}
    if "num_samples" in registry[statistic].defaults:
        params["num_samples"] = 300
    metric = "conv" if statistic == "binomial" else "y"
    kw = dict(params=params, covariate="pre", branches=["a", "b", "ghost"], seed=3)
    expected = summarise(SummaryRequest(t, metric, statistic, **kw))
    names = ["extra", "b", "a", "unused"]
    codes = np.array([names.index(b) for b in t.pop("branch")], dtype=np.int8)
    assert (
        summarise(SummaryRequest(t, metric, statistic, branch_codes=(codes, names), **kw))
        == expected
    )
    rows = BranchRows.from_codes(codes, names)
    assert summarise(SummaryRequest(t, metric, statistic, branch_codes=rows, **kw)) == expected


def test_branch_rows_from_codes_and_labels():
    labels = np.array(["t", "c", None, "t", "x", np.nan, "c"], dtype=object)
    by_labels = BranchRows.from_labels(labels, expected=["c", "missing"])
    assert by_labels.names == ("t", "c", "x")
    assert [r.tolist() for r in by_labels.rows] == [[0, 3], [1, 6], [4]]
    assert by_labels.of("missing") is None and by_labels.size == 7
    by_codes = BranchRows.from_codes(np.array([2, 0, -1, 2, 1, -1, 0]), ["c", "x", "t"])
    assert by_codes.names == by_labels.names
    assert all(np.array_equal(a, b) for a, b in zip(by_codes.rows, by_labels.rows, strict=True))
    with pytest.raises(ValueError, match="no name"):
        BranchRows.from_codes(np.array([0, 3]), ["a", "b"])
    with pytest.raises(ValueError, match="integer"):
        BranchRows.from_codes(np.array([0.0, 1.0]), ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        BranchRows.from_codes(np.array([0, 1]), ["a", "a"])


def test_branch_codes_of_the_wrong_length_are_an_error():
    t = _three_branch_table(100)
    rows, errors = summarise(
        SummaryRequest(t, "y", "count", branch_codes=(np.zeros(99, dtype=int), ["a"]))
    )
    assert rows == [] and "99 rows" in errors[0].message
    rows, errors = summarise(SummaryRequest(t, "y", "count", branch_codes=(np.full(100, 5), ["a"])))
    assert rows == [] and errors[0].message.startswith("branch_codes:")
