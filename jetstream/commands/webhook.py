"""`jetstream webhook serve`: the config-repository webhook server (uvicorn).

The shared key comes from JETSTREAM_WEBHOOK_SECRET or the file named by
JETSTREAM_WEBHOOK_SECRET_FILE (never a command-line argument: those show in `ps`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from jetstream.commands import options
from jetstream.logs import get_logger

log = get_logger("jetstream.webhook")


def read_secret(secret_file: Path | None) -> bytes:
    if secret_file is not None:
        try:
            value = secret_file.read_bytes().strip()
        except OSError as exc:
            raise click.UsageError(f"webhook secret file {secret_file}: {exc.strerror}") from None
        if not value:
            raise click.UsageError(f"webhook secret file {secret_file} is empty")
        return value
    value = os.environ.get("JETSTREAM_WEBHOOK_SECRET", "").strip().encode()
    if not value:
        raise click.UsageError(
            "no webhook secret: set JETSTREAM_WEBHOOK_SECRET or JETSTREAM_WEBHOOK_SECRET_FILE"
        )
    return value


@click.group()
def group() -> None:
    """Config-repository webhook server."""


@group.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="JETSTREAM_WEBHOOK_HOST")
@click.option("--port", type=int, default=8080, show_default=True, envvar="JETSTREAM_WEBHOOK_PORT")
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="JETSTREAM_WEBHOOK_SECRET_FILE",
    default=None,
    help="File holding the shared key (else JETSTREAM_WEBHOOK_SECRET).",
)
@click.option(
    "--repo-url",
    envvar="JETSTREAM_CONFIG_REPO_URL",
    required=True,
    help="Config repository to fetch (https://, ssh or file://).",
)
@click.option(
    "--branch",
    envvar="JETSTREAM_CONFIG_BRANCH",
    default="main",
    show_default=True,
    help="Only pushes to this branch trigger reruns.",
)
@click.option(
    "--experiments",
    envvar="JETSTREAM_EXPERIMENTS",
    required=True,
    help="Experiments JSON file or Experimenter API URL.",
)
@click.option(
    "--warehouse",
    envvar="JETSTREAM_WAREHOUSE",
    default="duckdb:jetstream.duckdb",
    show_default=True,
)
@click.option("--out", envvar="JETSTREAM_OUT", default="jetstream-output", show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="JETSTREAM_WEBHOOK_CACHE",
    default=Path("/tmp/jetstream-webhook"),
    show_default=True,
    help="Git mirror, checkouts and the delivery store.",
)
@options.submission(runner_default="local")
@click.option(
    "--cleanup/--no-cleanup",
    default=True,
    show_default=True,
    help="Delete rows of removed metrics and windows before rerunning.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    envvar="JETSTREAM_WEBHOOK_LEASE",
    default=120.0,
    show_default=True,
    help="Seconds after which the pushes held by a webhook that died are taken over.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    envvar="JETSTREAM_WEBHOOK_HEADER_TIMEOUT",
    default=10.0,
    show_default=True,
    help="Seconds a connection has to send its request headers (and a body, once more).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    envvar="JETSTREAM_WEBHOOK_MAX_CONNECTIONS",
    default=64,
    show_default=True,
    help="Concurrent connections; more get 503.",
)
def serve(
    host,
    port,
    secret_file,
    repo_url,
    branch,
    experiments,
    warehouse,
    out,
    cache_dir,
    runner,
    argo_server,
    submit_via,
    image,
    allow_unpinned_image,
    parallelism,
    namespace,
    service_account,
    max_concurrent_pods,
    trigger,
    cleanup,
    lease,
    header_timeout,
    max_connections,
):
    """Serve the webhook: POST /webhook, GET /healthz, GET /readyz."""
    from jetstream.extras import require

    require("webhook", "jetstream webhook serve")

    from jetstream import webhook
    from jetstream.runners.argo.kube import pod_namespace
    from jetstream.runners.base import ARGO, RunnerOptions
    from jetstream.webhook_server import ServerLimits
    from jetstream.webhook_server import serve as serve_app

    secret = read_secret(secret_file)
    if runner == ARGO and not image:
        raise click.UsageError("--runner argo needs --image (or JETSTREAM_IMAGE)")
    submit = webhook.runner_submitter(
        experiments,
        warehouse,
        out,
        RunnerOptions(
            runner=runner,
            parallelism=parallelism,
            argo_server=argo_server,
            submit_via=submit_via,
            allow_unpinned_image=allow_unpinned_image,
            progress=False,
            namespace=namespace,
            service_account=service_account,
            max_concurrent_pods=max_concurrent_pods,
        ),
        image=image,
        namespace=namespace or pod_namespace(),
        pod_config_repo=os.environ.get("JETSTREAM_CONFIG_REPO", ""),
        repo_url=repo_url,
    )
    config = webhook.WebhookConfig(
        secret=secret,
        repo_url=repo_url,
        experiments=experiments,
        cache_dir=cache_dir,
        branch=branch,
        lease=lease,
        body_timeout=header_timeout,
    )
    app = webhook.create_app(
        config, submit, cleanup=webhook.warehouse_cleanup(warehouse) if cleanup else None
    )
    log.info("webhook serving", host=host, port=port, branch=branch, runner=runner)
    serve_app(
        app,
        host,
        port,
        ServerLimits(header_timeout=header_timeout, max_connections=max_connections),
    )
