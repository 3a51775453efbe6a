"""The statistics by name: each catalogue entry (`jetstream.statistics.catalogue`, the
names, parameters and defaults that metric-hub configs use) with its implementation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from jetstream.statistics.base import Outcome, StatisticInput
from jetstream.statistics.binomial import binomial
from jetstream.statistics.catalogue import STATISTICS, StatisticDef
from jetstream.statistics.deciles import deciles
from jetstream.statistics.distributions import empirical_cdf, kernel_density_estimate
from jetstream.statistics.linear_models import linear_model_mean, per_client_dau_impact
from jetstream.statistics.means import bootstrap_mean, population_ratio
from jetstream.statistics.sequential_mean import sequential_mean
from jetstream.statistics.totals import count, total

REQUIRED = object()  # marks a parameter without default

StatisticFn = Callable[[StatisticInput], Outcome]

IMPLEMENTATIONS: dict[str, StatisticFn] = {
    "bootstrap_mean": bootstrap_mean,
    "binomial": binomial,
    "deciles": deciles,
    "linear_model_mean": linear_model_mean,
    "per_client_dau_impact": per_client_dau_impact,
    "population_ratio": population_ratio,
    "sequential_mean": sequential_mean,
    "count": count,
    "sum": total,
    "kernel_density_estimate": kernel_density_estimate,
    "empirical_cdf": empirical_cdf,
}


@attrs.frozen
class StatisticSpec:
    definition: StatisticDef
    function: StatisticFn

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def label(self) -> str:
        return self.definition.label

    @property
    def uses_covariate(self) -> bool:
        return self.definition.uses_covariate

    @property
    def reads_metric_column(self) -> bool:
        return self.definition.reads_metric_column

    @property
    def has_comparisons(self) -> bool:
        return self.definition.has_comparisons

    @property
    def defaults(self) -> dict[str, Any]:
        """Every parameter with its default (REQUIRED when it has none)."""
        return {
            p.name: REQUIRED if p.required else p.default for p in self.definition.params.values()
        }

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with `params`. Raises ValueError naming the problem."""
        params = dict(params or {})
        defaults = self.defaults
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(defaults)}")
        merged = {**defaults, **params}
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


registry: dict[str, StatisticSpec] = {
    name: StatisticSpec(definition, IMPLEMENTATIONS[name])
    for name, definition in STATISTICS.items()
}
