"""jetstream.sql.results: the one "delete these result rows" builder and its callers'
statements, run on a real DuckDB warehouse against rows of every kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetstream import results
from jetstream.sql import results as res_sql
from jetstream.warehouse import open_warehouse

# (period, window_index, data_source, analysis_basis, metric)
ROWS = [
    ("week", 0, "clients", "enrollments", "clicks"),
    ("week", 0, "clients", "exposures", "clicks"),
    ("week", 0, "events", "enrollments", "searches"),
    ("week", 1, "clients", "enrollments", "clicks"),
    ("week", 2, "clients", "enrollments", "clicks"),
    ("week", 0, "clients", "enrollments", "identity"),
    ("overall", 0, "clients", "enrollments", "clicks"),
]


@pytest.fixture
def wh(tmp_path: Path):
    wh = open_warehouse(f"duckdb:{tmp_path / 'wh.duckdb'}")
    ref = wh.table_ref("metrics_x")
    wh.execute(res_sql.create_table_sql(ref, results.METRICS_COLUMNS))
    for period, index, source, basis, metric in ROWS:
        wh.execute(
            f"INSERT INTO {ref} (period, window_index, data_source, analysis_basis, "
            f"metric_slug) VALUES ('{period}', {index}, '{source}', '{basis}', '{metric}')"
        )
    yield wh
    wh.close()


def left(wh) -> list[tuple]:
    rows = wh.query(
        "SELECT period, window_index, data_source, analysis_basis, metric_slug "
        f"FROM {wh.table_ref('metrics_x')}"
    ).to_pylist()
    return sorted(tuple(r.values()) for r in rows)


@pytest.mark.parametrize(
    ("filters", "deleted"),
    [
        # a unit's metrics of one basis (tasks.metrics)
        (
            dict(period="week", window_index=0, data_source="clients", bases=["exposures"]),
            [1],
        ),
        (
            dict(period="week", window_index=0, data_source="clients", metrics=["clicks"]),
            [0, 1],
        ),
        # no metric named: nothing of the unit (an empty IN list)
        (dict(period="week", window_index=0, metrics=[]), []),
        # both bases at once (tasks.statistics, a unit without rows)
        (dict(period="week", window_index=0, bases=["enrollments", "exposures"]), [0, 1, 2, 5]),
        # dropped windows (changes.cleanup_statements)
        (dict(period="week", windows_from=1), [3, 4]),
        # metrics no longer analysed (tasks.export): all but those kept
        (dict(period="week", keep_metrics=["clicks", "identity"]), [2]),
        (dict(period="week", keep_metrics=[]), [0, 1, 2, 3, 4, 5]),
        # everything (tasks.export before re-inserting adjusted statistics)
        (dict(), list(range(len(ROWS)))),
    ],
)
def test_delete_rows_deletes_exactly_the_rows_matching_every_filter(wh, filters, deleted):
    wh.execute(res_sql.delete_rows_sql(wh.table_ref("metrics_x"), **filters))
    assert left(wh) == sorted(r for i, r in enumerate(ROWS) if i not in deleted)


def test_removed_metrics_keep_identity_while_the_period_has_metrics():
    stmts = res_sql.removed_metrics_sql("m", "s", {"week": ["clicks"], "day": []}, "identity")
    assert stmts == [
        "DELETE FROM m WHERE period = 'week' AND metric_slug NOT IN ('clicks')",
        "DELETE FROM s WHERE period = 'week' AND metric NOT IN ('clicks', 'identity')",
        "DELETE FROM m WHERE period = 'day' AND metric_slug NOT IN ('')",
        "DELETE FROM s WHERE period = 'day' AND metric NOT IN ('')",
    ]


def test_values_are_escaped_literals():
    sql = res_sql.delete_rows_sql("t", period="we'ek", metrics=["a'b"])
    assert sql == "DELETE FROM t WHERE period = 'we\\'ek' AND metric_slug IN ('a\\'b')"
