"""`jetstream shred`: delete clients from every per-client table of every experiment
(enrollments, exposures, segments, partials, metric rows); see `jetstream.shred`.
Statistics are aggregates and hold no client ids; rerun an experiment to recompute them
without the shredded clients."""

from __future__ import annotations

from pathlib import Path

import click

from jetstream.commands.options import existing_warehouse


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
    from jetstream.shred import ShredError, shred
    from jetstream.warehouse import open_warehouse

    ids = [line.strip() for line in client_ids.read_text().splitlines() if line.strip()]
    wh = open_warehouse(warehouse)
    try:
        result = shred(wh, ids)
    except ShredError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        wh.close()
    for table, n in result.deleted.items():
        click.echo(f"{table}: {n} rows deleted")
    click.echo(f"shredded {len(ids)} client ids from {len(result.deleted)} tables")
    if result.compacted:
        click.echo(f"{warehouse}: file rewritten without the deleted rows")
    elif wh.name == "bigquery":
        click.echo(
            "BigQuery keeps deleted rows in time travel for the dataset's "
            "max_time_travel_hours (48-168), then 7 days in fail-safe storage"
        )
