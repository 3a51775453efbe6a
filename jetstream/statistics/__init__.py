"""Statistics over per-client arrays: pure functions, a registry by name, explicit seeds.

The engine calls `summarise(SummaryRequest(...))` once per (metric, statistic, period,
window, segment, basis) with a seed from `derive_seed`, fills segment/analysis_basis/
window_index with `attrs.evolve`, then `adjust_p_values` per period. Nothing here does
I/O, and no statistic raises: problems come back as `StatisticError` values.

Importing this package is cheap: the names below are loaded on first use, so that the
config code (which only needs `jetstream.statistics.catalogue`) never imports numpy's
heavier users or scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jetstream.statistics.branches import BranchRows
    from jetstream.statistics.implementations import registry
    from jetstream.statistics.multiple_testing import adjust_p_values
    from jetstream.statistics.rows import StatisticError, StatisticRow
    from jetstream.statistics.sample_ratio import srm, srm_check
    from jetstream.statistics.seeds import derive_seed
    from jetstream.statistics.summary import SummaryRequest, summarise

# public name -> the module that defines it
_EXPORTS = {
    "BranchRows": "jetstream.statistics.branches",
    "StatisticError": "jetstream.statistics.rows",
    "StatisticRow": "jetstream.statistics.rows",
    "SummaryRequest": "jetstream.statistics.summary",
    "adjust_p_values": "jetstream.statistics.multiple_testing",
    "derive_seed": "jetstream.statistics.seeds",
    "registry": "jetstream.statistics.implementations",
    "srm": "jetstream.statistics.sample_ratio",
    "srm_check": "jetstream.statistics.sample_ratio",
    "summarise": "jetstream.statistics.summary",
}

__all__ = [
    "BranchRows",
    "StatisticError",
    "StatisticRow",
    "SummaryRequest",
    "adjust_p_values",
    "derive_seed",
    "registry",
    "srm",
    "srm_check",
    "summarise",
]


def __getattr__(name: str) -> Any:
    """The first use of any name loads them all, as one import of the package did before
    they were lazy (one import event, not one per name, when task threads start)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    values = {n: getattr(importlib.import_module(m), n) for n, m in _EXPORTS.items()}
    globals().update(values)
    return values[name]


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
