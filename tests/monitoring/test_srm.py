"""The sequential SRM statistic against direct computations, and the health document."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats

from jetstream.monitoring.health import enrollment_open, health_document, is_live
from jetstream.monitoring.srm import detections, log_e_values, srm_test
from tests.monitoring.test_data import D, experiments


def direct_log_e(counts, ratios, k):
    """M = integral over p ~ Dirichlet(k * pi) of prod p_i^x_i, divided by prod pi_i^x_i,
    written out with math.lgamma."""
    pi = [r / sum(ratios) for r in ratios]
    a = [k * p for p in pi]
    n = sum(counts)
    log_mix = (math.lgamma(k) - math.lgamma(k + n)
               + sum(math.lgamma(ai + x) - math.lgamma(ai) for ai, x in zip(a, counts, strict=True)))  # fmt: skip
    return log_mix - sum(x * math.log(p) for x, p in zip(counts, pi, strict=True))


@pytest.mark.parametrize(
    "counts,ratios,k",
    [
        ([510, 490], [1, 1], 10_000.0),
        ([5, 0], [1, 1], 2.0),
        ([1200, 1100, 2500], [1, 1, 2], 500.0),
        ([0, 0, 0], [1, 2, 3], 100.0),
        ([50_500, 49_500], [0.5, 0.5], 10_000.0),
    ],
)
def test_log_e_value_equals_direct_computation(counts, ratios, k):
    got = float(log_e_values(counts, ratios, k))
    assert got == pytest.approx(direct_log_e(counts, ratios, k), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("counts", [[7, 3], [40, 25, 35], [0, 4, 1]])
def test_e_value_is_the_dirichlet_multinomial_to_multinomial_ratio(counts):
    # The multinomial coefficient cancels: the ratio of the two pmfs is M itself.
    ratios = [1.0, 2.0, 1.0][: len(counts)]
    pi = np.array(ratios) / sum(ratios)
    k = 12.0
    n = sum(counts)
    ratio = stats.dirichlet_multinomial.pmf(counts, k * pi, n) / stats.multinomial.pmf(
        counts, n, pi
    )
    assert math.exp(float(log_e_values(counts, ratios, k))) == pytest.approx(ratio, rel=1e-9)


def test_srm_test_running_maximum_and_p_value():
    looks = np.array([[10, 0], [20, 0], [20, 30], [200, 200]])
    result = srm_test(looks, [1, 1], alpha=0.01, concentration=4.0)
    logs = [direct_log_e(list(r), [1, 1], 4.0) for r in looks]
    assert result.log_e_value == pytest.approx(logs[-1])
    assert result.max_log_e_value == pytest.approx(max(0.0, *logs))
    assert result.p_value == pytest.approx(min(1.0, math.exp(-max(logs))))
    assert result.mismatch == bool(max(logs) >= math.log(100))
    first = next(i for i, v in enumerate(logs) if v >= math.log(100))
    assert result.first_detected == first
    # The alarm stays raised after the evidence fades (anytime validity: the first
    # crossing decides).
    assert logs[-1] < math.log(100) and result.mismatch
    assert result.counts == (200, 200) and result.observed_shares == (0.5, 0.5)


def test_srm_test_without_data_and_bad_input():
    empty = srm_test(np.zeros((0, 2)), [1, 1])
    assert empty.p_value == 1.0 and not empty.mismatch and empty.total == 0
    with pytest.raises(ValueError, match="positive"):
        srm_test([[1, 2]], [1, 0])
    with pytest.raises(ValueError, match="at least two"):
        log_e_values([3], [1])
    with pytest.raises(ValueError, match="decrease"):
        srm_test([[5, 5], [4, 6]], [1, 1])
    with pytest.raises(ValueError, match="branches"):
        log_e_values([1, 2, 3], [1, 1])


def test_detections_vectorised_over_runs():
    rng = np.random.default_rng(3)
    balanced = rng.binomial(1000, 0.5, size=(200, 50)).cumsum(axis=1)
    skewed = rng.binomial(1000, 0.6, size=(200, 50)).cumsum(axis=1)
    n = np.arange(1, 51) * 1000

    def as_counts(x):
        return np.stack([x, n - x], axis=-1)

    assert detections(as_counts(skewed), [1, 1]).mean() == 1.0
    assert detections(as_counts(balanced), [1, 1]).mean() <= 0.05
    one = as_counts(skewed)[0]
    assert detections(one[None], [1, 1])[0] == srm_test(one, [1, 1]).mismatch


# -- health ---------------------------------------------------------------------------------


def test_health_flags_a_mismatch_and_reports_shares():
    exp = experiments()[0]  # control / treatment, 1:1
    at = D + dt.timedelta(hours=12)
    rows = [("control", D + dt.timedelta(minutes=5 * i), 60) for i in range(100)]
    rows += [("treatment", D + dt.timedelta(minutes=5 * i), 40) for i in range(100)]
    rows.append(("mystery", D, 3))
    doc = health_document(exp, at, rows, recent_enrollments=12)
    assert doc["srm"]["mismatch"] and not doc["ok"]
    assert doc["srm"]["enrolled_clients"] == {"control": 6000, "treatment": 4000}
    assert doc["srm"]["unknown_branch_clients"] == 3
    assert doc["srm"]["first_detected_window"].startswith("2026-03-01T0")
    assert doc["srm"]["looks"] == 144
    balanced = [(b, w, 50) for b, w, _ in rows if b != "mystery"]
    ok = health_document(exp, at, balanced, recent_enrollments=12)
    assert ok["ok"] and not ok["srm"]["mismatch"] and ok["srm"]["p_value"] == 1.0


def test_no_enrollment_flag_only_while_enrollment_is_open():
    at = D + dt.timedelta(hours=12)
    open_exp = experiments()[0]
    paused_exp = experiments(paused=True)[0]
    assert health_document(open_exp, at, [], 0)["no_recent_enrollments"]["flag"]
    assert not health_document(open_exp, at, [], 5)["no_recent_enrollments"]["flag"]
    assert not health_document(paused_exp, at, [], 0)["no_recent_enrollments"]["flag"]
    ended = open_exp.__class__(**{**_fields(open_exp), "enrollment_end_date": D.date()})
    later = D + dt.timedelta(days=2)
    assert is_live(ended, later) and not enrollment_open(ended, later)
    assert not health_document(ended, later, [], 0)["no_recent_enrollments"]["flag"]
    assert not is_live(open_exp, D - dt.timedelta(days=1))


def _fields(exp):
    import attrs

    return attrs.asdict(exp, recurse=False)
