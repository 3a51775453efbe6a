"""The SQL builders' text: valid BigQuery, and every telemetry read bounded by constant
dates (BigQuery prunes partitions only on constant bounds, and bills what it scans)."""

import datetime as dt

import pytest
import sqlglot
from sqlglot import exp

from jetstream import synthetic
from jetstream.commands.loading import load_one
from jetstream.config.model import AnalysisBasis
from jetstream.periods import Period
from jetstream.sql import enrollments as enr_sql
from jetstream.sql import metrics as met_sql

SLUG = "demo-sidebar-redesign"


@pytest.fixture(scope="module")
def spec():
    return load_one(SLUG, str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR)


def constant_date_ranges(sql: str) -> list[tuple[str, str]]:
    tree = sqlglot.parse_one(sql, read="bigquery")
    out = []
    for between in tree.find_all(exp.Between):
        low, high = between.args["low"], between.args["high"]
        if all(isinstance(v, exp.Cast) and v.this.is_string for v in (low, high)):
            out.append((low.this.name, high.this.name))
    return out


def test_direct_metric_queries_read_a_constant_date_range(spec):
    week = [m for m in spec.metrics_for(Period.WEEK) if m.data_source is not None]
    by_source = {}
    for m in week:
        by_source.setdefault(m.data_source.name, []).append(m)
    for metrics in by_source.values():
        ds = metrics[0].data_source
        sql = met_sql.direct_only_sql(
            spec, ds, metrics, AnalysisBasis.ENROLLMENTS, met_sql.WindowSpec(7, 13), "`e`"
        )
        # first enrollment + 7 .. last enrollment (01-12, Jetstream's) + 13
        assert ("2026-01-12", "2026-01-25") in constant_date_ranges(sql), sql


def test_partials_read_exactly_the_requested_days(spec):
    ds = next(m.data_source for m in spec.metrics_for(Period.DAY) if m.data_source)
    plans = met_sql.plan_metrics([m for m in spec.metrics_for(Period.DAY) if m.data_source == ds])
    sql = met_sql.partials_sql(spec, ds, plans, "`e`", dt.date(2026, 1, 20), dt.date(2026, 1, 20))
    assert ("2026-01-20", "2026-01-20") in constant_date_ranges(sql)


def test_segment_queries_read_a_constant_date_range(spec):
    sql = enr_sql.enrollments_sql(spec, "`clients`", "`exposure_days`")
    ranges = constant_date_ranges(sql)
    # default_browser_at_enrollment: enrollment day; heavy_users_before_enrollment: -7..-1
    # (the enrollment period is 01-05 .. 01-12: start + enrollment_period, as Jetstream)
    assert ("2026-01-05", "2026-01-12") in ranges
    assert ("2025-12-29", "2026-01-11") in ranges
    regulars = next(s for s in spec.segments if s.depends_on_analysis_window)
    sql = enr_sql.window_segment_sql(spec, regulars, "`enrollments`", 7, 13)
    assert ("2026-01-05", "2026-01-25") in constant_date_ranges(sql)


def test_exposed_population_uses_jetstreams_exposure_signal_dates(spec):
    """Jetstream (exposure_signal.py `_window_limit_to_int`) turns the signal's bounds into
    days after the experiment's start (analysis_window_end: the window's end + the
    enrollment period); mozanalysis `ExposureSignal.build_query` reads the signal on those
    dates, on or after each client's enrollment date."""
    import attrs

    from jetstream.config.model import ENROLLMENT_END, ENROLLMENT_START

    w = met_sql.WindowSpec(7, 13)
    sql, anchor = met_sql.population_sql(spec, AnalysisBasis.EXPOSURES, w, "`e`", "`x`")
    assert anchor == "enrollment_date"
    # the demo signal: window_start 0, window_end analysis_window_end: 2026-01-05 + 0 ..
    # 2026-01-05 + (13 + 7)
    assert ("2026-01-05", "2026-01-25") in constant_date_ranges(sql)
    assert "x.enrollment_day >= 0" in sql
    sig = attrs.evolve(
        spec.exposure_signal, window_start=ENROLLMENT_START, window_end=ENROLLMENT_END
    )
    fixed = attrs.evolve(spec, exposure_signal=sig)
    sql, _ = met_sql.population_sql(fixed, AnalysisBasis.EXPOSURES, w, "`e`", "`x`")
    # enrollment_start = 0, enrollment_end = the enrollment period (7)
    assert ("2026-01-05", "2026-01-12") in constant_date_ranges(sql)
    # integers count from the start date; no end (or 0) is the last enrollment date
    for bounds, dates in [
        ((2, 5), ("2026-01-07", "2026-01-10")),
        ((None, None), ("2026-01-05", "2026-01-12")),
        ((-3, 0), ("2026-01-02", "2026-01-12")),
    ]:
        sig = attrs.evolve(spec.exposure_signal, window_start=bounds[0], window_end=bounds[1])
        sql, _ = met_sql.population_sql(
            attrs.evolve(spec, exposure_signal=sig), AnalysisBasis.EXPOSURES, w, "`e`", "`x`"
        )
        assert dates in constant_date_ranges(sql), (bounds, sql)


def test_clients_carry_a_client_key_and_collisions_are_counted():
    """The per-day tables are keyed by FARM_FINGERPRINT(analysis_id): the clients query
    carries it, and `key_collisions_sql` counts clients whose key another client shares."""
    from jetstream.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(":memory:")
    try:
        wh.execute(
            "CREATE TABLE clients AS SELECT * FROM UNNEST(["
            "STRUCT('a' AS analysis_id), STRUCT('b' AS analysis_id), STRUCT('c' AS analysis_id)])"
        )
        keyed = wh.query(
            f"SELECT analysis_id, {enr_sql.CLIENT_KEY_SQL} AS client_key FROM clients"
        ).to_pylist()
        assert len({r["client_key"] for r in keyed}) == 3
        wh.execute("CREATE TABLE keyed AS SELECT *, 7 AS client_key FROM clients")
        assert wh.query(enr_sql.key_collisions_sql("keyed")).column(0)[0].as_py() == 2
        wh.execute(
            f"CREATE TABLE fine AS SELECT *, {enr_sql.CLIENT_KEY_SQL} AS client_key FROM clients"
        )
        assert wh.query(enr_sql.key_collisions_sql("fine")).column(0)[0].as_py() == 0
    finally:
        wh.close()
    assert enr_sql.CLIENT_KEY_SQL in enr_sql.clients_sql(spec_settings())


def spec_settings():
    spec = load_one(
        "demo-sidebar-redesign", str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR
    )
    return spec.experiment


def test_partials_and_rollups_use_the_client_key(spec):
    ds = next(m.data_source for m in spec.metrics_for(Period.WEEK) if m.name == "active_hours")
    same = [m for m in spec.metrics_for(Period.WEEK) if m.data_source == ds]
    plans = [p for p in met_sql.plan_metrics(same) if p.decomposition]
    assert plans
    day = dt.date(2026, 1, 10)
    partials = met_sql.partials_sql(spec, ds, plans, "`e`", day, day)
    assert partials.startswith("SELECT e.client_key,")
    wide = met_sql.wide_sql(
        spec, ds, plans, AnalysisBasis.ENROLLMENTS, met_sql.WindowSpec(0, 6), "`e`", "`p`"
    )
    assert "GROUP BY l.client_key" in wide and "r.client_key = p.client_key" in wide
