"""Pre-treatments: transformations of one metric column applied before a statistic.

Each takes the metric's values (float array, NaN = null, all branches together) and returns
`(values, keep)`: the transformed values and a boolean mask of rows to keep. The caller
applies `keep` to every column of the per-client table, so a dropped client disappears
from the branch, covariate and ratio columns too. Quantile thresholds are pooled over all
branches and use linear interpolation over the non-null values, as the reference does.
Removing pre-treatments use strict inequalities (a value equal to the threshold is
dropped), as the reference does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Array = np.ndarray
PreTreatmentFn = Callable[..., tuple[Array, Array]]


def _all(values: Array) -> Array:
    return np.ones(values.shape[0], dtype=bool)


def _quantile(values: Array, q: float) -> float:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return float("nan")
    return float(np.quantile(finite, q))


def remove_nulls(values: Array) -> tuple[Array, Array]:
    """Drop rows whose value is null (NaN)."""
    return values, ~np.isnan(values)


def remove_indefinites(values: Array) -> tuple[Array, Array]:
    """Drop rows whose value is null, +inf or -inf."""
    return values, np.isfinite(values)


def censor_highest_values(values: Array, fraction: float = 1 - 1e-5) -> tuple[Array, Array]:
    """Drop rows at or above the pooled `fraction` quantile."""
    with np.errstate(invalid="ignore"):
        return values, values < _quantile(values, fraction)


def censor_lowest_values(values: Array, fraction: float = 1e-5) -> tuple[Array, Array]:
    """Drop rows at or below the pooled `fraction` quantile."""
    with np.errstate(invalid="ignore"):
        return values, values > _quantile(values, fraction)


def censor_values_below_threshold(values: Array, threshold: float) -> tuple[Array, Array]:
    """Keep only rows strictly above `threshold`."""
    with np.errstate(invalid="ignore"):
        return values, values > threshold


def censor_values_above_threshold(values: Array, threshold: float) -> tuple[Array, Array]:
    """Keep only rows strictly below `threshold`."""
    with np.errstate(invalid="ignore"):
        return values, values < threshold


def normalize_over_analysis_period(
    values: Array, analysis_period_length: int = 1
) -> tuple[Array, Array]:
    """Divide by the number of days in the analysis window (`analysis_period_length`,
    injected by `summarise` from its `analysis_period_days`)."""
    return values / float(analysis_period_length), _all(values)


def log(values: Array, base: float | None = 10.0) -> tuple[Array, Array]:
    """Logarithm (base 10 by default, natural when base is None); log(0) = -inf and
    log(negative) = NaN, as the reference gives (follow with remove_indefinites)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.log(values)
        if base:
            result = result / np.log(base)
    return result, _all(values)


def zero_fill(values: Array) -> tuple[Array, Array]:
    """Replace nulls by 0."""
    return np.where(np.isnan(values), 0.0, values), _all(values)


PRE_TREATMENTS: dict[str, PreTreatmentFn] = {
    "remove_nulls": remove_nulls,
    "remove_indefinites": remove_indefinites,
    "censor_highest_values": censor_highest_values,
    "censor_lowest_values": censor_lowest_values,
    "censor_values_below_threshold": censor_values_below_threshold,
    "censor_values_above_threshold": censor_values_above_threshold,
    "normalize_over_analysis_period": normalize_over_analysis_period,
    "log": log,
    "zero_fill": zero_fill,
}


def apply_pre_treatment(
    name: str, values: Array, args: Mapping[str, Any], analysis_period_days: int = 1
) -> tuple[Array, Array]:
    """Apply one named pre-treatment. Raises KeyError for an unknown name and TypeError
    for bad arguments (summarise turns both into error results)."""
    fn = PRE_TREATMENTS[name]
    kwargs = dict(args)
    if name == "normalize_over_analysis_period":
        kwargs.setdefault("analysis_period_length", analysis_period_days)
    return fn(values, **kwargs)
