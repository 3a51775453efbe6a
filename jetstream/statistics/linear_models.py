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

import math

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


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation, operation for operation (np.quantile's `_lerp`)."""
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


def repeated_clip_thresholds(
    finite: Array, drop_highest: float, times: int, is_sorted: bool = False
) -> list[float]:
    """The thresholds of `times` successive `pooled_clip` passes over the (non-NaN) values
    `finite`, without re-reading the data after the first.

    Clipping at t does not move the order statistics below t, so the quantile of the
    clipped data is the same interpolation between min(a, t) and min(b, t), a and b the
    two order statistics of the original data that np.quantile interpolates between; and
    whether the clipped data are integers (the ceil rule) follows from t and the smallest
    non-integer value. The arithmetic repeats np.quantile's (method "linear") operation for
    operation, so the thresholds are the same floats."""
    n = int(finite.size)
    if drop_highest <= 0 or n == 0 or times <= 0:
        return []
    level = 1.0 - drop_highest
    virtual = (n - 1) * level
    if virtual >= n - 1:
        lo = hi = n - 1
        gamma = 0.0
    else:
        lo = math.floor(virtual)
        hi = lo + 1
        gamma = virtual - lo
    if is_sorted:
        a, b = float(finite[lo]), float(finite[hi])
    else:
        part = np.partition(finite, [lo, hi] if hi != lo else [lo])
        a, b = float(part[lo]), float(part[hi])
    # Non-integers, and -inf (which no clip makes finite), bar the clipped data from
    # being integral while they lie below the threshold. +inf is clipped to it.
    bad = finite != np.floor(finite)
    bad |= finite == -np.inf
    integral = not bad.any() and bool(np.isfinite(finite).all())
    bad_min = float(finite[bad].min()) if times > 1 and bad.any() else math.inf
    out: list[float] = []
    for _ in range(times):
        if out:
            t_prev = out[-1]
            a, b = min(a, t_prev), min(b, t_prev)
            integral = bool(math.isfinite(t_prev) and t_prev == math.floor(t_prev)) and (
                bad_min >= t_prev
            )
        t = _lerp(a, b, gamma)
        if integral:
            t = float(np.ceil(t))
        out.append(t)
    return out


def clipped_sorted_quantiles_mean(xs: Array, threshold: float | None) -> float:
    """mean(sorted_quantiles(min(xs, threshold), grid)) for sorted xs, reading only the
    order statistics the grid needs (sort(min(x, t)) = min(sort(x), t) elementwise)."""
    pos = _GRID * (xs.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, xs.size - 1)
    frac = pos - lo
    a, b = xs[lo], xs[hi]
    if threshold is not None:
        a, b = np.minimum(a, threshold), np.minimum(b, threshold)
    return float((a + frac * (b - a)).mean())


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
    # variance = "robust": the HC1 (sandwich) covariance of (alpha per branch in `n`'s
    # order, then gamma when adjusted); None: the classic pooled-variance one
    robust: Array | None = None


VARIANCES = ("pooled", "robust")


def fit(
    y: dict[str, Array],
    x: dict[str, Array] | None,
    qbar: float | None = None,
    variance: str = "pooled",
) -> Fit:
    """The OLS fit from per-branch sums. `qbar` (the covariate's mean grid quantile) is
    computed from the pooled covariate unless given. `variance = "pooled"` (the reference)
    uses one residual variance for every branch; "robust" the HC1 sandwich, i.e. each
    client's own squared residual, so branches with different variances (a treatment
    that scales the metric) do not distort the tests of the others."""
    f = _fit(y, x, qbar)
    if variance == "robust":
        f = attrs.evolve(f, robust=_hc1(f, y, x))
    elif variance != "pooled":
        raise ValueError(f"variance must be one of {VARIANCES}, not {variance!r}")
    return f


def _hc1(f: Fit, y: dict[str, Array], x: dict[str, Array] | None) -> Array:
    """(X'X)^-1 X' diag(e^2) X (X'X)^-1 * N / (N - p) for X = branch dummies (+ x)."""
    branches = list(f.n)
    k = len(branches)
    p = k + (1 if f.adjusted else 0)
    xtx = np.zeros((p, p))
    meat = np.zeros((p, p))
    for i, b in enumerate(branches):
        e = y[b] - f.ybar[b]
        if f.adjusted and x is not None:
            e = e - f.gamma * (x[b] - f.xbar[b])
        e2 = e * e
        xtx[i, i] = f.n[b]
        meat[i, i] = float(e2.sum())
        if f.adjusted and x is not None:
            sx = float(x[b].sum())
            xtx[i, k] = xtx[k, i] = sx
            xtx[k, k] += float(np.dot(x[b], x[b]))
            cross = float(np.dot(e2, x[b]))
            meat[i, k] = meat[k, i] = cross
            meat[k, k] += float(np.dot(e2, x[b] * x[b]))
    inv = np.linalg.inv(xtx)
    ntot = sum(f.n.values())
    return inv @ meat @ inv * (ntot / (ntot - p))


def _fit(y: dict[str, Array], x: dict[str, Array] | None, qbar: float | None = None) -> Fit:
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
    if qbar is None:
        pooled_x = np.sort(np.concatenate([x[b] for b in branches]))
        qbar = float(sorted_quantiles(pooled_x, _GRID).mean())
    return Fit(n, ybar, xbar, gamma, sxx, rss / df, df, qbar, True)


def _alpha(f: Fit, b: str) -> float:
    return f.ybar[b] - f.gamma * f.xbar[b]


def _index(f: Fit, b: str) -> int:
    return list(f.n).index(b)


def _cov_alpha(f: Fit, b: str, c: str) -> float:
    if f.robust is not None:
        return float(f.robust[_index(f, b), _index(f, c)])
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
            if f.robust is not None:
                g = len(f.n)
                var_g = float(f.robust[g, g])
                cov_bg = float(f.robust[_index(f, b), g])
                cov_rg = float(f.robust[_index(f, r), g])
            else:
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


class _ClipPasses:
    """The model's data after k pooled clipping passes of metric and covariate (the
    reference clips its frame in place once per pass), then without rows whose covariate
    is null and without branches left empty. The thresholds of every pass come from one
    partition of the metric and one sort of the covariate; the sort also gives the
    covariate's grid quantiles for every pass."""

    def __init__(
        self, y0: dict[str, Array], x0: dict[str, Array] | None, drop: float, times: int
    ) -> None:
        self.y0, self.x0 = y0, x0
        pooled_y = np.concatenate(list(y0.values()))
        nan_y = np.isnan(pooled_y)
        self.ty = repeated_clip_thresholds(
            pooled_y[~nan_y] if nan_y.any() else pooled_y, drop, times
        )
        self.keep: dict[str, Array] | None = None
        self.tx: list[float] = []
        self.xs = np.empty(0)
        if x0 is not None:
            keep = {b: ~np.isnan(v) for b, v in x0.items()}
            self.keep = None if all(k.all() for k in keep.values()) else keep
            self.xs = np.sort(np.concatenate([x0[b][keep[b]] for b in x0]))
            self.tx = repeated_clip_thresholds(self.xs, drop, times, is_sorted=True)

    def data(self, k: int) -> tuple[dict[str, Array], dict[str, Array] | None]:
        y = self.y0
        if k and self.ty:
            y = {b: np.minimum(v, self.ty[k - 1]) for b, v in y.items()}
        x = self.x0
        if x is not None:
            if k and self.tx:
                x = {b: np.minimum(v, self.tx[k - 1]) for b, v in x.items()}
            keep = self.keep
            if keep is not None:
                y = {b: v[keep[b]] for b, v in y.items()}
                x = {b: v[keep[b]] for b, v in x.items()}
        y = {b: v for b, v in y.items() if v.size}
        if x is not None:
            x = {b: x[b] for b in y}
        return y, x

    def qbar(self, k: int) -> float | None:
        """The covariate's mean grid quantile after k passes (None without covariate)."""
        if self.x0 is None or self.xs.size == 0:
            return None
        return clipped_sorted_quantiles_mean(self.xs, self.tx[k - 1] if k and self.tx else None)


def _model_rows(
    inp: StatisticInput,
    label: str,
    drop_highest: float,
    scale_difference: bool,
    branch_rows: bool,
    repeat: bool,
) -> Outcome:
    """Rows of the linear model. With `repeat` (linear_model_mean's `repeat_clipping`,
    default, as the reference) the k-th reference's model sees data clipped k times (the
    reference clips its frame in place on every pass) and per-branch rows come from the
    last pass; without, every pass uses data clipped once. `variance` (comparisons
    only): "pooled" (default, as the reference) or "robust" (HC1; see `fit`)."""
    ci = float(inp.params["confidence_interval"])
    variance = str(inp.params.get("variance", "pooled"))
    y0, x0, errors = _prepare(inp, label)
    out = Outcome(errors=errors)
    if variance not in VARIANCES:
        out.errors.append(
            StatisticError(
                metric=inp.metric,
                statistic=label,
                message=f"variance must be one of {', '.join(VARIANCES)}, not {variance!r}",
            )
        )
        return out
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
    clip = _ClipPasses(y0, x0, drop_highest, passes)
    if branch_rows:
        y, _ = clip.data(passes)
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
        passes_k = k if repeat else 1
        y, x = clip.data(passes_k)
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
        f = fit(y, x, clip.qbar(passes_k) if x is not None else None, variance)
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
    repeat = bool(inp.params.get("repeat_clipping", True))
    return _model_rows(inp, "mean_lm", float(inp.params["drop_highest"]), False, True, repeat)


def per_client_dau_impact(inp: StatisticInput) -> Outcome:
    """The linear model, clipped at the pooled `1 - drop_highest` quantile (default 0:
    nothing is clipped); comparison rows only; the `difference` is scaled by the number of
    clients in the model (all branches). No `repeat_clipping` parameter."""
    drop = float(inp.params.get("drop_highest") or 0.0)
    return _model_rows(inp, "per_client_dau_impact", drop, True, False, True)
