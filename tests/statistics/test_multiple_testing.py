"""Multiple-testing adjustment (jetstream.statistics.multiple_testing) against statsmodels."""

from __future__ import annotations

import attrs
import pytest

from jetstream.statistics import (
    StatisticRow,
    adjust_p_values,
)


def _family(ps):
    return [
        StatisticRow(
            metric=f"m{i}",
            statistic="mean",
            branch="t",
            comparison="difference",
            comparison_to_branch="c",
            p_value=p,
            segment="all",
            analysis_basis="enrollments",
            window_index="1",
        )
        for i, p in enumerate(ps)
    ]


@pytest.mark.parametrize("method,sm_method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_p_values_matches_statsmodels(method, sm_method):
    from statsmodels.stats.multitest import multipletests

    ps = [0.001, 0.01, 0.02, 0.03, 0.04, 0.2, 0.5, 0.011, 0.9, 0.0001]
    out = adjust_p_values(_family(ps), method)
    expected = multipletests(ps, method=sm_method)[1]
    assert [r.p_value_adjusted for r in out] == pytest.approx(expected, rel=1e-12)


def test_adjust_p_values_families_and_both_directions():
    a = _family([0.01, 0.04])
    other_segment = [attrs.evolve(r, segment="new_users") for r in _family([0.01])]
    mirrored = attrs.evolve(a[0], branch="c", comparison_to_branch="t", p_value=0.012)
    branch_row = StatisticRow(metric="m0", statistic="mean", branch="t", point=1.0)
    out = adjust_p_values(a + other_segment + [mirrored, branch_row], "holm")
    # family {m0 (0.012, both directions), m1 (0.04)}: holm -> 0.024, 0.04
    assert out[0].p_value_adjusted == pytest.approx(0.024)
    assert out[3].p_value_adjusted == pytest.approx(0.024)
    assert out[1].p_value_adjusted == pytest.approx(0.04)
    assert out[2].p_value_adjusted == pytest.approx(0.01)  # its own family
    assert out[4].p_value_adjusted is None
    assert [r.p_value_adjusted for r in adjust_p_values(a, "none")] == [0.01, 0.04]
    with pytest.raises(ValueError, match="holm"):
        adjust_p_values(a, "bonferroni")
