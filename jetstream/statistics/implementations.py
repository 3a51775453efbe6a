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
        """Defaults overlaid with `params`, each checked against the catalogue. Raises
        ValueError naming the problem."""
        params = dict(params or {})
        defaults = self.defaults
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(defaults)}")
        merged = {**defaults, **params}
        missing = sorted(k for k, v in merged.items() if v is REQUIRED)
        if missing:
            raise ValueError(f"missing required parameter(s) {missing}")
        # The catalogue's rules, as the config validator applies them (finite, bounded).
        problems = [
            f"{k} {msg}"
            for k, v in params.items()
            if v is not REQUIRED and (msg := self.definition.params[k].check(v))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return merged


registry: dict[str, StatisticSpec] = {
    name: StatisticSpec(definition, IMPLEMENTATIONS[name])
    for name, definition in STATISTICS.items()
}
