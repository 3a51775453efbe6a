"""Multiple-comparison adjustment of comparison p-values.

A *hypothesis* is one (metric, treatment vs reference, window) tested on the metric's
primary statistic: its difference and relative-uplift rows, in both directions (A vs B and
B vs A), are one hypothesis with one p-value (the largest of theirs) and all get the same
adjusted value. The caller passes one period's rows (every window of it); this module
groups them into families:

* the primary family, per (analysis_basis, segment): every metric's primary statistic,
  every treatment vs the reference branch, every window. This is the family whose
  family-wise error rate `make validate-stats` measures on A/A experiments.
* each other statistic of a metric (deciles, a second mean statistic, ...) is its own
  family per (analysis_basis, segment, statistic), a hypothesis per (metric, parameter,
  treatment vs reference, window), so nine deciles do not dilute the primary family;
* comparisons between two treatments (neither is the reference) are a family of their
  own per (analysis_basis, segment, statistic).

The primary statistic of a metric is the first of PRIMARY_LABELS it has rows of (a
statistic without a parameter), else the first such statistic by name; `primary` may name
it per metric instead. With `reference` None every pair is a reference pair.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from jetstream.statistics.rows import StatisticRow

METHODS = ("none", "holm", "bh")

# Statistic labels (the published `statistic` column) in order of preference as a
# metric's primary statistic.
PRIMARY_LABELS = (
    "binomial",
    "mean",
    "mean_lm",
    "mean_sequential",
    "population_ratio",
    "per_client_dau_impact",
)


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


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """`p` adjusted by `method` (one of METHODS) as one family."""
    if method not in METHODS:
        raise ValueError(f"multiple-comparison method must be one of {METHODS}, not {method!r}")
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    return p.astype(float)


def primary_statistics(rows: Sequence[StatisticRow]) -> dict[str, str]:
    """metric -> the label of its primary statistic (see the module docstring)."""
    found: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.comparison is not None and row.p_value is not None and row.parameter is None:
            found[row.metric].add(row.statistic)
    rank = {label: i for i, label in enumerate(PRIMARY_LABELS)}
    return {
        metric: min(labels, key=lambda s: (rank.get(s, len(rank)), s))
        for metric, labels in found.items()
    }


def _family_and_hypothesis(
    row: StatisticRow, primary: Mapping[str, str], reference: str | None
) -> tuple[tuple, tuple]:
    other = row.comparison_to_branch or ""
    pair = tuple(sorted((row.branch, other)))
    to_reference = reference is None or reference in (row.branch, other)
    where = (row.analysis_basis, row.segment)
    if not to_reference:
        family: tuple = (*where, "between treatments", row.statistic)
    elif primary.get(row.metric) == row.statistic and row.parameter is None:
        family = (*where, "primary")
    else:
        family = (*where, "statistic", row.statistic)
    return family, (row.metric, row.statistic, row.parameter, pair, row.window_index)


def adjust_p_values(
    rows: Sequence[StatisticRow],
    method: str = "none",
    reference: str | None = None,
    primary: Mapping[str, str] | None = None,
) -> list[StatisticRow]:
    """Return the rows with `p_value_adjusted` filled for comparison rows that have a
    p-value (method "none" copies the p-value); other rows are returned unchanged.
    `rows` are one period's; `reference` is the experiment's reference branch; `primary`
    overrides `primary_statistics(rows)` for the metrics it names."""
    if method not in METHODS:
        raise ValueError(f"multiple-comparison method must be one of {METHODS}, not {method!r}")
    chosen = {**primary_statistics(rows), **(primary or {})}
    families: dict[tuple, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, row in enumerate(rows):
        if row.comparison is None or row.p_value is None:
            continue
        family, hypothesis = _family_and_hypothesis(row, chosen, reference)
        families[family][hypothesis].append(i)
    adjusted: dict[int, float] = {}
    for hyps in families.values():
        keys = list(hyps)
        p = np.array([max(rows[i].p_value or 0.0 for i in hyps[k]) for k in keys])
        adj = adjust(p, method)
        for k, a in zip(keys, adj, strict=True):
            for i in hyps[k]:
                adjusted[i] = float(rows[i].p_value or 0.0) if method == "none" else float(a)
    return [
        attrs.evolve(row, p_value_adjusted=adjusted[i]) if i in adjusted else row
        for i, row in enumerate(rows)
    ]


def family_sizes(rows: Sequence[StatisticRow], reference: str | None = None) -> dict[tuple, int]:
    """The number of hypotheses in each family `adjust_p_values` forms (for reports)."""
    chosen = primary_statistics(rows)
    families: dict[tuple, set[tuple]] = defaultdict(set)
    for row in rows:
        if row.comparison is None or row.p_value is None:
            continue
        family, hypothesis = _family_and_hypothesis(row, chosen, reference)
        families[family].add(hypothesis)
    return {k: len(v) for k, v in families.items()}
