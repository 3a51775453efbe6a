"""The one task-kind dispatch: kind name -> task body. `jetstream task <kind>` (a local
worker or an Argo pod) and the in-process runner (preview) both call `run_task`.

A body gets the task context and the node's parameters and returns the extra fields of
the task's JSON report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from jetstream.graph import TaskKind, TaskNode
from jetstream.periods import Period
from jetstream.tasks.context import TaskContext


@attrs.frozen
class TaskRequest:
    """What one node asks for: its kind and parameters, and where export publishes."""

    kind: TaskKind
    date: dt.date | None = None
    period: Period | None = None
    data_source: str | None = None
    metrics: tuple[str, ...] = ()
    recreate_enrollments: bool = False
    out: str = ""  # artifact store location (export)

    @classmethod
    def of_node(
        cls, node: TaskNode, out: str = "", recreate_enrollments: bool = False
    ) -> TaskRequest:
        return cls(
            node.kind,
            node.date,
            node.period,
            node.data_source,
            node.metrics,
            recreate_enrollments=recreate_enrollments,
            out=out,
        )


def _ensure_enrollments(ctx: TaskContext, req: TaskRequest) -> dict[str, Any]:
    from jetstream.tasks.enrollments import ensure_enrollments

    if req.date is None:
        raise ValueError("ensure-enrollments needs a date")
    ensure_enrollments(ctx, req.date, recreate=req.recreate_enrollments)
    return {}


def _metrics(ctx: TaskContext, req: TaskRequest) -> dict[str, Any]:
    from jetstream import hashing
    from jetstream.graph import metrics_of_node
    from jetstream.tasks.metrics import run_metrics_unit

    if req.date is None or req.period is None or req.data_source is None:
        raise ValueError("a metrics task needs a date, a period and a data source")
    r = run_metrics_unit(ctx, req.date, req.period, req.data_source, req.metrics)
    chosen = metrics_of_node(ctx.spec, req.period, req.data_source)
    return {
        "definition_hash": hashing.digest([hashing.metric_hash(ctx.spec, m) for m in chosen]),
        "metrics_written": r.metrics_written,
        "metrics_failed": r.metrics_failed,
        "statistics_rows": r.statistics_rows,
    }


def _export(ctx: TaskContext, req: TaskRequest) -> dict[str, Any]:
    from jetstream.artifacts import open_store
    from jetstream.tasks.export import run_export

    return {"files": len(run_export(ctx, open_store(req.out)))}


TASKS: Mapping[str, Callable[[TaskContext, TaskRequest], dict[str, Any]]] = {
    TaskKind.ENSURE_ENROLLMENTS.value: _ensure_enrollments,
    TaskKind.METRICS.value: _metrics,
    TaskKind.EXPORT.value: _export,
}


def run_task(ctx: TaskContext, req: TaskRequest) -> dict[str, Any]:
    """Run one task body; returns the extra fields of its report."""
    return TASKS[TaskKind(req.kind).value](ctx, req)
