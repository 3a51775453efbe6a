"""`jetstream task <kind>`: one node of the task graph. The local runner runs it in a
subprocess and Argo in a pod, with the same arguments. Exit 0 when done (metric failures
are error rows), 75 on transient warehouse/network errors (retried), 2 on config errors.
The last stdout line is a JSON report. What each kind does is `jetstream.tasks.dispatch`."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from jetstream.commands import options

if TYPE_CHECKING:
    from jetstream.tasks.dispatch import TaskRequest


def _run_id() -> str:
    return os.environ.get("JETSTREAM_RUN_ID") or uuid.uuid4().hex[:12]


def _execute(
    slug: str, experiments: str, config_repo: Path | None, warehouse: str, req: TaskRequest
) -> None:
    from jetstream.commands.loading import load_one
    from jetstream.tasks.context import TaskContext
    from jetstream.tasks.dispatch import run_task
    from jetstream.warehouse import open_warehouse

    started = time.monotonic()
    spec = load_one(slug, experiments, config_repo)
    wh = open_warehouse(warehouse)
    try:
        ctx = TaskContext(
            wh,
            spec,
            _run_id(),
            config_repo=str(config_repo) if config_repo else None,
            experiments=experiments,
        )
        extra: dict[str, Any] = run_task(ctx, req) or {}
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
    from jetstream.graph import TaskKind
    from jetstream.tasks.dispatch import TaskRequest

    req = TaskRequest(TaskKind.ENSURE_ENROLLMENTS, date, recreate_enrollments=recreate_enrollments)
    _execute(slug, experiments, config_repo, warehouse, req)


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
    from jetstream.graph import TaskKind
    from jetstream.periods import Period
    from jetstream.tasks.dispatch import TaskRequest

    req = TaskRequest(TaskKind.METRICS, date, Period.parse(period), data_source, tuple(metrics))
    _execute(slug, experiments, config_repo, warehouse, req)


@task.command("export")
@click.option("--experiment", "slug", required=True)
@options.date_option("--date")
@options.common
def export_cmd(slug, date, experiments, config_repo, warehouse, out):
    """Publish statistics, metadata and errors JSON of an experiment."""
    from jetstream.graph import TaskKind
    from jetstream.tasks.dispatch import TaskRequest

    _execute(slug, experiments, config_repo, warehouse, TaskRequest(TaskKind.EXPORT, date, out=out))
