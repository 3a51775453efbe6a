"""count and sum per branch."""

from __future__ import annotations

from jetstream.statistics.base import Outcome, StatisticInput
from jetstream.statistics.rows import StatisticRow


def count(inp: StatisticInput) -> Outcome:
    """Number of clients with a non-null value, per branch (a float, as published)."""
    return Outcome(
        [
            StatisticRow(
                metric=inp.metric,
                statistic="count",
                branch=b,
                point=float(inp.values[b].size),
            )
            for b in inp.branches
        ]
    )


def total(inp: StatisticInput) -> Outcome:
    """Sum of the non-null values, per branch."""
    return Outcome(
        [
            StatisticRow(
                metric=inp.metric,
                statistic="sum",
                branch=b,
                point=float(inp.values[b].sum()),
            )
            for b in inp.branches
        ]
    )
