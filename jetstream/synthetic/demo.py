"""`make demo`: synthetic telemetry -> full analysis of the demo experiments on the
embedded engine -> published JSON and an HTML report. `python -m jetstream.synthetic.demo --out DIR`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

import click


@click.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True
)
@click.option("--clients", type=int, default=10_000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--parallelism", type=int, default=2, show_default=True)
@click.option(
    "--config-repo",
    type=click.Path(path_type=Path),
    default=None,
    help="Config repo (default: the shipped demo platform).",
)
@click.option(
    "--days",
    type=int,
    default=None,
    help="Analyse only this many data dates from the last enrollment day (default: all).",
)
def main(
    out: Path,
    clients: int,
    seed: int,
    parallelism: int,
    config_repo: Path | None,
    days: int | None,
) -> None:
    """Run the whole demo and print where the results are."""
    from jetstream import logs, synthetic
    from jetstream.commands.loading import load_many
    from jetstream.commands.run import execute_graph
    from jetstream.graph import plan_dates, skip_reason
    from jetstream.warehouse import open_warehouse

    logs.configure(os.environ.get("JETSTREAM_LOG_LEVEL", "WARNING"))
    started = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    db = out / "warehouse.duckdb"
    warehouse = f"duckdb:{db}"
    repo = config_repo or synthetic.DEMO_DIR
    experiments = str(synthetic.DEMO_DIR / "experiments.json")
    results_dir = out / "results"

    click.echo(f"1/3 generating synthetic telemetry for {clients:,} clients into {db}")
    wh = open_warehouse(warehouse)
    try:
        synthetic.write(wh, synthetic.generate(clients=clients, seed=seed))
    finally:
        wh.close()

    specs, failures = load_many(experiments, repo)
    for slug, problem in failures.items():
        click.echo(f"   {slug}: not analysed: {problem}")
    code = 0
    for spec in specs:
        exp = spec.experiment
        if not spec.periods:
            click.echo(
                f"   {spec.slug}: skipped (no metrics for platform {exp.app_name} in {repo}; "
                "for the real firefox_desktop defaults pass --config-repo <metric-hub checkout>)"
            )
            continue
        end = exp.end_date
        last = exp.last_enrollment_date
        if end is None or last is None or skip_reason(spec, end) not in (None,):
            click.echo(f"   {spec.slug}: skipped ({skip_reason(spec, end or dt.date.today())})")
            continue
        n_dates = (end - last).days + 1
        if days is not None:
            n_dates = max(1, min(n_dates, days))
        dates = [last + dt.timedelta(days=i) for i in range(n_dates)]
        graph = plan_dates([spec], dates)
        click.echo(f"2/3 analysing {spec.slug}: {len(dates)} days, {len(graph.nodes)} tasks")
        code |= execute_graph(
            graph,
            experiments=experiments,
            config_repo=repo,
            warehouse=warehouse,
            out=str(results_dir),
            runner="local",
            parallelism=parallelism,
        )
    click.echo("3/3 rendering the report")
    report = out / "report"
    try:
        from jetstream.report import render_report

        html = render_report(str(results_dir), report)
        click.echo(f"report: file://{Path(html).resolve()}")
    except ImportError:
        click.echo("report: not available in this build")
    click.echo(f"warehouse: {db}")
    click.echo(f"statistics JSON: {results_dir / 'statistics'}")
    click.echo(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)


if __name__ == "__main__":
    main()
