"""Window-dependent segments rolled up from daily leaves (`jetstream.sql.segments`): which
segments roll up, from which day, and valid BigQuery. That the roll-up equals telemetry
for every window is checked on the embedded engine in test_e2e_metrics."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
import sqlglot

from jetstream import synthetic
from jetstream.commands.loading import load_one
from jetstream.config.model import ANALYSIS_WINDOW_END, AnalysisSpec, Segment
from jetstream.sql import segments as seg_sql

SLUG = "demo-sidebar-redesign"


@pytest.fixture(scope="module")
def spec() -> AnalysisSpec:
    return load_one(SLUG, str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR)


@pytest.fixture(scope="module")
def regulars(spec: AnalysisSpec) -> Segment:
    return next(s for s in spec.segments if s.name == "sidebar_regulars")


def test_demo_window_segment_is_decomposable(regulars: Segment) -> None:
    d = seg_sql.segment_decomposition(regulars)
    assert d is not None and len(d.leaves) == 1
    assert d.rollup_sql.endswith(">= 3")


def test_non_decomposable_segment_stays_on_telemetry(regulars: Segment) -> None:
    odd = attrs.evolve(regulars, select_expression="APPROX_COUNT_DISTINCT(feature) > 2")
    assert seg_sql.segment_decomposition(odd) is None


def test_first_day_follows_a_negative_fixed_window_start(spec: AnalysisSpec, regulars: Segment):
    start = spec.experiment.start_date
    assert seg_sql.segment_days_first_day(spec, regulars) == start
    earlier = attrs.evolve(regulars, window_start=-3, window_end=ANALYSIS_WINDOW_END)
    assert seg_sql.segment_days_first_day(spec, earlier) == start - dt.timedelta(days=3)


def test_generated_sql_parses_as_bigquery(spec: AnalysisSpec, regulars: Segment) -> None:
    d = seg_sql.segment_decomposition(regulars)
    assert d is not None
    day = dt.date(2026, 1, 20)
    for sql in (
        seg_sql.segment_days_sql(regulars, d, "`clients`", day, day),
        seg_sql.window_segment_rollup_sql(spec, regulars, d, "`e`", "`days`", 7, 13),
    ):
        sqlglot.parse_one(sql, read="bigquery")
