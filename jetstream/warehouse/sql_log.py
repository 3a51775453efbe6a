"""A log of the BigQuery-dialect SQL the embedded warehouse is asked to run, before it is
transpiled: the seam of the offline GoogleSQL check (tests/warehouse/test_bigquery_zetasql.py).

When the environment variable JETSTREAM_SQL_LOG names a file, DuckDBWarehouse appends one
JSON line per call, in the text `BigQueryWarehouse` would send for it:
  {"kind": "sql", "sql": "...", "params": {...}}  query, execute, dry_run, create_table_as,
                                                  transaction (one BEGIN ... COMMIT script);
                                                  "params": each query parameter's BigQuery
                                                  type (only when there are parameters)
  {"kind": "load", "table": "t", "columns": {...}} a load job (no SQL): the loaded table's
                                                  BigQuery column types
Every process of a run (the local runner's workers) appends to the same file; each line is
one `write` to a file opened in append mode. Unset (the default), nothing is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from jetstream.sql.ddl import create_table_as_sql, transaction_script
from jetstream.sql.parameters import parameter_type

ENV = "JETSTREAM_SQL_LOG"


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def _append(entry: dict) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def record_sql(sql: str, params: Mapping[str, Any] | None = None) -> None:
    if enabled():
        entry: dict[str, Any] = {"kind": "sql", "sql": sql}
        if params:
            entry["params"] = {name: parameter_type(v) for name, v in params.items()}
        _append(entry)


def record_transaction(statements: Sequence[str]) -> None:
    if enabled():
        record_sql(transaction_script(statements))


def record_create_table_as(
    table_ref: str, sql: str, replace: bool, expiration_days: int | None, temporary: bool
) -> None:
    if enabled():
        record_sql(create_table_as_sql(table_ref, sql, replace, expiration_days, temporary))


def record_load(table: str, columns: Mapping[str, str]) -> None:
    if enabled():
        _append({"kind": "load", "table": table, "columns": dict(columns)})
