"""`jetstream preview`: run an experiment config on a small sample before merging it, with
every statement's estimated bytes and cost shown first and saved as numbered `.sql` files.
See docs/preview.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from jetstream.commands import options


def _periods(ctx: click.Context, param: click.Parameter, value: str) -> tuple:
    from jetstream.periods import Period

    try:
        return tuple(Period.parse(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _bytes(ctx: click.Context, param: click.Parameter, value: str | int) -> int:
    text = str(value).strip().upper().replace("IB", "").replace("B", "")
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(float(text))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a byte count (e.g. 5000000, 10G, 1T)") from None


@click.command()
@click.option("--slug", default=None, help="Experiment slug (default: the config file's name).")
@click.option("--config-file", default=None, help="Experiment config TOML: a path or URL.")
@click.option(
    "--config-repo",
    envvar="JETSTREAM_CONFIG_REPO",
    default=None,
    help="Config repo in metric-hub layout: a path or git URL (cloned).",
)
@click.option(
    "--experiments",
    envvar="JETSTREAM_EXPERIMENTS",
    default=None,
    help="Experiments source (v8 JSON file or Experimenter API URL). Without it, "
    "or when the slug is not there, a placeholder record on --platform is used.",
)
@click.option(
    "--platform",
    default=None,
    help="Platform (app name) for experiments not in Experimenter (default firefox_desktop).",
)
@options.date_option("--start-date", help="First enrollment day.")
@options.date_option(
    "--end-date",
    help="Last day of analysis (default: the earlier of "
    "yesterday and the last date with telemetry).",
)
@click.option(
    "--num-days",
    type=int,
    default=None,
    help="Days of analysis after the last enrollment day, inclusive (default 3).",
)
@click.option("--enrollment-period", type=int, default=None, help="Days of enrollment (default 3).")
@click.option(
    "--generate-population",
    is_flag=True,
    help="Draw clients from the activity data "
    "and assign them to branches at the configured ratios (nobody needs to have enrolled).",
)
@click.option(
    "--population-sample-size",
    type=float,
    default=1.0,
    show_default=True,
    help="Percent of clients to analyse (sampled by a hash of the client id).",
)
@click.option(
    "--sql-output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write every statement run as a numbered .sql file here.",
)
@click.option(
    "--analysis-periods",
    callback=_periods,
    default="day",
    show_default=True,
    help="Comma-separated periods: day, week, days28, overall, ...",
)
@click.option(
    "--warehouse",
    envvar="JETSTREAM_WAREHOUSE",
    default="duckdb:jetstream.duckdb",
    show_default=True,
    callback=options.existing_warehouse,
    help="Where the telemetry is: duckdb:PATH (must exist) or bigquery:PROJECT.DATASET.",
)
@click.option("--project-id", default=None, help="BigQuery project of the scratch dataset.")
@click.option(
    "--dataset-id",
    default=None,
    help="BigQuery scratch dataset (default jetstream_preview); tables in it expire after 7 days.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("jetstream-preview"),
    show_default=True,
    help="Directory for the published JSON (results/) and the report (report/).",
)
@click.option(
    "--max-bytes",
    callback=_bytes,
    default="100G",
    show_default=True,
    help="Refuse to run past this many estimated bytes (e.g. 500M, 10G, 1T).",
)
@click.option("--yes", is_flag=True, help="Run even past --max-bytes.")
@click.option(
    "--price-per-tib",
    type=float,
    default=6.25,
    show_default=True,
    help="USD per TiB scanned, for the cost estimates.",
)
@click.option(
    "--cleanup",
    is_flag=True,
    help="First drop DuckDB preview schemas older than 7 days (alone: only clean up).",
)
def command(
    slug,
    config_file,
    config_repo,
    experiments,
    platform,
    start_date,
    end_date,
    num_days,
    enrollment_period,
    generate_population,
    population_sample_size,
    sql_output_dir,
    analysis_periods,
    warehouse,
    project_id,
    dataset_id,
    out,
    max_bytes,
    yes,
    price_per_tib,
    cleanup,
) -> None:
    """Preview a config on a sample, cheaply, before merging it."""
    from jetstream.preview.run import PreviewOptions, run_preview

    if not (slug or config_file or cleanup):
        raise click.UsageError("give --slug or --config-file (or --cleanup alone)")
    opts = PreviewOptions(
        warehouse=warehouse,
        out=out,
        slug=slug,
        config_file=config_file,
        config_repo=config_repo,
        experiments=experiments,
        platform=platform,
        start_date=start_date,
        end_date=end_date,
        num_days=num_days,
        enrollment_period=enrollment_period,
        generate_population=generate_population,
        population_sample_size=population_sample_size,
        sql_output_dir=sql_output_dir,
        analysis_periods=analysis_periods,
        project_id=project_id,
        dataset_id=dataset_id,
        max_bytes=max_bytes,
        yes=yes,
        price_per_tib=price_per_tib,
        cleanup=cleanup,
        now=dt.datetime.now(dt.UTC),
    )
    result = run_preview(opts, click.echo)
    raise SystemExit(result.exit_code)
