"""Resampling (jetstream.statistics.resampling): binned and exact Bayesian bootstraps, adaptive
bins and gamma weights agree with their exact counterparts."""

from __future__ import annotations

import numpy as np
import pytest

from jetstream.statistics.resampling import (
    MIN_BINS,
    adaptive_bins,
    bayesian_bootstrap_means,
    bootstrap_ratio_of_means,
    exact_bayesian_bootstrap_means,
    gamma_weights,
)


def test_binned_bayesian_bootstrap_matches_exact_distribution():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 1.2, 10000)
    fast = bayesian_bootstrap_means(x, 10000, np.random.default_rng(1), bins=200)
    exact = exact_bayesian_bootstrap_means(x, 3000, np.random.default_rng(2))
    sd = exact.std()
    # bands of shared/reference/README.md in SDs: point 2.8% and bounds 5.7% of a 95% CI
    # width (3.92 SD) are 0.11 and 0.22 SD.
    assert fast.mean() == pytest.approx(exact.mean(), abs=0.11 * sd)
    assert fast.std() == pytest.approx(sd, rel=0.05)
    for q in (0.025, 0.975):
        assert np.quantile(fast, q) == pytest.approx(np.quantile(exact, q), abs=0.22 * sd)
    # theory: sd of the Dirichlet-weighted mean = population sd / sqrt(n + 1)
    assert sd == pytest.approx(x.std() / np.sqrt(x.size + 1), rel=0.05)
    assert fast.std() == pytest.approx(x.std() / np.sqrt(x.size + 1), rel=0.03)


def test_bayesian_bootstrap_groups_equal_values_exactly():
    x = np.array([0.0] * 500 + [1.0] * 500 + [5.0] * 100)
    draws = bayesian_bootstrap_means(x, 5000, np.random.default_rng(0), bins=10)
    assert draws.std() == pytest.approx(x.std() / np.sqrt(x.size + 1), rel=0.05)
    assert draws.min() >= 0 and draws.max() <= 5


def test_ratio_bootstrap_binned_matches_delta_method():
    rng = np.random.default_rng(5)
    den = rng.gamma(2.0, 5.0, 20000)
    num = den * 0.1 * rng.lognormal(0, 0.5, 20000)
    draws = bootstrap_ratio_of_means(num, den, 4000, np.random.default_rng(1), bins=300)
    r = num.sum() / den.sum()
    z = (num - r * den) / den.mean()
    se = z.std() / np.sqrt(z.size)
    assert draws.mean() == pytest.approx(r, abs=0.1 * se)
    assert draws.std() == pytest.approx(se, rel=0.06)
    grouped = bootstrap_ratio_of_means(
        np.round(num), np.round(den), 4000, np.random.default_rng(1), bins=100000
    )
    rr = np.round(num).sum() / np.round(den).sum()
    assert grouped.mean() == pytest.approx(rr, abs=0.1 * se)


def test_adaptive_bins_meet_their_bound_and_refine_only_the_tails():
    rng = np.random.default_rng(6)
    big = np.sort(rng.normal(10, 2, 200_000))
    starts, counts, _, _ = adaptive_bins(big, 1000, 2.0, 6.0)
    assert starts.size == MIN_BINS  # a large near-normal sample needs no refinement
    small = np.sort(rng.pareto(1.5, 3000))
    starts, counts, means, var = adaptive_bins(small, 1000, 2.0, 6.0)
    assert MIN_BINS < starts.size <= 1000 and counts.sum() == small.size
    assert counts[-1] < counts[counts.size // 2]  # the heavy tail is cut finer
    # the bins' counts, means and variances are exact
    edges = np.append(starts, small.size)
    for i in (0, counts.size // 2, counts.size - 1):
        part = small[edges[i] : edges[i + 1]]
        assert counts[i] == part.size
        assert means[i] == pytest.approx(part.mean()) and var[i] == pytest.approx(part.var())


def test_gamma_weights_mix_exponential_wilson_hilferty_and_gamma_columns():
    counts = np.array([1.0, 5.0, 150.0, 1.0, 2000.0])
    g = gamma_weights(counts, 40000, np.random.default_rng(0))
    assert g.shape == (40000, 5)
    assert g.mean(axis=0) == pytest.approx(counts, rel=0.02)
    assert g.var(axis=0) == pytest.approx(counts, rel=0.05)
    again = gamma_weights(counts, 40000, np.random.default_rng(0))
    assert np.array_equal(g, again)


def test_heavy_tailed_small_sample_bootstrap_keeps_the_exact_skewness():
    x = np.random.default_rng(9).pareto(1.5, 2000)
    fast = bayesian_bootstrap_means(x, 20000, np.random.default_rng(1))
    exact = exact_bayesian_bootstrap_means(x, 20000, np.random.default_rng(2))

    def skew(d):
        return float(((d - d.mean()) ** 3).mean() / d.std() ** 3)

    assert skew(exact) > 0.5  # a case where a normal approximation would be visibly off
    assert skew(fast) == pytest.approx(skew(exact), abs=0.15)
    sd = exact.std()
    for q in (0.005, 0.025, 0.975, 0.995):
        assert np.quantile(fast, q) == pytest.approx(np.quantile(exact, q), abs=0.15 * sd)
