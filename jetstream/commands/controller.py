"""`jetstream controller`: the scheduled entry point. Analyses the UTC day before the
scheduled time: loads experiments, resolves their configs (an experiment whose config
fails is logged and skipped, never fatal), plans the task graph and runs it locally or
submits it to Argo as one Workflow. Every option also reads a JETSTREAM_* env var, so the
CronWorkflow pod takes them from the jetstream-settings ConfigMap."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from jetstream.commands import options
from jetstream.logs import get_logger

log = get_logger("jetstream.controller")


def analysis_date(scheduled_time: str) -> dt.date:
    """The UTC day before `scheduled_time` (ISO 8601; naive times are UTC)."""
    try:
        when = dt.datetime.fromisoformat(scheduled_time.strip())
    except ValueError:
        try:
            when = dt.datetime.combine(dt.date.fromisoformat(scheduled_time.strip()), dt.time())
        except ValueError:
            raise click.BadParameter(
                f"{scheduled_time!r} is not an ISO 8601 time (e.g. 2024-01-02T03:00:00Z)",
                param_hint="--scheduled-time",
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def plan_day(experiments: str, config_repo: Path | None, date: dt.date):  # -> TaskGraph
    from jetstream.config import load_spec
    from jetstream.errors import TransientError
    from jetstream.experiments import load_experiments
    from jetstream.graph import plan, skip_reason

    exps = load_experiments(experiments)
    specs = []
    for slug in exps:
        try:
            specs.append(load_spec(slug, exps, config_repo))  # type: ignore[arg-type]
        except TransientError:
            raise
        except Exception as exc:  # one bad config never stops the others
            problems = getattr(exc, "problems", None) or [str(exc)]
            log.error("experiment skipped: config failed", experiment=slug, problems=problems)
    for spec in specs:
        reason = skip_reason(spec, date)
        if reason is not None:
            log.info("experiment not analysed", experiment=spec.slug, reason=reason)
    graph = plan(specs, date)
    log.info(
        "planned", date=date.isoformat(), experiments=len(graph.experiments), tasks=len(graph.nodes)
    )
    return graph


@click.command()
@click.option(
    "--scheduled-time",
    required=True,
    help="ISO time the schedule fired; the previous UTC day is analysed.",
)
@click.option(
    "--experiments",
    envvar="JETSTREAM_EXPERIMENTS",
    required=True,
    help="Experiments JSON file or Experimenter API URL.",
)
@click.option(
    "--config-repo", envvar="JETSTREAM_CONFIG_REPO", type=click.Path(path_type=Path), default=None
)
@click.option(
    "--warehouse",
    envvar="JETSTREAM_WAREHOUSE",
    default="duckdb:jetstream.duckdb",
    show_default=True,
)
@click.option("--out", envvar="JETSTREAM_OUT", default="jetstream-output", show_default=True)
@options.submission(runner_default="argo", parallelism_default=None)
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Argo: wait for the workflow and summarise failed tasks.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (local) or the Workflow YAML (argo); submit nothing.",
)
def command(
    scheduled_time: str,
    experiments: str,
    config_repo: Path | None,
    warehouse: str,
    out: str,
    runner: str,
    argo_server: str | None,
    submit_via: str,
    image: str | None,
    parallelism: int | None,
    namespace: str | None,
    service_account: str | None,
    max_concurrent_pods: int | None,
    trigger: str | None,
    allow_unpinned_image: bool,
    wait: bool,
    dry_run: bool,
) -> None:
    """Plan the previous UTC day and run it (local) or submit it (argo)."""
    import attrs

    from jetstream.runners.common import RunSettings

    date = analysis_date(scheduled_time)
    graph = plan_day(experiments, config_repo, date)
    settings = RunSettings(
        experiments=experiments,
        warehouse=warehouse,
        out=out,
        config_repo=str(config_repo) if config_repo else "",
    )
    if image:
        settings = attrs.evolve(settings, image=image)
    if not graph.nodes:
        click.echo(f"nothing to analyse for {date.isoformat()}", err=True)
        return
    from jetstream.runners.base import RunnerOptions, make_runner

    chosen = make_runner(
        settings,
        RunnerOptions(
            runner=runner,
            parallelism=parallelism or 2,
            argo_server=argo_server,
            submit_via=submit_via,
            allow_unpinned_image=allow_unpinned_image,
            wait=wait,
            namespace=namespace,
            service_account=service_account,
            max_concurrent_pods=max_concurrent_pods,
            # the schedule's firing: a retried or re-run controller submits nothing twice
            trigger=trigger or f"scheduled-{scheduled_time.strip()}",
        ),
    )
    if dry_run:
        click.echo(chosen.plan(graph), nl=False)
        return
    result = chosen.run(graph)
    # a local run's summary on stderr, an Argo submission's on stdout
    click.echo(result.describe(), err=chosen.name == "local")
    if result.exit_code:
        raise SystemExit(result.exit_code)
