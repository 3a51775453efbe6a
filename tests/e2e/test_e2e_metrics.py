"""End-to-end correctness of the analysis engine on the demo experiment: the real task graph
runs through the `jetstream task` CLI on synthetic telemetry, and every stored value is
checked against an independent pandas computation (tests/support/independent.py); the daily-partials
roll-up is checked against direct computation from telemetry."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections import defaultdict
from pathlib import Path

import attrs
import pytest

from jetstream import results
from jetstream.config.model import AnalysisBasis
from jetstream.periods import Period, due_window, window, windows_through
from jetstream.sql import enrollments as enr_sql
from jetstream.sql import metrics as met_sql
from jetstream.sql import segments as seg_sql
from jetstream.warehouse import open_warehouse
from tests.support import e2e_support as e2e
from tests.support.independent import BOOLEAN_METRICS, FLOAT_METRICS, INTEGER_METRICS, Demo

pytestmark = pytest.mark.slow

SLUG = e2e.DEMO_SLUG


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> e2e.Computed:
    return e2e.computed(tmp_path_factory.mktemp("e2e-demo"), SLUG, e2e.DEMO_REPO)


@pytest.fixture(scope="module")
def indep(demo: e2e.Computed) -> Demo:
    exp = demo.spec.experiment
    assert exp.start_date is not None and exp.last_enrollment_date is not None
    return Demo(demo.tables, SLUG, exp.start_date, exp.last_enrollment_date)


def _overall_days(demo: e2e.Computed) -> int:
    exp = demo.spec.experiment
    assert exp.end_date is not None and exp.last_enrollment_date is not None
    return (exp.end_date - exp.last_enrollment_date).days


def _stored(demo: e2e.Computed) -> dict[tuple, dict[str, float | None]]:
    """(period, window_index, window_start, window_end, basis, metric) -> {client: value}."""
    rows = e2e.query(
        demo.path,
        f"SELECT period, window_index, window_start, window_end, analysis_basis, metric_slug, "
        f"analysis_id, branch, metric_value FROM main.{results.metrics_table(SLUG)}",
    )
    out: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    for r in rows:
        key = (
            r["period"],
            r["window_index"],
            r["window_start"],
            r["window_end"],
            r["analysis_basis"],
            r["metric_slug"],
        )
        assert r["analysis_id"] not in out[key], f"duplicate row for {r['analysis_id']} in {key}"
        out[key][r["analysis_id"]] = r["metric_value"]
    return out


def _expected_units(demo: e2e.Computed) -> set[tuple]:
    """Every (period, window, bounds, basis, metric) the config asks for on the run dates."""
    spec = demo.spec
    exp = spec.experiment
    assert exp.last_enrollment_date is not None
    want = set()
    for date in demo.dates:
        for period in spec.periods:
            w = due_window(period, date, exp.last_enrollment_date, exp.end_date, exp.is_complete)
            if w is None:
                continue
            for m in spec.metrics_for(period):
                if not m.select_expression.strip():
                    continue  # no per-client value (population_ratio components)
                bases = [AnalysisBasis.ENROLLMENTS] if period.is_preenrollment else m.analysis_bases
                for b in bases:
                    want.add((period.value, w.index, w.start, w.end, b.value, m.name))
    return want


def test_every_configured_metric_window_and_basis_is_stored(demo: e2e.Computed) -> None:
    stored = _stored(demo)
    want = _expected_units(demo)
    assert set(stored) == want
    # the run covers what the test claims: every period, both bases, several windows
    assert {k[0] for k in want} == {p.value for p in demo.spec.periods}
    assert {k[4] for k in want} == {"enrollments", "exposures"}
    assert {(k[0], k[1]) for k in want} >= {("week", 0), ("week", 3), ("day", 27)}


def test_population_per_basis_matches(demo: e2e.Computed, indep: Demo) -> None:
    enr = e2e.query(
        demo.path,
        f"SELECT analysis_id, branch, enrollment_date FROM main.{results.enrollments_table(SLUG)}",
    )
    got = {r["analysis_id"]: (r["branch"], r["enrollment_date"]) for r in enr}
    expected = {
        cid: (row.branch, row.enrollment_date.date()) for cid, row in indep.enrollments.iterrows()
    }
    assert got == expected
    multi = indep.multi_branch_clients
    assert multi, "the synthetic data should contain clients enrolled in two branches"
    assert not multi & set(got)
    warnings = [
        e
        for e in e2e.errors(demo.path, SLUG, "warning")
        if e["exception_type"] == "MultipleBranches"
    ]
    assert warnings and str(len(multi)) in warnings[0]["message"]

    for (period, _index, _start, end, basis, metric), values in _stored(demo).items():
        want = set(indep.population(basis, end).index)
        assert set(values) == want, f"{metric} {period} {basis} window end {end}"
        if basis == "exposures":
            assert 0 < len(want) < len(expected)


def _check(metric: str, got: float | None, want: float) -> bool:
    if got is None:
        return False
    if metric in INTEGER_METRICS or metric in BOOLEAN_METRICS:
        return got == want
    assert metric in FLOAT_METRICS, f"{metric} has no type in tests/support/independent.py"
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=0.0)


def test_every_stored_metric_value_matches_independent(demo: e2e.Computed, indep: Demo) -> None:
    checked = 0
    nonzero: dict[str, int] = defaultdict(int)
    for (period, _index, start, end, basis, metric), values in sorted(_stored(demo).items()):
        want = indep.values(metric, basis, start, end)
        bad = [
            (cid, values.get(cid), want[cid])
            for cid in want
            if not _check(metric, values.get(cid), want[cid])
        ]
        assert not bad, (
            f"{metric} {period} [{start}, {end}] {basis}: {len(bad)} of {len(want)} differ, "
            f"e.g. (client, stored, independent) {bad[:3]}"
        )
        checked += len(want)
        nonzero[metric] += sum(1 for v in want.values() if v)
    assert checked > 10_000
    # each metric is exercised with real data, not only zeros
    assert all(nonzero[m] > 0 for m in nonzero), dict(nonzero)


def test_enrollment_time_segments_match(demo: e2e.Computed, indep: Demo) -> None:
    expected = indep.enrollment_segments()
    rows = e2e.query(
        demo.path,
        f"SELECT analysis_id, {', '.join(expected)} FROM main.{results.enrollments_table(SLUG)}",
    )
    for name, want in expected.items():
        got = {r["analysis_id"]: r[name] for r in rows}
        assert got == want, name
        assert 0 < sum(want.values()) < len(want), f"{name} should split the population"


def test_window_segment_membership_per_window_matches(demo: e2e.Computed, indep: Demo) -> None:
    exp = demo.spec.experiment
    assert exp.last_enrollment_date is not None
    rows = e2e.query(
        demo.path,
        f"SELECT analysis_id, period, window_index, in_segment "
        f"FROM main.{results.segments_table(SLUG)} WHERE segment = 'sidebar_regulars'",
    )
    got: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for r in rows:
        got[(r["period"], r["window_index"])][r["analysis_id"]] = r["in_segment"]
    last_date = max(demo.dates)
    want_windows = {
        (p.value, w.index)
        for p in demo.spec.periods
        if not p.is_preenrollment
        for w in windows_through(p, last_date, exp.last_enrollment_date, exp.end_date)
    }
    assert set(got) == want_windows
    sizes = set()
    for (period, index), members in got.items():
        w = window(Period(period), index, _overall_days(demo))
        want = indep.sidebar_regulars(w.end)
        assert members == want, f"sidebar_regulars {period} window {index}"
        sizes.add(sum(want.values()))
    assert len(sizes) > 1, "membership should grow with the window"


def test_derived_population_ratio_has_statistics_not_rows(demo: e2e.Computed) -> None:
    """ad_click_rate (depends_on ad_clicks, searches_with_ads) has no per-client value; its
    population_ratio statistic is computed from the components' stored rows."""
    stored = {k[5] for k in _stored(demo)}
    assert "ad_click_rate" not in stored
    assert {"ad_clicks", "searches_with_ads"} <= stored
    stats = e2e.query(
        demo.path,
        f"SELECT DISTINCT period, branch FROM main.{results.statistics_table(SLUG)} "
        "WHERE metric = 'ad_click_rate' AND statistic = 'population_ratio' "
        "AND segment = 'all' AND comparison IS NULL",
    )
    branches = {b.slug for b in demo.spec.experiment.branches}
    assert {(r["period"], r["branch"]) for r in stats} == {
        (p, b) for p in ("week", "overall") for b in branches
    }


# ---------------------------------------------------------------------------- roll-up


DEMO_DECOMPOSABLE = {
    "active_users": ["dau_days"],
    "clients_daily": [
        "active_hours",
        "days_of_use",
        "is_default_browser",
        "qualified_days_of_use",
        "retained",
        "uri_count",
    ],
    "feature_events": [
        "promoted_feature_clicks",
        "sidebar_clicks",
        "sidebar_opens",
        "used_sidebar",
    ],
    "normandy_events": ["unenroll"],
    "search_daily": [
        "ad_clicks",
        "distinct_search_engines",
        "organic_search_count",
        "search_count",
        "searches_with_ads",
        "tagged_search_count",
    ],
}


def test_demo_rollup_equals_direct(demo: e2e.Computed) -> None:
    days = _overall_days(demo)
    pre = (AnalysisBasis.ENROLLMENTS,)
    found = e2e.rollup_vs_direct(
        demo, [(0, 6, e2e.BOTH), (0, days, e2e.BOTH), (-7, -1, pre), (-28, -1, pre)]
    )
    assert found == DEMO_DECOMPOSABLE
    # every demo metric rolls up, distinct_search_engines (COUNT DISTINCT) included
    for source, names in found.items():
        assert names == [m.name for m in e2e.source_metrics(demo.spec, source)], source


def test_demo_partials_start_where_their_metrics_need(demo: e2e.Computed) -> None:
    """Each source's partials start at its first needed day: 28 days before the start
    for a source in preenrollment_days28, 7 for preenrollment_week only, else the start."""
    spec = demo.spec
    start = spec.experiment.start_date
    assert start is not None
    want = {
        "active_users": 7,  # dau_days: preenrollment_weekly only
        "clients_daily": 28,
        "feature_events": 28,
        "normandy_events": 0,  # unenroll: no pre-enrollment period
        "search_daily": 28,
    }
    for source, lead in want.items():
        assert met_sql.partials_first_day(spec, source) == start - dt.timedelta(days=lead)
        first = e2e.query(
            demo.path,
            f"SELECT MIN(submission_date) AS d FROM main.{results.partials_table(SLUG, source)}",
        )[0]["d"]
        # the first stored day has rows (telemetry exists that day) and none before
        assert first == start - dt.timedelta(days=lead), source


SEGMENT_VARIANTS = {
    "demo": None,
    # zero-row windows: neither path evaluates the expression for a client without rows
    "no_opens": "COUNTIF(event_name = 'sidebar_opened') = 0",
    "mixed": "SUM(event_count) >= 2 AND MAX(event_name) > 'sidebar_c' OR LOGICAL_OR(feature = 'history')",
    "distinct": "COUNT(DISTINCT feature) >= 2",
    "fixed_start": "SUM(event_count) > 4",  # with window_start = -2
}


@pytest.mark.parametrize("variant", sorted(SEGMENT_VARIANTS))
def test_window_segment_rollup_equals_telemetry_for_every_window(
    demo: e2e.Computed, variant: str, tmp_path: Path
) -> None:
    """sql.segments (daily leaves rolled up) == sql.enrollments.window_segment_sql."""
    regulars = next(s for s in demo.spec.segments if s.name == "sidebar_regulars")
    expression = SEGMENT_VARIANTS[variant] or regulars.select_expression
    seg = attrs.evolve(regulars, name=f"seg_{variant}", select_expression=expression)
    if variant == "fixed_start":
        seg = attrs.evolve(seg, window_start=-2)
    d = seg_sql.segment_decomposition(seg)
    assert d is not None, expression
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(demo.path, path)
    spec, exp = demo.spec, demo.spec.experiment
    last_date = max(demo.dates)
    wh = open_warehouse(f"duckdb:{path}")
    try:
        clients = wh.table_ref(results.enrollment_staging_table(SLUG))
        enrollments = wh.table_ref(results.enrollments_table(SLUG))
        first = seg_sql.segment_days_first_day(spec, seg)
        wh.create_table_as("seg_days", seg_sql.segment_days_sql(seg, d, clients, first, last_date))
        days = wh.table_ref("seg_days")
        checked = 0
        for period in (Period.DAY, Period.WEEK, Period.DAYS28, Period.OVERALL):
            for w in windows_through(period, last_date, exp.last_enrollment_date, exp.end_date):
                order = " ORDER BY analysis_id"
                direct = enr_sql.window_segment_sql(spec, seg, enrollments, w.start, w.end)
                rolled = seg_sql.window_segment_rollup_sql(
                    spec, seg, d, enrollments, days, w.start, w.end
                )
                want = wh.query(f"SELECT * FROM ({direct}){order}").to_pylist()
                got = wh.query(f"SELECT * FROM ({rolled}){order}").to_pylist()
                assert got == want, f"{variant} {period.value} window {w.index}"
                checked += 1
                members = sum(r["in_segment"] for r in want)
                assert 0 < members < len(want) or variant == "no_opens"
        assert checked > 5
    finally:
        wh.close()
