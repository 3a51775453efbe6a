"""`jetstream task <kind>`: one node of the task graph. The local runner runs it in a
subprocess and Argo in a pod, with the same arguments. Exit 0 when done (metric failures
are error rows), 75 on transient warehouse/network errors (retried), 2 on config errors.
The last stdout line is a JSON report. What each kind does is `jetstream.tasks.dispatch`."""

from __future__ import annotations

import datetime as dt
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
    from jetstream.commands.loading import load_one_with_record
    from jetstream.tasks.context import TaskContext
    from jetstream.tasks.dispatch import run_task
    from jetstream.warehouse import open_warehouse

    started = time.monotonic()
    began = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {"experiment": slug}
    code = 1
    try:
        spec, record = load_one_with_record(slug, experiments, config_repo)
        wh = open_warehouse(warehouse)
        try:
            ctx = TaskContext(
                wh,
                spec,
                _run_id(),
                config_repo=str(config_repo) if config_repo else None,
                record=record,
            )
            extra: dict[str, Any] = run_task(ctx, req) or {}
        finally:
            report.update(_costs(wh))
            wh.close()
        report = {
            "status": "ok",
            **report,
            "bytes_processed": ctx.bytes_processed,
            "seconds": round(time.monotonic() - started, 3),
            **extra,
        }
        code = 0
    except BaseException as exc:
        code = _exit_code(exc)
        report["error"] = str(exc)[-4000:]
        raise
    finally:
        if os.environ.get(RECORD_ENV):
            _record_attempt(warehouse, slug, req, began, code, report)
    click.echo(json.dumps(report, default=str))


RECORD_ENV = "JETSTREAM_RECORD_RUN"  # set by the Argo runner: no local runner records
ATTEMPT_ENV = "JETSTREAM_ATTEMPT"  # Argo's {{retries}}: 0 for the first attempt


def _costs(wh: Any) -> dict[str, Any]:
    costs = getattr(wh, "costs", None)
    if costs is None:
        return {}
    return {"bytes_estimated": costs.bytes_estimated, "bytes_billed": costs.bytes_billed}


def _exit_code(exc: BaseException) -> int:
    from jetstream.errors import JetstreamError

    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    return int(getattr(exc, "exit_code", 1)) if isinstance(exc, JetstreamError) else 1


def _record_attempt(
    warehouse: str,
    slug: str,
    req: TaskRequest,
    began: dt.datetime,
    code: int,
    report: dict[str, Any],
) -> None:
    """Under Argo, the task writes its own `runs` row (the local runner writes it there):
    the same columns, with the dry-run estimates and billed bytes of its jobs."""
    import jetstream
    from jetstream.graph import TaskNode
    from jetstream.logs import get_logger
    from jetstream.runners.local import WarehouseRunRecorder

    node = TaskNode(req.kind, slug, req.date, req.period, req.data_source, req.metrics)
    ended = dt.datetime.now(dt.UTC)
    try:
        attempt = int(os.environ.get(ATTEMPT_ENV) or 0) + 1
    except ValueError:
        attempt = 1
    row = {
        "run_id": _run_id(),
        "node_id": node.id,
        "kind": req.kind.value,
        "experiment": slug,
        "attempt": attempt,
        "definition_hash": report.get("definition_hash"),
        "code_version": jetstream.__version__,
        "status": "succeeded" if code == 0 else ("retrying" if code == 75 else "failed"),
        "exit_code": code,
        "started_at": began,
        "ended_at": ended,
        "seconds": (ended - began).total_seconds(),
        "bytes_processed": report.get("bytes_processed"),
        "rows": report.get("rows"),
        "error": report.get("error"),
        "bytes_estimated": report.get("bytes_estimated"),
        "bytes_billed": report.get("bytes_billed"),
    }
    try:
        WarehouseRunRecorder(warehouse).record([row])
    except Exception as exc:  # the record never changes the task's outcome
        get_logger("jetstream.task").warning("runs row not recorded", error=str(exc))


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
