"""Options shared by the commands that run analyses; each also reads a JETSTREAM_* env var,
so pods get them from the settings ConfigMap."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from jetstream.periods import Period


def _date(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _periods(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    try:
        return tuple(Period.parse(v) for v in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def date_option(name: str, required: bool = False, help: str = "") -> Callable:
    return click.option(name, callback=_date, required=required, help=help, metavar="YYYY-MM-DD")


def common(fn: Callable) -> Callable:
    """--experiments, --config-repo, --warehouse, --out."""
    fn = click.option(
        "--out",
        envvar="JETSTREAM_OUT",
        default="jetstream-output",
        show_default=True,
        help="Where JSON is published: a directory or gs://BUCKET[/PREFIX].",
    )(fn)
    fn = click.option(
        "--warehouse",
        envvar="JETSTREAM_WAREHOUSE",
        default="duckdb:jetstream.duckdb",
        show_default=True,
        help="duckdb:PATH or bigquery:PROJECT.DATASET.",
    )(fn)
    fn = click.option(
        "--config-repo",
        envvar="JETSTREAM_CONFIG_REPO",
        default=None,
        help="Config repository in metric-hub layout: a directory, or a git URL[@COMMIT].",
    )(fn)
    fn = click.option(
        "--experiments",
        envvar="JETSTREAM_EXPERIMENTS",
        required=True,
        help="Experiments JSON file (Experimenter v8 shape) or Experimenter API URL.",
    )(fn)
    return fn


def periods_option(fn: Callable) -> Callable:
    return click.option(
        "--period",
        "periods",
        multiple=True,
        callback=_periods,
        help="Restrict to these analysis periods (day, week, days28, overall, ...).",
    )(fn)


def metrics_option(fn: Callable) -> Callable:
    return click.option(
        "--metric", "metrics", multiple=True, help="Restrict to these metric slugs."
    )(fn)


def submission(runner_default: str, parallelism_default: int | None = None) -> Callable:
    """Where tasks run: --runner, --argo-server, --submit-via, --image,
    --allow-unpinned-image, --parallelism, and for Argo --namespace, --service-account,
    --max-concurrent-pods, --trigger (each also from a JETSTREAM_* env var, so pods take
    them from the settings ConfigMap on every submission path)."""

    def decorate(fn: Callable) -> Callable:
        for option in reversed(
            [
                click.option(
                    "--runner",
                    type=click.Choice(["local", "argo"]),
                    envvar="JETSTREAM_RUNNER",
                    default=runner_default,
                    show_default=True,
                    help="Run tasks in local processes or as an Argo workflow.",
                ),
                click.option(
                    "--argo-server",
                    envvar="JETSTREAM_ARGO_SERVER",
                    default=None,
                    help="argo-server URL (token: ARGO_TOKEN or the pod's service account).",
                ),
                click.option(
                    "--submit-via",
                    type=click.Choice(["argo-server", "kubernetes"]),
                    envvar="JETSTREAM_SUBMIT_VIA",
                    default="argo-server",
                    show_default=True,
                ),
                click.option(
                    "--image",
                    envvar="JETSTREAM_IMAGE",
                    default=None,
                    help="Task image for Argo pods, pinned by digest (NAME@sha256:...).",
                ),
                click.option(
                    "--allow-unpinned-image",
                    envvar="JETSTREAM_ALLOW_UNPINNED_IMAGE",
                    is_flag=True,
                    help="Accept an image without @sha256: digest (development).",
                ),
                click.option(
                    "--parallelism",
                    envvar="JETSTREAM_PARALLELISM",
                    type=click.IntRange(min=1),
                    default=parallelism_default,
                    show_default=parallelism_default is not None,
                    help="Concurrent tasks: local processes (default 2), or pods per Argo "
                    "workflow (default 8).",
                ),
                click.option(
                    "--namespace",
                    envvar="JETSTREAM_NAMESPACE",
                    default=None,
                    help="Argo: namespace of submitted workflows (default: the pod's, else "
                    "jetstream).",
                ),
                click.option(
                    "--service-account",
                    envvar="JETSTREAM_SERVICE_ACCOUNT",
                    default=None,
                    help="Argo: service account of the analysis pods (default jetstream).",
                ),
                click.option(
                    "--max-concurrent-pods",
                    envvar="JETSTREAM_MAX_CONCURRENT_PODS",
                    type=click.IntRange(min=1),
                    default=None,
                    help="Argo: pods at once across the workflows of one submission (default 32).",
                ),
                click.option(
                    "--trigger",
                    envvar="JETSTREAM_TRIGGER",
                    default=None,
                    help="Argo: what caused this submission (e.g. the parent workflow); "
                    "the same plan with the same trigger is submitted only once.",
                ),
            ]
        ):
            fn = option(fn)
        return fn

    return decorate


def existing_warehouse(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Callback for commands that read telemetry: refuse `duckdb:PATH` when PATH does not
    exist (DuckDB would create an empty file and the command would fail later)."""
    if isinstance(value, str):
        missing = missing_duckdb(value)
        if missing is not None:
            raise click.BadParameter(
                f"{value!r}: {missing} does not exist; point --warehouse (or "
                "JETSTREAM_WAREHOUSE) at a DuckDB file holding your telemetry, e.g. the "
                "demo's: python -m jetstream.synthetic.demo --out demo-output, then "
                "--warehouse duckdb:demo-output/warehouse.duckdb",
                ctx=ctx,
                param=param,
            )
    return value


def missing_duckdb(uri: str) -> str | None:
    """The path of a `duckdb:PATH` warehouse whose file does not exist, else None."""
    from pathlib import Path

    scheme, sep, rest = uri.partition(":")
    if scheme != "duckdb" or not sep or not rest or rest.startswith(":memory:"):
        return None
    return None if Path(rest).exists() else rest


def wait_option(fn: Callable) -> Callable:
    """--wait: for Argo, wait for the workflow to end and exit with its status (Jetstream's
    --return-status); the local runner always waits."""
    return click.option(
        "--wait",
        envvar="JETSTREAM_WAIT",
        is_flag=True,
        help="Argo: wait for the workflow to end; exit 1 if it failed.",
    )(fn)
