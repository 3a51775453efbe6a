"""Which days the daily partials cover (each source from the first day its metrics need) and
the partial_days bookkeeping that extends or rebuilds them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from jetstream import results, synthetic
from jetstream.commands.loading import load_one
from jetstream.periods import Period
from jetstream.sql import literals as lit
from jetstream.sql import metrics as met_sql
from jetstream.tasks.context import TaskContext
from jetstream.tasks.partials import day_range, ensure_days, runs
from jetstream.warehouse.duckdb import MEMORY, DuckDBWarehouse

SLUG = "demo-sidebar-redesign"
START = dt.date(2026, 1, 5)


def _spec(repo: Path = synthetic.DEMO_DIR):
    return load_one(SLUG, str(synthetic.DEMO_DIR / "experiments.json"), repo)


@pytest.fixture(scope="module")
def spec():
    return _spec()


@pytest.mark.parametrize(
    "periods,lead",
    [
        ([], 0),
        ([Period.DAY, Period.WEEK, Period.DAYS28, Period.OVERALL], 0),
        ([Period.WEEK, Period.PREENROLLMENT_WEEK], 7),
        ([Period.PREENROLLMENT_DAYS28], 28),
        ([Period.PREENROLLMENT_WEEK, Period.PREENROLLMENT_DAYS28, Period.OVERALL], 28),
    ],
)
def test_lead_days(periods, lead):
    assert met_sql.lead_days(periods) == lead


def test_each_source_starts_at_the_first_day_its_metrics_need(spec):
    leads = {
        name: met_sql.source_lead_days(spec, name)
        for name in ("active_users", "clients_daily", "feature_events", "normandy_events",
                     "search_daily")
    }  # fmt: skip
    # dau_days is in preenrollment_weekly only; unenroll in no pre-enrollment period
    assert leads == {
        "active_users": 7,
        "clients_daily": 28,
        "feature_events": 28,
        "normandy_events": 0,
        "search_daily": 28,
    }
    assert met_sql.partials_first_day(spec, "normandy_events") == START
    assert met_sql.partials_first_day(spec, "active_users") == START - dt.timedelta(days=7)


def test_adding_a_pre_enrollment_metric_extends_the_source_range(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(synthetic.DEMO_DIR, repo)
    cfg = repo / "jetstream" / f"{SLUG}.toml"
    text = cfg.read_text()
    anchor = 'preenrollment_days28 = ["sidebar_clicks", "organic_search_count"]'
    assert anchor in text, f"{cfg} changed shape; update the test"
    cfg.write_text(
        text.replace(anchor, anchor.replace('"organic', '"unenroll", "dau_days", "organic'))
    )
    spec = _spec(repo)
    assert met_sql.source_lead_days(spec, "normandy_events") == 28
    assert met_sql.source_lead_days(spec, "active_users") == 28


def test_runs():
    d = [START + dt.timedelta(days=k) for k in (0, 1, 2, 5, 7, 8)]
    assert runs(d) == [(d[0], d[2]), (d[3], d[3]), (d[4], d[5])]
    assert runs([]) == []


# ------------------------------------------------------------------- ensure_days bookkeeping

TELEMETRY_DAYS = 70  # from START - 28


@pytest.fixture()
def ctx(spec):
    wh = DuckDBWarehouse(MEMORY)
    first = START - dt.timedelta(days=28)
    days = [first + dt.timedelta(days=k) for k in range(TELEMETRY_DAYS)]
    wh.load_arrow(
        "telemetry",
        pa.table(
            {
                "client_id": [f"c{k % 3}" for k in range(len(days))],
                "submission_date": days,
                "v": pa.array(range(len(days)), pa.int64()),
            }
        ),
    )
    c = TaskContext(wh, spec, "run-1")
    c.ensure_tables()
    return c


class Builder:
    """A per-day build of the table `partials_test` whose rows of a day do not depend on the
    range asked; records the ranges it was asked for."""

    def __init__(self, factor: int = 1):
        self.factor = factor
        self.calls: list[tuple[dt.date, dt.date]] = []

    def __call__(self, first: dt.date, last: dt.date) -> str:
        self.calls.append((first, last))
        return (
            f"SELECT client_id AS analysis_id, submission_date, SUM(v) * {self.factor} AS s "
            f"FROM telemetry WHERE submission_date BETWEEN {lit.date(first)} AND "
            f"{lit.date(last)} GROUP BY 1, 2"
        )


def _state(ctx) -> tuple[list[dt.date], list[dt.date], list[tuple]]:
    table = ctx.query("SELECT submission_date, s FROM partials_test ORDER BY 1").to_pylist()
    days = ctx.query(
        f"SELECT submission_date FROM {ctx.ref(results.partial_days_table(SLUG))} "
        "WHERE data_source = 'test' ORDER BY 1"
    ).to_pylist()
    return (
        [r["submission_date"] for r in table],
        [r["submission_date"] for r in days],
        [(r["submission_date"], r["s"]) for r in table],
    )


def _span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def test_an_earlier_first_day_computes_only_the_missing_days(ctx):
    """A pre-enrollment period added later (the source's first day moves from the start to
    28 days before it) computes only the earlier days; the result equals a fresh build."""
    day1 = START + dt.timedelta(days=10)
    build = Builder()
    ensure_days(ctx, "test", "partials_test", build, day1, definition="d", first_day=START)
    assert build.calls == [(START, day1)]
    assert _state(ctx)[0] == _state(ctx)[1] == _span(START, day1)

    early = START - dt.timedelta(days=28)
    day2 = day1 + dt.timedelta(days=1)
    ensure_days(ctx, "test", "partials_test", build, day2, definition="d", first_day=early)
    # the earlier run and the new day: two queries, nothing recomputed
    assert build.calls[1:] == [(early, START - dt.timedelta(days=1)), (day2, day2)]
    stored, booked, values = _state(ctx)
    assert stored == booked == _span(early, day2)

    fresh = Builder()
    ensure_days(ctx, "test", "partials_test", fresh, day2, definition="d", first_day=early)
    assert fresh.calls == []  # everything is recorded: nothing to do
    ctx.warehouse.drop_table("partials_test")  # a fresh build from scratch: same rows
    ensure_days(ctx, "test", "partials_test", fresh, day2, definition="d", first_day=early)
    assert fresh.calls == [(early, day2)]
    assert _state(ctx)[2] == values


def test_a_new_definition_rebuilds_every_day(ctx):
    day = START + dt.timedelta(days=3)
    early = START - dt.timedelta(days=7)
    ensure_days(ctx, "test", "partials_test", Builder(), day, definition="d", first_day=early)
    before = _state(ctx)[2]
    build = Builder(factor=2)
    ensure_days(ctx, "test", "partials_test", build, day, definition="d2", first_day=early)
    assert build.calls == [(early, day)]
    stored, booked, values = _state(ctx)
    assert stored == booked == _span(early, day)
    assert [(d, s * 2) for d, s in before] == values


def test_day_range_defaults_to_the_longest_pre_enrollment_period(ctx):
    day = START + dt.timedelta(days=2)
    assert day_range(ctx, day) == (START - dt.timedelta(days=28), day)
    assert day_range(ctx, day, START) == (START, day)
    end = ctx.spec.experiment.end_date
    assert day_range(ctx, end + dt.timedelta(days=5), START) == (START, end)
