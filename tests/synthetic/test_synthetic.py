"""Synthetic telemetry: determinism, shapes, planted quirks, planted effects, the demo
configs (they parse, resolve, and reference only generated tables and columns), and the
`jetstream synthetic` command writing into a real DuckDB file."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from jetstream import synthetic
from jetstream.config.model import ExperimentsColumnType
from jetstream.periods import Period
from jetstream.synthetic import tables as st

START = synthetic.DEFAULT_START_DATE
SIDEBAR = "demo-sidebar-redesign"
DESKTOP = "desktop-search-defaults"


@pytest.fixture(scope="module")
def small() -> dict[str, pa.Table]:
    return synthetic.generate(clients=3000, days=12, seed=7)


@pytest.fixture(scope="module")
def large() -> dict[str, pa.Table]:
    """Enough clients to see the planted effects: days 1..14 after enrollment fit in 21."""
    return synthetic.generate(clients=30000, days=21, seed=11)


def _con(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name.replace(".", "__"), table)
    return con


# ----------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_tables(small):
    again = synthetic.generate(clients=3000, days=12, seed=7)
    assert small.keys() == again.keys()
    for name in small:
        assert small[name].equals(again[name]), name


def test_other_seed_gives_other_tables(small):
    other = synthetic.generate(clients=3000, days=12, seed=8)
    for name in (st.EVENTS, st.CLIENTS_DAILY, st.SEARCH_DAILY, st.FEATURE_EVENTS):
        assert not small[name].equals(other[name]), name


def test_more_days_keep_the_first_days_identical(small):
    shorter = synthetic.generate(clients=3000, days=5, seed=7)
    last = pa.scalar(START + dt.timedelta(days=4), pa.date32())
    for name in st.DAILY_TABLES:
        longer = small[name].filter(pa.compute.less_equal(small[name]["submission_date"], last))
        assert longer.equals(shorter[name]), name


# ----------------------------------------------------------------------------- shapes


def test_tables_have_the_declared_schemas_and_dates(small):
    assert set(small) == set(st.BATCH_TABLES)
    first = START - dt.timedelta(days=synthetic.PRE_PERIOD_DAYS)
    last = START + dt.timedelta(days=11)
    for name, table in small.items():
        assert table.schema.equals(st.SCHEMAS[name]), name
        if name == st.TRUTH:
            continue
        assert table.num_rows > 0, name
        dates = table["submission_date"]
        assert pa.compute.min(dates).as_py() >= first, name
        assert pa.compute.max(dates).as_py() <= last, name
    cd = small[st.CLIENTS_DAILY]
    assert pa.compute.min(cd["submission_date"]).as_py() == first
    assert pa.compute.max(cd["submission_date"]).as_py() == last


def test_one_row_per_client_and_day(small):
    con = _con(small)
    for name in (st.CLIENTS_DAILY, st.ACTIVE_USERS):
        t = name.replace(".", "__")
        dupes = con.execute(
            f"SELECT COUNT(*) FROM (SELECT client_id, submission_date FROM {t} "
            "GROUP BY ALL HAVING COUNT(*) > 1)"
        ).fetchone()
        assert dupes == (0,), name


def test_heavy_tails_and_zero_inflation(large):
    cd = large[st.CLIENTS_DAILY]
    hours = cd["active_hours_sum"].to_numpy()
    assert 0.08 < np.mean(hours == 0) < 0.16
    positive = hours[hours > 0]
    assert np.percentile(positive, 99) > 8 * np.median(positive)  # lognormal tail
    con = _con(large)
    sap = con.execute(
        "SELECT COALESCE(SUM(sap), 0) FROM telemetry__clients_daily c LEFT JOIN "
        "search__search_clients_engines_sources_daily s USING (client_id, submission_date) "
        "GROUP BY c.client_id"
    ).fetchnumpy()
    totals = next(iter(sap.values()))
    assert 0.2 < np.mean(totals == 0) < 0.5  # non-searchers
    assert np.var(totals) > 5 * np.mean(totals)  # over-dispersed


# ----------------------------------------------------------------------------- planted quirks


def _enrollments(con: duckdb.DuckDBPyConnection, slug: str) -> str:
    return f"""
        SELECT client_id, MIN(submission_date) AS enrollment_date,
               COUNT(DISTINCT m.value) AS n_branches, ANY_VALUE(m.value) AS branch,
               COUNT(*) AS n_events
        FROM telemetry__events, UNNEST(event_map_values) AS u(m)
        WHERE event_category = 'normandy' AND event_method = 'enroll'
          AND event_string_value = '{slug}' AND m.key = 'branch'
        GROUP BY client_id
    """


def test_normandy_events_have_the_real_shape_and_quirks(small):
    con = _con(small)
    keys = dict(
        con.execute(
            "SELECT event_method, LIST(DISTINCT m.key ORDER BY m.key) FROM telemetry__events, "
            "UNNEST(event_map_values) AS u(m) WHERE event_category = 'normandy' GROUP BY 1"
        ).fetchall()
    )
    assert "branch" in keys["enroll"] and "branchSlug" not in keys["enroll"]
    assert "branchSlug" in keys["expose"] and "branch" not in keys["expose"]
    assert "branch" in keys["unenroll"]
    methods = {
        r[0] for r in con.execute("SELECT DISTINCT event_method FROM telemetry__events").fetchall()
    }
    assert {"enroll", "expose", "unenroll", "enrollFailed", "update"} <= methods
    slugs = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT event_string_value FROM telemetry__events "
            "WHERE event_method = 'enroll'"
        ).fetchall()
    }
    assert slugs == {e.slug for e in synthetic.DEFAULT_EXPERIMENTS}
    in_two = con.execute(
        "SELECT COUNT(*) FROM (SELECT client_id FROM telemetry__events WHERE event_method = "
        "'enroll' GROUP BY client_id HAVING COUNT(DISTINCT event_string_value) > 1)"
    ).fetchone()[0]
    assert in_two > 100  # clients in several experiments at once

    enr = _enrollments(con, SIDEBAR)
    double, dup, n, days = con.execute(
        f"SELECT COUNT(*) FILTER (n_branches > 1), COUNT(*) FILTER (n_events > 1), COUNT(*), "
        f"COUNT(DISTINCT enrollment_date) FROM ({enr})"
    ).fetchone()
    assert 0 < double < 0.02 * n  # enrolled in two branches: a few
    assert dup > 0  # repeated enrollment events
    assert days == 7  # enrollment spread over the enrollment period
    never_exposed = con.execute(
        f"SELECT COUNT(*) FROM ({enr}) e WHERE client_id NOT IN (SELECT client_id FROM "
        f"telemetry__events WHERE event_method = 'expose' AND event_string_value = '{SIDEBAR}')"
    ).fetchone()[0]
    assert 0.15 * n < never_exposed < 0.35 * n
    unenrolled = con.execute(
        f"SELECT COUNT(*) FROM telemetry__events WHERE event_method = 'unenroll' "
        f"AND event_string_value = '{SIDEBAR}'"
    ).fetchone()[0]
    assert unenrolled > 0
    # The native experiments column carries the event's branch.
    mismatched = con.execute(
        "SELECT COUNT(*) FROM telemetry__events, UNNEST(event_map_values) AS u(m) "
        "WHERE event_method = 'enroll' AND m.key = 'branch' AND NOT list_contains("
        "[x.value.branch FOR x IN experiments IF x.key = event_string_value], m.value)"
    ).fetchone()[0]
    assert mismatched == 0


def test_enrollment_day_rows_without_the_annotation_exist(small):
    con = _con(small)
    enr = _enrollments(con, SIDEBAR)
    annotated, missing, later_missing = con.execute(
        f"""
        SELECT
          COUNT(*) FILTER (c.submission_date = e.enrollment_date AND has),
          COUNT(*) FILTER (c.submission_date = e.enrollment_date AND NOT has),
          COUNT(*) FILTER (c.submission_date = e.enrollment_date + 1 AND NOT has)
        FROM ({enr}) e
        JOIN (SELECT *, list_contains([x.key FOR x IN experiments], '{SIDEBAR}') AS has
              FROM telemetry__clients_daily) c USING (client_id)
        WHERE e.n_branches = 1
        """
    ).fetchone()
    assert annotated > 0
    assert 0.05 * (annotated + missing) < missing < 0.3 * (annotated + missing)
    # After day 0 only unenrolled clients lose the annotation.
    assert later_missing < missing
    # Every enrollee is seen on its enrollment day.
    unseen = con.execute(
        f"SELECT COUNT(*) FROM ({enr}) e ANTI JOIN telemetry__clients_daily c "
        "ON c.client_id = e.client_id AND c.submission_date = e.enrollment_date"
    ).fetchone()[0]
    assert unseen == 0


# ----------------------------------------------------------------------------- effects

_SUMS = {
    "active_hours": ("telemetry__clients_daily", "active_hours_sum"),
    "days_of_use": ("telemetry__clients_daily", "1"),
    "uri_count": (
        "telemetry__clients_daily",
        "scalar_parent_browser_engagement_total_uri_count_sum",
    ),
    "search_count": ("search__search_clients_engines_sources_daily", "sap"),
    "ad_clicks": ("search__search_clients_engines_sources_daily", "ad_click"),
    "organic_search_count": ("search__search_clients_engines_sources_daily", "organic"),
    "sidebar_clicks": (
        "demo__feature_events",
        "CASE WHEN event_name = 'sidebar_click' THEN event_count ELSE 0 END",
    ),
    "client_level_daily_active_users_v2": (
        "telemetry__desktop_active_users",
        "CAST(is_dau AS INT)",
    ),
}


def _per_client(con, slug: str, metric: str, first: int, last: int) -> dict[str, np.ndarray]:
    table, expr = _SUMS[metric]
    rows = con.execute(
        f"""
        SELECT e.branch, COALESCE(SUM({expr}) FILTER (
            t.submission_date BETWEEN e.enrollment_date + {first} AND e.enrollment_date + {last}
        ), 0) AS v
        FROM ({_enrollments(con, slug)}) e LEFT JOIN {table} t USING (client_id)
        WHERE e.n_branches = 1
        GROUP BY e.client_id, e.branch
        ORDER BY e.client_id
        """
    ).fetchnumpy()
    branches = rows["branch"]
    return {b: np.asarray(rows["v"][branches == b], float) for b in np.unique(branches)}


def _ratio_and_se(t: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    mt, mc = t.mean(), c.mean()
    r = mt / mc
    se = r * np.sqrt(t.var(ddof=1) / len(t) / mt**2 + c.var(ddof=1) / len(c) / mc**2)
    return r - 1.0, se


@pytest.mark.slow
def test_raw_data_shows_the_true_effects(large):
    con = _con(large)
    truth = {
        (r["experiment"], r["branch"], r["metric"]): r["relative_effect"]
        for r in large[st.TRUTH].to_pylist()
    }
    detected = set()
    for slug in (SIDEBAR, DESKTOP):
        for metric in _SUMS:
            groups = _per_client(con, slug, metric, 1, 14)
            for branch, values in groups.items():
                if branch == "control":
                    continue
                effect, se = _ratio_and_se(values, groups["control"])
                expected = truth[(slug, branch, metric)]
                assert abs(effect - expected) < 4 * se, (slug, branch, metric, effect, expected, se)
                if expected != 0 and abs(effect) > 3 * se:
                    detected.add((slug, branch, metric))
    # The big planted effects are visible, not just "not contradicted".
    assert {
        (SIDEBAR, "treatment-a", "sidebar_clicks"),
        (SIDEBAR, "treatment-b", "search_count"),
        (DESKTOP, "treatment", "ad_clicks"),
    } <= detected


def test_truth_table_composes_the_branch_effects():
    rows = {
        (r["experiment"], r["branch"], r["metric"]): r["relative_effect"]
        for r in synthetic.truth().to_pylist()
    }
    assert rows[(SIDEBAR, "treatment-a", "active_hours")] == pytest.approx(0.08)
    assert rows[(SIDEBAR, "treatment-a", "search_count")] == 0.0
    assert rows[(SIDEBAR, "treatment-b", "ad_clicks")] == pytest.approx(1.04 * 1.10 * 0.95 - 1)
    assert rows[(DESKTOP, "treatment", "days_of_use")] == 0.0
    assert rows[(DESKTOP, "treatment", "ad_clicks")] == pytest.approx(1.05 * 1.10 - 1)
    assert all(v == 0.0 for (e, _, _), v in rows.items() if e == "demo-toolbar-rollout")


def test_pre_period_predicts_post_period(large):
    con = _con(large)
    pre = _per_client(con, SIDEBAR, "active_hours", -7, -1)["control"]
    post = _per_client(con, SIDEBAR, "active_hours", 1, 14)["control"]
    assert np.corrcoef(pre, post)[0, 1] > 0.5
    # Covariate adjustment reduces the variance of the post-period metric.
    slope = np.cov(pre, post)[0, 1] / np.var(pre, ddof=1)
    assert np.var(post - slope * pre) < 0.75 * np.var(post)


def test_effects_must_keep_probabilities_valid():
    too_big = synthetic.SyntheticExperiment(
        slug="x",
        app_name="demo",
        app_id="demo",
        branches=(
            synthetic.SyntheticBranch("control"),
            synthetic.SyntheticBranch("t", effect=synthetic.BranchEffect(activity=0.5)),
        ),
        start_offset=0,
        enrollment_days=3,
        end_offset=10,
        share=0.5,
    )
    with pytest.raises(ValueError, match="activity effects too large"):
        synthetic.generate(clients=100, days=2, seed=0, experiments=(too_big,))


# ----------------------------------------------------------------------------- live stream


def test_live_stream_is_deterministic_and_late_and_bounded_by_now():
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    a = synthetic.generate_live(2000, 5, now, hours=6)
    b = synthetic.generate_live(2000, 5, now, hours=6)
    for name in st.LIVE_TABLES:
        assert a[name].schema.equals(st.SCHEMAS[name])
        assert a[name].equals(b[name])
    ev = a[st.EVENTS_LIVE].to_pydict()
    assert set(ev["event_type"]) <= set(st.LIVE_EVENT_TYPES)
    assert {"enroll", "unenroll", "enroll_failed"} <= set(ev["event_type"])
    assert all(t.second == 0 and t.microsecond == 0 for t in ev["event_timestamp"])
    assert max(ev["submission_timestamp"]) <= now
    assert min(ev["event_timestamp"]) > now - dt.timedelta(hours=6)
    lags = [s - e for s, e in zip(ev["submission_timestamp"], ev["event_timestamp"], strict=True)]
    assert sum(lag > dt.timedelta(minutes=5) for lag in lags) > 0.05 * len(lags)
    search = a[st.SEARCH_LIVE].to_pydict()
    assert all(t.minute % 5 == 0 and t.second == 0 for t in search["window_start"])
    assert max(search["submission_timestamp"]) <= now
    assert all(s >= w for s, w in zip(search["searches"], search["searches_with_ads"], strict=True))
    # Five minutes later: the same events plus the newly arrived ones.
    later = synthetic.generate_live(2000, 5, now + dt.timedelta(minutes=5), hours=6)
    cutoff = now + dt.timedelta(minutes=5) - dt.timedelta(hours=6)
    old = {
        tuple(r.values()) for r in a[st.EVENTS_LIVE].to_pylist() if r["event_timestamp"] > cutoff
    }
    new = {tuple(r.values()) for r in later[st.EVENTS_LIVE].to_pylist()}
    assert old and old <= new and len(new) > len(old)


# ----------------------------------------------------------------------------- demo configs


def test_demo_files_parse_and_match_the_generator():
    files = sorted(synthetic.DEMO_DIR.rglob("*.toml"))
    rel = {str(p.relative_to(synthetic.DEMO_DIR)) for p in files}
    assert {
        "definitions/demo.toml",
        "definitions/functions.toml",
        "jetstream/definitions/demo.toml",
        "jetstream/definitions/functions.toml",
        "jetstream/defaults/demo.toml",
        "jetstream/outcomes/demo/search_monetization.toml",
        f"jetstream/{SIDEBAR}.toml",
    } <= rel
    for path in files:
        tomllib.loads(path.read_text())  # raises on bad TOML
    records = json.loads((synthetic.DEMO_DIR / "experiments.json").read_text())
    assert records == synthetic.experimenter_records(START)
    by_slug = {r["slug"]: r for r in records}
    assert [b["slug"] for b in by_slug[SIDEBAR]["branches"]] == [
        "control",
        "treatment-a",
        "treatment-b",
    ]
    assert by_slug[DESKTOP]["appName"] == "firefox_desktop"
    assert not (synthetic.DEMO_DIR / "jetstream" / f"{DESKTOP}.toml").exists()
    assert by_slug["demo-toolbar-rollout"]["isRollout"] is True
    # The default generated range covers every experiment, with >= 28 days after the
    # 3-branch experiment's enrollment ends.
    end_of_data = START + dt.timedelta(days=synthetic.DEFAULT_DAYS - 1)
    for r in records:
        assert dt.date.fromisoformat(r["endDate"]) <= end_of_data
    sidebar = by_slug[SIDEBAR]
    last_enrollment = dt.date.fromisoformat(sidebar["enrollmentEndDate"])
    assert (dt.date.fromisoformat(sidebar["endDate"]) - last_enrollment).days >= 28


def test_records_follow_the_start_date():
    shifted = synthetic.experimenter_records(dt.date(2027, 3, 1))
    assert shifted[0]["startDate"] == "2027-03-01"
    live = synthetic.experimenter_records(START, today=START + dt.timedelta(days=10))
    assert live[0]["status"] == "Live" and live[0]["endDate"] is None


def _schema() -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    for name in st.SCHEMAS:
        if "." in name:
            db, table = name.split(".")
            out.setdefault(db, {})[table] = st.column_types(name)
    return out


def _check_sql(select: str, from_expression: str, columns: tuple[str, ...] = ()) -> None:
    """Fails unless `SELECT select FROM from_expression` names only generated tables and
    columns (BigQuery project parts dropped, as on DuckDB)."""
    extra = "".join(f", ds.{c}" for c in columns)
    tree = sqlglot.parse_one(
        f"SELECT {select} AS x{extra} FROM {from_expression} AS ds", read="bigquery"
    )
    for table in tree.find_all(exp.Table):
        table.set("catalog", None)
        if f"{table.db}.{table.name}" not in st.SCHEMAS:
            raise ValueError(f"{from_expression}: table {table.db}.{table.name} is not generated")
    qualify(tree, schema=_schema(), dialect="bigquery", validate_qualify_columns=True)


_EXPERIMENTS_TYPE = {
    ExperimentsColumnType.SIMPLE: "ARRAY<STRUCT<key STRING, value STRING>>",
    ExperimentsColumnType.NATIVE: "ARRAY<STRUCT<key STRING, value STRUCT<branch STRING>>>",
}


def _table_of(from_expression: str) -> str:
    tree = sqlglot.parse_one(f"SELECT * FROM {from_expression}", read="bigquery")
    tables = list(tree.find_all(exp.Table))
    assert len(tables) == 1, from_expression
    return f"{tables[0].db}.{tables[0].name}"


def _check_spec(spec) -> int:
    checked = 0
    for metric in spec.metric_definitions.values():
        if metric.data_source is None:
            assert metric.depends_on, metric.name
            continue
        ds = metric.data_source
        _check_sql(
            metric.select_expression,
            ds.from_expression,
            (ds.client_id_column, ds.submission_date_column),
        )
        if ds.experiments_column_type in _EXPERIMENTS_TYPE:
            types = st.column_types(_table_of(ds.from_expression))
            assert types.get("experiments") == _EXPERIMENTS_TYPE[ds.experiments_column_type], (
                ds.name
            )
        checked += 1
    for seg in spec.segments:
        sds = seg.data_source
        _check_sql(
            seg.select_expression,
            sds.from_expression,
            (sds.client_id_column, sds.submission_date_column),
        )
        checked += 1
    if spec.exposure_signal is not None:
        sig = spec.exposure_signal
        _check_sql(sig.select_expression, sig.data_source.from_expression, ("client_id",))
        checked += 1
    return checked


def _load(slug: str, repo: Path):
    from jetstream.config import load_spec
    from jetstream.experiments import load_experiments

    return load_spec(slug, load_experiments(str(synthetic.DEMO_DIR / "experiments.json")), repo)


def test_demo_experiment_resolves_with_every_required_feature():
    spec = _load(SIDEBAR, synthetic.DEMO_DIR)
    assert set(spec.periods) == set(Period)
    assert spec.exposure_signal is not None
    assert spec.exposure_signal.window_end == "analysis_window_end"
    windowed = [s for s in spec.segments if s.depends_on_analysis_window]
    at_enrollment = [s for s in spec.segments if not s.depends_on_analysis_window]
    assert windowed and at_enrollment
    assert windowed[0].window_end == "analysis_window_end"  # set on the segment itself
    defs = spec.metric_definitions
    assert any("COUNT(DISTINCT" in m.select_expression for m in defs.values())
    assert any(m.depends_on for m in defs.values())
    assert "'bookmarks'" in defs["promoted_feature_clicks"].select_expression  # parameter
    stats = {
        (s.statistic.name, s.statistic.covariate_adjustment is not None)
        for ss in spec.metrics.values()
        for s in ss
    }
    for name in ("bootstrap_mean", "binomial", "deciles", "count", "population_ratio"):
        assert any(n == name for n, _ in stats), name
    assert ("linear_model_mean", True) in stats
    adjusted = [
        s.statistic.covariate_adjustment
        for ss in spec.metrics.values()
        for s in ss
        if s.statistic.covariate_adjustment
    ]
    assert {a.period for a in adjusted} == {Period.PREENROLLMENT_WEEK}
    data_sources = {m.data_source.name for m in defs.values() if m.data_source}
    assert len(data_sources) >= 3


@pytest.mark.parametrize("slug", [SIDEBAR, "demo-toolbar-rollout"])
def test_demo_sql_names_only_generated_tables_and_columns(slug):
    assert _check_spec(_load(slug, synthetic.DEMO_DIR)) > 5


def test_the_sql_check_catches_unknown_columns():
    with pytest.raises(sqlglot.errors.OptimizeError):
        _check_sql("SUM(no_such_column)", "mozdata.telemetry.clients_daily")
    with pytest.raises(ValueError, match="not generated"):
        _check_sql("COUNT(*)", "mozdata.telemetry.no_such_table")


@pytest.mark.shared
def test_real_firefox_desktop_defaults_are_computable(metric_hub):
    spec = _load(DESKTOP, metric_hub)
    names = set(spec.metric_definitions)
    defaults = tomllib.loads((metric_hub / "jetstream/defaults/firefox_desktop.toml").read_text())
    listed = {m for key, ms in defaults["metrics"].items() if isinstance(ms, list) for m in ms}
    assert listed <= names
    assert _check_spec(spec) >= len(listed)


# ----------------------------------------------------------------------------- command


def test_command_writes_the_tables_into_duckdb(tmp_path):
    from jetstream.cli import cli
    from jetstream.warehouse import open_warehouse

    db = tmp_path / "wh.duckdb"
    exps = tmp_path / "experiments.json"
    result = CliRunner().invoke(
        cli,
        [
            "synthetic",
            "--warehouse",
            f"duckdb:{db}",
            "--clients",
            "400",
            "--days",
            "9",
            "--seed",
            "3",
            "--start-date",
            "2026-04-06",
            "--experiments-out",
            str(exps),
        ],
    )
    assert result.exit_code == 0, result.output
    expected = synthetic.generate(400, 9, 3, dt.date(2026, 4, 6))
    wh = open_warehouse(f"duckdb:{db}")
    try:
        for name, table in expected.items():
            got = wh.query(f"SELECT COUNT(*) AS n FROM {name}").column("n")[0].as_py()
            assert got == table.num_rows, name
        # BigQuery names and mozfun, as the analysis SQL uses them.
        rows = wh.query(
            "SELECT mozfun.map.get_key(event_map_values, 'branch') AS branch, "
            "COUNT(DISTINCT client_id) AS n FROM `moz-fx-data-shared-prod.telemetry.events` "
            f"WHERE event_method = 'enroll' AND event_string_value = '{SIDEBAR}' GROUP BY 1"
        ).to_pydict()
        assert set(rows["branch"]) == {"control", "treatment-a", "treatment-b"}
        total = (
            wh.query("SELECT SUM(active_hours_sum) AS s FROM mozdata.telemetry.clients_daily")
            .column("s")[0]
            .as_py()
        )
        assert total == pytest.approx(
            pa.compute.sum(expected[st.CLIENTS_DAILY]["active_hours_sum"]).as_py()
        )
    finally:
        wh.close()
    assert json.loads(exps.read_text())[0]["startDate"] == "2026-04-06"

    live = CliRunner().invoke(
        cli,
        [
            "synthetic",
            "--warehouse",
            f"duckdb:{db}",
            "--clients",
            "300",
            "--live",
            "--live-hours",
            "1",
        ],
    )
    assert live.exit_code == 0, live.output
    wh = open_warehouse(f"duckdb:{db}")
    try:
        n = wh.query("SELECT COUNT(*) AS n FROM telemetry.search_live").column("n")[0].as_py()
        assert n > 0
    finally:
        wh.close()


def test_write_replaces_then_appends_in_batches(tmp_path):
    from jetstream.warehouse import open_warehouse

    wh = open_warehouse(f"duckdb:{tmp_path / 'w.duckdb'}")
    chunk = pa.table({"a": pa.array([1, 2, 3], pa.int64())})
    try:
        chunks = [("s.t", chunk), ("s.u", chunk), ("s.t", chunk), ("s.t", chunk)]
        assert synthetic.write(wh, chunks, batch_rows=5) == {"s.t": 9, "s.u": 3}
        count = "SELECT COUNT(*) AS n FROM s.t"
        assert wh.query(count).column("n")[0].as_py() == 9
        synthetic.write(wh, {"s.t": chunk})  # a new run replaces
        assert wh.query(count).column("n")[0].as_py() == 3
    finally:
        wh.close()
