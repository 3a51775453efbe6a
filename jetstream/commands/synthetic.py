"""`jetstream synthetic`: write deterministic synthetic telemetry into a warehouse."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click

from jetstream.synthetic import DEFAULT_DAYS, DEFAULT_START_DATE


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.command()
@click.option(
    "--warehouse",
    envvar="JETSTREAM_WAREHOUSE",
    required=True,
    help="duckdb:PATH (or any URI open_warehouse accepts).",
)
@click.option("--clients", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=DEFAULT_DAYS,
    show_default=True,
    help="Days from --start-date on; the 28 pre-period days before it are always added.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--start-date",
    callback=_date,
    default=DEFAULT_START_DATE.isoformat(),
    show_default=True,
    metavar="YYYY-MM-DD",
    help="First enrollment day of the synthetic experiments.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Write only the live monitoring tables (telemetry.events_live, "
    "telemetry.search_live) for the hours up to now.",
)
@click.option("--live-hours", type=click.IntRange(min=1), default=24, show_default=True)
@click.option(
    "--glean",
    is_flag=True,
    help="Also write the Glean tables of the mobile experiments (fenix, firefox_ios; "
    "jetstream/synthetic/glean.py), and add them to --experiments-out.",
)
@click.option(
    "--experiments-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the matching Experimenter v8 JSON (dated from --start-date) here.",
)
def command(
    warehouse: str,
    clients: int,
    days: int,
    seed: int,
    start_date: dt.date,
    live: bool,
    live_hours: int,
    glean: bool,
    experiments_out: Path | None,
) -> None:
    """Generate deterministic synthetic telemetry (same arguments, same tables) with known
    per-branch effects, and load it into WAREHOUSE. Tables: telemetry.events,
    telemetry.clients_daily, search.search_clients_engines_sources_daily,
    telemetry.desktop_active_users, demo.feature_events, synthetic_truth."""
    from jetstream import synthetic
    from jetstream.logs import get_logger
    from jetstream.warehouse import open_warehouse

    log = get_logger("jetstream.synthetic")
    started = time.monotonic()
    wh = open_warehouse(warehouse)
    try:
        if live:
            now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
            rows = synthetic.write(
                wh, synthetic.generate_live(clients, seed, now, hours=live_hours)
            )
        else:
            rows = synthetic.write(wh, synthetic.iter_tables(clients, days, seed, start_date))
            if glean:
                rows.update(
                    synthetic.write(wh, synthetic.generate_glean(clients, days, seed, start_date))
                )
    finally:
        close = getattr(wh, "close", None)
        if close is not None:
            close()
    if experiments_out is not None:
        records = synthetic.experimenter_records(start_date)
        if glean:
            records += synthetic.experimenter_records(
                start_date, experiments=synthetic.GLEAN_EXPERIMENTS
            )
        experiments_out.write_text(json.dumps(records, indent=2) + "\n")
    elapsed = time.monotonic() - started
    for name, n in rows.items():
        click.echo(f"{name}: {n:,} rows")
    log.info("synthetic data written", warehouse=warehouse, tables=rows, seconds=round(elapsed, 2))
