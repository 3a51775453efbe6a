"""Linear models (jetstream.statistics.linear_models) against statsmodels OLS and hand
computations: covariates, relative uplift, robust variance, clipping speed paths, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from jetstream.statistics import (
    StatisticError,
    SummaryRequest,
    summarise,
)
from jetstream.statistics import linear_models as lm
from jetstream.statistics import rows as msgs
from tests.statistics.data import make_table, rows_by_key


def test_zero_variance_linear_model_is_an_error_not_an_exception():
    t = make_table(100, 100)
    t["y"] = np.ones(200)
    rows, errors = summarise(SummaryRequest(t, "y", "linear_model_mean"))
    assert rows == []
    assert errors[-1].message == msgs.MSG_ZERO_VARIANCE.format(metric="y")
    rows, errors = summarise(SummaryRequest(t, "y", "bootstrap_mean", params={"num_samples": 100}))
    assert {r.point for r in rows if r.comparison is None} == {1.0}


def _ols(t, cov=None, drop=0.005):
    import statsmodels.api as sm

    y = t["y"].copy()
    if drop:
        y = np.minimum(y, np.quantile(y, 1 - drop))
    cols = [np.ones_like(y), (t["branch"] == "treatment").astype(float)]
    if cov is not None:
        x = t[cov].copy()
        if drop:
            x = np.minimum(x, np.quantile(x, 1 - drop))
        cols.append(x)
    return sm.OLS(y, np.column_stack(cols)).fit()


@pytest.mark.parametrize("covariate", [None, "pre"])
def test_linear_model_difference_matches_statsmodels_ols(covariate):
    t = make_table(1500, 1700, effect=1.1)
    rows, errors = summarise(
        SummaryRequest(t, "y", "linear_model_mean", covariate=covariate, reference_branch="control")
    )
    assert errors == []
    res = _ols(t, covariate)
    d = rows_by_key(rows)[("treatment", "difference", "control", None)]
    lo, hi = res.conf_int(0.05)[1]
    assert d.point == pytest.approx(res.params[1], rel=1e-9)
    assert (d.lower, d.upper) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    assert d.p_value == pytest.approx(res.pvalues[1], rel=1e-6)


def test_linear_model_relative_uplift_delta_method_without_covariate():
    t = make_table(1500, 1700, effect=1.1)
    rows, _ = summarise(SummaryRequest(t, "y", "linear_model_mean", reference_branch="control"))
    y = np.minimum(t["y"], np.quantile(t["y"], 0.995))
    c, tr = y[:1500], y[1500:]
    df = y.size - 2
    s2 = (((c - c.mean()) ** 2).sum() + ((tr - tr.mean()) ** 2).sum()) / df
    se = np.sqrt(s2 / (1700 * tr.mean() ** 2) + s2 / (1500 * c.mean() ** 2))
    lr = np.log(tr.mean() / c.mean())
    r = rows_by_key(rows)[("treatment", "relative_uplift", "control", None)]
    assert r.point == pytest.approx(np.exp(lr) - 1, rel=1e-12)
    assert r.lower == pytest.approx(np.exp(lr - stats.norm.ppf(0.975) * se) - 1, rel=1e-9)
    branch = rows_by_key(rows)[("control", None, None, None)]
    lo, hi = stats.t.interval(0.95, 1499, loc=c.mean(), scale=c.std(ddof=1) / np.sqrt(1500))
    assert (branch.lower, branch.upper) == (pytest.approx(lo), pytest.approx(hi))


def test_linear_model_missing_covariate_warns_and_is_unadjusted():
    t = make_table(500, 500)
    plain, _ = summarise(SummaryRequest(t, "y", "linear_model_mean"))
    rows, errors = summarise(SummaryRequest(t, "y", "linear_model_mean", covariate="not_there"))
    assert rows == plain
    assert errors == [
        StatisticError(
            metric="y",
            statistic="linear_model_mean",
            level="warning",
            message=msgs.MSG_COVARIATE_MISSING.format(metric="y"),
        )
    ]
    rows, errors = summarise(
        SummaryRequest(
            t,
            "y",
            "linear_model_mean",
            covariate=None,
            params={"covariate_adjustment": {"period": "preenrollment_week"}},
        )
    )
    assert rows == plain and errors[0].level == "warning"


def test_per_client_dau_impact_scales_difference_by_clients():
    t = make_table(800, 900, effect=1.2)
    lm, _ = summarise(
        SummaryRequest(
            t, "y", "linear_model_mean", params={"drop_highest": 0.0}, reference_branch="control"
        )
    )
    dau, _ = summarise(SummaryRequest(t, "y", "per_client_dau_impact", reference_branch="control"))
    assert all(r.comparison for r in dau)
    a = rows_by_key(lm)[("treatment", "difference", "control", None)]
    b = rows_by_key(dau)[("treatment", "difference", "control", None)]
    assert b.point == pytest.approx(a.point * 1700, rel=1e-12)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-12)


def test_too_few_clients_for_the_model_is_an_error_named_by_registry_name():
    t = {"branch": np.array(["a", "b"], dtype=object), "x": np.array([1.0, 2.0])}
    rows, errors = summarise(SummaryRequest(t, "x", "linear_model_mean"))
    assert all(r.comparison is None for r in rows)
    assert errors == [
        StatisticError(
            metric="x",
            statistic="linear_model_mean",
            message=msgs.MSG_SINGULAR_MODEL.format(
                metric="x", detail="no residual degrees of freedom"
            ),
        )
    ]


@pytest.mark.parametrize(
    "kind", ["lognormal", "integers", "ties", "mixed", "with_inf", "tiny", "constant"]
)
def test_repeated_clip_thresholds_equal_repeated_np_quantile_clipping(kind):
    rng = np.random.default_rng(8)
    x = {
        "lognormal": rng.lognormal(0, 1, 5001),
        "integers": rng.poisson(3.0, 4000).astype(float),
        "ties": np.round(rng.exponential(2.0, 3000), 1),
        "mixed": np.concatenate([rng.poisson(5.0, 2000).astype(float), [0.5, 7.25]]),
        "with_inf": np.concatenate([rng.poisson(5.0, 300).astype(float), [np.inf, -np.inf]]),
        "tiny": np.array([3.0]),
        "constant": np.full(50, 2.0),
    }[kind]
    for drop in (0.005, 0.05, 0.3):
        expected = []
        parts = {"a": x[: x.size // 2], "b": x[x.size // 2 :]}
        for _ in range(4):
            pooled = np.concatenate(list(parts.values()))
            t = float(np.quantile(pooled, 1.0 - drop))
            if lm._is_integral(pooled):
                t = float(np.ceil(t))
            expected.append(t)
            parts = lm.pooled_clip(parts, drop)
        got = lm.repeated_clip_thresholds(x, drop, 4)
        assert got == expected  # the same floats, not just close
        assert lm.repeated_clip_thresholds(np.sort(x), drop, 4, is_sorted=True) == expected
    assert lm.repeated_clip_thresholds(x, 0.0, 3) == []


def test_clipped_grid_quantile_mean_reads_only_the_grid_order_statistics():
    xs = np.sort(np.random.default_rng(2).lognormal(0, 1, 7777))
    for t in (None, 3.0, 0.5):
        clipped = xs if t is None else np.minimum(xs, t)
        expected = float(lm.sorted_quantiles(clipped, lm._GRID).mean())
        assert lm.clipped_sorted_quantiles_mean(xs, t) == expected


@pytest.mark.parametrize("with_covariate", [False, True])
def test_linear_model_robust_variance_matches_statsmodels_hc1(with_covariate):
    """variance="robust": the difference's standard error is statsmodels' HC1 one for
    the model y ~ branch (+ x); the point is the OLS one either way."""
    import statsmodels.api as sm

    from jetstream.statistics import linear_models as lm

    rng = np.random.default_rng(7)
    sizes = {"a": 400, "b": 500, "c": 300}
    scale = {"a": 1.0, "b": 2.5, "c": 0.5}  # unequal variances: HC1 differs from pooled
    y = {k: rng.normal(1.0, scale[k], n) for k, n in sizes.items()}
    x = {k: y[k] * 0.5 + rng.normal(0, 1, n) for k, n in sizes.items()} if with_covariate else None
    f = lm.fit(y, x, qbar=0.0, variance="robust")
    names = list(sizes)
    dummies = np.concatenate([np.eye(3)[[i] * sizes[k]] for i, k in enumerate(names)])
    design = np.column_stack([dummies, np.concatenate(list(x.values()))]) if x else dummies
    res = sm.OLS(np.concatenate(list(y.values())), design).fit(cov_type="HC1")
    contrast = np.zeros(design.shape[1])
    contrast[1], contrast[0] = 1.0, -1.0  # b - a
    ours = lm.compare(f, "b", "a", 0.95)["difference"]
    se = float(np.sqrt(contrast @ res.cov_params() @ contrast))
    assert ours[0] == pytest.approx(float(contrast @ res.params), rel=1e-10)
    half = (ours[2] - ours[1]) / 2
    assert half == pytest.approx(se * stats.t.ppf(0.975, f.df), rel=1e-9)
    pooled = lm.compare(lm.fit(y, x, qbar=0.0), "b", "a", 0.95)["difference"]
    assert abs((pooled[2] - pooled[1]) / 2 - half) > 1e-3 * half  # the option does change it


def test_linear_model_unknown_variance_is_an_error_row():
    table = {"branch": np.array(["a"] * 50 + ["b"] * 50), "m": np.arange(100.0)}
    rows, errors = summarise(
        SummaryRequest(table, "m", "linear_model_mean", params={"variance": "weird"})
    )
    assert not rows and any("variance must be one of" in e.message for e in errors)
