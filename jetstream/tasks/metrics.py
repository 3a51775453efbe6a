"""`metrics`: one unit = (experiment, date, period, data source). Computes the due window's
metric values for every basis, stores them row-per-metric (delete + insert in one
transaction), then computes and stores their statistics. A failing metric becomes an error
row; the others complete."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import attrs

from jetstream import hashing, results
from jetstream.config.model import AnalysisBasis, Metric
from jetstream.errors import TransientError
from jetstream.graph import DERIVED_SOURCE, metrics_of_node, source_of
from jetstream.periods import Period, Window, due_window
from jetstream.sql import metrics as met_sql
from jetstream.sql import results as res_sql
from jetstream.tasks import statistics as task_statistics
from jetstream.tasks.context import ErrorCollector, TaskContext, log
from jetstream.tasks.partials import ensure_days
from jetstream.tasks.staging import Staged, bases_for, exposures_within_enrollments

Wide = Callable[[list[met_sql.MetricPlan]], str]  # metric plans -> staging query


@attrs.frozen
class UnitResult:
    metrics_written: int
    metrics_failed: int
    statistics_rows: int


def source_metrics(ctx: TaskContext, data_source: str) -> list[Metric]:
    """Every metric of a data source across all periods (the partials' leaf set), by name."""
    seen: dict[str, Metric] = {}
    for period in ctx.spec.periods:
        for m in ctx.spec.metrics_for(period):
            if source_of(m) == data_source:
                seen.setdefault(m.name, m)
    return [seen[k] for k in sorted(seen)]


def run_metrics_unit(
    ctx: TaskContext,
    date: dt.date,
    period: Period,
    data_source: str,
    only: Sequence[str] = (),
) -> UnitResult:
    spec = ctx.spec
    exp = spec.experiment
    last = exp.last_enrollment_date
    assert last is not None
    window = due_window(period, date, last, exp.end_date, exp.is_complete)
    errors = ErrorCollector(ctx.run_id, spec.slug, period.value, None, data_source)
    if window is None:
        log.info("no window due", period=period.value, date=date.isoformat())
        return UnitResult(0, 0, 0)
    errors.window = window.index
    metrics = [m for m in metrics_of_node(spec, period, data_source) if not only or m.name in only]
    written, failed = 0, 0
    staged: list[Staged] = []
    with ctx.session():  # storage tables exist: ensure-enrollments, a dependency, made them
        try:
            if data_source == DERIVED_SOURCE:
                written, failed = _derived(ctx, period, window, metrics, errors)
            else:
                written, failed = _from_source(
                    ctx, date, period, window, data_source, metrics, errors, staged
                )
            # read while the staging tables exist; compute outside the warehouse session
            data = task_statistics.read_statistics(ctx, period, window, metrics, staged)
        finally:
            for st in staged:
                ctx.warehouse.drop_table(st.table)
    n_stats = task_statistics.run_statistics(ctx, period, window, metrics, errors, data)
    with ctx.session():
        ctx.write_errors(errors)
    return UnitResult(written, failed, n_stats)


def _from_source(
    ctx: TaskContext,
    date: dt.date,
    period: Period,
    window: Window,
    data_source: str,
    metrics: list[Metric],
    errors: ErrorCollector,
    staged: list[Staged] | None = None,
) -> tuple[int, int]:
    """Compute and store the unit's metric rows; appends to `staged` the staging tables
    of the groups stored whole (the caller drops them)."""
    spec = ctx.spec
    slug = spec.slug
    all_metrics = source_metrics(ctx, data_source)
    plans = {p.metric.name: p for p in met_sql.plan_metrics(all_metrics)}
    ds = all_metrics[0].data_source if all_metrics else None
    assert ds is not None
    partials = results.partials_table(slug, data_source)
    enr_ref = ctx.ref(results.enrollments_table(slug))
    decomposable = [p for p in plans.values() if p.decomposition is not None]
    if decomposable:

        def build(first: dt.date, last: dt.date) -> str:
            return met_sql.partials_sql(spec, ds, decomposable, enr_ref, first, last)

        try:
            ensure_days(
                ctx,
                data_source,
                partials,
                build,
                date,
                definition=[
                    met_sql.PARTIALS_LAYOUT,
                    ds,
                    [(p.metric.name, p.decomposition) for p in decomposable],
                ],
                first_day=met_sql.partials_first_day(spec, data_source),
            )
        except TransientError:
            raise
        except Exception as exc:
            # A broken leaf breaks the shared partials: compute this unit directly instead.
            errors.add(
                f"daily partials of {data_source} failed, computing directly: {exc}",
                level="warning",
                exception=exc,
            )
            plans = {
                name: met_sql.MetricPlan(p.metric, None, "partials failed")
                for name, p in plans.items()
            }
    unit_plans = [plans[m.name] for m in metrics]
    for p in unit_plans:
        log.debug("metric plan", metric=p.metric.name, method=p.method, reason=p.reason)
    exposure_ref = (
        ctx.ref(results.exposure_days_table(slug)) if spec.exposure_signal is not None else None
    )
    w = met_sql.WindowSpec(window.start, window.end)

    def wide_for(basis: AnalysisBasis, flag_exposed: str | None = None) -> Wide:
        def wide(ps: list[met_sql.MetricPlan]) -> str:
            return met_sql.wide_sql(
                spec, ds, ps, basis, w, enr_ref, ctx.ref(partials), exposure_ref, flag_exposed
            )

        return wide

    targets = {
        basis: tuple(
            p.metric.name
            for p in unit_plans
            if basis in p.metric.analysis_bases or period.is_preenrollment
        )
        for basis in bases_for(period, metrics)
    }
    targets = {b: names for b, names in targets.items() if names}
    if exposures_within_enrollments(spec, period, list(targets)):
        # Windows count from enrollment and the signal only picks who is exposed: the
        # exposures basis is the enrollments basis restricted to the exposed clients, so
        # one roll-up, flagging the exposed clients, serves both bases.
        population, _ = met_sql.population_sql(
            spec, AnalysisBasis.EXPOSURES, w, enr_ref, exposure_ref
        )
        groups = [(list(targets), wide_for(AnalysisBasis.ENROLLMENTS, population), True)]
    else:
        groups = [([b], wide_for(b), False) for b in targets]
    written = failed = 0
    for bases, wide, exposed in groups:
        names = {n for b in bases for n in targets[b]}
        chosen = [p for p in unit_plans if p.metric.name in names]
        group = WriteGroup(data_source, {b: targets[b] for b in bases}, wide, exposed)
        ok, bad = _write(ctx, period, window, group, chosen, errors, staged)
        written += ok
        failed += bad
    return written, failed


@attrs.frozen
class WriteGroup:
    """What one staging query feeds: the metric names stored per basis; `exposed` when the
    staging rows are the enrollments population with wide_sql's exposed flag and the
    exposures rows are the flagged subset."""

    data_source: str
    targets: dict[AnalysisBasis, tuple[str, ...]]
    wide: Wide
    exposed: bool = False


def _derived(
    ctx: TaskContext,
    period: Period,
    window: Window,
    metrics: list[Metric],
    errors: ErrorCollector,
) -> tuple[int, int]:
    metrics_ref = ctx.ref(results.metrics_table(ctx.spec.slug))
    written = failed = 0
    for basis in bases_for(period, metrics):
        # a depends_on metric without select_expression (e.g. a population_ratio of two
        # metrics) has no per-client value: its statistic reads the components
        chosen = [
            met_sql.MetricPlan(m, None, "depends_on")
            for m in metrics
            if m.select_expression.strip()
            and (basis in m.analysis_bases or period.is_preenrollment)
        ]
        if not chosen:
            continue

        def wide(ps: list[met_sql.MetricPlan], basis: AnalysisBasis = basis) -> str:
            return met_sql.derived_sql(
                [p.metric for p in ps], metrics_ref, basis, period.value, window.index
            )

        group = WriteGroup(DERIVED_SOURCE, {basis: tuple(p.metric.name for p in chosen)}, wide)
        ok, bad = _write(ctx, period, window, group, chosen, errors)
        written += ok
        failed += bad
    return written, failed


def _write(
    ctx: TaskContext,
    period: Period,
    window: Window,
    group: WriteGroup,
    plans: list[met_sql.MetricPlan],
    errors: ErrorCollector,
    staged: list[Staged] | None = None,
) -> tuple[int, int]:
    """Run the wide query for all metrics at once; on failure, one by one to isolate the
    broken metric(s). Returns (metrics written, metrics failed). With `staged`, a group
    stored whole keeps its staging table there (the caller drops it)."""
    try:
        kept = _write_group(ctx, period, window, group, plans, keep=staged is not None)
        if kept is not None and staged is not None:
            staged.append(kept)
        return len(plans), 0
    except TransientError:
        raise
    except Exception as exc:
        if len(plans) == 1:
            name = plans[0].metric.name
            errors.add(str(exc), metric=name, exception=exc)
            _delete_rows(ctx, period, window, group, [name])
            return 0, 1
        log.warning("metric group failed; isolating", error=str(exc)[:200])
    ok = bad = 0
    for p in plans:
        a, b = _write(ctx, period, window, group, [p], errors)
        ok += a
        bad += b
    return ok, bad


def _delete_statements(
    ctx: TaskContext, period: Period, window: Window, group: WriteGroup, names: Sequence[str]
) -> list[tuple[AnalysisBasis, list[str], str]]:
    """(basis, metric names, DELETE) for every basis of the group storing some of `names`."""
    out = []
    for basis, stored in group.targets.items():
        chosen = [n for n in names if n in stored]
        if chosen:
            sql = res_sql.delete_rows_sql(
                ctx.ref(results.metrics_table(ctx.spec.slug)),
                period=period.value,
                window_index=window.index,
                data_source=group.data_source,
                bases=[basis.value],
                metrics=chosen,
            )
            out.append((basis, chosen, sql))
    return out


def _delete_rows(
    ctx: TaskContext, period: Period, window: Window, group: WriteGroup, names: Sequence[str]
) -> None:
    ctx.transaction([sql for _, _, sql in _delete_statements(ctx, period, window, group, names)])


def _write_group(
    ctx: TaskContext,
    period: Period,
    window: Window,
    group: WriteGroup,
    plans: list[met_sql.MetricPlan],
    keep: bool = False,
) -> Staged | None:
    """Stage the wide query, then replace the metrics' rows of every basis in one
    transaction (the exposures rows from the exposed clients' rows when `group.exposed`).
    The staging table is a temporary one of the session; dropped unless `keep`."""
    slug = ctx.spec.slug
    first = next(iter(group.targets))
    staging = results.staging_table(
        slug, period.value, str(window.index), group.data_source, first.value
    )
    names = [p.metric.name for p in plans]
    ctx.create_table_as(staging, group.wide(plans), temporary=True)
    kept = None
    try:
        source = {b: ctx.ref(staging) for b in group.targets}
        if group.exposed:
            # the staging rows flag the exposed clients (wide_sql's flag_exposed)
            source[AnalysisBasis.EXPOSURES] = met_sql.exposed_subset_sql(ctx.ref(staging))
        types = ctx.warehouse.table_columns(staging)
        metrics_ref = ctx.ref(results.metrics_table(slug))
        hashes = {p.metric.name: hashing.metric_hash(ctx.spec, p.metric) for p in plans}
        statements = []
        for basis, chosen, delete in _delete_statements(ctx, period, window, group, names):
            insert = res_sql.insert_metric_rows_sql(
                metrics_ref,
                source[basis],
                types,
                chosen,
                basis=basis.value,
                period=period.value,
                window_index=window.index,
                window_start=window.start,
                window_end=window.end,
                data_source=group.data_source,
                hashes=hashes,
            )
            statements += [delete, insert]
        ctx.transaction(statements)
        if keep:
            kept = Staged(staging, frozenset(group.targets), tuple(names), types)
    finally:
        if kept is None:
            ctx.warehouse.drop_table(staging)
    return kept
