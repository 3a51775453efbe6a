"""`jetstream shred`: delete clients from every per-client table of every experiment
(enrollments, exposures, segments, partials, metric rows). Statistics are aggregates and
hold no client ids; rerun an experiment to recompute them without the shredded clients."""

from __future__ import annotations

from pathlib import Path

import click

from jetstream.commands.options import existing_warehouse
from jetstream.sql.enrollments import CLIENT_KEY_COLUMN

PER_CLIENT_PREFIXES = (
    "enrollments_",
    "enrollment_clients_",
    "exposure_days_",
    "segments_",
    "segment_days_",
    "partials_",
    "metrics_",
)
SHRED_TABLE = "shred_client_ids"


def per_client_tables(wh) -> list[str]:
    tables = []
    for name in wh.list_tables():
        if not name.startswith(PER_CLIENT_PREFIXES):
            continue
        columns = {c.lower() for c in wh.table_columns(name)}
        if name.startswith("metrics_") and "metric_slug" not in columns:
            continue  # a metrics_<slug>_<period> pivot view: its base table is shredded
        if "analysis_id" in columns or CLIENT_KEY_COLUMN in columns:
            tables.append(name)
    return sorted(tables)


def shred_sql(wh, table: str) -> str:
    """DELETE of the listed clients from one table: by id, or by key in the per-day tables
    (keyed by `FARM_FINGERPRINT(analysis_id)`, see sql.enrollments)."""
    ids = f"SELECT client_id FROM {wh.table_ref(SHRED_TABLE)}"
    if "analysis_id" in {c.lower() for c in wh.table_columns(table)}:
        return f"DELETE FROM {wh.table_ref(table)} WHERE analysis_id IN ({ids})"
    keys = f"SELECT FARM_FINGERPRINT(client_id) FROM {wh.table_ref(SHRED_TABLE)}"
    return f"DELETE FROM {wh.table_ref(table)} WHERE {CLIENT_KEY_COLUMN} IN ({keys})"


def shred(wh, client_ids: list[str]) -> dict[str, int]:
    """Delete the clients everywhere, one transaction per table; returns rows deleted."""
    import pyarrow as pa

    if not client_ids:
        return {}
    wh.load_arrow(
        SHRED_TABLE, pa.table({"client_id": pa.array(client_ids, pa.string())}), mode="replace"
    )
    deleted: dict[str, int] = {}
    try:
        for table in per_client_tables(wh):
            stats = wh.transaction([shred_sql(wh, table)])
            deleted[table] = int(getattr(stats, "rows_affected", 0) or 0)
    finally:
        wh.drop_table(SHRED_TABLE)
    return deleted


@click.command()
@click.option(
    "--client-ids",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="File with one client id per line.",
)
@click.option(
    "--warehouse",
    envvar="JETSTREAM_WAREHOUSE",
    required=True,
    callback=existing_warehouse,
    help="duckdb:PATH (must exist) or bigquery:PROJECT.DATASET.",
)
def command(client_ids: Path, warehouse: str) -> None:
    """Delete clients from every table of every experiment."""
    from jetstream.warehouse import open_warehouse

    ids = [line.strip() for line in client_ids.read_text().splitlines() if line.strip()]
    wh = open_warehouse(warehouse)
    try:
        result = shred(wh, ids)
    finally:
        wh.close()
    for table, n in result.items():
        click.echo(f"{table}: {n} rows deleted")
    click.echo(f"shredded {len(ids)} client ids from {len(result)} tables")
