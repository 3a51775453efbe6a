"""The calibration benchmark's known truths agree with a large simulated sample."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.calibration import BRANCHES, PER_BRANCH, simulate, truths


def test_simulation_truths_match_a_large_sample():
    rng = np.random.default_rng(0)
    tables = [simulate(rng) for _ in range(20)]  # 200k clients
    t = {k: np.concatenate([tb[k] for tb in tables]) for k in tables[0]}
    truth = truths()
    a = t["branch"] == "a1"
    y = t["y"][a]
    clipped = np.minimum(y, np.quantile(y, 0.995))
    assert clipped.mean() == pytest.approx(truth["bootstrap_mean"]["a"], rel=0.02)
    assert t["conv"][a].mean() == pytest.approx(truth["binomial"]["a"], abs=0.01)
    assert np.median(y) == pytest.approx(truth["deciles/0.5"]["a"], rel=0.02)
    assert t["days"][a].mean() == pytest.approx(
        truth["per_client_dau_impact+covariate"]["a"], rel=0.01
    )
    n = np.minimum(t["clicks"][a], np.quantile(t["clicks"][a], 0.995))
    d = np.minimum(t["searches"][a], np.quantile(t["searches"][a], 0.995))
    assert n.mean() / d.mean() == pytest.approx(truth["population_ratio"]["a"], rel=0.05)
    assert truth["per_client_dau_impact+covariate"]["difference"] == pytest.approx(
        (
            truth["per_client_dau_impact+covariate"]["t"]
            - truth["per_client_dau_impact+covariate"]["a"]
        )
        * PER_BRANCH
        * len(BRANCHES)
    )
