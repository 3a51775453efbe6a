"""The statistic registry (jetstream.statistics.implementations): names and defaults."""

from __future__ import annotations

from jetstream.statistics import (
    registry,
)


def test_registry_names_and_defaults():
    assert set(registry) == {
        "bootstrap_mean",
        "binomial",
        "deciles",
        "linear_model_mean",
        "per_client_dau_impact",
        "population_ratio",
        "count",
        "sum",
        "kernel_density_estimate",
        "empirical_cdf",
        "sequential_mean",
    }
    d = registry["bootstrap_mean"].defaults
    assert (d["num_samples"], d["drop_highest"], d["confidence_interval"]) == (10000, 0.005, 0.95)
    assert registry["empirical_cdf"].defaults == {"log_space": False, "grid_size": 256}
