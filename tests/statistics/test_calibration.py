"""The calibration benchmark (benchmarks/calibration.py): its known truths, its
standard errors, and the clip-uncertainty options it calibrates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.calibration import (
    BRANCHES,
    PER_BRANCH,
    ROWS,
    _load_cache,
    decile_rank_coverage,
    make_check,
    run_chunk,
    simulate,
    truths,
)
from jetstream.statistics import SummaryRequest, summarise
from jetstream.statistics.deciles import decile_draws
from jetstream.statistics.means import clip_variance_factor, ratio_clip_variance_factor


def test_simulation_truths_match_a_large_sample():
    rng = np.random.default_rng(0)
    tables = [simulate(rng) for _ in range(20)]  # 200k clients
    t = {k: np.concatenate([tb[k] for tb in tables]) for k in tables[0]}
    truth = truths()
    a = t["branch"] == "a1"
    y = t["y"][a]
    clipped = np.minimum(y, np.quantile(y, 0.995))
    assert clipped.mean() == pytest.approx(truth["clipped_mean"]["a"], rel=0.02)
    assert y.mean() == pytest.approx(truth["mean"]["a"], rel=0.03)
    assert t["conv"][a].mean() == pytest.approx(truth["binomial"]["a"], abs=0.01)
    assert np.median(y) == pytest.approx(truth["deciles/0.5"]["a"], rel=0.02)
    assert t["days"][a].mean() == pytest.approx(truth["dau_impact"]["a"], rel=0.01)
    n = np.minimum(t["clicks"][a], np.quantile(t["clicks"][a], 0.995))
    d = np.minimum(t["searches"][a], np.quantile(t["searches"][a], 0.995))
    assert n.mean() / d.mean() == pytest.approx(truth["clipped_ratio"]["a"], rel=0.05)
    ratio = t["clicks"][a].sum() / t["searches"][a].sum()
    assert ratio == pytest.approx(truth["ratio"]["a"], rel=0.05)
    dau = truth["dau_impact"]
    assert dau["difference"] == pytest.approx((dau["t"] - dau["a"]) * PER_BRANCH * len(BRANCHES))


def test_every_row_names_a_known_truth_and_statistic():
    truth = truths()
    for name, row in ROWS.items():
        assert row.statistic == "deciles" or row.truth in truth, name
        assert row.role in ("pass/fail", "fix option", "partial fix", "reference")
    fingerprints = {row.fingerprint() for row in ROWS.values()}
    assert len(fingerprints) == len(ROWS)


def test_design_effect_is_one_for_single_trials_and_the_cluster_size_for_copies():
    # 100 simulations, one trial each, 95 hits: sums are (h, t, h^2, h t, t^2).
    single = make_check("coverage: branch", [95, 100, 95, 95, 100], 100)
    assert single.design_effect == 1.0
    assert single.z == pytest.approx(0.0)
    # Nine perfectly correlated trials per simulation (all hit or all miss).
    hits = np.array([9] * 95 + [0] * 5, dtype=float)
    trials = np.full(100, 9.0)
    sums = [hits.sum(), trials.sum(), (hits**2).sum(), (hits * trials).sum(), (trials**2).sum()]
    pooled = make_check("coverage: branch (9 deciles)", sums, 100)
    assert pooled.design_effect == pytest.approx(9 * 100 / 99)
    assert make_check("0.1/false positives: a1-a2", [5, 100, 5, 5, 100], 100).nominal == 0.05


def test_run_chunk_counts_every_check_and_the_cache_skips_stale_records(tmp_path):
    rec = run_chunk("linear_model_mean drop_highest=0 variance=robust", 0)
    counts = rec["counts"]
    assert counts["coverage: branch"][1] == 4 * 50
    for kind in ("coverage: difference t vs a1", "false positives: a1-a2"):
        assert counts[kind][1] == 50
    assert 0.8 <= counts["coverage: branch"][0] / 200 <= 1.0
    cache = tmp_path / "c.jsonl"
    stale = {**rec, "chunk": 1, "fingerprint": "other"}
    cache.write_text(json.dumps(rec) + "\n" + json.dumps(stale) + "\n" + '{"row": "lin')
    assert list(_load_cache(cache)) == [("linear_model_mean drop_highest=0 variance=robust", 0)]


def test_decile_rank_coverage_is_nominal_with_exact_rank_quantiles():
    exact = decile_rank_coverage(None)
    assert len(exact) == 9
    assert all(0.945 <= c <= 0.955 for c in exact)


def test_decile_draws_are_order_statistics_with_binomial_ranks():
    x = np.random.default_rng(1).permutation(np.arange(1001.0))  # value == rank
    d = decile_draws(x, 20000, np.random.default_rng(2))
    assert d.shape == (20000, 9)
    q = np.arange(1, 10) / 10
    assert d.mean(axis=0) == pytest.approx(1000 * q, abs=0.5)
    assert d.var(axis=0) == pytest.approx(1000 * q * (1 - q), rel=0.05)


def test_ratio_clip_factor_reduces_to_the_mean_factor_with_a_constant_denominator():
    rng = np.random.default_rng(3)
    num = rng.lognormal(0, 1, 20000)
    den = np.ones_like(num)
    assert ratio_clip_variance_factor(num, den, 0.005) == pytest.approx(
        clip_variance_factor(num, 0.005)
    )
    assert ratio_clip_variance_factor(num, den, 0.0) == 1.0
    # Few distinct values in both: clip points do not move, no widening.
    assert ratio_clip_variance_factor(np.repeat([0.0, 1.0], 500), np.ones(1000), 0.005) == 1.0


def test_ratio_clip_factor_matches_the_sampling_sd_of_a_continuous_clipped_ratio():
    # Continuous numerator and denominator: the delta-method SE including the clip points
    # matches the spread of the clipped ratio over repeated samples.
    rng = np.random.default_rng(4)
    n, sims = 4000, 400
    est, se = [], []
    for _ in range(sims):
        den = rng.lognormal(0, 0.8, n)
        num = den * rng.lognormal(-1, 0.8, n)
        cn = np.minimum(num, np.quantile(num, 0.995))
        cd = np.minimum(den, np.quantile(den, 0.995))
        r = cn.mean() / cd.mean()
        naive = (cn - r * cd).std() / np.sqrt(n) / cd.mean()
        est.append(r)
        se.append(naive * ratio_clip_variance_factor(num, den, 0.005))
    assert np.std(est) == pytest.approx(np.sqrt(np.mean(np.square(se))), rel=0.12)


def test_population_ratio_clip_uncertainty_delta_widens_by_the_factor():
    rng = np.random.default_rng(5)
    n = 3000
    den = rng.lognormal(0, 0.8, 2 * n)
    t = {
        "branch": np.repeat(np.array(["control", "treatment"], dtype=object), n),
        "num": den * rng.lognormal(-1, 0.8, 2 * n),
        "den": den,
    }
    base = {"numerator": "num", "denominator": "den", "num_samples": 2000}
    rows = {}
    for mode in ("ignore", "delta"):
        got, errors = summarise(
            SummaryRequest(
                t, "r", "population_ratio", params={**base, "clip_uncertainty": mode}, seed=7
            )
        )
        assert not errors
        rows[mode] = {(r.branch, r.comparison): r for r in got}
    c = slice(0, n)
    factor = ratio_clip_variance_factor(t["num"][c], t["den"][c], 0.005)
    assert factor > 1.01
    plain, wide = rows["ignore"][("control", None)], rows["delta"][("control", None)]
    assert wide.upper - wide.lower == pytest.approx(factor * (plain.upper - plain.lower), rel=1e-9)
    assert wide.point == pytest.approx(plain.point, rel=1e-12)
    _, errors = summarise(
        SummaryRequest(t, "r", "population_ratio", params={**base, "clip_uncertainty": "x"})
    )
    assert errors and "clip_uncertainty" in errors[0].message
