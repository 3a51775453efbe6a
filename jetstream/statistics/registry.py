"""The statistics by name, with their default parameters (the names and defaults that
metric-hub configs use)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from jetstream.statistics.base import Outcome, StatisticInput
from jetstream.statistics.binomial import binomial
from jetstream.statistics.deciles import deciles
from jetstream.statistics.distributions import empirical_cdf, kernel_density_estimate
from jetstream.statistics.linear_models import linear_model_mean, per_client_dau_impact
from jetstream.statistics.means import bootstrap_mean, population_ratio
from jetstream.statistics.totals import count, total

REQUIRED = object()  # marks a parameter without default


@attrs.frozen
class StatisticSpec:
    name: str
    function: Callable[[StatisticInput], Outcome]
    defaults: Mapping[str, Any]
    # Output label in the `statistic` column (the reference keeps historical labels).
    label: str
    uses_covariate: bool = False
    reads_metric_column: bool = True
    has_comparisons: bool = True

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with `params`. Raises ValueError naming the problem."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(self.defaults)}")
        merged = {**self.defaults, **params}
        missing = sorted(k for k, v in merged.items() if v is REQUIRED)
        if missing:
            raise ValueError(f"missing required parameter(s) {missing}")
        ci = merged.get("confidence_interval")
        if ci is not None and not (0.0 < float(ci) < 1.0):
            raise ValueError(f"confidence_interval must be in (0, 1), not {ci!r}")
        ns = merged.get("num_samples")
        if ns is not None and int(ns) < 1:
            raise ValueError(f"num_samples must be at least 1, not {ns!r}")
        dh = merged.get("drop_highest")
        if dh is not None and not (0.0 <= float(dh) < 1.0):
            raise ValueError(f"drop_highest must be in [0, 1), not {dh!r}")
        gs = merged.get("grid_size")
        if gs is not None and int(gs) < 2:
            raise ValueError(f"grid_size must be at least 2, not {gs!r}")
        return merged


_CI = {"confidence_interval": 0.95}
_MODEL = {**_CI, "covariate_adjustment": None, "variance": "pooled"}

registry: dict[str, StatisticSpec] = {
    spec.name: spec
    for spec in (
        StatisticSpec(
            "bootstrap_mean",
            bootstrap_mean,
            {
                "num_samples": 10000,
                "drop_highest": 0.005,
                **_CI,
                "bins": 1000,
                "clip_uncertainty": "ignore",
            },
            "mean",
        ),
        StatisticSpec("binomial", binomial, {**_CI, "num_samples": 10000}, "binomial"),
        StatisticSpec("deciles", deciles, {**_CI, "num_samples": 10000}, "deciles"),
        StatisticSpec(
            "linear_model_mean",
            linear_model_mean,
            {"drop_highest": 0.005, **_MODEL, "repeat_clipping": True},
            "mean_lm",
            uses_covariate=True,
        ),
        StatisticSpec(
            "per_client_dau_impact",
            per_client_dau_impact,
            dict(_MODEL),
            "per_client_dau_impact",
            uses_covariate=True,
        ),
        StatisticSpec(
            "population_ratio",
            population_ratio,
            {
                "numerator": REQUIRED,
                "denominator": REQUIRED,
                "num_samples": 10000,
                "drop_highest": 0.005,
                **_CI,
                "bins": 1000,
                "clip_uncertainty": "ignore",
            },
            "population_ratio",
            reads_metric_column=False,
        ),
        StatisticSpec("count", count, {}, "count", has_comparisons=False),
        StatisticSpec("sum", total, {}, "sum", has_comparisons=False),
        StatisticSpec(
            "kernel_density_estimate",
            kernel_density_estimate,
            {
                "bandwidth": "scott",
                "adjust": 1.0,
                "kernel": "gau",
                "grid_size": 256,
                "log_space": False,
            },
            "kernel_density_estimate",
            has_comparisons=False,
        ),
        StatisticSpec(
            "empirical_cdf",
            empirical_cdf,
            {"log_space": False, "grid_size": 256},
            "empirical_cdf",
            has_comparisons=False,
        ),
    )
}
