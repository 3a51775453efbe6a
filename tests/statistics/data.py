"""Shared inputs of the statistics tests: a two-branch table with a pre-period covariate,
conversions and a ratio, and rows keyed by branch and comparison."""

from __future__ import annotations

import numpy as np


def make_table(n_c: int = 2000, n_t: int = 2000, seed: int = 1, effect: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    pre = rng.lognormal(0, 1, n_c + n_t)
    y = pre * 0.8 + rng.lognormal(0, 1, n_c + n_t)
    y[n_c:] *= effect
    return {
        "branch": np.array(["control"] * n_c + ["treatment"] * n_t, dtype=object),
        "y": y,
        "pre": pre,
        "conv": (rng.random(n_c + n_t) < 0.3).astype(float),
        "num": rng.poisson(1.0, n_c + n_t).astype(float),
        "den": rng.poisson(10.0, n_c + n_t).astype(float) + 1,
    }


def rows_by_key(rows):
    return {(r.branch, r.comparison, r.comparison_to_branch, r.parameter): r for r in rows}
