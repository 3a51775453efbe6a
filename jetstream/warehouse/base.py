"""The Warehouse protocol: where SQL (always BigQuery dialect) runs and tables live.

Two implementations: `DuckDBWarehouse` (embedded default, a local file; SQL transpiled by
sqlglot, see transpile.py) and `BigQueryWarehouse` (production). Open one from a URI:

    open_warehouse("duckdb:/path/to/file.duckdb")   # or "duckdb::memory:" (tests)
    open_warehouse("bigquery:my-project.my_dataset", maximum_bytes_billed=10**12)

Errors: transient failures (BigQuery 5xx/429, a transaction aborted by a concurrent update,
a DuckDB file that stays locked) raise `jetstream.errors.TransientError`; SQL and data errors
raise `jetstream.errors.MetricError` with the warehouse's message.

Table names: our tables (enrollments_x, metrics_x, ...) are 1-part names; telemetry tables
may be `dataset.table` or `project.dataset.table`. `table_ref(name)` gives the reference to
put into BigQuery-dialect SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import pyarrow

from jetstream.errors import ConfigError


@attrs.frozen
class QueryStats:
    bytes_processed: int = 0
    rows_affected: int | None = None
    seconds: float = 0.0


@runtime_checkable
class Warehouse(Protocol):
    name: str  # "duckdb" | "bigquery"

    def table_ref(self, table: str) -> str:
        """How a table is referenced in BigQuery-dialect SQL (backtick-quoted)."""
        ...

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> pyarrow.Table:
        """Run one SELECT (BigQuery dialect, `@name` parameters); return its rows."""
        ...

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> QueryStats:
        """Run DDL, DML or a script of several statements."""
        ...

    def dry_run(self, sql: str) -> int:
        """Validate the SQL against the warehouse; return the bytes it would scan."""
        ...

    def transaction(self, statements: Sequence[str]) -> QueryStats:
        """Run the statements all-or-nothing."""
        ...

    def create_table_as(
        self,
        table: str,
        sql: str,
        replace: bool = True,
        expiration_days: int | None = None,
        temporary: bool = False,
    ) -> QueryStats:
        """`temporary`: a staging table read and dropped within the current session (DuckDB:
        a TEMP table of the session's connection, kept in memory and never written to the
        file; BigQuery: a table that expires after a day in any case)."""
        ...

    def load_arrow(self, table: str, data: pyarrow.Table, mode: str = "append") -> None:
        """mode "append" or "replace"; creates the table (and dataset/schema) if needed."""
        ...

    def table_exists(self, table: str) -> bool: ...

    def drop_table(self, table: str) -> None: ...

    def list_tables(self, prefix: str = "") -> list[str]: ...

    def table_columns(self, table: str) -> dict[str, str]:
        """Column name -> BigQuery type name (INT64, FLOAT64, STRING, ARRAY<...>, ...)."""
        ...

    def close(self) -> None: ...


LOAD_MODES = ("append", "replace")


def check_load_mode(mode: str) -> None:
    if mode not in LOAD_MODES:
        raise ValueError(f"load_arrow mode must be one of {LOAD_MODES}, got {mode!r}")


def open_warehouse(uri: str, **kwargs: Any) -> Warehouse:
    """`duckdb:PATH` (PATH may be `:memory:`) or `bigquery:PROJECT.DATASET`."""
    scheme, sep, rest = uri.partition(":")
    if not sep or not rest:
        raise ConfigError(
            f"warehouse {uri!r}: expected 'duckdb:PATH' or 'bigquery:PROJECT.DATASET'"
        )
    if scheme == "duckdb":
        from jetstream.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(rest, **kwargs)
    if scheme == "bigquery":
        project, dot, dataset = rest.rpartition(".")
        if not dot or not project or not dataset:
            raise ConfigError(f"warehouse {uri!r}: expected 'bigquery:PROJECT.DATASET'")
        from jetstream.extras import require

        require("bigquery", f"warehouse {uri!r}")
        from jetstream.warehouse.bigquery import BigQueryWarehouse

        return BigQueryWarehouse(project, dataset, **kwargs)
    raise ConfigError(f"warehouse {uri!r}: unknown kind {scheme!r} (duckdb or bigquery)")
