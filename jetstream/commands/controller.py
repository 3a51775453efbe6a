"""`jetstream controller`: the scheduled entry point. Analyses the UTC day before the
scheduled time: loads experiments, resolves their configs (an experiment whose record,
config or plan fails is logged, recorded as an error row and skipped, never fatal; the
command then exits 1), plans the task graph and runs it locally or
submits it to Argo as one Workflow. Every option also reads a JETSTREAM_* env var, so the
CronWorkflow pod takes them from the jetstream-settings ConfigMap.

The config repository is required. A git URL[@REF] is cloned once here (into the cache,
JETSTREAM_CACHE_DIR) and every task is pinned to the commit that was planned: tasks get
`URL@<commit>`, so a push during the run cannot mix two versions of the configs. A
directory is passed on as it is (every pod must see it at the same path)."""

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


def pin_config_repo(config_repo: str | None) -> tuple[Path, str]:
    """(local directory to plan from, the value tasks get) for `--config-repo`. A git
    URL[@REF] is checked out here and tasks get `URL@<commit>`; a directory must exist.
    No value, or a directory that is not there, is a usage error (exit 2) before anything
    is planned: without configs every experiment would fail the same way."""
    from jetstream import config_checkout

    text = (config_repo or "").strip()
    if not text:
        raise click.UsageError(
            "no config repository: pass --config-repo or set JETSTREAM_CONFIG_REPO to a git "
            "URL[@REF] (e.g. https://github.com/mozilla/metric-hub.git@main) or a directory "
            "(chart: settings.configRepoUrl / settings.configRepo)"
        )
    if config_checkout.is_git_url(text):
        from jetstream.errors import ConfigError

        try:
            path, pinned = config_checkout.pin(text)
        except ConfigError as exc:  # a TransientError (network) propagates: exit 75
            raise ConfigError(
                f"config repository {text} (--config-repo / JETSTREAM_CONFIG_REPO): {exc}"
            ) from None
        log.info("config repo checked out", config_repo=text, pinned=pinned, path=str(path))
        return path, pinned
    path = Path(text)
    if not path.is_dir():
        raise click.BadParameter(
            f"{text!r} is not a directory (nor a git URL)", param_hint="--config-repo"
        )
    return path, text


def plan_day(
    experiments: str, config_repo: Path | None, date: dt.date, failures: dict[str, str]
):  # -> TaskGraph
    """The day's graph; experiments that cannot be loaded, resolved or planned are added to
    `failures` (and logged) instead of stopping the others."""
    from jetstream.commands.loading import load_many, plan_each
    from jetstream.graph import skip_reason

    specs, skipped = load_many(experiments, config_repo)
    failures.update(skipped)
    for spec in specs:
        reason = skip_reason(spec, date)
        if reason is not None:
            log.info("experiment not analysed", experiment=spec.slug, reason=reason)
    graph = plan_each(specs, date, failures=failures)
    log.info(
        "planned",
        date=date.isoformat(),
        experiments=len(graph.experiments),
        tasks=len(graph.nodes),
        skipped=len(failures),
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
    "--config-repo",
    envvar="JETSTREAM_CONFIG_REPO",
    default=None,
    help="Config repository (metric-hub layout): a git URL[@REF] or a directory. Required.",
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
    config_repo: str | None,
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

    from jetstream.commands.loading import describe_skipped
    from jetstream.extras import require

    if runner == "argo":
        require("argo", "jetstream controller --runner argo")
    from jetstream.runners.common import RunSettings

    date = analysis_date(scheduled_time)
    local_repo, task_repo = pin_config_repo(config_repo)
    failures: dict[str, str] = {}
    graph = plan_day(experiments, local_repo, date, failures)
    for slug, problem in failures.items():
        click.echo(describe_skipped(slug, problem), err=True)
    failed = 1 if failures else 0
    if failures and not dry_run:
        from jetstream.commands.loading import record_skipped

        record_skipped(failures, warehouse, out)
    settings = RunSettings(
        experiments=experiments,
        warehouse=warehouse,
        out=out,
        config_repo=task_repo,
    )
    if image:
        settings = attrs.evolve(settings, image=image)
    if not graph.nodes:
        click.echo(f"nothing to analyse for {date.isoformat()}", err=True)
        raise SystemExit(failed)
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
        raise SystemExit(failed)
    if chosen.name == "local":
        from jetstream.artifacts import check_writable

        check_writable(out)
    result = chosen.run(graph)
    # a local run's summary on stderr, an Argo submission's on stdout
    click.echo(result.describe(), err=chosen.name == "local")
    raise SystemExit(result.exit_code or failed)
