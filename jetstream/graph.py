"""The task graph: for a date and a set of analysis specs, which units of work run and in
what order. Pure: no I/O. Each node is exactly one CLI call, `jetstream task <kind> ...`,
so the local runner and Argo run the same commands."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from collections.abc import Iterable, Sequence

import attrs

from jetstream.config.model import AnalysisSpec, Metric
from jetstream.periods import Period, due_window

DERIVED_SOURCE = "derived"  # pseudo data source for metrics computed from other metrics
ENDED_LONG_AGO = dt.timedelta(days=90)


class TaskKind(enum.StrEnum):
    ENSURE_ENROLLMENTS = "ensure-enrollments"
    METRICS = "metrics"
    EXPORT = "export"


@attrs.frozen
class TaskNode:
    kind: TaskKind
    slug: str
    date: dt.date | None = None
    period: Period | None = None
    data_source: str | None = None
    metrics: tuple[str, ...] = ()  # restrict to these metric slugs (empty: all)
    depends: tuple[str, ...] = ()  # ids of nodes this one waits for

    @property
    def id(self) -> str:
        parts = [self.kind.value, self.slug]
        if self.period is not None:
            parts.append(self.period.value)
        if self.data_source is not None:
            parts.append(self.data_source)
        if self.date is not None and self.kind is TaskKind.METRICS:
            parts.append(self.date.isoformat())
        if self.metrics:
            parts.append("+".join(self.metrics))
        return "/".join(parts)

    @property
    def name(self) -> str:
        """A DNS-1123 label usable as an Argo task name (<= 63 chars, unique per graph)."""
        return dns_label(self.id)

    def args(self) -> list[str]:
        """The node's own CLI arguments after `jetstream task`: kind first, then flags."""
        out = [self.kind.value, "--experiment", self.slug]
        if self.date is not None:
            out += ["--date", self.date.isoformat()]
        if self.period is not None:
            out += ["--period", self.period.value]
        if self.data_source is not None:
            out += ["--data-source", self.data_source]
        for m in self.metrics:
            out += ["--metric", m]
        return out


@attrs.frozen
class TaskGraph:
    nodes: tuple[TaskNode, ...]

    def by_id(self) -> dict[str, TaskNode]:
        return {n.id: n for n in self.nodes}

    def topological(self) -> list[TaskNode]:
        """Nodes in dependency order (stable); raises ValueError on a cycle or dangling edge."""
        ids = self.by_id()
        order: list[TaskNode] = []
        state: dict[str, int] = {}

        def visit(node_id: str, path: tuple[str, ...]) -> None:
            if state.get(node_id) == 2:
                return
            if state.get(node_id) == 1:
                raise ValueError(f"cycle in task graph: {' -> '.join(path + (node_id,))}")
            if node_id not in ids:
                raise ValueError(f"task {path[-1]!r} depends on unknown task {node_id!r}")
            state[node_id] = 1
            for dep in ids[node_id].depends:
                visit(dep, path + (node_id,))
            state[node_id] = 2
            order.append(ids[node_id])

        for n in self.nodes:
            visit(n.id, ())
        return order

    @property
    def experiments(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.slug for n in self.nodes))


def dns_label(text: str, limit: int = 63) -> str:
    """Lower-case alphanumerics and '-', unique-ish via a short hash when truncated."""

    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)
    if len(label) > limit:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        label = label[: limit - 9].rstrip("-") + "-" + digest
    return label or "x"


def skip_reason(spec: AnalysisSpec, date: dt.date) -> str | None:
    """Why an experiment yields no nodes on `date`, or None when it is analysed."""
    exp = spec.experiment
    if exp.skip:
        return "skip = true in its config"
    if exp.is_rollout:
        return "rollouts are not analysed"
    status = (exp.status or "").lower()
    if status in ("draft", "preview", "review"):
        return f"status is {status}"
    if exp.start_date is None:
        return "no start date"
    last = exp.last_enrollment_date
    assert last is not None
    if date < last:
        return "still enrolling"
    if exp.end_date is not None and date - exp.end_date > ENDED_LONG_AGO:
        return "ended more than 90 days ago"
    if exp.end_date is not None and date > exp.end_date:
        return "ended"
    return None


def source_of(metric: Metric) -> str:
    """The node a metric is computed in: its data source, or `derived` for metrics
    computed from other metrics."""
    return metric.data_source.name if metric.data_source is not None else DERIVED_SOURCE


def metrics_of_node(spec: AnalysisSpec, period: Period, data_source: str) -> list[Metric]:
    """The metrics one metrics node computes (before any --metric restriction)."""
    return [m for m in spec.metrics_for(period) if source_of(m) == data_source]


def data_sources_for(spec: AnalysisSpec, period: Period) -> list[str]:
    names: dict[str, None] = {}
    for m in spec.metrics_for(period):
        names[source_of(m)] = None
    # derived last: it reads the others' rows
    ordered = [n for n in names if n != DERIVED_SOURCE]
    if DERIVED_SOURCE in names:
        ordered.append(DERIVED_SOURCE)
    return ordered


def plan(
    specs: Iterable[AnalysisSpec],
    date: dt.date,
    periods: Sequence[Period] | None = None,
    metrics: Sequence[str] = (),
) -> TaskGraph:
    """The daily graph: ensure-enrollments -> metrics(period, data source) -> export.

    Covariate-adjusted statistics read pre-enrollment rows, so every post-enrollment node of
    an experiment that has any covariate adjustment depends on its pre-enrollment nodes.
    At most (data sources x due periods) + 2 nodes per experiment.
    """
    return plan_dates(specs, [date], periods, metrics)


def plan_dates(
    specs: Iterable[AnalysisSpec],
    dates: Sequence[dt.date],
    periods: Sequence[Period] | None = None,
    metrics: Sequence[str] = (),
    force: bool = False,
) -> TaskGraph:
    """The graph over several data dates (reruns, backfills): one ensure-enrollments and one
    export node per experiment, metrics nodes for every window due on any of the dates.
    `force` ignores the skip rules other than missing dates (explicit reruns)."""
    nodes: list[TaskNode] = []
    for spec in specs:
        exp = spec.experiment
        usable = [d for d in sorted(set(dates)) if _analysable(spec, d, force)]
        if not usable:
            continue
        last = exp.last_enrollment_date
        assert last is not None
        enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, spec.slug, date=usable[-1])
        exp_nodes: list[TaskNode] = []
        for date in usable:
            for period in spec.periods:
                if periods and period not in periods:
                    continue
                if due_window(period, date, last, exp.end_date, exp.is_complete) is None:
                    continue
                for ds in data_sources_for(spec, period):
                    chosen = _restrict(spec, period, ds, metrics)
                    if chosen is None:
                        continue
                    exp_nodes.append(
                        TaskNode(TaskKind.METRICS, spec.slug, date, period, ds, chosen, (enr.id,))
                    )
        if not exp_nodes:
            continue
        exp_nodes = _wire_dependencies(spec, exp_nodes)
        export = TaskNode(
            TaskKind.EXPORT, spec.slug, date=usable[-1], depends=tuple(n.id for n in exp_nodes)
        )
        nodes += [enr, *exp_nodes, export]
    return TaskGraph(tuple(nodes))


def _analysable(spec: AnalysisSpec, date: dt.date, force: bool) -> bool:
    reason = skip_reason(spec, date)
    if reason is None:
        return True
    if not force:
        return False
    # an explicit rerun still needs a started, enrolled, not-yet-ended window
    exp = spec.experiment
    last = exp.last_enrollment_date
    return (
        last is not None
        and date >= last
        and (exp.end_date is None or date <= exp.end_date)
        and not exp.is_rollout
    )


def _restrict(
    spec: AnalysisSpec, period: Period, ds: str, metrics: Sequence[str]
) -> tuple[str, ...] | None:
    """Metric restriction for a node: () for all, None when the node has none of them."""
    if not metrics:
        return ()
    names = [m.name for m in metrics_of_node(spec, period, ds) if m.name in metrics]
    return tuple(names) if names else None


def _wire_dependencies(spec: AnalysisSpec, nodes: list[TaskNode]) -> list[TaskNode]:
    has_covariates = any(
        s.statistic.covariate_adjustment is not None
        for summaries in spec.metrics.values()
        for s in summaries
    )
    pre_ids = tuple(n.id for n in nodes if n.period is not None and n.period.is_preenrollment)
    out: list[TaskNode] = []
    for n in nodes:
        deps = list(n.depends)
        if has_covariates and n.period is not None and not n.period.is_preenrollment:
            deps += pre_ids
        if n.data_source == DERIVED_SOURCE:
            deps += [
                o.id for o in nodes if o.period == n.period and o.data_source != DERIVED_SOURCE
            ]
        out.append(attrs.evolve(n, depends=tuple(dict.fromkeys(deps))))
    return out
