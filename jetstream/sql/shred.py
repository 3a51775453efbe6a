"""DELETE statements that remove clients from one per-client table.

The ids are never inlined nor loaded into a table: they are bound as the array parameter
`@client_ids`, so they reach neither a table of the warehouse (which BigQuery keeps in time
travel) nor the DuckDB file. Tables keyed by id carry `analysis_id`; the per-day tables are
keyed by `FARM_FINGERPRINT(analysis_id)` (`sql.enrollments.CLIENT_KEY_COLUMN`)."""

from __future__ import annotations

from jetstream.sql.enrollments import CLIENT_KEY_COLUMN

IDS_PARAM = "client_ids"
ID_COLUMN = "analysis_id"


def delete_clients(table_ref: str, columns: set[str]) -> str:
    """DELETE of the clients `@client_ids` from `table_ref` (a quoted reference), by id when
    the table has `analysis_id`, else by client key. `columns`: the table's, lower-case."""
    if ID_COLUMN in columns:
        return f"DELETE FROM {table_ref} WHERE {ID_COLUMN} IN UNNEST(@{IDS_PARAM})"
    if CLIENT_KEY_COLUMN in columns:
        return (
            f"DELETE FROM {table_ref} WHERE {CLIENT_KEY_COLUMN} IN "
            f"(SELECT FARM_FINGERPRINT(shredded) FROM UNNEST(@{IDS_PARAM}) AS shredded)"
        )
    raise ValueError(f"{table_ref} has neither {ID_COLUMN} nor {CLIENT_KEY_COLUMN}")
