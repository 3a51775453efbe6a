"""The normal-mixture confidence sequence against independent computations, and its
coverage under daily peeking in a small seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from jetstream.statistics import registry
from jetstream.statistics.base import StatisticInput
from jetstream.statistics.sequential import (
    always_valid_p,
    confidence_sequence,
    half_width,
    mixture_rho2,
    sequential_z,
)


def _mixture_martingale(s: float, t: float, rho2: float) -> float:
    """Integral over lambda ~ N(0, rho2) of exp(lambda s - lambda^2 t / 2) (sigma = 1),
    by quadrature: the e-process whose level 1/alpha defines the boundary."""

    def integrand(lam: float) -> float:
        return math.exp(lam * s - lam * lam * t / 2.0) * stats.norm.pdf(lam, 0, math.sqrt(rho2))

    value, _ = integrate.quad(integrand, -np.inf, np.inf)
    return value


@pytest.mark.parametrize("t,alpha,n_star", [(100, 0.05, 1000), (5000, 0.1, 2000), (37, 0.01, 37)])
def test_boundary_is_where_the_mixture_martingale_reaches_one_over_alpha(t, alpha, n_star):
    rho2 = float(mixture_rho2(n_star, alpha))
    # the boundary of the mean, times t, is the boundary of the sum S_t (sigma = 1)
    s = float(half_width(1.0, t, alpha, rho2)) * t
    assert _mixture_martingale(s, t, rho2) == pytest.approx(1.0 / alpha, rel=1e-6)


def test_closed_form_at_a_point():
    # Howard et al.'s parametrisation: |S_t| <= sqrt((t + r) log((t + r) / (r alpha^2))),
    # r = 1 / rho^2, for the sum of t unit-variance observations
    t, alpha, rho2 = 400.0, 0.05, 0.002
    r = 1.0 / rho2
    expected = math.sqrt((t + r) * math.log((t + r) / (r * alpha**2))) / t
    assert float(half_width(1.0, t, alpha, rho2)) == pytest.approx(expected, rel=1e-12)
    # V = sigma^2 / n: the multiplier of the standard error
    assert float(sequential_z(t, alpha, rho2)) == pytest.approx(expected * math.sqrt(t))


def test_tuning_makes_the_boundary_narrowest_near_n_star():
    n = np.geomspace(100, 1e6, 201)
    z = sequential_z(n, 0.05, mixture_rho2(10_000, 0.05))
    assert np.all(np.isfinite(z)) and np.all(np.diff(z / np.sqrt(n)) < 0)
    # at n_star the tuned rho is (to the approximation's accuracy) the best one
    rho2 = float(mixture_rho2(10_000, 0.05))
    grid = rho2 * np.geomspace(0.2, 5, 401)
    best = grid[np.argmin(sequential_z(10_000, 0.05, grid))]
    assert best == pytest.approx(rho2, rel=0.1)
    assert float(sequential_z(10_000, 0.05, rho2)) > stats.norm.ppf(0.975)


def test_always_valid_p_is_the_level_at_which_the_sequence_excludes_zero():
    e, v, n = 0.031, 1e-4, 4000
    p = float(always_valid_p(e, v, n, 0.05, 2000))
    assert 0 < p < 1
    lo, hi = confidence_sequence(e, v, n, 0.05, 2000)
    # using the same rho (tuned at 0.05), the sequence at level p touches zero
    rho2 = mixture_rho2(2000, 0.05)
    assert float(math.sqrt(v) * sequential_z(n, p, rho2)) == pytest.approx(e, rel=1e-9)
    assert float(always_valid_p(0.0, v, n)) == 1.0
    assert lo < e < hi


def test_vectorised():
    lo, hi = confidence_sequence(np.zeros(3), np.ones(3), [10, 100, 1000], 0.05, 100)
    assert lo.shape == (3,) and np.all(hi > 0) and hi[0] > hi[1]


def _peeking(sequential: bool, runs: int, seed: int) -> float:
    """Share of experiments whose difference interval covers the true effect at every one
    of 28 daily looks at the cumulative data (two branches, 100 new clients a day each)."""
    rng = np.random.default_rng(seed)
    days, per_day, effect = 28, 100, 0.3
    t = rng.normal(effect, 2.0, (runs, days * per_day))
    c = rng.normal(0.0, 1.5, (runs, days * per_day))
    ns = per_day * np.arange(1, days + 1)
    ok = np.ones(runs, dtype=bool)
    for n in ns:
        diff = t[:, :n].mean(1) - c[:, :n].mean(1)
        v = t[:, :n].var(1, ddof=1) / n + c[:, :n].var(1, ddof=1) / n
        if sequential:
            lo, hi = confidence_sequence(diff, v, 2 * n, 0.05, 2 * days * per_day)
        else:
            w = 1.959964 * np.sqrt(v)
            lo, hi = diff - w, diff + w
        ok &= (lo <= effect) & (effect <= hi)
    return float(ok.mean())


def test_coverage_under_daily_peeking_beats_the_fixed_horizon_interval():
    sequential = _peeking(True, 400, 11)
    fixed = _peeking(False, 400, 11)
    assert sequential >= 0.95
    assert fixed < 0.90  # peeking at a 95% interval 28 times
    assert sequential - fixed > 0.08


def test_sequential_mean_statistic():
    rng = np.random.default_rng(5)
    values = {"control": rng.normal(10, 2, 3000), "treatment": rng.normal(10.5, 2, 3000)}
    spec = registry["sequential_mean"]
    params = spec.resolve_params({"drop_highest": 0.0, "tuning_clients": 6000})
    inp = StatisticInput(
        metric="m",
        values=values,
        branches=("control", "treatment"),
        references=("control",),
        params=params,
    )
    out = spec.function(inp)
    assert out.errors == []
    rows = {(r.branch, r.comparison): r for r in out.rows}
    diff = rows[("treatment", "difference")]
    m_t, m_c = values["treatment"].mean(), values["control"].mean()
    v = values["treatment"].var(ddof=1) / 3000 + values["control"].var(ddof=1) / 3000
    assert diff.point == pytest.approx(m_t - m_c)
    lo, hi = confidence_sequence(m_t - m_c, v, 6000, 0.05, 6000)
    assert (diff.lower, diff.upper) == pytest.approx((float(lo), float(hi)))
    # wider than the fixed-horizon interval
    assert diff.upper - diff.lower > 2 * 1.96 * math.sqrt(v)
    uplift = rows[("treatment", "relative_uplift")]
    assert uplift.point == pytest.approx(m_t / m_c - 1)
    assert uplift.p_value == diff.p_value < 1e-6
    assert rows[("control", None)].statistic == "mean_sequential"


def test_sequential_mean_warns_for_a_nonpositive_reference():
    spec = registry["sequential_mean"]
    inp = StatisticInput(
        metric="m",
        values={"c": np.array([-1.0, 0.0, -2.0]), "t": np.array([1.0, 2.0, 0.5])},
        branches=("c", "t"),
        references=("c",),
        params=spec.resolve_params({"drop_highest": 0.0}),
    )
    out = spec.function(inp)
    assert [e.level for e in out.errors] == ["warning"]
    assert {r.comparison for r in out.rows} == {None, "difference"}
