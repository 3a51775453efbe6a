"""The warehouse-level BigQuery statements every backend issues the same way: a
transaction script and CREATE TABLE ... AS (pure text; the warehouses run them)."""

from __future__ import annotations

from collections.abc import Sequence


def transaction_script(statements: Sequence[str]) -> str:
    """The one multi-statement BigQuery script of a transaction."""
    body = ";\n".join(s.strip().rstrip(";") for s in statements)
    return f"BEGIN TRANSACTION;\n{body};\nCOMMIT TRANSACTION;"


def create_table_as_sql(
    table_ref: str,
    sql: str,
    replace: bool = True,
    expiration_days: int | None = None,
    temporary: bool = False,
) -> str:
    """BigQuery DDL of `Warehouse.create_table_as` (a temporary table expires after a day in
    any case: it is dropped by the caller, and expires if it never gets to)."""
    if temporary and expiration_days is None:
        expiration_days = 1
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    options = ""
    if expiration_days is not None:
        options = (
            " OPTIONS(expiration_timestamp=TIMESTAMP_ADD(CURRENT_TIMESTAMP(), "
            f"INTERVAL {int(expiration_days)} DAY))"
        )
    return f"{verb} {table_ref}{options} AS\n{sql}"
