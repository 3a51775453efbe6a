"""Distributions (jetstream.statistics.distributions): KDE against scipy, empirical CDF grids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)


def test_kde_default_bandwidth_is_raw_scott_and_scaled_matches_scipy():
    rng = np.random.default_rng(2)
    x = rng.normal(10, 3, 500)
    t = {"branch": np.array(["a"] * 500, dtype=object), "x": x}
    rows, _ = summarise(SummaryRequest(t, "x", "kernel_density_estimate", params={"grid_size": 16}))
    grid = np.linspace(x.min(), x.max(), 16)
    h = 500 ** (-1 / 5)
    hand = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / h) ** 2).sum(1) / (
        500 * h * np.sqrt(2 * np.pi)
    )
    assert [r.point for r in rows] == pytest.approx(hand, rel=1e-10)
    assert [r.parameter for r in rows] == [str(round(g, 6)) for g in grid]
    rows, _ = summarise(
        SummaryRequest(
            t, "x", "kernel_density_estimate", params={"grid_size": 16, "bandwidth": "scott_scaled"}
        )
    )
    assert [r.point for r in rows] == pytest.approx(stats.gaussian_kde(x, "scott")(grid), rel=1e-9)
    rows, _ = summarise(
        SummaryRequest(
            t,
            "x",
            "kernel_density_estimate",
            params={"grid_size": 16, "bandwidth": "silverman_scaled"},
        )
    )
    assert [r.point for r in rows] == pytest.approx(
        stats.gaussian_kde(x, "silverman")(grid), rel=1e-9
    )


def test_empirical_cdf_log_space_grid_with_zero():
    x = np.array([0.0, 0.0, 1.0, 2.0, 4.0, 4.0, 8.0, 10.0])
    t = {"branch": np.array(["a"] * 8, dtype=object), "x": x}
    rows, _ = summarise(
        SummaryRequest(t, "x", "empirical_cdf", params={"log_space": True, "grid_size": 4})
    )
    grid = np.geomspace(1.0, 10.0, 4)
    assert [r.parameter for r in rows] == ["0.0"] + [str(round(g, 6)) for g in grid]
    assert [r.point for r in rows] == [2 / 8] + [np.mean(x <= g) for g in grid]
    rows, errors = summarise(
        SummaryRequest(
            {"branch": t["branch"], "x": x - 5},
            "x",
            "empirical_cdf",
            params={"log_space": True, "grid_size": 4},
        )
    )
    assert len(rows) == 4 and errors[0].level == "warning"
