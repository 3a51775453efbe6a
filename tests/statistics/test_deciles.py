"""Deciles (jetstream.statistics.deciles): rows and labels against sample quantiles."""

from __future__ import annotations

import numpy as np

from jetstream.statistics import (
    SummaryRequest,
    summarise,
)
from tests.statistics.data import make_table


def test_deciles_rows_and_labels():
    t = make_table(2000, 2000)
    rows, _ = summarise(SummaryRequest(t, "y", "deciles", params={"num_samples": 1000}))
    labels = sorted({r.parameter for r in rows})
    assert labels == [f"0.{i}" for i in range(1, 10)]
    assert len(rows) == 9 * (2 + 4)
    for r in rows:
        if r.comparison is None:
            q = float(r.parameter)
            sample_q = np.quantile(t["y"][:2000] if r.branch == "control" else t["y"][2000:], q)
            assert r.lower <= sample_q <= r.upper
