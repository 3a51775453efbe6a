"""Families of `adjust_p_values`: one hypothesis per (metric, treatment vs reference,
window) on the primary statistic; other statistics and treatment-vs-treatment pairs in
families of their own."""

from __future__ import annotations

import numpy as np
import pytest

from jetstream.statistics.multiple_testing import (
    adjust_p_values,
    family_sizes,
    holm,
    primary_statistics,
)
from jetstream.statistics.rows import StatisticRow


def _row(metric, statistic, p, branch="t", ref="c", comparison="difference", **kw):
    base = dict(
        metric=metric,
        statistic=statistic,
        branch=branch,
        comparison=comparison,
        comparison_to_branch=ref,
        p_value=p,
        segment="all",
        analysis_basis="enrollments",
        window_index="1",
    )
    return StatisticRow(**{**base, **kw})


def test_difference_and_uplift_are_one_hypothesis_and_deciles_their_own_family():
    rows = [
        _row("m1", "mean", 0.01),
        _row("m1", "mean", 0.011, comparison="relative_uplift"),
        _row("m2", "mean", 0.03),
        _row("m2", "mean", 0.03, comparison="relative_uplift"),
        *[_row("m1", "deciles", 0.001 * (i + 1), parameter=f"0.{i + 1}") for i in range(9)],
    ]
    out = adjust_p_values(rows, "holm", reference="c")
    # primary family {m1: 0.011, m2: 0.03}: holm 0.022, 0.03
    assert [r.p_value_adjusted for r in out[:4]] == pytest.approx([0.022, 0.022, 0.03, 0.03])
    deciles = np.array([0.001 * (i + 1) for i in range(9)])
    assert [r.p_value_adjusted for r in out[4:]] == pytest.approx(holm(deciles))
    sizes = family_sizes(rows, reference="c")
    assert sizes[("enrollments", "all", "primary")] == 2
    assert sizes[("enrollments", "all", "statistic", "deciles")] == 9


def test_windows_are_hypotheses_of_one_family_and_between_treatment_pairs_apart():
    rows = [
        _row("m", "binomial", 0.01, window_index="1"),
        _row("m", "binomial", 0.02, window_index="2"),
        _row("m", "binomial", 0.04, branch="t2", window_index="1"),
        _row("m", "binomial", 0.001, branch="t2", ref="t", window_index="1"),
        _row("m", "mean", 0.0001),  # a second statistic of m: not primary
    ]
    out = adjust_p_values(rows, "holm", reference="c")
    # primary family (binomial preferred): 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04
    assert [r.p_value_adjusted for r in out[:3]] == pytest.approx([0.03, 0.04, 0.04])
    assert out[3].p_value_adjusted == pytest.approx(0.001)  # alone in its family
    assert out[4].p_value_adjusted == pytest.approx(0.0001)
    assert primary_statistics(rows) == {"m": "binomial"}
    # overriding the primary statistic
    out = adjust_p_values(rows, "holm", reference="c", primary={"m": "mean"})
    assert out[4].p_value_adjusted == pytest.approx(0.0001)
    assert out[0].p_value_adjusted == pytest.approx(0.03)  # binomial: its own family of 3


def test_without_a_reference_every_pair_is_in_the_primary_family():
    rows = [_row("m", "mean", 0.01), _row("m", "mean", 0.02, branch="t2", ref="t")]
    out = adjust_p_values(rows, "bh")
    assert [r.p_value_adjusted for r in out] == pytest.approx([0.02, 0.02])
