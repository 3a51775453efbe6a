"""`jetstream run` and `jetstream rerun`: plan the task graph and execute it, locally (the
default: a process pool running `jetstream task ...`) or as an Argo workflow."""

from __future__ import annotations

import datetime as dt

import click

from jetstream.commands import options
from jetstream.errors import EXIT_USAGE
from jetstream.logs import get_logger

log = get_logger("jetstream.run")


_submission = options.submission(runner_default="local")


def runner_options(fn):
    """Where tasks run (`options.submission`) and --wait."""
    return _submission(options.wait_option(fn))


def execute_graph(
    graph,
    *,
    experiments,
    config_repo,
    warehouse,
    out,
    runner,
    parallelism,
    argo_server=None,
    submit_via="argo-server",
    image=None,
    allow_unpinned_image=False,
    namespace=None,
    service_account=None,
    max_concurrent_pods=None,
    trigger=None,
    wait=False,
) -> int:
    from jetstream.runners.base import RunnerOptions, make_runner
    from jetstream.runners.common import RunSettings

    if not graph.nodes:
        click.echo("Nothing is due: no tasks to run.")
        return 0
    if runner != "argo":
        from jetstream.artifacts import check_writable

        check_writable(out)  # an unusable --out fails here (exit 2 or 75), before any task
    settings_kwargs = dict(
        experiments=experiments,
        warehouse=warehouse,
        out=out,
        config_repo=str(config_repo) if config_repo else "",
    )
    if image:
        settings_kwargs["image"] = image
    chosen = make_runner(
        RunSettings(**settings_kwargs),
        RunnerOptions(
            runner=runner,
            parallelism=parallelism,
            argo_server=argo_server,
            submit_via=submit_via,
            allow_unpinned_image=allow_unpinned_image,
            namespace=namespace,
            service_account=service_account,
            max_concurrent_pods=max_concurrent_pods,
            trigger=trigger or "",
            wait=wait,
        ),
    )
    result = chosen.run(graph)
    click.echo(result.describe())
    if chosen.name == "local":  # the results exist once the run returns
        click.echo(published_line(result, out))
        slugs = sorted({n.slug for n in graph.nodes if n.kind.value == "export"})
        for line in problem_lines(out, slugs):
            click.echo(line)
    return result.exit_code


SHOW_KINDS = 5  # problem rows per experiment in the run's summary


def problem_lines(out: str, slugs: list[str]) -> list[str]:
    """The first rows of each experiment's published errors document (one row per kind:
    errors, then experiment-wide warnings, then the most frequent; see
    `jetstream.problems`)."""
    import json

    from jetstream.artifacts import open_store
    from jetstream.errors import JetstreamError
    from jetstream.export import errors_path

    lines: list[str] = []
    try:
        store = open_store(out)
    except (JetstreamError, OSError):
        return lines
    for slug in slugs:
        path = errors_path(slug)
        try:
            docs = json.loads(store.read_bytes(path)) if store.exists(path) else []
        except (JetstreamError, OSError, ValueError):
            continue
        if not docs:
            continue
        lines.append(f"{slug}: {len(docs)} kinds of errors and warnings:")
        for d in docs[:SHOW_KINDS]:
            where = "/".join(str(d[k]) for k in ("metric", "statistic") if d.get(k))
            lines.append(
                f"  {d.get('log_level')} {where + ': ' if where else ''}{d.get('message')}"
            )
        if len(docs) > SHOW_KINDS:
            # the location as given (a directory or gs://), not a link: the report is the link
            lines.append(f"  ... and {len(docs) - SHOW_KINDS} more in {out.rstrip('/')}/{path}")
    return lines


def published_line(summary, out: str) -> str:
    """What was published: every experiment, or only those whose export task succeeded."""
    exports = [r for r in summary.results if r.node_id.startswith("export/")]
    done = [r for r in exports if r in summary.succeeded]
    if summary.ok:
        return f"Results published to {out}"
    if not done:
        return f"No results published to {out}: tasks failed"
    return (
        f"Results of {len(done)} of {len(exports)} experiment(s) published to {out}; tasks failed"
    )


@click.command()
@options.date_option("--date", required=True, help="Data date to analyse.")
@click.option("--experiment", "slugs", multiple=True, help="Only these experiments.")
@options.metrics_option
@options.periods_option
@options.common
@runner_options
def run(date, slugs, metrics, periods, experiments, config_repo, warehouse, out, **runner_kw):
    """Analyse experiments for a date: enrollments, metrics, statistics, export."""
    from jetstream.commands.loading import (
        describe_skipped,
        load_many,
        plan_each,
        record_skipped,
    )

    specs, failures = load_many(experiments, config_repo, slugs)
    graph = plan_each(specs, date, periods or None, metrics, failures)
    for slug, problem in failures.items():
        click.echo(describe_skipped(slug, problem), err=True)
    record_skipped(failures, warehouse, out)
    if failures and all(s.slug in failures for s in specs):
        # Not one experiment could be analysed: a config (or record) error, not a failure
        # of some experiments among others.
        raise SystemExit(EXIT_USAGE)
    code = execute_graph(
        graph,
        experiments=experiments,
        config_repo=config_repo,
        warehouse=warehouse,
        out=out,
        **runner_kw,
    )
    raise SystemExit(code or (1 if failures else 0))


@click.command()
@click.option(
    "--experiment",
    "slugs",
    required=True,
    multiple=True,
    envvar="JETSTREAM_EXPERIMENT",
    help="The experiment (repeat for several).",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    envvar="JETSTREAM_METRIC",
    help="Restrict to these metric slugs.",
)
@click.option(
    "--period",
    "periods",
    multiple=True,
    envvar="JETSTREAM_PERIOD",
    callback=options._periods,
    help="Restrict to these analysis periods.",
)
@click.option(
    "--start-date",
    callback=options._date,
    envvar="JETSTREAM_START_DATE",
    metavar="YYYY-MM-DD",
    help="First data date (default: last enrollment date).",
)
@click.option(
    "--end-date",
    callback=options._date,
    envvar="JETSTREAM_END_DATE",
    metavar="YYYY-MM-DD",
    help="Last data date (default: end date or yesterday).",
)
@click.option("--recreate-enrollments", is_flag=True, help="Recompute enrollments first.")
@options.common
@runner_options
def rerun(
    slugs,
    metrics,
    periods,
    start_date,
    end_date,
    recreate_enrollments,
    experiments,
    config_repo,
    warehouse,
    out,
    **runner_kw,
):
    """Recompute experiments over a range of dates (default: all of each)."""
    from jetstream.changes import merge_graphs
    from jetstream.commands.loading import load_one
    from jetstream.graph import plan_dates

    graphs = []
    for slug in dict.fromkeys(slugs):
        spec = load_one(slug, experiments, config_repo)
        exp = spec.experiment
        if exp.start_date is None:
            raise click.UsageError(f"{slug} has no start date")
        first = start_date or exp.last_enrollment_date or exp.start_date
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        last = end_date or min(exp.end_date or yesterday, yesterday)
        dates = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        if recreate_enrollments:
            _recreate(spec, warehouse)
        graphs.append(plan_dates([spec], dates, periods or None, metrics, force=True))
    graph = graphs[0] if len(graphs) == 1 else merge_graphs(graphs)
    raise SystemExit(
        execute_graph(
            graph,
            experiments=experiments,
            config_repo=config_repo,
            warehouse=warehouse,
            out=out,
            **runner_kw,
        )
    )


def _recreate(spec, warehouse: str) -> None:
    from jetstream import results
    from jetstream.warehouse import open_warehouse

    wh = open_warehouse(warehouse)
    try:
        for table in (
            results.enrollments_table(spec.slug),
            results.enrollment_staging_table(spec.slug),
        ):
            wh.drop_table(table)
    finally:
        wh.close()
