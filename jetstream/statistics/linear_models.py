"""linear_model_mean and per_client_dau_impact: OLS of the metric on branch indicators and
an optional covariate, computed from per-branch sufficient statistics (no design matrix).

Model: y = a_b + g x + e (a_b one intercept per branch; g = 0 without covariate). The
`difference` of branch b against reference r is a_b - a_r with a t interval on n - k - 1
degrees of freedom (n - k without covariate), i.e. the OLS branch coefficient of
`y ~ branch + x`. The `relative_uplift` is T / C - 1 with T = a_b + g q, C = a_r + g q and
q the mean of the covariate's quantiles at 0, 0.0001, ..., 0.9999 (the reference's
prediction grid), with a delta-method normal interval on log(T / C).
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy import stats

from jetstream.statistics.base import Outcome, StatisticInput, bounds_quantiles
from jetstream.statistics.rows import (
    DIFFERENCE,
    MSG_COVARIATE_DEGENERATE,
    MSG_NONPOSITIVE_REFERENCE,
    MSG_SINGULAR_MODEL,
    MSG_ZERO_VARIANCE,
    RELATIVE_UPLIFT,
    StatisticError,
    StatisticRow,
)

Array = np.ndarray
_GRID = np.arange(0, 1, 0.0001)


def sorted_quantiles(xs: Array, q: Array) -> Array:
    """Quantiles of a sorted array with linear interpolation (numpy's default method),
    without np.quantile's partition per requested level (slow for 10,000 levels)."""
    pos = q * (xs.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, xs.size - 1)
    frac = pos - lo
    return xs[lo] + frac * (xs[hi] - xs[lo])


def _is_integral(x: Array) -> bool:
    return bool(np.issubdtype(x.dtype, np.integer)) or bool(
        x.size and np.all(np.isfinite(x)) and np.all(x == np.floor(x))
    )


def pooled_clip(parts: dict[str, Array], drop_highest: float) -> dict[str, Array]:
    """Clip every branch at the pooled `1 - drop_highest` quantile (ceil'd when the values
    are integers, as the reference does for integer columns). NaNs are ignored."""
    if drop_highest <= 0:
        return parts
    pooled = np.concatenate(list(parts.values()))
    finite = pooled[~np.isnan(pooled)]
    if finite.size == 0:
        return parts
    threshold = float(np.quantile(finite, 1.0 - drop_highest))
    if _is_integral(finite):
        threshold = float(np.ceil(threshold))
    return {b: np.minimum(v, threshold) for b, v in parts.items()}


@attrs.frozen
class Fit:
    n: dict[str, int]
    ybar: dict[str, float]
    xbar: dict[str, float]
    gamma: float
    sxx: float  # within-branch sum of squares of x (0 without covariate)
    sigma2: float
    df: int
    qbar: float
    adjusted: bool


def fit(y: dict[str, Array], x: dict[str, Array] | None) -> Fit:
    branches = list(y)
    n = {b: int(y[b].size) for b in branches}
    ybar = {b: float(y[b].mean()) for b in branches}
    syy = sum(float(np.sum((y[b] - ybar[b]) ** 2)) for b in branches)
    ntot = sum(n.values())
    k = len(branches)
    if x is None:
        rss = syy
        df = ntot - k
        return Fit(n, ybar, {b: 0.0 for b in branches}, 0.0, 0.0, rss / df, df, 0.0, False)
    xbar = {b: float(x[b].mean()) for b in branches}
    sxx = sum(float(np.sum((x[b] - xbar[b]) ** 2)) for b in branches)
    sxy = sum(float(np.sum((x[b] - xbar[b]) * (y[b] - ybar[b]))) for b in branches)
    gamma = sxy / sxx
    rss = syy - gamma * sxy
    df = ntot - k - 1
    pooled_x = np.sort(np.concatenate([x[b] for b in branches]))
    qbar = float(sorted_quantiles(pooled_x, _GRID).mean())
    return Fit(n, ybar, xbar, gamma, sxx, rss / df, df, qbar, True)


def _alpha(f: Fit, b: str) -> float:
    return f.ybar[b] - f.gamma * f.xbar[b]


def _cov_alpha(f: Fit, b: str, c: str) -> float:
    extra = f.xbar[b] * f.xbar[c] / f.sxx if f.adjusted else 0.0
    return f.sigma2 * ((1.0 / f.n[b] if b == c else 0.0) + extra)


def compare(f: Fit, b: str, r: str, ci: float) -> dict[str, tuple[float, float, float, float]]:
    """{comparison: (point, lower, upper, p_value)} for branch b against reference r."""
    lo_q, hi_q = bounds_quantiles(ci)
    diff = _alpha(f, b) - _alpha(f, r)
    var_diff = _cov_alpha(f, b, b) + _cov_alpha(f, r, r) - 2 * _cov_alpha(f, b, r)
    se = np.sqrt(var_diff)
    tq = stats.t.ppf(hi_q, f.df)
    p_diff = float(2 * stats.t.sf(abs(diff) / se, f.df)) if se > 0 else float("nan")
    out = {DIFFERENCE: (diff, diff - tq * se, diff + tq * se, p_diff)}

    t_mean = _alpha(f, b) + f.gamma * f.qbar
    c_mean = _alpha(f, r) + f.gamma * f.qbar
    if t_mean > 0 and c_mean > 0:
        grad_b, grad_r = 1.0 / t_mean, -1.0 / c_mean
        var = (
            grad_b**2 * _cov_alpha(f, b, b)
            + grad_r**2 * _cov_alpha(f, r, r)
            + 2 * grad_b * grad_r * _cov_alpha(f, b, r)
        )
        if f.adjusted:
            grad_g = f.qbar / t_mean - f.qbar / c_mean
            var_g = f.sigma2 / f.sxx
            cov_bg = -f.xbar[b] * f.sigma2 / f.sxx
            cov_rg = -f.xbar[r] * f.sigma2 / f.sxx
            var += grad_g**2 * var_g + 2 * grad_g * (grad_b * cov_bg + grad_r * cov_rg)
        log_ratio = float(np.log(t_mean / c_mean))
        se_l = float(np.sqrt(var))
        z = stats.norm.ppf(hi_q)
        p_rel = float(2 * stats.norm.sf(abs(log_ratio) / se_l)) if se_l > 0 else float("nan")
        out[RELATIVE_UPLIFT] = (
            float(np.exp(log_ratio) - 1),
            float(np.exp(log_ratio - z * se_l) - 1),
            float(np.exp(log_ratio + z * se_l) - 1),
            p_rel,
        )
    return out


def _prepare(
    inp: StatisticInput, label: str
) -> tuple[dict[str, Array], dict[str, Array] | None, list[StatisticError]]:
    errors: list[StatisticError] = []
    y = {b: np.asarray(inp.values[b], dtype=np.float64) for b in inp.branches}
    x = None
    if inp.covariates is not None:
        x = {b: np.asarray(inp.covariates[b], dtype=np.float64) for b in inp.branches}
        sxx = 0.0
        for b in inp.branches:
            v = x[b][~np.isnan(x[b])]
            if v.size:
                sxx += float(np.sum((v - v.mean()) ** 2))
        if not np.isfinite(sxx) or np.isclose(sxx, 0.0):
            errors.append(
                StatisticError(
                    metric=inp.metric,
                    statistic=label,
                    level="warning",
                    message=MSG_COVARIATE_DEGENERATE.format(
                        covariate=inp.params.get("covariate_name", "covariate")
                    ),
                )
            )
            x = None
    return y, x, errors


def _clipped(
    y: dict[str, Array], x: dict[str, Array] | None, drop_highest: float, times: int
) -> tuple[dict[str, Array], dict[str, Array] | None]:
    """Clip `times` times (pooled), then drop rows with a null covariate and branches left
    without rows."""
    for _ in range(times if drop_highest > 0 else 0):
        y = pooled_clip(y, drop_highest)
        if x is not None:
            x = pooled_clip(x, drop_highest)
    if x is not None:
        keep = {b: ~np.isnan(x[b]) for b in y}
        y = {b: y[b][keep[b]] for b in y}
        x = {b: x[b][keep[b]] for b in y}
    y = {b: v for b, v in y.items() if v.size}
    if x is not None:
        x = {b: x[b] for b in y}
    return y, x


def _model_rows(
    inp: StatisticInput,
    label: str,
    drop_highest: float,
    scale_difference: bool,
    branch_rows: bool,
) -> Outcome:
    """Rows of the linear model. With `repeat_clipping` (default, as the reference) the
    k-th reference's model sees data clipped k times (the reference clips its frame in
    place on every pass) and per-branch rows come from the last pass; with
    `repeat_clipping = False` every pass uses data clipped once."""
    ci = float(inp.params["confidence_interval"])
    repeat = bool(inp.params.get("repeat_clipping", True))
    y0, x0, errors = _prepare(inp, label)
    out = Outcome(errors=errors)
    pooled = np.concatenate(list(y0.values()))
    if pooled.size < 2 or np.isclose(np.std(pooled, ddof=1), 0.0):
        out.errors.append(
            StatisticError(
                metric=inp.metric,
                statistic=label,
                message=MSG_ZERO_VARIANCE.format(metric=inp.metric),
            )
        )
        return out
    lo_q, hi_q = bounds_quantiles(ci)
    passes = max(1, len(inp.references)) if repeat else 1
    if branch_rows:
        y, _ = _clipped(y0, x0, drop_highest, passes)
        for b in inp.branches:
            if b not in y:
                continue
            v = y[b]
            mean = float(v.mean())
            if v.size > 1:
                half = stats.t.ppf(hi_q, v.size - 1) * np.std(v, ddof=1) / np.sqrt(v.size)
            else:
                half = float("nan")
            out.rows.append(
                StatisticRow(
                    metric=inp.metric,
                    statistic=label,
                    branch=b,
                    ci_width=ci,
                    point=mean,
                    lower=mean - half,
                    upper=mean + half,
                )
            )
    for k, r in enumerate(inp.references, start=1):
        y, x = _clipped(y0, x0, drop_highest, k if repeat else 1)
        if r not in y or len(y) < 2:
            continue
        if sum(v.size for v in y.values()) <= len(y) + (x is not None):
            out.errors.append(
                StatisticError(
                    metric=inp.metric,
                    statistic=label,
                    message=MSG_SINGULAR_MODEL.format(
                        metric=inp.metric, detail="no residual degrees of freedom"
                    ),
                )
            )
            break
        f = fit(y, x)
        total = float(sum(f.n.values()))
        for b in inp.branches:
            if b == r or b not in y:
                continue
            res = compare(f, b, r, ci)
            if RELATIVE_UPLIFT not in res:
                out.errors.append(
                    StatisticError(
                        metric=inp.metric,
                        statistic=label,
                        level="warning",
                        message=MSG_NONPOSITIVE_REFERENCE.format(metric=inp.metric, branch=r),
                    )
                )
            for comparison, (point, lower, upper, p) in res.items():
                if comparison == DIFFERENCE and scale_difference:
                    point, lower, upper = point * total, lower * total, upper * total
                out.rows.append(
                    StatisticRow(
                        metric=inp.metric,
                        statistic=label,
                        branch=b,
                        comparison=comparison,
                        comparison_to_branch=r,
                        ci_width=ci,
                        point=point,
                        lower=lower,
                        upper=upper,
                        p_value=p,
                    )
                )
    return out


def linear_model_mean(inp: StatisticInput) -> Outcome:
    """Label `mean_lm`. Pooled clipping of metric and covariate at `1 - drop_highest`."""
    return _model_rows(inp, "mean_lm", float(inp.params["drop_highest"]), False, True)


def per_client_dau_impact(inp: StatisticInput) -> Outcome:
    """The linear model without clipping; comparison rows only; the `difference` is scaled
    by the number of clients in the model (all branches)."""
    return _model_rows(inp, "per_client_dau_impact", 0.0, True, False)
