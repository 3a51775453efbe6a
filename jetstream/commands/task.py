"""`jetstream task <kind>`: one node of the task graph. The local runner runs it in a
subprocess and Argo in a pod, with the same arguments. Exit 0 when done (metric failures
are error rows), 75 on transient warehouse/network errors (retried), 2 on config errors.
The last stdout line is a JSON report."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jetstream.commands import options


def _run_id() -> str:
    return os.environ.get("JETSTREAM_RUN_ID") or uuid.uuid4().hex[:12]


def _execute(
    slug: str, experiments: str, config_repo: Path | None, warehouse: str, body: Callable
) -> None:
    from jetstream.commands.loading import load_one
    from jetstream.tasks.context import TaskContext
    from jetstream.warehouse import open_warehouse

    started = time.monotonic()
    spec = load_one(slug, experiments, config_repo)
    wh = open_warehouse(warehouse)
    try:
        ctx = TaskContext(wh, spec, _run_id())
        extra: dict[str, Any] = body(ctx) or {}
    finally:
        wh.close()
    report = {
        "status": "ok",
        "experiment": slug,
        "bytes_processed": ctx.bytes_processed,
        "seconds": round(time.monotonic() - started, 3),
        **extra,
    }
    click.echo(json.dumps(report, default=str))


@click.group()
def task() -> None:
    """Run one node of the task graph (what runners and pods call)."""


@task.command("ensure-enrollments")
@click.option("--experiment", "slug", required=True)
@options.date_option("--date", required=True)
@click.option("--recreate-enrollments", is_flag=True, help="Recompute enrollments.")
@options.common
def ensure_enrollments_cmd(
    slug, date, recreate_enrollments, experiments, config_repo, warehouse, out
):
    """Enrollments, exposures and window-dependent segments of an experiment."""
    from jetstream.tasks.enrollments import ensure_enrollments

    _execute(
        slug,
        experiments,
        config_repo,
        warehouse,
        lambda ctx: ensure_enrollments(ctx, date, recreate=recreate_enrollments),
    )


@task.command("metrics")
@click.option("--experiment", "slug", required=True)
@options.date_option("--date", required=True)
@click.option("--period", required=True)
@click.option("--data-source", required=True)
@options.metrics_option
@options.common
def metrics_cmd(slug, date, period, data_source, metrics, experiments, config_repo, warehouse, out):
    """Metrics of one data source for the window of a period due on a date, and their
    statistics."""
    from jetstream.periods import Period
    from jetstream.tasks.metrics import run_metrics_unit

    p = Period.parse(period)

    def body(ctx):
        from jetstream import hashing
        from jetstream.graph import metrics_of_node

        r = run_metrics_unit(ctx, date, p, data_source, metrics)
        chosen = metrics_of_node(ctx.spec, p, data_source)
        return {
            "definition_hash": hashing.digest([hashing.metric_hash(ctx.spec, m) for m in chosen]),
            "metrics_written": r.metrics_written,
            "metrics_failed": r.metrics_failed,
            "statistics_rows": r.statistics_rows,
        }

    _execute(slug, experiments, config_repo, warehouse, body)


@task.command("export")
@click.option("--experiment", "slug", required=True)
@options.date_option("--date")
@options.common
def export_cmd(slug, date, experiments, config_repo, warehouse, out):
    """Publish statistics, metadata and errors JSON of an experiment."""
    from jetstream.artifacts import open_store
    from jetstream.tasks.export import run_export

    store = open_store(out)
    _execute(
        slug,
        experiments,
        config_repo,
        warehouse,
        lambda ctx: {"files": len(run_export(ctx, store))},
    )
