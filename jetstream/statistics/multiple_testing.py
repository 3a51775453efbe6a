"""Multiple-comparison adjustment of comparison p-values.

The family is every comparison row with a p-value within one (window_index,
analysis_basis, segment) — call it once per period. Rows for the same hypothesis in both
directions (A vs B and B vs A, same metric, statistic, parameter and comparison) are one
hypothesis: they share the larger of their p-values and get the same adjusted value, so
testing every pair both ways does not double the family.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import attrs
import numpy as np

from jetstream.statistics.rows import StatisticRow

METHODS = ("none", "holm", "bh")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values."""
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate)."""
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def _hypothesis(row: StatisticRow) -> tuple:
    pair = tuple(sorted((row.branch, row.comparison_to_branch or "")))
    return (row.metric, row.statistic, row.parameter, row.comparison, pair)


def adjust_p_values(rows: Sequence[StatisticRow], method: str = "none") -> list[StatisticRow]:
    """Return the rows with `p_value_adjusted` filled for comparison rows that have a
    p-value (method "none" copies the p-value); other rows are returned unchanged."""
    if method not in METHODS:
        raise ValueError(f"multiple-comparison method must be one of {METHODS}, not {method!r}")
    families: dict[tuple, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, row in enumerate(rows):
        if row.comparison is None or row.p_value is None:
            continue
        family = (row.window_index, row.analysis_basis, row.segment)
        families[family][_hypothesis(row)].append(i)
    adjusted: dict[int, float] = {}
    for hyps in families.values():
        keys = list(hyps)
        p = np.array([max(rows[i].p_value or 0.0 for i in hyps[k]) for k in keys])
        if method == "holm":
            adj = holm(p)
        elif method == "bh":
            adj = benjamini_hochberg(p)
        else:
            adj = p
        for k, a in zip(keys, adj, strict=True):
            for i in hyps[k]:
                adjusted[i] = float(rows[i].p_value or 0.0) if method == "none" else float(a)
    return [
        attrs.evolve(row, p_value_adjusted=adjusted[i]) if i in adjusted else row
        for i, row in enumerate(rows)
    ]
