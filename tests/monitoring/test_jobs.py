"""Monitoring jobs on DuckDB against an independent pandas computation from the raw events
(tests/monitoring/test_data.py): exact counts across interval boundaries, late events under
the precedence rule daily > hourly > recents, idempotent reruns, exported files."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from jetstream.artifacts import open_store
from jetstream.monitoring import sql
from jetstream.monitoring.jobs import Monitor, export_path, health_path
from jetstream.monitoring.schedule import (
    Interval,
    Job,
    daily_interval,
    hourly_interval,
    last_window,
    parse_time,
    uncovered_hours,
)
from jetstream.warehouse import open_warehouse
from tests.monitoring.test_data import (
    BRANCHES,
    D,
    Layers,
    expected,
    expected_first_enrollments,
    experiments,
    make_stream,
)

H = dt.timedelta(hours=1)
T1 = D + dt.timedelta(hours=24, minutes=40, seconds=30)  # before the daily job
T2 = D + dt.timedelta(hours=31, minutes=12, seconds=30)  # after it
DAILY_AT = D + dt.timedelta(hours=27)
PHASE1_HOURLY = {D + dt.timedelta(hours=h): D + dt.timedelta(hours=h + 1, minutes=30)
                 for h in (21, 22)}  # fmt: skip
PHASE2_HOURLY = {D + dt.timedelta(hours=24 + h): D + dt.timedelta(hours=25 + h, minutes=30)
                 for h in range(3)}  # fmt: skip


def _load(wh, stream):
    for name, table in stream.items():
        wh.load_arrow(name, table, mode="replace")


def snapshot(wh) -> dict[str, list]:
    out = {}
    for table in wh.list_tables():
        if table.startswith(("monitoring_", "experiment_")):
            rows = wh.query(f"SELECT * FROM `{table}`").to_pylist()
            out[table] = sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))
    return out


def derived(wh, name: str, slug: str) -> pd.DataFrame:
    df = wh.query(
        f"SELECT time, branch, value FROM `{name}` WHERE experiment = '{slug}' "
        "ORDER BY time, branch"
    ).to_pandas()
    return df.reset_index(drop=True)


def assert_matches(wh, stream, layers, slug):
    want = expected(stream, layers, slug)
    for name in sql.DERIVED:
        got = derived(wh, name, slug)
        exp = want[name]
        assert len(got) == len(exp), name
        assert list(got["time"]) == list(exp["time"]), name
        assert list(got["branch"]) == list(exp["branch"]), name
        diff = got["value"].to_numpy() != exp["value"].to_numpy()
        assert not diff.any(), (
            f"{name} differs at {got[diff].head().to_dict('records')} "
            f"expected {exp[diff].head().to_dict('records')}"
        )


@pytest.fixture(scope="module")
def stream():
    return make_stream()


@pytest.fixture(scope="module")
def phases(stream, tmp_path_factory):
    """Run phase 1 (hourly jobs, five-minute job, no daily yet), snapshot, then phase 2
    (daily, more hourly jobs, five-minute job)."""
    wh = open_warehouse("duckdb::memory:")
    _load(wh, stream)
    monitor = Monitor(wh)
    exps = experiments()
    store = open_store(str(tmp_path_factory.mktemp("out")))
    for at in PHASE1_HOURLY.values():
        monitor.run(Job.HOURLY, at, exps)
    r1 = monitor.run(Job.FIVE_MINUTE, T1, exps, store)
    phase1 = {slug: {n: derived(wh, n, slug) for n in sql.DERIVED} for slug in BRANCHES}
    monitor.run(Job.DAILY, DAILY_AT, exps)
    for at in PHASE2_HOURLY.values():
        monitor.run(Job.HOURLY, at, exps)
    r2 = monitor.run(Job.FIVE_MINUTE, T2, exps, store)
    return {"wh": wh, "monitor": monitor, "store": store, "phase1": phase1, "r1": r1, "r2": r2,
            "exps": exps}  # fmt: skip


LAYERS1 = Layers(T1, daily={}, hourly=PHASE1_HOURLY)
LAYERS2 = Layers(T2, daily={D: DAILY_AT}, hourly=PHASE2_HOURLY)


# -- schedule -------------------------------------------------------------------------------


def test_job_intervals():
    at = parse_time("2026-03-02T10:35:00Z")
    assert hourly_interval(at) == Interval(at.replace(hour=9, minute=0), at.replace(minute=0))
    assert hourly_interval(at.replace(minute=29)).start == at.replace(hour=8, minute=0)
    assert daily_interval(at) == Interval(D, D + dt.timedelta(days=1))
    assert last_window(at) == at.replace(minute=30)
    assert last_window(at.replace(minute=36)) == at.replace(minute=35)
    hours = uncovered_hours(at, dt.timedelta(hours=3), [at.replace(hour=8, minute=0)], [])
    assert hours == [at.replace(hour=7, minute=0), at.replace(hour=9, minute=0),
                     at.replace(hour=10, minute=0)]  # fmt: skip
    assert uncovered_hours(at, dt.timedelta(hours=30), [], [D.date(), (D + H * 24).date()]) == []
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


def test_window_of_is_exact_at_boundaries():
    wh = open_warehouse("duckdb::memory:")
    times = [D + dt.timedelta(hours=1) - dt.timedelta(microseconds=1), D + dt.timedelta(hours=1),
             D + dt.timedelta(minutes=9, seconds=59, microseconds=999_999),
             D - dt.timedelta(microseconds=1)]  # fmt: skip
    wh.load_arrow("ts", pa.table({"t": pa.array(times, pa.timestamp("us", tz="UTC"))}))
    got = [r["w"] for r in wh.query(f"SELECT {sql.window_of('t')} AS w FROM ts").to_pylist()]
    assert got == [D + dt.timedelta(minutes=55), D + dt.timedelta(hours=1),
                   D + dt.timedelta(minutes=5), D - dt.timedelta(minutes=5)]  # fmt: skip


def test_literals_refuse_injection():
    with pytest.raises(ValueError, match="refusing"):
        sql.literal_string("x' OR '1'='1")
    with pytest.raises(ValueError, match="time zone"):
        sql.literal_timestamp(dt.datetime(2026, 1, 1))


# -- derived values against the independent computation --------------------------------------


@pytest.mark.parametrize("slug", list(BRANCHES))
def test_derived_before_daily_match_raw_events(phases, stream, slug):
    want = expected(stream, LAYERS1, slug)
    for name in sql.DERIVED:
        got = phases["phase1"][slug][name]
        assert list(got["time"]) == list(want[name]["time"]), name
        assert list(got["value"]) == list(want[name]["value"]), name


@pytest.mark.parametrize("slug", list(BRANCHES))
def test_derived_after_daily_match_raw_events(phases, stream, slug):
    assert_matches(phases["wh"], stream, LAYERS2, slug)


def test_grid_has_a_row_for_every_window(phases):
    got = derived(phases["wh"], "experiment_enrollment_overall", "exp-b")
    windows = pd.date_range(D, last_window(T2), freq="5min")
    assert len(got) == len(windows) * 3
    assert set(got["branch"]) == {"a", "b", "c"}


def _raw_enrolls(stream, slug, start, end):
    ev = stream["telemetry.events_live"].to_pandas()
    sel = ev[(ev["experiment"] == slug) & (ev["event_type"] == "enroll")
             & (ev["event_timestamp"] >= start) & (ev["event_timestamp"] < end)]  # fmt: skip
    return sel


def test_day_counts_exactly_once_after_daily_late_events_included(phases, stream):
    day_end = D + dt.timedelta(days=1)
    raw = _raw_enrolls(stream, "exp-a", D, day_end)
    late = raw[raw["submission_timestamp"] > raw["event_timestamp"] + pd.Timedelta(minutes=30)]
    assert len(late) > 10  # the test means something
    got = derived(phases["wh"], "experiment_enrollment_overall", "exp-a")
    in_day = got[(got["time"] >= D) & (got["time"] < day_end)]
    assert in_day["value"].sum() == len(raw)
    per_window = raw.groupby(raw["event_timestamp"].dt.floor("5min")).size()
    by_time = in_day.groupby("time")["value"].sum()
    assert (by_time.reindex(per_window.index) == per_window).all()


def test_before_daily_every_event_counts_at_most_once(phases, stream):
    got = phases["phase1"]["exp-a"]["experiment_enrollment_overall"]
    by_time = got.groupby("time")["value"].sum()
    raw = _raw_enrolls(stream, "exp-a", D, T1)
    truth = raw.groupby(raw["event_timestamp"].dt.floor("5min")).size()
    truth = truth.reindex(by_time.index, fill_value=0)
    assert (by_time <= truth).all()
    assert (by_time < truth).any()  # late events not there yet: not vacuous
    # Windows of hours the hourly job covered are not counted again from recents.
    hour = D + dt.timedelta(hours=21)
    covered = by_time[(by_time.index >= hour) & (by_time.index < hour + H)]
    seen = raw[raw["submission_timestamp"] <= PHASE1_HOURLY[hour]]
    seen_truth = seen.groupby(seen["event_timestamp"].dt.floor("5min")).size()
    assert (covered == seen_truth.reindex(covered.index, fill_value=0)).all()


def test_first_enrollments_match(phases, stream):
    for slug in BRANCHES:
        doc = phases["r2"].health[slug]
        assert doc["srm"]["enrolled_clients"] == {
            b: expected_first_enrollments(stream, LAYERS2, slug).get(b, 0)
            for b, _ in BRANCHES[slug]
        }


# -- idempotency and replacement -------------------------------------------------------------


def test_rerunning_jobs_changes_nothing(phases):
    wh, monitor, exps = phases["wh"], phases["monitor"], phases["exps"]
    before = snapshot(wh)
    assert before["monitoring_enrollment_daily"]
    monitor.run(Job.DAILY, DAILY_AT, exps)
    at = list(PHASE2_HOURLY.values())[1]
    monitor.run(Job.HOURLY, at, exps)
    monitor.run(Job.HOURLY, at, exps)
    monitor.run(Job.FIVE_MINUTE, T2, exps, phases["store"])
    monitor.run(Job.FIVE_MINUTE, T2, exps, phases["store"])
    assert snapshot(wh) == before


def test_hourly_rerun_replaces_its_partition(stream):
    wh = open_warehouse("duckdb::memory:")
    _load(wh, stream)
    monitor = Monitor(wh)
    hour = D + dt.timedelta(hours=10)
    raw = _raw_enrolls(stream, "exp-a", hour, hour + H)
    first_at, later_at = hour + H + dt.timedelta(minutes=30), hour + 5 * H

    def total() -> int:
        rows = wh.query(
            "SELECT SUM(event_count) AS n FROM monitoring_enrollment_hourly "
            "WHERE experiment = 'exp-a' AND event_type = 'enroll'"
        ).to_pylist()
        return int(rows[0]["n"] or 0)

    monitor.run(Job.HOURLY, first_at, experiments())
    assert total() == (raw["submission_timestamp"] <= first_at).sum() < len(raw)
    monitor.run(Job.HOURLY, later_at - dt.timedelta(hours=2), experiments())  # another hour
    monitor.run(Job.HOURLY, first_at, experiments())
    # Re-materializing the first hour later: the late events replace, never add.
    monitor.materialize_partition(
        "hourly", hourly_interval(first_at), later_at, ["exp-a", "exp-b"],
        D - dt.timedelta(hours=1),
    )  # fmt: skip
    hour_rows = wh.query(
        "SELECT SUM(event_count) AS n FROM monitoring_enrollment_hourly WHERE experiment = "
        f"'exp-a' AND event_type = 'enroll' AND window_start < {sql.literal_timestamp(hour + H)}"
    ).to_pylist()
    assert int(hour_rows[0]["n"]) == len(raw)
    coverage = wh.query("SELECT * FROM monitoring_coverage WHERE job = 'hourly'").to_pylist()
    assert len(coverage) == 2


def test_recents_only_hold_uncovered_hours(phases):
    rows = (
        phases["wh"]
        .query(
            "SELECT DISTINCT TIMESTAMP_TRUNC(window_start, HOUR) AS h FROM monitoring_enrollment_recents"
        )
        .to_pylist()
    )
    hours = {r["h"] for r in rows}
    assert hours == {D + dt.timedelta(hours=h) for h in range(27, 32)}
    # The daily job dropped the hourly partitions of its day.
    left = (
        phases["wh"]
        .query(
            f"SELECT COUNT(*) AS n FROM monitoring_enrollment_hourly WHERE window_start < "
            f"{sql.literal_timestamp(D + dt.timedelta(days=1))}"
        )
        .to_pylist()
    )
    assert left[0]["n"] == 0


# -- export ---------------------------------------------------------------------------------


def test_exported_files_exist_and_equal_the_tables(phases):
    store, wh = phases["store"], phases["wh"]
    for slug in BRANCHES:
        for name in sql.DERIVED:
            path = export_path(slug, name)
            assert path == f"monitoring/{slug}_{name}.json"
            doc = json.loads(store.read_bytes(path))
            table = derived(wh, name, slug)
            assert [r["value"] for r in doc] == list(table["value"])
            assert doc[0]["time"] == "2026-03-01T00:00:00Z"
            assert {r["experiment"] for r in doc} == {slug}
        health = json.loads(store.read_bytes(health_path(slug)))
        assert health["experiment"] == slug and "srm" in health
    index = json.loads(store.read_bytes("monitoring/index.json"))
    assert index["experiments"] == sorted(BRANCHES)
    assert store.exists("monitoring/index.html")
    assert not [p for p in store.list() if ".tmp" in p]


def test_no_live_experiments_is_a_no_op():
    wh = open_warehouse("duckdb::memory:")
    result = Monitor(wh).run(Job.FIVE_MINUTE, D - dt.timedelta(days=3), experiments())
    assert result.experiments == () and wh.list_tables() == []


# -- the command ----------------------------------------------------------------------------


def test_monitor_run_command(tmp_path, stream):
    from jetstream.cli import cli

    db = tmp_path / "live.duckdb"
    wh = open_warehouse(f"duckdb:{db}")
    _load(wh, stream)
    wh.close()
    exp_file = tmp_path / "experiments.json"
    exp_file.write_text(json.dumps([e.to_v8() for e in experiments()]))
    out = tmp_path / "out"
    runner = CliRunner()
    common = ["--experiments", str(exp_file), "--warehouse", f"duckdb:{db}", "--out", str(out)]
    for job, at in [
        ("hourly", "2026-03-02T05:30:00Z"),
        ("five-minute", "2026-03-02T07:12:30+00:00"),
    ]:
        result = runner.invoke(cli, ["monitor", "run", "--job", job, "--at", at, *common])
        assert result.exit_code == 0, result.output
    assert "2 live experiment(s)" in result.output
    assert (out / "monitoring" / "exp-a_experiment_cumulative_search_count.json").is_file()
    bad = runner.invoke(cli, ["monitor", "run", "--job", "weekly", *common])
    assert bad.exit_code == 2 and "weekly" in bad.output
    bad_at = runner.invoke(cli, ["monitor", "run", "--job", "daily", "--at", "soon", *common])
    assert bad_at.exit_code == 2 and "ISO 8601" in bad_at.output
