"""The whole preview: resolve the config, choose the dates and the population, run the
engine's task bodies in-process on a recording scratch warehouse, publish, report."""

from __future__ import annotations

import collections
import datetime as dt
import json
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from jetstream.errors import JetstreamError, TransientError
from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.logs import get_logger
from jetstream.periods import Period
from jetstream.preview.cost import (
    DEFAULT_MAX_BYTES,
    DEFAULT_PRICE_PER_TIB,
    Budget,
    BudgetExceeded,
    format_cost,
)
from jetstream.preview.dates import PreviewDates, preview_dates
from jetstream.preview.population import preview_spec, unit_metrics
from jetstream.preview.recording import RecordingWarehouse, SqlRecorder
from jetstream.preview.scratch import (
    Scratch,
    bigquery_scratch,
    cleanup_duckdb,
    duckdb_scratch,
    register_duckdb,
)
from jetstream.preview.sources import PreviewSource, load_preview_source

log = get_logger(__name__)

DEFAULT_SAMPLE_PERCENT = 1.0
DEFAULT_SCRATCH_DATASET = "jetstream_preview"
SHOW_SIMILAR = 3  # messages shown per (metric, level, statistic, period, exception type)


@attrs.frozen
class PreviewOptions:
    warehouse: str
    out: Path
    slug: str | None = None
    config_file: str | None = None
    config_repo: str | None = None
    experiments: str | None = None
    platform: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    num_days: int | None = None
    enrollment_period: int | None = None
    generate_population: bool = False
    population_sample_size: float = DEFAULT_SAMPLE_PERCENT
    sql_output_dir: Path | None = None
    analysis_periods: tuple[Period, ...] = (Period.DAY,)
    project_id: str | None = None
    dataset_id: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    yes: bool = False
    price_per_tib: float = DEFAULT_PRICE_PER_TIB
    cleanup: bool = False
    now: dt.datetime | None = None  # tests pin the clock


@attrs.frozen
class UnitFailure:
    step: str
    metrics: tuple[str, ...]
    message: str


@attrs.frozen
class PreviewResult:
    exit_code: int
    report: Path | None = None
    results_dir: Path | None = None
    total_bytes: int = 0
    statements: int = 0
    dates: PreviewDates | None = None
    scratch: Scratch | None = None
    failed_metrics: tuple[str, ...] = ()
    unit_failures: tuple[UnitFailure, ...] = ()
    cleaned: tuple[str, ...] = ()


def _scratch(opts: PreviewOptions, inner: Any, slug: str, now: dt.datetime) -> Scratch:
    if inner.name == "bigquery":
        project = opts.project_id or getattr(inner, "project", None)
        if not project:
            raise JetstreamError("preview on BigQuery needs --project-id for the scratch dataset")
        return bigquery_scratch(project, opts.dataset_id or DEFAULT_SCRATCH_DATASET, slug, now)
    return duckdb_scratch(slug, now)


def last_telemetry_date(
    warehouse: Any, source: PreviewSource, periods: Sequence[Period]
) -> dt.date | None:
    """The latest submission date in the data sources the analysed metrics read (the
    earliest of their maxima, so every source has data), or None."""
    seen: dict[str, Any] = {}
    for p in periods:
        for m in source.spec.metrics_for(p):
            if m.data_source is not None:
                seen.setdefault(m.data_source.name, m.data_source)
    latest: list[dt.date] = []
    for ds in seen.values():
        try:
            rows = warehouse.query(
                f"SELECT MAX({ds.submission_date_column}) AS d FROM {ds.from_expression} AS t"
            ).to_pylist()
        except TransientError:
            raise
        except JetstreamError as exc:
            log.warning("preview.last_date_unknown", data_source=ds.name, error=str(exc)[:200])
            continue
        value = rows[0]["d"] if rows else None
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            latest.append(value)
    return min(latest) if latest else None


def run_preview(opts: PreviewOptions, echo: Callable[[str], None] = print) -> PreviewResult:
    from jetstream.warehouse import open_warehouse

    now = opts.now or dt.datetime.now(dt.UTC)
    inner = open_warehouse(opts.warehouse)
    try:
        cleaned: tuple[str, ...] = ()
        if opts.cleanup:
            if inner.name == "duckdb":
                cleaned = tuple(cleanup_duckdb(inner, now))
                echo(
                    f"cleanup: dropped {len(cleaned)} preview schema(s) older than 7 days"
                    + (f": {', '.join(cleaned)}" if cleaned else "")
                )
            else:
                echo("cleanup: BigQuery preview tables expire by themselves after 7 days")
            if not opts.slug and not opts.config_file:
                return PreviewResult(0, cleaned=cleaned)
        return _run(opts, inner, now, echo, cleaned)
    finally:
        inner.close()


def _run(
    opts: PreviewOptions,
    inner: Any,
    now: dt.datetime,
    echo: Callable[[str], None],
    cleaned: tuple[str, ...],
) -> PreviewResult:
    from jetstream.report import render_report
    from jetstream.runners.base import RunnerOptions, make_runner
    from jetstream.runners.common import NodeResult, NodeStatus, RunSettings
    from jetstream.runners.inprocess import InProcessSetup
    from jetstream.tasks.context import TaskContext

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jetstream-preview-") as tmp:
        source = load_preview_source(
            slug=opts.slug,
            config_file=opts.config_file,
            config_repo=opts.config_repo,
            experiments=opts.experiments,
            platform=opts.platform,
            work_dir=Path(tmp),
        )
    spec0 = source.spec
    slug = spec0.slug
    echo(
        f"experiment: {slug} ({'in Experimenter' if source.in_experimenter else 'not in Experimenter: placeholder record'})"
    )
    echo(f"config file: {source.config_label}; config repo: {source.repo_path}")

    budget = Budget(opts.max_bytes, opts.yes, opts.price_per_tib)
    recorder = SqlRecorder(opts.sql_output_dir, source.config_label, slug, budget, echo)
    scratch = _scratch(opts, inner, slug, now)
    proxy = RecordingWarehouse(inner, scratch, recorder)

    last_data = None
    if opts.start_date is None and opts.end_date is None:
        with recorder.step("last_telemetry_date"):
            last_data = last_telemetry_date(proxy, source, opts.analysis_periods)
    try:
        dates = preview_dates(
            now.date(),
            start=opts.start_date,
            end=opts.end_date,
            num_days=opts.num_days,
            enrollment_period=opts.enrollment_period,
            last_telemetry=last_data,
        )
        spec, population = preview_spec(
            spec0,
            dates,
            opts.analysis_periods,
            sample_percent=opts.population_sample_size,
            generate_population=opts.generate_population,
        )
    except ValueError as exc:
        from jetstream.errors import ConfigError

        raise ConfigError(str(exc)) from exc
    echo(f"dates: {dates.describe()}")
    echo(f"population: {population}")
    echo(f"periods: {', '.join(p.value for p in spec.periods)}")
    echo(f"scratch: {scratch.describe()}")
    if opts.sql_output_dir:
        echo(f"SQL: {opts.sql_output_dir}")
    if inner.name == "duckdb":
        register_duckdb(inner, scratch, slug)

    run_id = "preview-" + uuid.uuid4().hex[:8]
    ctx = TaskContext(proxy, spec, run_id)
    results_dir = out / "results"
    exp_keys = ["experiment.start_date", "experiment.enrollment_period"]
    exp_keys.append(
        "experiment.enrollment_query"
        if spec.experiment.enrollment_query
        else "experiment.enrollments_query_type"
    )
    exp_keys += [f"segments.{s.name}" for s in spec.segments]
    if spec.exposure_signal is not None:
        exp_keys.append("experiment.exposure_signal")
    graph = preview_graph(spec, dates)
    units = {node.id: _unit(spec, node, exp_keys) for node in graph.nodes}
    failures: list[UnitFailure] = []

    def step(node: TaskNode) -> Any:
        name, metrics, keys = units[node.id]
        return recorder.step(name, metrics=metrics, config_keys=keys)

    def on_result(result: NodeResult) -> None:
        if result.status is NodeStatus.FAILED:
            name, metrics, _keys = units[result.node_id]
            failures.append(UnitFailure(name, metrics, result.error))

    runner = make_runner(
        RunSettings(experiments="", warehouse="", out=str(results_dir)),
        RunnerOptions(
            runner="in-process",
            in_process=InProcessSetup(
                context=lambda _slug: ctx,
                step=step,
                on_result=on_result,
                reraise=(BudgetExceeded, TransientError),
                recreate_enrollments=True,
            ),
        ),
    )
    echo("estimated bytes per statement (checked against --max-bytes before each runs):")
    try:
        runner.run(graph)
    except BudgetExceeded as exc:
        recorder.flush()
        echo(f"stopped: {exc}")
        echo(f"estimated total so far: {format_cost(budget.total, budget.price_per_tib)}")
        return PreviewResult(
            1,
            None,
            None,
            budget.total,
            len(recorder.statements),
            dates,
            scratch,
            (),
            tuple(failures),
            cleaned,
        )
    recorder.flush()
    if failures:  # no enrollments, or a failed unit: nothing was exported
        _show_problems(results_dir, slug, failures, echo)
        return PreviewResult(
            1,
            None,
            None,
            budget.total,
            len(recorder.statements),
            dates,
            scratch,
            (),
            tuple(failures),
            cleaned,
        )
    echo(
        f"estimated total: {format_cost(budget.total, budget.price_per_tib)} in "
        f"{len(recorder.statements)} statements"
    )

    failed = _show_problems(results_dir, slug, failures, echo)
    report = render_report(str(results_dir), out / "report", slug)
    echo(f"report: {report.resolve().as_uri()}")
    code = 1 if failed or failures else 0
    return PreviewResult(
        code,
        report,
        results_dir,
        budget.total,
        len(recorder.statements),
        dates,
        scratch,
        tuple(sorted(failed)),
        tuple(failures),
        cleaned,
    )


def preview_graph(spec: Any, dates: PreviewDates) -> TaskGraph:
    """What preview runs: enrollments (recreated) as of the last preview date, the metrics
    nodes of every analysis date, then export."""
    from jetstream.graph import plan_dates

    enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, spec.slug, date=dates.end)
    planned = plan_dates([spec], dates.analysis_dates, force=True)
    # the planned metrics nodes depend on the ensure-enrollments node by id, which is
    # the same as `enr`'s (a non-metrics node's id has no date)
    metrics = [n for n in planned.topological() if n.kind is TaskKind.METRICS]
    export = TaskNode(
        TaskKind.EXPORT, spec.slug, date=dates.end, depends=(enr.id, *(n.id for n in metrics))
    )
    return TaskGraph((enr, *metrics, export))


def _unit(
    spec: Any, node: TaskNode, exp_keys: Sequence[str]
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(step name, metric names, config keys) of a preview node: what its SQL is recorded
    under and what a failure of it names."""
    if node.kind is TaskKind.ENSURE_ENROLLMENTS:
        return "enrollments", (), tuple(exp_keys)
    if node.kind is TaskKind.EXPORT:
        return "export", (), ()
    assert node.period is not None and node.data_source is not None and node.date
    names = list(node.metrics) or unit_metrics(spec, node.period, node.data_source)
    keys = [f"metrics.{n}" for n in names]
    if node.data_source != "derived":
        keys.append(f"data_sources.{node.data_source}")
    return f"metrics/{node.period.value}/{node.data_source}/{node.date}", tuple(names), tuple(keys)


def _show_problems(
    results_dir: Path, slug: str, failures: Sequence[UnitFailure], echo: Callable[[str], None]
) -> set[str]:
    """Print every error and warning grouped by metric; return the metrics that failed."""
    from jetstream.export import errors_path

    path = results_dir / errors_path(slug)
    rows = json.loads(path.read_text()) if path.is_file() else []
    groups: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        groups[r.get("metric") or "(experiment)"].append(r)
    failed = {
        str(r["metric"]) for r in rows if r.get("metric") and (r.get("log_level") or "") == "ERROR"
    }
    for f in failures:
        groups[", ".join(f.metrics) or "(experiment)"].append(
            {
                "log_level": "ERROR",
                "analysis_period": None,
                "window_index": None,
                "exception_type": "UnitFailed",
                "message": f"{f.step}: {f.message}",
            }
        )
        failed.update(f.metrics)
    if not groups:
        echo("no errors or warnings")
        return failed
    n_err = sum(1 for g in groups.values() for r in g if r.get("log_level") == "ERROR")
    echo(
        f"errors and warnings ({n_err} errors, {sum(map(len, groups.values())) - n_err} warnings):"
    )

    # groups with errors first, then the experiment-wide one, then by metric
    def order(metric: str) -> tuple[bool, bool, str]:
        has_error = any(r.get("log_level") == "ERROR" for r in groups[metric])
        return (not has_error, metric != "(experiment)", metric)

    for metric in sorted(groups, key=order):
        echo(f"  {metric}:")
        similar: dict[tuple[Any, ...], list[dict[str, Any]]] = collections.defaultdict(list)
        for r in groups[metric]:
            key = (
                r.get("log_level"),
                r.get("statistic"),
                r.get("analysis_period"),
                r.get("exception_type"),
            )
            similar[key].append(r)
        for (level, stat, _period, etype), rs in similar.items():
            for r in rs[:SHOW_SIMILAR]:
                where = "/".join(
                    str(x) for x in (r.get("analysis_period"), r.get("window_index")) if x
                )
                echo(
                    f"    {level}{' ' + stat if stat else ''} {where} {etype or ''}: "
                    f"{r.get('message')}"
                )
            if len(rs) > SHOW_SIMILAR:
                echo(
                    f"    ... and {len(rs) - SHOW_SIMILAR} more {level} {etype or ''} rows "
                    f"like these (all in the errors panel of the report)"
                )
    return failed
