"""Result rows (jetstream.statistics.rows): non-finite values become null."""

from __future__ import annotations

import numpy as np

from jetstream.statistics import (
    StatisticRow,
)


def test_row_converts_non_finite_to_none():
    r = StatisticRow(metric="m", statistic="s", branch="b", point=float("inf"), lower=np.nan)
    assert r.point is None and r.lower is None
    assert set(r.to_dict()) >= {"p_value", "p_value_adjusted", "window_index"}
