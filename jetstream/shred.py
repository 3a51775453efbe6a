"""Deleting clients from every per-client table (enrollments, exposures, segments,
partials, metric rows). Statistics are aggregates and hold no client ids.

DuckDB: the tables are listed, the rows deleted and the file rewritten in one hold of the
warehouse's file lock (the lock every writer takes), so a table a concurrent run creates is
either there when the tables are listed or created after the deletion, from data that no
longer holds the clients. The rewrite (`DuckDBWarehouse.compact`: a copy of the live data
into a new file, renamed over the old one) leaves no byte of a deleted row in the file: a
DELETE alone only marks rows deleted, and their blocks keep the strings until reused.

BigQuery has no such lock: the tables are listed again after each pass until no new one
appears. Deleted rows stay readable through time travel (`FOR SYSTEM_TIME AS OF`) for the
dataset's `max_time_travel_hours` (48 to 168, default 168) and then in fail-safe storage,
readable by Google support only, for 7 more days (docs/deployment.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from jetstream.sql.enrollments import CLIENT_KEY_COLUMN
from jetstream.sql.shred import ID_COLUMN, IDS_PARAM, delete_clients

PER_CLIENT_PREFIXES = (
    "enrollments_",
    "enrollment_clients_",
    "exposure_days_",
    "segments_",
    "segment_days_",
    "partials_",
    "metrics_",
)
BATCH = 5000  # ids per DELETE: keeps a BigQuery request well under its 10 MB limit
MAX_PASSES = 10


class ShredError(Exception):
    """Per-client tables kept appearing while shredding (BigQuery)."""


@attrs.frozen
class ShredResult:
    deleted: dict[str, int]  # table -> rows deleted
    compacted: bool  # the DuckDB file was rewritten


def per_client_tables(wh: Any) -> list[str]:
    tables = []
    for name in wh.list_tables():
        if not name.startswith(PER_CLIENT_PREFIXES):
            continue
        columns = {c.lower() for c in wh.table_columns(name)}
        if name.startswith("metrics_") and "metric_slug" not in columns:
            continue  # a metrics_<slug>_<period> pivot view: its base table is shredded
        if ID_COLUMN in columns or CLIENT_KEY_COLUMN in columns:
            tables.append(name)
    return sorted(tables)


@contextlib.contextmanager
def _exclusive(wh: Any) -> Iterator[None]:
    """The warehouse's writer lock, when it has one (DuckDB's file lock)."""
    session = getattr(wh, "session", None)
    if session is None:
        yield
        return
    with session():
        yield


def shred(wh: Any, client_ids: Sequence[str]) -> ShredResult:
    """Delete the clients from every per-client table; returns the rows deleted per table."""
    ids = sorted({i for i in client_ids if i})
    if not ids:
        return ShredResult({}, False)
    deleted: dict[str, int] = {}
    compacted = False
    with _exclusive(wh):
        for _ in range(MAX_PASSES):
            tables = [t for t in per_client_tables(wh) if t not in deleted]
            if not tables:
                break
            for table in tables:
                columns = {c.lower() for c in wh.table_columns(table)}
                sql = delete_clients(wh.table_ref(table), columns)
                rows = 0
                for start in range(0, len(ids), BATCH):
                    stats = wh.execute(sql, params={IDS_PARAM: ids[start : start + BATCH]})
                    rows += int(stats.rows_affected or 0)
                deleted[table] = rows
        else:
            raise ShredError(
                f"per-client tables kept appearing during {MAX_PASSES} passes; "
                "shred again when no analysis is running"
            )
        compact = getattr(wh, "compact", None)
        if compact is not None:
            compacted = bool(compact())
    return ShredResult(dict(sorted(deleted.items())), compacted)
