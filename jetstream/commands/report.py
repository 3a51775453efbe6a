"""`jetstream report`: render the self-contained HTML results dashboard from published JSON."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--statistics",
    "location",
    required=True,
    envvar="JETSTREAM_OUT",
    help="Where the results were published: a directory or gs://BUCKET[/PREFIX].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write index.html into (created if needed).",
)
@click.option("--experiment", "slug", default=None, help="Only this experiment (default: all).")
@click.option("--title", default=None, help="Page title (default: from the experiments).")
def command(location: str, out: Path, slug: str | None, title: str | None) -> None:
    """Render the results dashboard: one HTML file that opens without network access."""
    from jetstream.report import render_report

    path = render_report(location, out, slug, title=title)
    click.echo(path.resolve().as_uri())
