import pytest
import sqlglot

from jetstream.sql.decompose import Decomposition, NotDecomposable, decompose


@pytest.mark.parametrize(
    "expr,leaves,rollup",
    [
        ("COALESCE(SUM(active_hours_sum), 0)", ["SUM(active_hours_sum)"], "COALESCE(SUM(m_0), 0)"),
        ("COUNTIF(x > 0)", ["COUNTIF(x > 0)"], "COALESCE(SUM(m_0), 0)"),
        ("SAFE_DIVIDE(SUM(a), SUM(b))", ["SUM(a)", "SUM(b)"], "SAFE_DIVIDE(SUM(m_0), SUM(m_1))"),
        ("COALESCE(LOGICAL_OR(x), FALSE)", ["LOGICAL_OR(x)"], "COALESCE(LOGICAL_OR(m_0), FALSE)"),
        ("AVG(x) + 1", ["SUM(x)", "COUNT(x)"], "(SUM(m_0) / NULLIF(SUM(m_1), 0)) + 1"),
        ("MAX(x) > 0", ["MAX(x)"], "MAX(m_0) > 0"),
        ("MIN(x)", ["MIN(x)"], "MIN(m_0)"),
        ("COUNT(*)", ["COUNT(*)"], "COALESCE(SUM(m_0), 0)"),
        (
            "SUM((SELECT SUM(value) FROM UNNEST(h.values)))",
            ["SUM((SELECT SUM(value) FROM UNNEST(h.values)))"],
            "SUM(m_0)",
        ),
    ],
)
def test_decomposable(expr, leaves, rollup):
    d = decompose(expr, "m")
    assert isinstance(d, Decomposition), d
    assert [leaf.sql for leaf in d.leaves] == leaves
    assert [leaf.column for leaf in d.leaves] == [f"m_{i}" for i in range(len(leaves))]
    assert d.rollup_sql == rollup
    # every generated piece is valid BigQuery
    for leaf in d.leaves:
        sqlglot.parse_one(f"SELECT {leaf.sql}", read="bigquery")
    sqlglot.parse_one(f"SELECT {d.rollup_sql}", read="bigquery")


@pytest.mark.parametrize(
    "expr,reason",
    [
        ("COUNT(DISTINCT submission_date)", "COUNT(DISTINCT"),
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
