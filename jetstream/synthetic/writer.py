"""Loading generated tables into a warehouse: the only I/O of the synthetic package."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import pyarrow as pa


class Loader(Protocol):
    def load_arrow(self, table: str, data: pa.Table, mode: str = "replace") -> Any: ...


def write(
    warehouse: Loader,
    tables: Mapping[str, pa.Table] | Iterable[tuple[str, pa.Table]],
    batch_rows: int = 2_000_000,
) -> dict[str, int]:
    """Load tables (a dict, or (name, chunk) pairs as from `iter_tables`) into the
    warehouse: the first load of each name replaces the table, later ones append. Chunks
    are batched up to `batch_rows` rows per load. Returns rows written per table."""
    items = tables.items() if isinstance(tables, Mapping) else tables
    pending: dict[str, list[pa.Table]] = {}
    rows: dict[str, int] = {}
    loaded: set[str] = set()

    def flush(name: str) -> None:
        parts = pending.pop(name, [])
        if not parts:
            return
        mode = "append" if name in loaded else "replace"
        warehouse.load_arrow(name, pa.concat_tables(parts), mode=mode)
        loaded.add(name)

    for name, table in items:
        pending.setdefault(name, []).append(table)
        rows[name] = rows.get(name, 0) + table.num_rows
        if sum(t.num_rows for t in pending[name]) >= batch_rows:
            flush(name)
    for name in list(pending):
        flush(name)
    return rows
