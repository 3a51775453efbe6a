"""Collect the BigQuery statements the engine issues, through the DuckDB warehouse's SQL
log (jetstream/warehouse/sql_log.py): a demo analysis, the shred command, previews with
their cleanup, and the live-monitoring jobs. Each scenario gives its own list of log
entries, analysed later with a catalog of its own."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from jetstream.warehouse import sql_log

DEMO_CLIENTS = 150
DEMO_DAYS = 8  # day, week and pre-enrollment windows
TIMEOUT = 900
DEMO_MODULES = ("jetstream.synthetic.demo", "jetstream.demo")


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[Path]:
    """Log the SQL of the warehouses of this process (and its children) into `path`."""
    before = os.environ.get(sql_log.ENV)
    os.environ[sql_log.ENV] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(sql_log.ENV, None)
        else:
            os.environ[sql_log.ENV] = before


def demo(
    tmp: Path,
    clients: int = DEMO_CLIENTS,
    days: int = DEMO_DAYS,
    config_repo: Path | None = None,
) -> tuple[list[dict], Path]:
    """A whole demo run (synthetic telemetry, every task kind of the demo experiments with
    the local runner's worker processes, export); returns its log and warehouse file."""
    out = tmp / "demo"
    log = tmp / "demo.jsonl"
    env = {**os.environ, sql_log.ENV: str(log), "JETSTREAM_LOG_LEVEL": "WARNING"}
    args = ["--out", str(out), "--clients", str(clients), "--days", str(days)]
    if config_repo is not None:
        args += ["--config-repo", str(config_repo)]
    # the demo's module (jetstream.demo; jetstream.synthetic.demo once synthetic/ is a package)
    module = next(m for m in DEMO_MODULES if _module_exists(m))
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )
    if proc.returncode != 0:
        raise AssertionError(f"demo failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return read_log(log), out / "warehouse.duckdb"


def shred(tmp: Path, warehouse: Path) -> list[dict]:
    """`jetstream shred` on a copy of the demo warehouse (its tables come from the demo's
    statements: analyse this log after the demo's, in the same catalog)."""
    from click.testing import CliRunner

    from jetstream.cli import cli

    copy = tmp / "shred.duckdb"
    shutil.copy(warehouse, copy)
    ids = tmp / "ids.txt"
    ids.write_text("client-1\nnot-a-client\n")
    with logging_to(tmp / "shred.jsonl") as log:
        res = CliRunner().invoke(
            cli, ["shred", "--client-ids", str(ids), "--warehouse", f"duckdb:{copy}"]
        )
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    return read_log(log)


SMALL_CONFIG = """
[experiment]
enrollment_period = 3

[metrics]
daily = ["days_of_use"]

[metrics.days_of_use.statistics.bootstrap_mean]
num_samples = 50
"""


def previews(tmp: Path) -> list[dict]:
    """Two previews (a draft config with a generated population; an Experimenter
    experiment with an enrolled sample) and `--cleanup` of old preview schemas."""
    from jetstream import synthetic
    from jetstream.periods import Period
    from jetstream.preview.run import PreviewOptions, run_preview
    from jetstream.warehouse import open_warehouse

    now = dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC)
    path = tmp / "preview.duckdb"
    with logging_to(tmp / "preview.jsonl") as log:
        wh = open_warehouse(f"duckdb:{path}")
        try:
            synthetic.write(wh, synthetic.generate(clients=100, days=10, seed=7))
        finally:
            wh.close()
        draft = tmp / "my-draft.toml"
        draft.write_text(SMALL_CONFIG)
        known = tmp / "demo-sidebar-redesign.toml"
        known.write_text(SMALL_CONFIG)
        common = dict(
            warehouse=f"duckdb:{path}",
            config_repo=str(synthetic.DEMO_DIR),
            analysis_periods=(Period.DAY,),
        )
        runs = [
            PreviewOptions(
                out=tmp / "preview-1",
                config_file=str(draft),
                platform="demo",
                generate_population=True,
                population_sample_size=100,
                now=now,
                **common,
            ),
            PreviewOptions(
                out=tmp / "preview-2",
                config_file=str(known),
                experiments=str(synthetic.DEMO_DIR / "experiments.json"),
                start_date=dt.date(2026, 1, 5),
                num_days=2,
                population_sample_size=50,
                now=now,
                **common,
            ),
            # eight days later: the previews above are old enough to be dropped
            PreviewOptions(
                out=tmp / "preview-3", cleanup=True, now=now + dt.timedelta(days=8), **common
            ),
        ]
        output: list[str] = []
        for opts in runs:
            result = run_preview(opts, output.append)
            # exit 1 is also findings (statistics of too few clients; SQL errors show in
            # the analysis)
            assert result.exit_code in (0, 1), "\n".join(output)
        assert any("dropped 2 preview schema" in line for line in output), output
    return read_log(log)


def monitoring(tmp: Path, warehouse: str = "duckdb::memory:") -> list[dict]:
    """The live-monitoring jobs (hourly, five-minute, daily) on a synthetic event stream
    (in `warehouse`: a file keeps the tables for a later look)."""
    from jetstream.artifacts import open_store
    from jetstream.monitoring.jobs import Monitor
    from jetstream.monitoring.schedule import Job
    from jetstream.warehouse import open_warehouse
    from tests.monitoring.test_data import D, experiments, make_stream

    hour = dt.timedelta(hours=1)
    with logging_to(tmp / "monitoring.jsonl") as log:
        wh = open_warehouse(warehouse)
        try:
            for name, table in make_stream(clients=100, events=1000).items():
                wh.load_arrow(name, table, mode="replace")
            monitor = Monitor(wh)
            exps = experiments()
            store = open_store(str(tmp / "monitoring-out"))
            monitor.run(Job.HOURLY, D + 22 * hour + dt.timedelta(minutes=30), exps)
            monitor.run(Job.FIVE_MINUTE, D + 24 * hour + dt.timedelta(minutes=40), exps, store)
            monitor.run(Job.DAILY, D + 27 * hour, exps)
            monitor.run(Job.HOURLY, D + 26 * hour + dt.timedelta(minutes=30), exps)
            monitor.run(Job.FIVE_MINUTE, D + 31 * hour + dt.timedelta(minutes=12), exps, store)
        finally:
            wh.close()
    return read_log(log)
