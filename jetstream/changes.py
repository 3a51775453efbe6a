"""Reruns of exactly what a config change touched.

Given the config repository before and after a change, every candidate experiment's
AnalysisSpec is resolved at both, and the definition hashes (`jetstream.hashing`) decide
what to redo, per experiment, in a `RerunPlan`:

- the enrollment-level hash changed (dates, branches, enrollment query, exposure signal,
  segments, ...): everything, enrollments included;
- otherwise, per period, the metrics whose metric hash or any statistic hash changed, or
  that are new in that period: those metrics only;
- metrics no longer analysed in a period: their rows are deleted from `metrics_<slug>` and
  `statistics_<slug>` (also when a metric moved to another data source, before it is
  recomputed);
- the end date alone: no day, week or days28 window is recomputed; the overall window is
  computed when it is due (the new end date has passed) and its old rows are deleted
  otherwise; windows closing after a shortened end are deleted; windows between an old
  end and a lengthened one that have closed are computed (the daily runs skipped them).

Planning and graph building are pure: the SQL of the cleanup is built by
`jetstream.sql.results`, the checkouts come from `jetstream.gitrepo`; resolving specs reads
them through `jetstream.config.load_spec`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from jetstream import hashing, results
from jetstream.config.model import AnalysisSpec, Metric
from jetstream.errors import ConfigError
from jetstream.graph import TaskGraph, TaskKind, TaskNode, plan_dates, source_of
from jetstream.logs import get_logger
from jetstream.periods import Period, window
from jetstream.sql import results as res_sql

log = get_logger(__name__)

WINDOWED = (Period.DAY, Period.WEEK, Period.DAYS28)
NOT_ANALYSED_STATUSES = ("draft", "preview", "review")
ENDED_LONG_AGO = dt.timedelta(days=90)
EXPERIMENT_CONFIG = re.compile(r"^jetstream/([^/]+)\.toml$")
NULL_COMMIT = "0" * 40


# -- values ------------------------------------------------------------------------------


@attrs.frozen
class Resolution:
    """One experiment resolved at one side of the change: a spec, or why it failed."""

    spec: AnalysisSpec | None = None
    error: str | None = None


def _periods_map(value: Mapping[Period, Iterable[str]]) -> dict[Period, tuple[str, ...]]:
    order = list(Period)
    items = sorted(
        ((Period(p), tuple(v)) for p, v in value.items()), key=lambda i: order.index(i[0])
    )
    return {p: v for p, v in items if v}


@attrs.frozen
class RerunPlan:
    """What to redo for one experiment after a config change.

    `recompute` and `removed` map period -> metric slugs; `delete_windows_from` maps period
    -> first window index whose rows are deleted (windows past a shortened end, or the old
    overall window); `compute_overall` asks for the overall window at `end_date`;
    `new_dates` are data dates whose day/week/days28 windows were never computed (end date
    lengthened after it had passed). `error` is set when the config is invalid after the
    change: nothing is scheduled for it.
    """

    slug: str
    everything: bool = False
    recompute: dict[Period, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_periods_map, hash=False
    )
    removed: dict[Period, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_periods_map, hash=False
    )
    delete_windows_from: dict[Period, int] = attrs.field(factory=dict, hash=False)
    compute_overall: bool = False
    new_dates: tuple[dt.date, ...] = ()
    end_date: dt.date | None = None
    reasons: tuple[str, ...] = ()
    error: str | None = None

    @property
    def metrics(self) -> frozenset[str]:
        """Every metric slug recomputed in some period."""
        return frozenset(m for names in self.recompute.values() for m in names)

    @property
    def removed_metrics(self) -> frozenset[str]:
        return frozenset(m for names in self.removed.values() for m in names)

    @property
    def deletes(self) -> bool:
        return bool(self.removed or self.delete_windows_from)

    @property
    def is_empty(self) -> bool:
        return not (
            self.everything
            or self.recompute
            or self.deletes
            or self.compute_overall
            or self.new_dates
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.slug,
            "everything": self.everything,
            "recompute": {p.value: list(v) for p, v in self.recompute.items()},
            "removed": {p.value: list(v) for p, v in self.removed.items()},
            "delete_windows_from": {p.value: i for p, i in self.delete_windows_from.items()},
            "compute_overall": self.compute_overall,
            "new_dates": [d.isoformat() for d in self.new_dates],
            "reasons": list(self.reasons),
            "error": self.error,
        }


# -- resolving ---------------------------------------------------------------------------


def affected_slugs(paths: Iterable[str]) -> frozenset[str] | None:
    """Experiments a set of changed repository paths can affect: the slugs of changed
    experiment configs (`jetstream/<slug>.toml`), or None when a shared file changed
    (definitions, defaults, outcomes, functions: any experiment may be affected). Files
    that are not TOML (docs, CI) affect nothing."""
    slugs: set[str] = set()
    for path in paths:
        if not path.endswith(".toml"):
            continue
        m = EXPERIMENT_CONFIG.match(path)
        if m is None:
            return None
        slugs.add(m.group(1))
    return frozenset(slugs)


def is_candidate(experiment: Any, as_of: dt.date) -> bool:
    """Whether an experiments-source record can have results worth redoing: started,
    not a rollout, not ended more than 90 days before `as_of`."""
    if getattr(experiment, "is_rollout", False) or getattr(experiment, "start_date", None) is None:
        return False
    end = getattr(experiment, "end_date", None)
    return end is None or as_of - end <= ENDED_LONG_AGO


def candidate_slugs(
    experiments: Mapping[str, Any], paths: Iterable[str] | None, as_of: dt.date
) -> list[str]:
    """Experiments to resolve at both sides: recent ones when a shared file changed, or
    exactly those whose own config changed (whatever their age)."""
    slugs = affected_slugs(paths) if paths is not None else None
    if slugs is not None:
        return [s for s in experiments if s in slugs]
    return [s for s, exp in experiments.items() if is_candidate(exp, as_of)]


def resolve_all(
    slugs: Iterable[str],
    experiments: Mapping[str, Any],
    config_repo: Path,
    load: Callable[..., AnalysisSpec] | None = None,
) -> dict[str, Resolution]:
    """Resolve each experiment against one checkout; a ConfigError is kept, not raised."""
    if load is None:
        from jetstream.config import load_spec

        load = load_spec
    out: dict[str, Resolution] = {}
    for slug in slugs:
        try:
            out[slug] = Resolution(spec=load(slug, experiments, config_repo))
        except ConfigError as exc:
            out[slug] = Resolution(error="; ".join(exc.problems))
    return out


# -- planning (pure) ---------------------------------------------------------------------


def _metric(spec: AnalysisSpec, name: str, period: Period) -> Metric | None:
    for s in spec.metrics.get(period, ()):
        if s.metric.name == name:
            return s.metric
    return spec.metric_definitions.get(name)


def _period_metrics(spec: AnalysisSpec, period: Period) -> tuple[str, ...]:
    names = dict.fromkeys(m.name for m in spec.metrics_for(period))
    names.update(dict.fromkeys(spec.metric_names.get(period, ())))
    return tuple(names)


def fingerprints(spec: AnalysisSpec) -> dict[Period, dict[str, tuple[str, str, tuple[str, ...]]]]:
    """period -> metric -> (data source, metric hash, sorted statistic hashes)."""
    out: dict[Period, dict[str, tuple[str, str, tuple[str, ...]]]] = {}
    for period in Period:
        per: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        for name in _period_metrics(spec, period):
            metric = _metric(spec, name, period)
            if metric is None:
                continue
            stats = sorted(
                hashing.statistic_hash(spec, s.metric, s.statistic)
                for s in spec.metrics.get(period, ())
                if s.metric.name == name
            )
            source = source_of(metric)
            per[name] = (source, hashing.metric_hash(spec, metric), tuple(stats))
        if per:
            out[period] = per
    return out


def analysis_dates(spec: AnalysisSpec, as_of: dt.date) -> list[dt.date]:
    """Data dates whose windows may hold results: last enrollment date to the end date
    (or `as_of`), for an experiment that is analysed at all."""
    exp = spec.experiment
    if exp.skip or exp.is_rollout or (exp.status or "").lower() in NOT_ANALYSED_STATUSES:
        return []
    first = exp.last_enrollment_date
    if first is None:
        return []
    last = min(exp.end_date, as_of) if exp.end_date else as_of
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def first_window_after(period: Period, last_enrollment: dt.date, end: dt.date) -> int:
    """Index of the first window of `period` that closes after `end`."""
    n = period.length
    assert n is not None
    offset = (end - last_enrollment).days
    # window k closes at E + n*k + n - 1; the first with n*k + n - 1 > offset
    return max(0, (offset - (n - 1)) // n + 1) if offset >= n - 1 else 0


def compare(slug: str, before: Resolution, after: Resolution, as_of: dt.date) -> RerunPlan:
    """The RerunPlan of one experiment from its resolution before and after a change."""
    if after.spec is None:
        reason = "config is invalid after the change; nothing scheduled"
        return RerunPlan(slug, reasons=(reason,), error=after.error or "unresolvable")
    new = after.spec
    end = new.experiment.end_date
    if not analysis_dates(new, as_of):
        return RerunPlan(slug, end_date=end, reasons=("not analysed yet (or not at all)",))
    if before.spec is None:
        return RerunPlan(
            slug,
            everything=True,
            end_date=end,
            reasons=("config was invalid or missing before the change",),
        )
    old = before.spec
    reasons: list[str] = []
    everything = hashing.enrollment_hash(old) != hashing.enrollment_hash(new)
    if everything:
        reasons.append("enrollment-level definition changed")
    fp_old, fp_new = fingerprints(old), fingerprints(new)
    recompute: dict[Period, list[str]] = {}
    removed: dict[Period, list[str]] = {}
    for period in Period:
        was, now = fp_old.get(period, {}), fp_new.get(period, {})
        for name, value in now.items():
            prior = was.get(name)
            if prior is None:
                recompute.setdefault(period, []).append(name)
                reasons.append(f"{period.value}: {name} added")
            elif prior != value:
                recompute.setdefault(period, []).append(name)
                what = "metric" if prior[1] != value[1] else "statistics"
                reasons.append(f"{period.value}: {name} {what} definition changed")
                if prior[0] != value[0]:
                    removed.setdefault(period, []).append(name)
        for name in was:
            if name not in now:
                removed.setdefault(period, []).append(name)
                reasons.append(f"{period.value}: {name} removed")

    delete_from: dict[Period, int] = {}
    compute_overall = False
    new_dates: list[dt.date] = []
    old_end = old.experiment.end_date
    last_enrollment = new.experiment.last_enrollment_date
    assert last_enrollment is not None
    if old_end != end:
        reasons.append(f"end date changed from {old_end} to {end}")
        if end is not None and end <= as_of:
            compute_overall = Period.OVERALL in new.periods
        elif Period.OVERALL in old.periods:
            delete_from[Period.OVERALL] = 0
        if end is not None and (old_end is None or end < old_end):
            for period in WINDOWED:
                if period in old.periods:
                    delete_from[period] = first_window_after(period, last_enrollment, end)
        if old_end is not None and (end is None or end > old_end) and old_end < as_of:
            stop = min(end, as_of) if end else as_of
            new_dates = [
                old_end + dt.timedelta(days=i) for i in range(1, (stop - old_end).days + 1)
            ]
    if everything:
        # a full rerun recomputes every window; rows of metrics gone still need deleting
        recompute = {}
        compute_overall = False
        new_dates = []
    return RerunPlan(
        slug,
        everything=everything,
        recompute={p: tuple(v) for p, v in recompute.items()},
        removed={p: tuple(v) for p, v in removed.items()},
        delete_windows_from=delete_from,
        compute_overall=compute_overall,
        new_dates=tuple(new_dates),
        end_date=end,
        reasons=tuple(reasons),
    )


def plan_changes(
    before: Mapping[str, Resolution], after: Mapping[str, Resolution], as_of: dt.date
) -> list[RerunPlan]:
    """A plan per experiment resolved after the change (in its order); empty plans kept."""
    return [
        compare(slug, before.get(slug, Resolution(error="not resolved")), res, as_of)
        for slug, res in after.items()
    ]


def build_graph(
    plans: Iterable[RerunPlan], specs: Mapping[str, AnalysisSpec], as_of: dt.date
) -> TaskGraph:
    """The task graph that carries the plans out, from `plan_dates(..., force=True)`; an
    experiment whose plan only deletes rows gets a lone export node (to republish)."""
    graphs: list[TaskGraph] = []
    for plan in plans:
        if plan.error is not None or plan.is_empty:
            continue
        spec = specs[plan.slug]
        dates = analysis_dates(spec, as_of)
        parts: list[TaskGraph] = []
        if plan.everything:
            parts.append(plan_dates([spec], dates, None, (), force=True))
        else:
            by_metrics: dict[tuple[str, ...], list[Period]] = {}
            for period, names in plan.recompute.items():
                by_metrics.setdefault(names, []).append(period)
            for names, periods in by_metrics.items():
                parts.append(plan_dates([spec], dates, periods, names, force=True))
            if plan.compute_overall and spec.experiment.end_date is not None:
                parts.append(
                    plan_dates([spec], [spec.experiment.end_date], [Period.OVERALL], (), True)
                )
            if plan.new_dates:
                windowed = [p for p in WINDOWED if p in spec.periods]
                if windowed:
                    parts.append(plan_dates([spec], list(plan.new_dates), windowed, (), True))
        merged = merge_graphs(parts)
        if not merged.nodes and plan.deletes and dates:
            merged = TaskGraph((TaskNode(TaskKind.EXPORT, spec.slug, date=dates[-1]),))
        graphs.append(merged)
    return merge_graphs(graphs)


def merge_graphs(graphs: Sequence[TaskGraph]) -> TaskGraph:
    """Union of graphs: nodes with the same id become one (latest date, all edges)."""
    merged: dict[str, TaskNode] = {}
    for graph in graphs:
        for node in graph.nodes:
            prior = merged.get(node.id)
            if prior is None:
                merged[node.id] = node
                continue
            date = max((d for d in (prior.date, node.date) if d is not None), default=None)
            depends = tuple(dict.fromkeys(prior.depends + node.depends))
            merged[node.id] = attrs.evolve(prior, date=date, depends=depends)
    # exports last within their experiment keeps the listing readable; order is not semantic
    return TaskGraph(tuple(merged.values()))


def cleanup_statements(
    plan: RerunPlan,
    ref: Callable[[str], str],
    exists: Callable[[str], bool] = lambda table: True,
) -> list[str]:
    """DELETE statements for a plan's removed metrics and dropped windows (BigQuery SQL;
    `ref` maps a table name to its reference; tables for which `exists` is false are
    skipped). Run before the graph."""
    if plan.error is not None:
        return []
    tables = [
        (ref(name), column)
        for name, column in (
            (results.metrics_table(plan.slug), res_sql.METRICS_METRIC_COLUMN),
            (results.statistics_table(plan.slug), res_sql.STATISTICS_METRIC_COLUMN),
        )
        if exists(name)
    ]
    return res_sql.cleanup_sql(
        tables,
        {p.value: names for p, names in plan.removed.items()},
        {p.value: first for p, first in plan.delete_windows_from.items()},
    )


def tables_to_drop(plan: RerunPlan) -> list[str]:
    """Tables a full rerun recreates (enrollments and what derives from them)."""
    if not plan.everything or plan.error is not None:
        return []
    slug = plan.slug
    return [
        results.enrollments_table(slug),
        results.enrollment_staging_table(slug),
        results.exposure_days_table(slug),
        results.segments_table(slug),
    ]


def window_close(period: Period, index: int, last_enrollment: dt.date) -> dt.date:
    """The data date on which window `index` of a windowed period closes."""
    return last_enrollment + dt.timedelta(days=window(period, index).end)


def describe(plans: Iterable[RerunPlan], graph: TaskGraph) -> str:
    lines = []
    for plan in plans:
        if plan.error:
            lines.append(f"{plan.slug}: config error: {plan.error}")
        elif plan.is_empty:
            continue
        elif plan.everything:
            lines.append(f"{plan.slug}: everything ({'; '.join(plan.reasons)})")
        else:
            lines.append(f"{plan.slug}: {'; '.join(plan.reasons)}")
    lines.append(f"{len(graph.nodes)} tasks")
    return "\n".join(lines)


# -- the whole computation ---------------------------------------------------------------


@attrs.frozen
class ChangeAnalysis:
    plans: tuple[RerunPlan, ...]
    graph: TaskGraph
    specs: dict[str, AnalysisSpec] = attrs.field(hash=False)
    changed: tuple[str, ...] | None = None  # changed paths, when known

    @property
    def active(self) -> list[RerunPlan]:
        return [p for p in self.plans if p.error or not p.is_empty]

    def to_json(self) -> dict[str, Any]:
        return {
            "experiments": [p.to_json() for p in self.active],
            "tasks": [n.id for n in self.graph.nodes],
            "changed_paths": list(self.changed) if self.changed is not None else None,
        }


def analyse_change(
    experiments: Mapping[str, Any],
    before_repo: Path,
    after_repo: Path,
    as_of: dt.date,
    changed: Sequence[str] | None = None,
    slugs: Sequence[str] = (),
) -> ChangeAnalysis:
    """Resolve candidates at both checkouts, compare, and build the graph."""
    candidates = list(slugs) if slugs else candidate_slugs(experiments, changed, as_of)
    before = resolve_all(candidates, experiments, before_repo)
    after = resolve_all(candidates, experiments, after_repo)
    plans = plan_changes(before, after, as_of)
    specs = {s: r.spec for s, r in after.items() if r.spec is not None}
    graph = build_graph(plans, specs, as_of)
    log.info(
        "config change analysed",
        candidates=len(candidates),
        experiments=[p.slug for p in plans if not p.is_empty],
        tasks=len(graph.nodes),
    )
    return ChangeAnalysis(
        tuple(plans), graph, specs, tuple(changed) if changed is not None else None
    )


# Commit-message tags that ask for a config change to be applied without a rerun (the
# spellings metric-hub's CI honours).
RERUN_SKIP_TAGS = ("[ci rerun-skip]", "[ci rerun_skip]", "[ci skip-rerun]", "[ci skip_rerun]")


def rerun_skip_requested(message: str | None) -> bool:
    """Whether a commit message asks to skip the rerun of its config change (one of
    `RERUN_SKIP_TAGS`, any case). The webhook calls it with the pushed head commit's
    message; `jetstream rerun-config-changed` with the config repository's HEAD."""
    text = (message or "").lower()
    return any(tag in text for tag in RERUN_SKIP_TAGS)


def yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
