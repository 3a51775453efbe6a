"""Bootstrap means and population ratios (jetstream.statistics.means): widths, clipping and
the clip-uncertainty widening."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)
from tests.statistics.data import make_table, rows_by_key


def test_bootstrap_mean_non_default_width_and_clipping():
    t = make_table(3000, 3000)
    rows95, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 2000}))
    rows80, _ = summarise(
        SummaryRequest(
            t, "y", "bootstrap_mean", params={"num_samples": 2000, "confidence_interval": 0.8}
        )
    )
    d95 = rows_by_key(rows95)[("treatment", "difference", "control", None)]
    d80 = rows_by_key(rows80)[("treatment", "difference", "control", None)]
    assert d80.lower > d95.lower and d80.upper < d95.upper
    c = rows_by_key(rows95)[("control", None, None, None)]
    x = t["y"][:3000]
    clipped = np.minimum(x, np.quantile(x, 0.995))
    se = clipped.std() / np.sqrt(3000)
    assert c.point == pytest.approx(clipped.mean(), abs=0.1 * se)
    assert c.upper - c.lower == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_population_ratio_rows():
    t = make_table(2000, 2000)
    rows, errors = summarise(
        SummaryRequest(
            t,
            "ratio",
            "population_ratio",
            params={
                "numerator": "num",
                "denominator": "den",
                "num_samples": 2000,
                "drop_highest": 0.0,
            },
        )
    )
    assert errors == []
    c = rows_by_key(rows)[("control", None, None, None)]
    ratio = t["num"][:2000].sum() / t["den"][:2000].sum()
    assert c.lower < ratio < c.upper
    assert c.point == pytest.approx(ratio, rel=0.01)


def test_clip_uncertainty_delta_widens_bootstrap_intervals_to_the_sampling_sd():
    from jetstream.statistics.means import clip_variance_factor

    # Theory for X ~ lognormal(0, 1), p = 0.005: the influence function of the clipped mean
    # mean(min(X, Q(1 - p))) is c + (p / f(q)) 1{X > q} (+ const), c = min(X, q).
    p = 0.005
    lq = stats.norm.ppf(1 - p)
    q = np.exp(lq)
    ec = np.exp(0.5) * stats.norm.cdf(lq - 1) + q * p
    ec2 = np.exp(2.0) * stats.norm.cdf(lq - 2) + q * q * p
    var_c = ec2 - ec**2
    f = stats.norm.pdf(lq) / q
    var_u = var_c + (p / f) ** 2 * p * (1 - p) + 2 * (p / f) * p * (q - ec)
    theory = np.sqrt(var_u / var_c)
    rng = np.random.default_rng(4)
    factors = [clip_variance_factor(rng.lognormal(0, 1, 20000), p) for _ in range(100)]
    assert np.mean(factors) == pytest.approx(theory, rel=0.03)
    assert theory > 1.05
    assert clip_variance_factor(np.repeat([0.0, 1.0, 2.0], 1000), 0.005) == 1.0  # ties
    t = make_table(3000, 3000)
    plain, _ = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 2000}))
    wide, errors = summarise(
        SummaryRequest(
            t, "y", "bootstrap_mean", params={"num_samples": 2000, "clip_uncertainty": "delta"}
        )
    )
    assert errors == []
    for key, r in rows_by_key(plain).items():
        w = rows_by_key(wide)[key]
        if key[1] != "relative_uplift":  # scaling around the mean keeps the mean
            assert w.point == pytest.approx(r.point, rel=1e-9)
        assert w.upper - w.lower > r.upper - r.lower
    _, errors = summarise(
        SummaryRequest(t, "y", "bootstrap_mean", params={"clip_uncertainty": "bogus"})
    )
    assert errors and "clip_uncertainty" in errors[0].message
