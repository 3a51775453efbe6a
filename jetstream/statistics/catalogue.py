"""The statistics and pre-treatments, with their parameters: pure data, no numpy/scipy.

The one catalogue: the config validator (`jetstream.config.schema`) checks configs against
it, and the statistics registry (`jetstream.statistics.implementations`) takes each statistic's
parameter names and defaults from it, adding only the implementing function. A name
missing here is rejected by `validate-config` and by `summarise`. Resolved
StatisticSpec.params hold only the parameters a config sets; the defaults listed here are
the ones the statistics engine applies. tests/statistics/test_catalogue.py checks that
every statistic's parameters are exactly the ones its implementation reads.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

# Parameter kinds. "metric" is a string naming a metric (population_ratio numerator, ...);
# "table" is a TOML table checked by its own rules (covariate_adjustment).
INT = "int"
FLOAT = "float"
BOOL = "bool"
STR = "str"
METRIC = "metric"
TABLE = "table"
NUMBER_OR_CHOICE = "number_or_choice"  # a number, or one of the parameter's choices


@attrs.frozen
class Param:
    name: str
    kind: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    required: bool = False
    # Bounds of a number, inclusive unless the `*_exclusive` flag is set. Every number must
    # be finite (NaN and infinities are refused), whatever its bounds.
    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False
    maximum_exclusive: bool = False
    excluded: tuple[float, ...] = ()  # single values that are meaningless (log base 1)

    def check(self, value: Any) -> str | None:
        """None when `value` fits, else a short message."""
        ok: bool
        if self.kind == INT:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind == FLOAT:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif self.kind == BOOL:
            ok = isinstance(value, bool)
        elif self.kind in (STR, METRIC):
            ok = isinstance(value, str)
        elif self.kind == TABLE:
            ok = isinstance(value, dict)
        elif self.kind == NUMBER_OR_CHOICE:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return self.bounds(value)
            ok = isinstance(value, str)
        else:  # pragma: no cover - catalogue bug
            raise ValueError(self.kind)
        if not ok:
            expected = {
                INT: "an integer",
                FLOAT: "a number",
                BOOL: "true or false",
                STR: "a string",
                METRIC: "a metric name (string)",
                TABLE: "a table",
                NUMBER_OR_CHOICE: f"a number or one of {', '.join(map(repr, self.choices))}",
            }[self.kind]
            return f"must be {expected}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
        if self.kind in (INT, FLOAT):
            return self.bounds(value)
        return None

    def bounds(self, value: float) -> str | None:
        """None when the number `value` is finite and within this parameter's bounds."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.minimum_exclusive else value < low):
            return f"must be {'>' if self.minimum_exclusive else '>='} {low:g}, got {value!r}"
        if high is not None and (value >= high if self.maximum_exclusive else value > high):
            return f"must be {'<' if self.maximum_exclusive else '<='} {high:g}, got {value!r}"
        if value in self.excluded:
            return f"must not be {value!r}"
        return None


@attrs.frozen
class StatisticDef:
    name: str
    params: dict[str, Param] = attrs.field(factory=dict, hash=False)
    description: str = ""
    # Output label in the `statistic` column (the reference keeps historical labels).
    label: str = ""
    # The statistic reads the covariate named by `covariate_adjustment`.
    uses_covariate: bool = False
    # False when the metric's own column is not read (population_ratio reads two others).
    reads_metric_column: bool = True
    # False for per-branch-only statistics (no comparison rows, no reference needed).
    has_comparisons: bool = True

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params.values() if p.default is not None}


@attrs.frozen
class PreTreatmentDef:
    name: str
    params: dict[str, Param] = attrs.field(factory=dict, hash=False)
    description: str = ""


def _params(*ps: Param) -> dict[str, Param]:
    return {p.name: p for p in ps}


# Upper bounds of the sizes a config may ask for: each is far above any real config (the
# metric-hub corpus uses the defaults) and keeps memory and time of one statistic bounded.
MAX_SAMPLES = 100_000
MAX_BINS = 100_000
MAX_GRID_SIZE = 100_000
MAX_ADJUST = 100.0


def _ci() -> Param:
    return Param(
        "confidence_interval",
        FLOAT,
        0.95,
        minimum=0.0,
        maximum=1.0,
        minimum_exclusive=True,
        maximum_exclusive=True,
    )


def _drop(default: float | None = 0.005) -> Param:
    return Param("drop_highest", FLOAT, default, minimum=0.0, maximum=1.0, maximum_exclusive=True)


def _samples() -> Param:
    return Param("num_samples", INT, 10000, minimum=1, maximum=MAX_SAMPLES)


def _covariate() -> Param:
    return Param("covariate_adjustment", TABLE)


def _bins() -> Param:
    return Param("bins", INT, 1000, minimum=1, maximum=MAX_BINS)


def _grid_size() -> Param:
    return Param("grid_size", INT, 256, minimum=2, maximum=MAX_GRID_SIZE)


def _clip_uncertainty() -> Param:
    return Param("clip_uncertainty", STR, "ignore", choices=CLIP_UNCERTAINTY)


def _variance() -> Param:
    return Param("variance", STR, "pooled", choices=VARIANCES)


# Accepted by every pre-treatment, as in Jetstream (whose pre-treatments all carry it);
# only normalize_over_analysis_period uses it (default: the window's length in days).
PERIOD_LENGTH = "analysis_period_length"

BANDWIDTHS = ("normal_reference", "scott", "silverman", "scott_scaled", "silverman_scaled")
KERNELS = ("gau", "gaussian")  # the only kernel implemented
CLIP_UNCERTAINTY = ("ignore", "delta")
VARIANCES = ("pooled", "robust")

STATISTICS: dict[str, StatisticDef] = {
    s.name: s
    for s in (
        StatisticDef(
            "bootstrap_mean",
            _params(_samples(), _drop(), _ci(), _bins(), _clip_uncertainty()),
            "Bayesian bootstrap of the per-branch mean, clipped at the top.",
            label="mean",
        ),
        StatisticDef(
            "binomial",
            _params(_ci(), _samples()),
            "Beta-binomial proportion of a 0/1 metric (num_samples: comparison draws).",
            label="binomial",
        ),
        StatisticDef(
            "deciles",
            _params(_ci(), _samples()),
            "Bootstrapped deciles of the per-client distribution.",
            label="deciles",
        ),
        StatisticDef(
            "sequential_mean",
            _params(
                _ci(), _drop(), Param("tuning_clients", INT, 100_000, minimum=1, maximum=10**9)
            ),
            "Mean with always-valid (confidence-sequence) intervals, for daily or weekly "
            "looks: the normal-mixture boundary, narrowest at tuning_clients clients.",
            label="mean_sequential",
        ),
        StatisticDef(
            "linear_model_mean",
            _params(
                _drop(), _ci(), _covariate(), _variance(), Param("repeat_clipping", BOOL, True)
            ),
            "OLS mean difference, optionally adjusted for a pre-enrollment covariate.",
            label="mean_lm",
            uses_covariate=True,
        ),
        StatisticDef(
            "per_client_dau_impact",
            _params(_drop(0.0), _ci(), _covariate(), _variance()),
            "DAU impact: the linear model difference times the number of clients.",
            label="per_client_dau_impact",
            uses_covariate=True,
        ),
        StatisticDef(
            "population_ratio",
            _params(
                Param("numerator", METRIC, required=True),
                Param("denominator", METRIC, required=True),
                _samples(),
                _drop(),
                _ci(),
                _bins(),
                _clip_uncertainty(),
            ),
            "Ratio of per-branch means of two metrics, bootstrapped over clients.",
            label="population_ratio",
            reads_metric_column=False,
        ),
        StatisticDef("count", {}, "Number of clients per branch.", "count", has_comparisons=False),
        StatisticDef("sum", {}, "Sum of the metric per branch.", "sum", has_comparisons=False),
        StatisticDef(
            "kernel_density_estimate",
            _params(
                Param(
                    "bandwidth",
                    NUMBER_OR_CHOICE,
                    "scott",
                    choices=BANDWIDTHS,
                    minimum=0.0,
                    minimum_exclusive=True,
                ),
                Param(
                    "adjust", FLOAT, 1.0, minimum=0.0, maximum=MAX_ADJUST, minimum_exclusive=True
                ),
                Param("kernel", STR, "gau", choices=KERNELS),
                Param("log_space", BOOL, False),
                _grid_size(),
            ),
            "Gaussian kernel density estimate per branch.",
            label="kernel_density_estimate",
            has_comparisons=False,
        ),
        StatisticDef(
            "empirical_cdf",
            _params(Param("log_space", BOOL, False), _grid_size()),
            "Empirical CDF per branch on a grid.",
            label="empirical_cdf",
            has_comparisons=False,
        ),
    )
}

PRE_TREATMENTS: dict[str, PreTreatmentDef] = {
    p.name: p
    for p in (
        PreTreatmentDef("remove_nulls", {}, "Drop clients whose value is NULL."),
        PreTreatmentDef("remove_indefinites", {}, "Drop NULL, NaN and infinite values."),
        PreTreatmentDef(
            "censor_highest_values",
            _params(Param("fraction", FLOAT, 1 - 1e-5, minimum=0.0, maximum=1.0)),
            "Drop values at or above the pooled `fraction` quantile.",
        ),
        PreTreatmentDef(
            "censor_lowest_values",
            _params(Param("fraction", FLOAT, 1e-5, minimum=0.0, maximum=1.0)),
            "Drop values at or below the pooled `fraction` quantile.",
        ),
        PreTreatmentDef(
            "censor_values_below_threshold",
            _params(Param("threshold", FLOAT, required=True)),
            "Keep only values strictly above `threshold`.",
        ),
        PreTreatmentDef(
            "censor_values_above_threshold",
            _params(Param("threshold", FLOAT, required=True)),
            "Keep only values strictly below `threshold`.",
        ),
        PreTreatmentDef(
            "normalize_over_analysis_period",
            _params(Param(PERIOD_LENGTH, INT, None, minimum=1)),
            "Divide by the number of days in the analysis window.",
        ),
        PreTreatmentDef(
            "log",
            _params(Param("base", FLOAT, 10.0, minimum=0.0, minimum_exclusive=True, excluded=(1,))),
            "Logarithm (base 10 by default).",
        ),
        PreTreatmentDef("zero_fill", {}, "Replace NULL with 0."),
    )
}

# Keys of a `[metrics.<m>.statistics.<s>]` table that are not statistic parameters.
STATISTIC_TABLE_KEYS = ("pre_treatments",)
