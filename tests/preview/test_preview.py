"""`jetstream preview`: dates, population, cost estimates and budget, SQL capture, scratch
cleanup (unit tests on a real in-memory DuckDB), and whole previews on synthetic telemetry
in a DuckDB file (the engine's task bodies, run in-process)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from jetstream import synthetic
from jetstream.config.model import Branch, DataSource
from jetstream.errors import ConfigError
from jetstream.periods import Period
from jetstream.preview.cost import (
    Budget,
    BudgetExceeded,
    DuckDBScanEstimator,
    cost_usd,
    human_bytes,
    with_expiration,
)
from jetstream.preview.dates import PreviewDates, preview_dates
from jetstream.preview.population import (
    generated_population_sql,
    sample_percent_for_enrollments,
)
from jetstream.preview.recording import (
    RecordingWarehouse,
    SqlRecorder,
    statement_action,
    statement_target,
)
from jetstream.preview.run import PreviewOptions, run_preview
from jetstream.preview.scratch import (
    REGISTRY_TABLE,
    cleanup_duckdb,
    duckdb_scratch,
    register_duckdb,
)
from jetstream.warehouse import open_warehouse

D = dt.date
NOW = dt.datetime(2026, 1, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def memory_wh():
    wh = open_warehouse("duckdb::memory:")
    yield wh
    wh.close()


# ------------------------------------------------------------------ dates


def test_default_dates_end_at_yesterday_or_last_telemetry():
    d = preview_dates(D(2026, 1, 20))
    # last enrollment day = start + enrollment_period (3), as the engine and Jetstream
    assert (d.start, d.last_enrollment, d.end) == (D(2026, 1, 14), D(2026, 1, 17), D(2026, 1, 19))
    assert d.num_days == 3 and d.analysis_dates == [D(2026, 1, 17), D(2026, 1, 18), D(2026, 1, 19)]
    d = preview_dates(D(2026, 1, 20), last_telemetry=D(2026, 1, 10))
    assert d.end == D(2026, 1, 10) and d.last_enrollment == D(2026, 1, 8)
    d = preview_dates(D(2026, 1, 20), last_telemetry=D(2026, 3, 1))  # future data: yesterday
    assert d.end == D(2026, 1, 19)


def test_dates_from_options():
    d = preview_dates(D(2026, 3, 1), start=D(2026, 1, 5), num_days=4, enrollment_period=2)
    assert d == PreviewDates(D(2026, 1, 5), 2, D(2026, 1, 10))
    assert d.num_days == 4
    d = preview_dates(D(2026, 3, 1), start=D(2026, 1, 5), end=D(2026, 1, 12), enrollment_period=1)
    assert d.num_days == 7
    d = preview_dates(D(2026, 3, 1), end=D(2026, 1, 12), num_days=1, enrollment_period=7)
    assert (d.start, d.last_enrollment) == (D(2026, 1, 5), D(2026, 1, 12))
    with pytest.raises(ValueError, match="at most two of"):
        preview_dates(D(2026, 3, 1), start=D(2026, 1, 5), end=D(2026, 1, 9), num_days=2)
    with pytest.raises(ValueError, match="before the last enrollment day"):
        preview_dates(D(2026, 3, 1), start=D(2026, 1, 5), end=D(2026, 1, 6), enrollment_period=3)
    with pytest.raises(ValueError, match="--enrollment-period"):
        preview_dates(D(2026, 3, 1), enrollment_period=0)


# ------------------------------------------------------------------ population


def test_enrolled_sample_is_whole_percent():
    assert sample_percent_for_enrollments(1.0) == 1
    for bad in (0.5, 0, 101):
        with pytest.raises(ValueError, match="whole percentage"):
            sample_percent_for_enrollments(bad)


def test_generated_population_samples_and_assigns_branches(memory_wh):
    n = 20_000
    days = [D(2026, 1, 1) + dt.timedelta(days=i % 3) for i in range(n * 2)]
    memory_wh.load_arrow(
        "telemetry.activity",
        pa.table({"client_id": [f"c{i % n}" for i in range(n * 2)], "submission_date": days}),
    )
    from jetstream.config.model import ExperimentSettings

    exp = ExperimentSettings(
        slug="gen-test",
        app_name="demo",
        branches=(Branch("control", 1), Branch("treatment", 3)),
        reference_branch="control",
        start_date=D(2026, 1, 1),
        end_date=None,
        enrollment_period=3,
    )
    source = DataSource("activity", "telemetry.activity")
    dates = PreviewDates(D(2026, 1, 1), 3, D(2026, 1, 5))
    sql = generated_population_sql(exp, source, dates, 10)
    rows = memory_wh.query(sql).to_pylist()
    assert 1700 < len(rows) < 2300  # ~10 % of 20 000
    assert {r["enrollment_date"] for r in rows} <= {D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 3)}
    treated = sum(r["branch"] == "treatment" for r in rows) / len(rows)
    assert 0.70 < treated < 0.80  # ratio 1:3
    assert {r["num_enrollment_events"] for r in rows} == {1}
    again = memory_wh.query(sql).to_pylist()
    assert sorted(map(str, again)) == sorted(map(str, rows))  # deterministic by id
    bigger = {
        r["client_id"]
        for r in memory_wh.query(generated_population_sql(exp, source, dates, 20)).to_pylist()
    }
    assert {r["client_id"] for r in rows} <= bigger  # samples nest
    with pytest.raises(ValueError, match="sample-size"):
        generated_population_sql(exp, source, dates, 0)


# ------------------------------------------------------------------ cost


def test_budget_and_formatting():
    b = Budget(max_bytes=1000, yes=False, price_per_tib=6.25)
    b.charge("a", 600)
    with pytest.raises(BudgetExceeded, match=r"b would scan about 500 B.*past --max-bytes.*--yes"):
        b.charge("b", 500)
    assert b.total == 600
    forced = Budget(1000, yes=True, price_per_tib=6.25)
    forced.charge("b", 5000)
    assert forced.total == 5000
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(10) == "10 B"
    assert cost_usd(1024**4, 6.25) == pytest.approx(6.25)


def test_with_expiration():
    opt = "OPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 7 DAY))"
    assert with_expiration("CREATE TABLE IF NOT EXISTS `p.d.t` (a INT64, b ARRAY<INT64>)") == (
        f"CREATE TABLE IF NOT EXISTS `p.d.t` (a INT64, b ARRAY<INT64>) {opt}"
    )
    assert with_expiration("CREATE OR REPLACE VIEW `p.d.v` AS SELECT 1") == (
        f"CREATE OR REPLACE VIEW `p.d.v` {opt} AS SELECT 1"
    )
    assert with_expiration("CREATE OR REPLACE TABLE p.d.t AS SELECT (1) AS x") == (
        f"CREATE OR REPLACE TABLE p.d.t {opt} AS SELECT (1) AS x"
    )
    for unchanged in ("INSERT INTO t SELECT 1", "CREATE TABLE t (a INT64) OPTIONS (x = 1)"):
        assert with_expiration(unchanged) == unchanged


def test_duckdb_estimate_counts_only_the_columns_read(memory_wh):
    memory_wh.load_arrow(
        "telemetry.t",
        pa.table({"a": list(range(100)), "s": ["xy"] * 100, "f": [0.5] * 100, "b": [True] * 100}),
    )
    est = DuckDBScanEstimator(memory_wh)
    assert est.estimate("SELECT a FROM telemetry.t") == 800
    assert est.estimate("SELECT a, s FROM `telemetry.t` WHERE b") == 800 + 400 + 100
    assert est.estimate("SELECT * FROM telemetry.t") == 800 + 400 + 800 + 100
    assert est.estimate("WITH c AS (SELECT f FROM telemetry.t) SELECT f FROM c") == 800
    assert est.estimate("SELECT COUNT(*) AS n FROM telemetry.t") == 0
    assert est.estimate("SELECT x FROM telemetry.missing") == 0


# ------------------------------------------------------------------ recording and scratch


def test_statement_names():
    assert statement_action("-- c\nCREATE OR REPLACE TABLE x AS SELECT 1") == "create_table"
    assert statement_action("WITH a AS (SELECT 1) SELECT * FROM a") == "select"
    assert statement_action("BEGIN TRANSACTION;\nDELETE FROM x") == "transaction"
    assert statement_target("CREATE TABLE IF NOT EXISTS `s.metrics_x` (a INT64)") == "metrics_x"
    assert statement_target("BEGIN TRANSACTION;\nDELETE FROM `s.errors` WHERE") == "errors"
    assert statement_target("SELECT 1") is None


def test_recording_warehouse_maps_records_and_gates(memory_wh, tmp_path):
    memory_wh.load_arrow("telemetry.t", pa.table({"a": list(range(1000))}))
    scratch = duckdb_scratch("my-exp", NOW)
    register_duckdb(memory_wh, scratch, "my-exp")
    lines: list[str] = []
    budget = Budget(max_bytes=10_000, yes=False, price_per_tib=6.25)
    rec = SqlRecorder(tmp_path / "sql", "configs/my-exp.toml", "my-exp", budget, lines.append)
    wh = RecordingWarehouse(memory_wh, scratch, rec)
    with rec.step("enrollments", metrics=["m1", "m2"], config_keys=["metrics.m1"]):
        wh.create_table_as("copy_t", f"SELECT a FROM {memory_wh.table_ref('telemetry.t')}")
    assert memory_wh.table_exists(f"{scratch.location}.copy_t")  # in the scratch schema
    assert not memory_wh.table_exists("copy_t")
    assert wh.table_exists("copy_t") and wh.table_columns("copy_t") == {"a": "INT64"}
    assert wh.table_ref("copy_t") == f"`{scratch.location}.copy_t`"
    assert wh.query(f"SELECT COUNT(*) AS n FROM {wh.table_ref('copy_t')}").to_pylist() == [
        {"n": 1000}
    ]
    files = sorted((tmp_path / "sql").iterdir())
    assert [f.name for f in files] == [
        "001_enrollments_create_table_copy_t.sql",
        "002_setup_select.sql",
    ]
    text = files[0].read_text()
    assert "-- config file: configs/my-exp.toml\n" in text
    assert "-- metrics: m1, m2\n" in text and "-- config keys: metrics.m1\n" in text
    assert "-- estimated bytes: 8000 " in text  # 1000 INT64 values
    assert f"CREATE OR REPLACE TABLE `{scratch.location}.copy_t` AS\nSELECT a FROM" in text
    assert lines[0].startswith("  [001] enrollments (create_table_copy_t): 7.8 KiB (~$")
    # the next statement would pass the budget: refused before it runs
    with pytest.raises(BudgetExceeded, match=r"\[003\] setup \(create_table_copy2\)"):
        wh.create_table_as("copy2", f"SELECT a FROM {memory_wh.table_ref('telemetry.t')}")
    assert not wh.table_exists("copy2")
    assert len(list((tmp_path / "sql").iterdir())) == 2


def test_cleanup_drops_only_old_previews(memory_wh):
    old = duckdb_scratch("exp", NOW - dt.timedelta(days=8))
    new = duckdb_scratch("exp", NOW - dt.timedelta(days=2))
    for s in (old, new):
        register_duckdb(memory_wh, s, "exp")
        memory_wh.create_table_as(f"{s.location}.t", "SELECT 1 AS a")
    assert cleanup_duckdb(memory_wh, NOW) == [old.location]
    assert not memory_wh.table_exists(f"{old.location}.t")
    assert memory_wh.table_exists(f"{new.location}.t")
    remaining = memory_wh.query(
        f"SELECT schema_name FROM {memory_wh.table_ref(REGISTRY_TABLE)}"
    ).to_pylist()
    assert remaining == [{"schema_name": new.location}]
    assert cleanup_duckdb(memory_wh, NOW) == []


# ------------------------------------------------------------------ whole previews

SMALL_CONFIG = """
[experiment]
enrollment_period = 3

[metrics]
daily = ["days_of_use", "broken_metric"]

[metrics.days_of_use.statistics.bootstrap_mean]
num_samples = 100

[metrics.broken_metric]
select_expression = "SUM(no_such_column)"
data_source = "clients_daily"
friendly_name = "Broken"

[metrics.broken_metric.statistics.bootstrap_mean]
num_samples = 100
"""


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory) -> Path:
    """Synthetic telemetry for 300 clients (2025-12-08 .. 2026-01-14) in a DuckDB file."""
    path = tmp_path_factory.mktemp("telemetry") / "base.duckdb"
    wh = open_warehouse(f"duckdb:{path}")
    try:
        synthetic.write(wh, synthetic.generate(clients=300, days=10, seed=7))
    finally:
        wh.close()
    return path


def _copy(telemetry: Path, tmp_path: Path) -> str:
    target = tmp_path / "w.duckdb"
    shutil.copy(telemetry, target)
    return f"duckdb:{target}"


@pytest.mark.slow
def test_preview_config_file_alone_generated_population(telemetry, tmp_path):
    config = tmp_path / "my-draft.toml"
    config.write_text(SMALL_CONFIG)
    out: list[str] = []
    opts = PreviewOptions(
        warehouse=_copy(telemetry, tmp_path),
        out=tmp_path / "out",
        config_file=str(config),
        config_repo=str(synthetic.DEMO_DIR),
        platform="demo",
        generate_population=True,
        population_sample_size=100,
        sql_output_dir=tmp_path / "sql",
        analysis_periods=(Period.DAY,),
        now=dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC),
    )
    result = run_preview(opts, out.append)
    text = "\n".join(out)
    # a metric failed: non-zero, after everything else ran and was reported
    assert result.exit_code == 1, text
    assert "broken_metric" in result.failed_metrics
    assert "days_of_use" not in result.failed_metrics
    assert "experiment: my-draft (not in Experimenter" in text
    assert "population: generated: 100% of the clients active in clients_daily" in text
    # telemetry ends 2026-01-14 = yesterday: a 3-day analysis window ending there
    assert result.dates == PreviewDates(D(2026, 1, 9), 3, D(2026, 1, 14))
    assert "  broken_metric:\n    ERROR" in text and "no_such_column" in text
    assert result.report is not None and result.report.is_file()
    assert f"report: {result.report.resolve().as_uri()}" in text
    stats = json.loads(
        (tmp_path / "out/results/statistics/statistics_my_draft_daily.json").read_text()
    )
    good = {
        (r["branch"], r["window_index"])
        for r in stats
        if r["metric"] == "days_of_use" and r.get("comparison") is None
    }
    assert good == {(b, w) for b in ("control", "treatment") for w in ("1", "2", "3")}
    assert not any(r["metric"] == "broken_metric" for r in stats)
    # every statement run is saved, numbered, named after its step, with its header
    files = sorted((tmp_path / "sql").iterdir())
    assert len(files) == result.statements > 10
    assert [f.name[:3] for f in files] == [f"{i:03d}" for i in range(1, len(files) + 1)]
    population = next(f for f in files if "enrollments_create_table_enrollment_clients" in f.name)
    body = population.read_text()
    assert f"-- config file: {config}\n" in body and "population_source" in body
    assert "experiment.enrollment_query" in body
    unit = next(f for f in files if f.name.split("_", 1)[1].startswith("metrics_day_clients_daily"))
    metrics_line = next(x for x in unit.read_text().splitlines() if x.startswith("-- metrics: "))
    assert {"days_of_use", "broken_metric"} <= set(metrics_line[12:].split(", "))
    assert "data_sources.clients_daily" in unit.read_text()
    assert result.total_bytes > 0 and "estimated total:" in text


@pytest.mark.slow
def test_preview_experiment_in_experimenter_with_enrolled_sample(telemetry, tmp_path):
    config = tmp_path / "demo-sidebar-redesign.toml"
    config.write_text(SMALL_CONFIG.replace(', "broken_metric"', ""))
    out: list[str] = []
    opts = PreviewOptions(
        warehouse=_copy(telemetry, tmp_path),
        out=tmp_path / "out",
        config_file=str(config),
        config_repo=str(synthetic.DEMO_DIR),
        experiments=str(synthetic.DEMO_DIR / "experiments.json"),
        start_date=D(2026, 1, 5),
        num_days=2,
        population_sample_size=50,
        analysis_periods=(Period.DAY,),
        now=NOW,
    )
    result = run_preview(opts, out.append)
    text = "\n".join(out)
    assert "experiment: demo-sidebar-redesign (in Experimenter)" in text
    assert "population: enrolled clients, 50% sampled by client id" in text
    assert result.exit_code == 0, text
    stats = json.loads(
        (
            tmp_path / "out/results/statistics/statistics_demo_sidebar_redesign_daily.json"
        ).read_text()
    )
    branches = {r["branch"] for r in stats if r["metric"] == "days_of_use"}
    assert branches == {"control", "treatment-a", "treatment-b"}  # from the Experimenter record
    assert "report: file://" in text


@pytest.mark.slow
def test_preview_cli_refuses_past_max_bytes_and_clones_git_repo(telemetry, tmp_path):
    from jetstream.commands.preview import command

    repo = tmp_path / "repo"
    shutil.copytree(synthetic.DEMO_DIR, repo)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "demo"], check=True)
    sql_dir = tmp_path / "sql"
    args = [
        "--slug",
        "demo-sidebar-redesign",
        "--config-repo",
        repo.as_uri(),
        "--experiments",
        str(repo / "experiments.json"),
        "--warehouse",
        _copy(telemetry, tmp_path),
        "--start-date",
        "2026-01-05",
        "--population-sample-size",
        "100",
        "--sql-output-dir",
        str(sql_dir),
        "--out",
        str(tmp_path / "out"),
        "--max-bytes",
        "20K",
    ]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 1, result.output
    assert "stopped: [" in result.output and "past --max-bytes 20.0 KiB" in result.output
    assert "report:" not in result.output
    n = len(list(sql_dir.iterdir()))
    assert n >= 1  # statements before the refused one ran and were saved
    assert not (tmp_path / "out" / "report").exists()

    # --cleanup alone; the preview above registered its schema just now: nothing to drop
    cleanup = CliRunner().invoke(
        command, ["--cleanup", "--warehouse", args[args.index("--warehouse") + 1]]
    )
    assert cleanup.exit_code == 0, cleanup.output
    assert "dropped 0 preview schema(s)" in cleanup.output


def test_preview_needs_a_config_repo(tmp_path):
    config = tmp_path / "x.toml"
    config.write_text(SMALL_CONFIG)
    opts = PreviewOptions(warehouse="duckdb::memory:", out=tmp_path, config_file=str(config))
    with pytest.raises(ConfigError, match="--config-repo"):
        run_preview(opts, lambda _: None)
    bad = tmp_path / "bad.toml"
    bad.write_text("[metrics\n")
    opts = PreviewOptions(
        warehouse="duckdb::memory:",
        out=tmp_path,
        config_file=str(bad),
        config_repo=str(synthetic.DEMO_DIR),
    )
    with pytest.raises(ConfigError, match=r"bad\.toml: malformed TOML"):
        run_preview(opts, lambda _: None)
