"""Where a preview's tables live, and how they go away.

DuckDB: one schema per preview run (`preview_<slug>_<UTC stamp>`) in the warehouse file,
recorded with its creation time in `jetstream_previews`; `cleanup_duckdb` drops the schemas
older than 7 days. BigQuery: tables `preview_<stamp>_<table>` in the scratch dataset, each
created with a 7-day expiration (BigQuery deletes them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from jetstream import results
from jetstream.preview.cost import EXPIRATION_DAYS
from jetstream.sql import literals as lit

REGISTRY_TABLE = "jetstream_previews"


@attrs.frozen
class Scratch:
    """Maps the engine's one-part table names into the scratch location."""

    kind: str  # "duckdb" | "bigquery"
    location: str  # DuckDB schema, or "project.dataset"
    table_prefix: str = ""
    created: dt.datetime = attrs.field(factory=lambda: dt.datetime.now(dt.UTC))

    def table(self, name: str) -> str:
        if "." in name:  # already qualified: telemetry or another dataset
            return name
        return f"{self.location}.{self.table_prefix}{name}"

    @property
    def expiration_days(self) -> int | None:
        return EXPIRATION_DAYS if self.kind == "bigquery" else None

    def describe(self) -> str:
        if self.kind == "bigquery":
            return (
                f"BigQuery dataset {self.location}, tables {self.table_prefix}* "
                f"(expire after {EXPIRATION_DAYS} days)"
            )
        return (
            f"DuckDB schema {self.location} (jetstream preview --cleanup drops it after "
            f"{EXPIRATION_DAYS} days)"
        )


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def duckdb_scratch(slug: str, now: dt.datetime) -> Scratch:
    return Scratch("duckdb", f"preview_{results.safe(slug)[:40]}_{_stamp(now)}", "", now)


def bigquery_scratch(project: str, dataset: str, slug: str, now: dt.datetime) -> Scratch:
    return Scratch(
        "bigquery", f"{project}.{dataset}", f"preview_{_stamp(now)}_{results.safe(slug)[:30]}_", now
    )


def _timestamp(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')}+00'"


def register_duckdb(warehouse: Any, scratch: Scratch, slug: str) -> None:
    """Create the scratch schema and record it with its creation time (for --cleanup)."""
    warehouse.execute(f"CREATE SCHEMA IF NOT EXISTS `{scratch.location}`")
    ref = warehouse.table_ref(REGISTRY_TABLE)
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {ref} "
        "(schema_name STRING, experiment STRING, created_at TIMESTAMP)"
    )
    warehouse.execute(
        f"INSERT INTO {ref} (schema_name, experiment, created_at) "
        f"SELECT {lit.string(scratch.location)}, {lit.string(slug)}, {_timestamp(scratch.created)}"
    )


def cleanup_duckdb(warehouse: Any, now: dt.datetime, days: int = EXPIRATION_DAYS) -> list[str]:
    """Drop every recorded preview schema created more than `days` ago; return their
    names. Previews not in the registry are left alone."""
    if not warehouse.table_exists(REGISTRY_TABLE):
        return []
    ref = warehouse.table_ref(REGISTRY_TABLE)
    cutoff = now - dt.timedelta(days=days)
    rows = warehouse.query(
        f"SELECT DISTINCT schema_name FROM {ref} WHERE created_at < {_timestamp(cutoff)} "
        "ORDER BY schema_name"
    ).to_pylist()
    dropped = []
    for row in rows:
        name = str(row["schema_name"])
        if not name.startswith("preview_"):
            continue  # never drop anything the preview did not create
        warehouse.execute(f"DROP SCHEMA IF EXISTS `{name}` CASCADE")
        warehouse.execute(f"DELETE FROM {ref} WHERE schema_name = {lit.string(name)}")
        dropped.append(name)
    return dropped
