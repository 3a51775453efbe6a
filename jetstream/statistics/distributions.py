"""kernel_density_estimate and empirical_cdf on a per-branch grid (no intervals)."""

from __future__ import annotations

import math

import numpy as np

from jetstream.statistics.base import Outcome, StatisticInput
from jetstream.statistics.rows import (
    MSG_BAD_PARAMS,
    MSG_GRID_NOT_GEOMETRIC,
    StatisticError,
    StatisticRow,
    format_parameter,
)

Array = np.ndarray

# Beyond this many bandwidths a Gaussian kernel contributes < 1e-14 of its peak.
_KERNEL_REACH = 8.5
_SQRT_2PI = math.sqrt(2.0 * math.pi)

BANDWIDTHS = ("scott", "silverman", "scott_scaled", "silverman_scaled")


def make_grid(xs_sorted: Array, size: int, log_space: bool) -> tuple[Array, bool, bool]:
    """(grid, geometric, refused): `size` points from the branch's min to max, geometric
    when asked and possible (starting at the smallest positive value when the minimum is
    0, the caller then adds a point at 0)."""
    start, stop = float(xs_sorted[0]), float(xs_sorted[-1])
    if start == stop:
        return np.array([start]), False, False
    geometric = log_space
    refused = False
    if geometric and (start < 0 or stop <= 0):
        geometric, refused = False, True
    if geometric and start == 0:
        start = float(xs_sorted[np.searchsorted(xs_sorted, 0.0, side="right")])
    if geometric:
        return np.geomspace(start, stop, size), True, refused
    return np.linspace(start, stop, size), False, refused


def bandwidth(xs: Array, method: str | float, adjust: float = 1.0) -> float:
    """Kernel standard deviation. "scott" / "silverman" are the reference's factors
    n^(-1/5) and (3n/4)^(-1/5) used *in the data's own units* (a known flaw kept by
    default); "scott_scaled" / "silverman_scaled" multiply them by the sample standard
    deviation (ddof=1), matching scipy.stats.gaussian_kde; a number is used as is."""
    n = xs.size
    if isinstance(method, int | float) and not isinstance(method, bool):
        factor, scale = float(method), 1.0
    elif method in ("scott", "scott_scaled"):
        factor = n ** (-1.0 / 5.0)
        scale = float(np.std(xs, ddof=1)) if method.endswith("_scaled") and n > 1 else 1.0
    elif method in ("silverman", "silverman_scaled"):
        factor = (n * 3.0 / 4.0) ** (-1.0 / 5.0)
        scale = float(np.std(xs, ddof=1)) if method.endswith("_scaled") and n > 1 else 1.0
    else:
        raise ValueError(f"bandwidth must be one of {BANDWIDTHS} or a number, not {method!r}")
    return factor * scale * adjust


def gaussian_kde_at(xs_sorted: Array, points: Array, h: float) -> Array:
    """Exact Gaussian KDE at `points`, summing only the data within 8.5 bandwidths of each
    point (the rest contributes below 1e-14 relative)."""
    n = xs_sorted.size
    lo = np.searchsorted(xs_sorted, points - _KERNEL_REACH * h, side="left")
    hi = np.searchsorted(xs_sorted, points + _KERNEL_REACH * h, side="right")
    out = np.empty(points.size)
    for i, p in enumerate(points):
        z = (xs_sorted[lo[i] : hi[i]] - p) / h
        out[i] = np.exp(-0.5 * z * z).sum()
    return out / (n * h * _SQRT_2PI)


def _grid_rows(inp: StatisticInput, label: str, evaluate, size: int, log_space: bool) -> Outcome:
    out = Outcome()
    for b in inp.branches:
        xs = np.sort(inp.values[b])
        grid, geometric, refused = make_grid(xs, size, log_space)
        if refused:
            out.errors.append(
                StatisticError(
                    metric=inp.metric,
                    statistic=label,
                    level="warning",
                    message=MSG_GRID_NOT_GEOMETRIC.format(metric=inp.metric, branch=b),
                )
            )
        if geometric and xs[0] == 0:
            grid = np.concatenate(([0.0], grid))
        values = evaluate(xs, grid)
        for x, y in zip(grid, values, strict=True):
            out.rows.append(
                StatisticRow(
                    metric=inp.metric,
                    statistic=label,
                    parameter=format_parameter(x),
                    branch=b,
                    point=y,
                )
            )
    return out


def kernel_density_estimate(inp: StatisticInput) -> Outcome:
    p = inp.params
    method = p["bandwidth"]
    if method == "normal_reference":
        method = "scott"
    try:
        for b in inp.branches:
            bandwidth(inp.values[b], method)
    except ValueError as exc:
        return Outcome(
            errors=[
                StatisticError(
                    metric=inp.metric,
                    statistic="kernel_density_estimate",
                    message=MSG_BAD_PARAMS.format(statistic="kernel_density_estimate", problem=exc),
                )
            ]
        )
    if p.get("kernel", "gau") not in ("gau", "gaussian"):
        return Outcome(
            errors=[
                StatisticError(
                    metric=inp.metric,
                    statistic="kernel_density_estimate",
                    message=MSG_BAD_PARAMS.format(
                        statistic="kernel_density_estimate",
                        problem=f"only the Gaussian kernel ('gau') is supported, not {p['kernel']!r}",
                    ),
                )
            ]
        )

    def evaluate(xs: Array, grid: Array) -> Array:
        h = bandwidth(xs, method, float(p["adjust"]))
        return gaussian_kde_at(xs, grid, h)

    return _grid_rows(
        inp, "kernel_density_estimate", evaluate, int(p["grid_size"]), bool(p["log_space"])
    )


def empirical_cdf(inp: StatisticInput) -> Outcome:
    """Right-continuous F(x) = #(values <= x) / n on the same grid as the KDE."""
    p = inp.params

    def evaluate(xs: Array, grid: Array) -> Array:
        return np.searchsorted(xs, grid, side="right") / xs.size

    return _grid_rows(inp, "empirical_cdf", evaluate, int(p["grid_size"]), bool(p["log_space"]))
