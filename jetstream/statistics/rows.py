"""Value objects returned by the statistics: one `StatisticRow` per published number, one
`StatisticError` per problem. Error texts are module constants so tests and the UI can
match on them."""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

# Comparison labels.
DIFFERENCE = "difference"
RELATIVE_UPLIFT = "relative_uplift"

# Messages (format fields in braces).
MSG_UNKNOWN_STATISTIC = "unknown statistic {statistic!r}; known: {known}"
MSG_UNKNOWN_PRE_TREATMENT = "unknown pre-treatment {name!r}; known: {known}"
MSG_BAD_PARAMS = "invalid parameters for statistic {statistic!r}: {problem}"
MSG_MISSING_COLUMN = "column {column!r} is not in the per-client table"
MSG_NO_BRANCH_COLUMN = "the per-client table has no 'branch' column"
MSG_ALL_NULL = "metric {metric!r} has no non-null values in any branch"
MSG_SOME_INFINITE = (
    "metric {metric!r} has {count} infinite value(s): {bad} of {total} results of "
    "{statistic!r} are not finite and are not published (the remove_indefinites "
    "pre-treatment drops such values)"
)
MSG_NO_FINITE = (
    "metric {metric!r} has no finite values: every non-null value is infinite "
    "(the remove_indefinites pre-treatment drops them)"
)
MSG_EMPTY_BRANCH = "branch {branch!r} has no non-null values of {metric!r}; it is left out"
MSG_NO_REFERENCE = "reference branch {branch!r} has no data; no comparisons against it"
MSG_SINGLE_BRANCH = "only one branch ({branch!r}) has data; no comparisons are possible"
MSG_ZERO_VARIANCE = "metric {metric!r} has no variation; the linear model cannot be fitted"
MSG_COVARIATE_MISSING = "covariate for {metric!r} is missing; returning the unadjusted model"
MSG_COVARIATE_DEGENERATE = (
    "covariate {covariate!r} is constant or collinear; returning the unadjusted model"
)
MSG_SINGULAR_MODEL = "the linear model for {metric!r} is singular: {detail}"
MSG_NONPOSITIVE_REFERENCE = (
    "reference mean of {metric!r} in branch {branch!r} is not positive; "
    "relative uplift is undefined"
)
MSG_GRID_NOT_GEOMETRIC = (
    "refusing a geometric grid for {metric!r} in branch {branch!r}: values are negative "
    "or all zero; a linear grid is used"
)
MSG_ZERO_DENOMINATOR = "denominator {column!r} sums to zero in branch {branch!r}"
MSG_FAILED = "statistic {statistic!r} failed for {metric!r}: {detail}"

Level = Literal["error", "warning"]


def format_parameter(value: float | str | None) -> str | None:
    """The published spelling of a parameter: a float rounded to 6 decimals."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    rounded = round(float(value), 6)
    if rounded == 0:
        rounded = 0.0
    return str(rounded)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


@attrs.frozen(kw_only=True)
class StatisticRow:
    """One published number (the `statistics_<slug>` table and JSON shape)."""

    metric: str
    statistic: str
    parameter: str | None = None
    branch: str
    comparison: str | None = None
    comparison_to_branch: str | None = None
    ci_width: float | None = None
    point: float | None = attrs.field(default=None, converter=_finite_or_none)
    lower: float | None = attrs.field(default=None, converter=_finite_or_none)
    upper: float | None = attrs.field(default=None, converter=_finite_or_none)
    p_value: float | None = attrs.field(default=None, converter=_finite_or_none)
    p_value_adjusted: float | None = attrs.field(default=None, converter=_finite_or_none)
    segment: str | None = None
    analysis_basis: str | None = None
    window_index: str | None = None

    def key(self) -> tuple[Any, ...]:
        """Identity of a row within one period's results."""
        return (
            self.metric,
            self.statistic,
            self.branch,
            self.comparison,
            self.comparison_to_branch,
            self.parameter,
            self.segment,
            self.analysis_basis,
        )

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class StatisticError:
    """A statistic that could not be (fully) computed. Never raised: returned."""

    metric: str
    statistic: str
    message: str
    level: Level = "error"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)
