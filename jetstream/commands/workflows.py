"""`jetstream workflows`: render, validate and install the cluster's six Argo objects
(WorkflowTemplates jetstream-rerun and jetstream-preview, CronWorkflow jetstream-daily and
the three jetstream-monitor-* CronWorkflows; `jetstream.runners.argo.templates`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def group() -> None:
    """Render, validate and install the Argo workflow manifests."""
    from jetstream.extras import require

    require("argo", "jetstream workflows", ("hera",))


@group.command("render")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one YAML file per object into this directory (default: print to stdout).",
)
def render(out: Path | None) -> None:
    """Render the WorkflowTemplates and CronWorkflows to YAML."""
    from jetstream.runners.argo.templates import render_all

    docs = render_all()
    if out is None:
        click.echo("---\n".join(docs.values()), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (out / name).write_text(text)
        click.echo(str(out / name))


@group.command("validate")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--schema",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="JETSTREAM_ARGO_SCHEMA",
    default=None,
    help="Argo JSON schema (argo-workflows.schema.json; required); env JETSTREAM_ARGO_SCHEMA.",
)
def validate(files: tuple[Path, ...], schema: Path | None) -> None:
    """Check manifests (default: the rendered ones) against the strict Argo schema and
    the semantic rules. Exit 1 with one line per problem."""
    import yaml

    from jetstream.manifests import load_schema, validate_all
    from jetstream.runners.argo.templates import manifests

    if schema is None:
        raise click.UsageError(
            "the Argo JSON schema is required: pass --schema PATH or set JETSTREAM_ARGO_SCHEMA "
            "(argo-workflows.schema.json of Argo Workflows)"
        )
    if files:
        objs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    else:
        objs = manifests()
    problems = validate_all(objs, load_schema(schema))
    for p in problems:
        click.echo(p)
    if problems:
        raise SystemExit(1)
    click.echo(f"{len(objs)} manifests valid", err=True)


@group.command("apply")
@click.option(
    "--argo-server", envvar="JETSTREAM_ARGO_SERVER", default=None, help="argo-server URL."
)
@click.option(
    "--submit-via",
    type=click.Choice(["argo-server", "kubernetes"]),
    envvar="JETSTREAM_SUBMIT_VIA",
    default="argo-server",
    show_default=True,
)
@click.option("--namespace", envvar="JETSTREAM_NAMESPACE", default="jetstream", show_default=True)
def apply(argo_server: str | None, submit_via: str, namespace: str) -> None:
    """Install or update all six WorkflowTemplates and CronWorkflows in a cluster."""
    from jetstream.runners.argo.submit import apply_all, client_for
    from jetstream.runners.argo.templates import manifests

    client = client_for(submit_via, namespace, argo_server=argo_server)
    objects = manifests()
    for obj, result in zip(objects, apply_all(objects, client), strict=True):
        version = result.get("metadata", {}).get("resourceVersion", "?")
        name = obj["metadata"]["name"]
        click.echo(f"{obj['kind']} {namespace}/{name} applied (resourceVersion {version})")
    click.echo(f"{len(objects)} objects applied", err=True)
