import datetime as dt

import pyarrow as pa
import pytest
import sqlglot

from jetstream.sql.decompose import Decomposition, NotDecomposable, decompose, rolled_select
from jetstream.warehouse.duckdb import MEMORY, DuckDBWarehouse

DISTINCT_ROLLUP = "(SELECT COUNT(DISTINCT _distinct_value) FROM UNNEST({}) AS _distinct_value)"


@pytest.mark.parametrize(
    "expr,leaves,rollups,rollup",
    [
        (
            "COALESCE(SUM(active_hours_sum), 0)",
            ["SUM(active_hours_sum)"],
            ["SUM(m_0)"],
            "COALESCE(m_0, 0)",
        ),
        ("COUNTIF(x > 0)", ["COUNTIF(x > 0)"], ["SUM(m_0)"], "COALESCE(m_0, 0)"),
        (
            "SAFE_DIVIDE(SUM(a), SUM(b))",
            ["SUM(a)", "SUM(b)"],
            ["SUM(m_0)", "SUM(m_1)"],
            "SAFE_DIVIDE(m_0, m_1)",
        ),
        (
            "COALESCE(LOGICAL_OR(x), FALSE)",
            ["LOGICAL_OR(x)"],
            ["LOGICAL_OR(m_0)"],
            "COALESCE(m_0, FALSE)",
        ),
        (
            "AVG(x) + 1",
            ["SUM(x)", "COUNT(x)"],
            ["SUM(m_0)", "SUM(m_1)"],
            "(m_0 / NULLIF(m_1, 0)) + 1",
        ),
        ("MAX(x) > 0", ["MAX(x)"], ["MAX(m_0)"], "m_0 > 0"),
        ("MIN(x)", ["MIN(x)"], ["MIN(m_0)"], "m_0"),
        ("COUNT(*)", ["COUNT(*)"], ["SUM(m_0)"], "COALESCE(m_0, 0)"),
        (
            "SUM((SELECT SUM(value) FROM UNNEST(h.values)))",
            ["SUM((SELECT SUM(value) FROM UNNEST(h.values)))"],
            ["SUM(m_0)"],
            "m_0",
        ),
        # COUNT(DISTINCT x): the day's distinct values, counted over the window's union
        (
            "COUNT(DISTINCT engine)",
            ["ARRAY_AGG(DISTINCT engine IGNORE NULLS)"],
            ["ARRAY_CONCAT_AGG(m_0)"],
            DISTINCT_ROLLUP.format("m_0"),
        ),
        (
            "COALESCE(COUNT(DISTINCT metrics.uuid.legacy_telemetry_session_id), 0)",
            ["ARRAY_AGG(DISTINCT metrics.uuid.legacy_telemetry_session_id IGNORE NULLS)"],
            ["ARRAY_CONCAT_AGG(m_0)"],
            f"COALESCE({DISTINCT_ROLLUP.format('m_0')}, 0)",
        ),
        (
            "SAFE_DIVIDE(COUNT(DISTINCT a), SUM(b))",
            ["ARRAY_AGG(DISTINCT a IGNORE NULLS)", "SUM(b)"],
            ["ARRAY_CONCAT_AGG(m_0)", "SUM(m_1)"],
            f"SAFE_DIVIDE({DISTINCT_ROLLUP.format('m_0')}, m_1)",
        ),
        (
            "COUNT(DISTINCT CASE WHEN LOWER(isp) != 'x' THEN client_id ELSE NULL END)",
            [
                "ARRAY_AGG(DISTINCT CASE WHEN LOWER(isp) <> 'x' THEN client_id ELSE NULL END "
                "IGNORE NULLS)"
            ],
            ["ARRAY_CONCAT_AGG(m_0)"],
            DISTINCT_ROLLUP.format("m_0"),
        ),  # fmt: skip
        (
            "COUNT(DISTINCT DATE(submission_timestamp))",
            ["ARRAY_AGG(DISTINCT DATE(submission_timestamp) IGNORE NULLS)"],
            ["ARRAY_CONCAT_AGG(m_0)"],
            DISTINCT_ROLLUP.format("m_0"),
        ),
        (
            "COUNT(DISTINCT SAFE_CAST(x AS STRING))",
            ["ARRAY_AGG(DISTINCT SAFE_CAST(x AS STRING) IGNORE NULLS)"],
            ["ARRAY_CONCAT_AGG(m_0)"],
            DISTINCT_ROLLUP.format("m_0"),
        ),
    ],
)
def test_decomposable(expr, leaves, rollups, rollup):
    d = decompose(expr, "m")
    assert isinstance(d, Decomposition), d
    assert [leaf.sql for leaf in d.leaves] == leaves
    assert [leaf.column for leaf in d.leaves] == [f"m_{i}" for i in range(len(leaves))]
    assert [r.sql for r in d.rollups] == rollups
    assert [r.column for r in d.rollups] == [leaf.column for leaf in d.leaves]
    assert d.rollup_sql == rollup
    # every generated piece is valid BigQuery
    for leaf in d.leaves:
        sqlglot.parse_one(f"SELECT {leaf.sql}", read="bigquery")
    for r in d.rollups:
        sqlglot.parse_one(f"SELECT {r.sql}", read="bigquery")
    sqlglot.parse_one(f"SELECT {d.rollup_sql}", read="bigquery")


@pytest.mark.parametrize(
    "expr,reason",
    [
        # COUNT(DISTINCT x) of something that may not be a scalar stays direct
        ("COUNT(DISTINCT SPLIT(x))", "Split may not give a scalar"),
        ("COUNT(DISTINCT [a, b])", "Array may not give a scalar"),
        ("COUNT(DISTINCT STRUCT(a, b))", "may not give a scalar"),
        ("COUNT(DISTINCT CAST(x AS ARRAY<INT64>))", "type ARRAY<INT64>"),
        ("COUNT(DISTINCT JSON_QUERY(x, '$.a'))", "may not give a scalar"),
        ("COUNT(DISTINCT mozfun.map.get_key(e, 'k'))", "may not give a scalar"),
        ("COUNT(DISTINCT (SELECT MAX(v) FROM UNNEST(x) AS v))", "may not give a scalar"),
        ("COUNT(DISTINCT x) + y", "outside an aggregate"),
        ("ANY_VALUE(x)", "cannot be rolled up"),
        ("ARRAY_AGG(x)", "cannot be rolled up"),
        ("APPROX_COUNT_DISTINCT(x)", "cannot be rolled up"),
        ("mozfun.bits28.days_since_seen(x)", "has no aggregate"),
        ("SUM(x) + y", "outside an aggregate"),
        ("SUM(MAX(x))", "nested aggregate"),
        ("SUM(x) OVER ()", "window function"),
        ("SUM(", "does not parse"),
    ],
)
def test_not_decomposable(expr, reason):
    d = decompose(expr, "m")
    assert isinstance(d, NotDecomposable)
    assert reason in d.reason


# --------------------------------------------------------- COUNT(DISTINCT) on DuckDB, exactly

DAY = dt.date(2026, 1, 1)
# client 1: repeats within and across days; 2: NULLs only; 3: one day; 4: no rows at all
ROWS = [
    (1, 0, "a", 1, 0.5),
    (1, 0, "b", 2, 0.5),
    (1, 0, None, None, None),
    (1, 1, "a", 3, -0.0),
    (1, 2, "c", 1, 0.0),
    (1, 2, "b", 2, 1.25),
    (2, 0, None, None, None),
    (2, 3, None, 4, None),
    (3, 1, "z", 7, 2.0),
]
WINDOWS = [(0, 0), (0, 1), (1, 2), (0, 3), (3, 3), (5, 6)]


@pytest.fixture(scope="module")
def wh():
    w = DuckDBWarehouse(MEMORY)
    w.load_arrow(
        "telemetry",
        pa.table(
            {
                "client_id": [r[0] for r in ROWS],
                "submission_date": [DAY + dt.timedelta(days=r[1]) for r in ROWS],
                "x": [r[2] for r in ROWS],
                "n": pa.array([r[3] for r in ROWS], pa.int64()),
                "f": pa.array([r[4] for r in ROWS], pa.float64()),
            }
        ),
    )
    w.load_arrow("clients", pa.table({"id": pa.array([1, 2, 3, 4], pa.int64())}))
    return w


@pytest.mark.parametrize(
    "expr",
    [
        "COUNT(DISTINCT x)",
        "COALESCE(COUNT(DISTINCT n), 0)",
        "COUNT(DISTINCT f)",  # +0 and -0 are one value, as in BigQuery
        "COUNT(DISTINCT IF(n > 1, x, NULL))",
        "SAFE_DIVIDE(COUNT(DISTINCT x), SUM(n))",
        "COUNT(DISTINCT x) + COUNT(DISTINCT n) + COUNT(n)",
        "COUNT(DISTINCT CONCAT(x, '-', CAST(n AS STRING)))",
    ],
)
def test_count_distinct_rollup_equals_direct_on_duckdb(wh, expr):
    """The BigQuery SQL of the leaves and the roll-up, run on DuckDB through the
    warehouse's transpile, gives exactly the direct value for every window; clients
    without rows (or with NULLs only) get 0 like the direct COUNT(DISTINCT)."""
    d = decompose(expr, "l0")
    assert isinstance(d, Decomposition), d
    leaves = ", ".join(f"{leaf.sql} AS {leaf.column}" for leaf in d.leaves)
    wh.create_table_as(
        "leaves",
        f"SELECT client_id, submission_date, {leaves} FROM telemetry GROUP BY 1, 2",
    )
    for lo, hi in WINDOWS:
        first, last = (f"DATE '{DAY + dt.timedelta(days=k)}'" for k in (lo, hi))
        by_client = rolled_select(
            ["c.id"],
            [("v", d)],
            "FROM clients c LEFT JOIN leaves l "
            f"ON l.client_id = c.id AND l.submission_date BETWEEN {first} AND {last} "
            "GROUP BY c.id",
        )
        rolled = wh.query(f"{by_client} ORDER BY id").to_pylist()
        direct = wh.query(
            f"SELECT c.id, {expr} AS v FROM clients c LEFT JOIN telemetry t "
            f"ON t.client_id = c.id AND t.submission_date BETWEEN {first} AND {last} "
            "GROUP BY c.id ORDER BY c.id"
        ).to_pylist()
        assert rolled == direct, (expr, lo, hi)
        assert [r["v"] for r in rolled if r["id"] == 4] in ([0], [None]), "no rows: as direct"
