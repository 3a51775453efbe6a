"""`jetstream monitor run` (one job) and `jetstream monitor serve` (jobs on their schedules
and the live page)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from jetstream.monitoring.schedule import Job


def _time(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or isinstance(value, dt.datetime):
        return value
    from jetstream.monitoring.schedule import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _options(fn: Callable) -> Callable:
    for opt in reversed(
        [
            click.option("--warehouse", envvar="JETSTREAM_WAREHOUSE",
                         default="duckdb:jetstream.duckdb", show_default=True,
                         help="duckdb:PATH or bigquery:PROJECT.DATASET."),
            click.option("--out", envvar="JETSTREAM_OUT", default="jetstream-output",
                         show_default=True,
                         help="Where monitoring/*.json goes: a directory or gs://BUCKET[/PREFIX]."),
            click.option("--events-table", envvar="JETSTREAM_MONITOR_EVENTS_TABLE",
                         default="telemetry.events_live", show_default=True,
                         help="Live enrollment events."),
            click.option("--search-table", envvar="JETSTREAM_MONITOR_SEARCH_TABLE",
                         default="telemetry.search_live", show_default=True,
                         help="Live search counts per client and 5-minute window."),
            click.option("--table-prefix", envvar="JETSTREAM_MONITOR_PREFIX",
                         default="monitoring_", show_default=True,
                         help="Prefix of the aggregate tables."),
        ]
    ):  # fmt: skip
        fn = opt(fn)
    return fn


def _settings(events_table: str, search_table: str, table_prefix: str) -> Any:
    from jetstream.monitoring.jobs import MonitoringSettings

    return MonitoringSettings(
        events_table=events_table, search_table=search_table, prefix=table_prefix
    )


def _require_warehouse(warehouse: str) -> None:
    from jetstream.commands.options import missing_duckdb

    missing = missing_duckdb(warehouse)
    if missing is not None:
        raise click.BadParameter(
            f"{warehouse!r}: {missing} does not exist (the live tables are read from it; "
            "`jetstream synthetic --live` writes a demo one, or use serve --demo)",
            param_hint="--warehouse",
        )


@click.group()
def group() -> None:
    """Live enrollment monitoring: five-minute, hourly and daily jobs, and the live page."""


@group.command("run")
@click.option("--job", type=click.Choice([j.value for j in Job]), required=True,
              help="five-minute: recents, derived tables, JSON; hourly: the last complete "
                   "hour; daily: the previous UTC day.")  # fmt: skip
@click.option("--at", callback=_time, default=None, metavar="TIMESTAMP",
              help="Run as of this time (ISO 8601, UTC if naive; default: now). Argo passes "
                   "the scheduled time, so a retried run does the same work.")  # fmt: skip
@click.option(
    "--experiments",
    envvar="JETSTREAM_EXPERIMENTS",
    required=True,
    help="Experiments JSON file (Experimenter v8 shape) or Experimenter API URL.",
)
@_options
def run(job: str, at: dt.datetime | None, experiments: str, warehouse: str, out: str,
        events_table: str, search_table: str, table_prefix: str) -> None:  # fmt: skip
    """Run one monitoring job."""
    from jetstream.artifacts import open_store
    from jetstream.experiments import load_experiments
    from jetstream.monitoring.jobs import Monitor
    from jetstream.warehouse import open_warehouse

    _require_warehouse(warehouse)
    when = at or dt.datetime.now(dt.UTC)
    exps = list(load_experiments(experiments).values())
    wh = open_warehouse(warehouse)
    try:
        monitor = Monitor(wh, _settings(events_table, search_table, table_prefix))
        result = monitor.run(Job(job), when, exps, open_store(out))
    finally:
        wh.close()
    click.echo(
        f"{job} at {when.isoformat()}: {len(result.experiments)} live experiment(s), "
        f"{len(result.hours)} hour(s) materialized, {len(result.files)} file(s) written"
    )
    flagged = sorted(s for s, doc in result.health.items() if not doc.get("ok", True))
    if flagged:
        click.echo(f"health flags raised: {', '.join(flagged)}")


@group.command("serve")
@click.option("--experiments", envvar="JETSTREAM_EXPERIMENTS", default=None,
              help="Experiments JSON file or Experimenter URL (re-read every run). "
                   "Optional with --demo.")  # fmt: skip
@_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8050, show_default=True)
@click.option(
    "--demo",
    is_flag=True,
    help="Generate a synthetic live event stream into the warehouse before every "
    "five-minute run (the demo experiments are used without --experiments).",
)
@click.option("--demo-clients", type=int, default=20_000, show_default=True)
@click.option("--tick", type=float, default=0.0,
              help="Run the five-minute job every TICK seconds at the current time instead "
                   "of on its schedule (demo).")  # fmt: skip
def serve(experiments: str | None, warehouse: str, out: str, events_table: str,
          search_table: str, table_prefix: str, host: str, port: int, demo: bool,
          demo_clients: int, tick: float) -> None:  # fmt: skip
    """Run the jobs on their schedules and serve the auto-refreshing page."""
    import threading

    from jetstream.extras import require

    require("webhook", "jetstream monitor serve")
    import uvicorn

    from jetstream.artifacts import open_store
    from jetstream.experiments import load_experiments
    from jetstream.monitoring.jobs import Monitor
    from jetstream.monitoring.server import DemoStream, Scheduler, app, demo_experiments
    from jetstream.warehouse import open_warehouse

    if experiments is None and not demo:
        raise click.UsageError("--experiments is required (or use --demo)")
    if not demo:
        _require_warehouse(warehouse)

    def current() -> list:
        if experiments is None:
            return demo_experiments(dt.datetime.now(dt.UTC).date())
        return list(load_experiments(experiments).values())

    store = open_store(out)
    monitor = Monitor(
        open_warehouse(warehouse), _settings(events_table, search_table, table_prefix)
    )
    scheduler = Scheduler(
        monitor, current, store, DemoStream(clients=demo_clients) if demo else None, tick
    )
    thread = threading.Thread(target=scheduler.loop, name="monitor-scheduler", daemon=True)
    thread.start()
    click.echo(f"monitoring page on http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        uvicorn.run(app(store), host=host, port=port, log_level="warning")
    finally:
        scheduler.stop.set()
        thread.join(timeout=30)
