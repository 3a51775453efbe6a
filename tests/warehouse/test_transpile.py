"""The BigQuery -> DuckDB transpiler on its own (pure: no database).

What each query returns on DuckDB, compared to BigQuery's answer, is in
tests/warehouse/test_duckdb.py; here: the rewrites themselves, names and errors."""

from __future__ import annotations

import pytest
from sqlglot import exp, parse_one

from jetstream.errors import MetricError
from jetstream.warehouse.mozfun import SUPPORTED
from jetstream.warehouse.transpile import (
    duckdb_table_sql,
    parse_bigquery,
    split_table_name,
    to_duckdb,
    udf_macro_name,
)


def one(sql: str) -> str:
    [out] = to_duckdb(sql, SUPPORTED)
    return out


@pytest.mark.parametrize(
    "name,expected",
    [
        ("moz-fx-data-shared-prod.telemetry.clients_daily", ("telemetry", "clients_daily")),
        ("`mozdata.telemetry.clients_daily`", ("telemetry", "clients_daily")),
        (
            "mozdata.search.search_clients_engines_sources_daily",
            ("search", "search_clients_engines_sources_daily"),
        ),
        ("telemetry.events", ("telemetry", "events")),
        ("enrollments_my_slug", (None, "enrollments_my_slug")),
    ],
)
def test_table_name_rule(name, expected):
    assert split_table_name(name) == expected


def test_table_name_rejects_four_parts():
    with pytest.raises(MetricError, match="invalid table name 'a.b.c.d'"):
        split_table_name("a.b.c.d")


def test_duckdb_table_sql_quotes():
    assert duckdb_table_sql("moz-fx-data-shared-prod.telemetry.x") == '"telemetry"."x"'
    assert duckdb_table_sql("enrollments_a-b") == '"enrollments_a-b"'


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM `moz-fx-data-shared-prod.telemetry.clients_daily`",
        "SELECT * FROM `moz-fx-data-shared-prod`.telemetry.clients_daily",
        "SELECT * FROM mozdata.telemetry.clients_daily",
    ],
)
def test_project_is_dropped_from_table_names(sql):
    assert one(sql).replace('"', "") == "SELECT * FROM telemetry.clients_daily"


@pytest.mark.parametrize(
    "call,macro",
    [
        ("mozfun.map.get_key(m, 'a')", "mozfun_map_get_key"),
        ("`mozfun.map.get_key`(m, 'a')", "mozfun_map_get_key"),
        (
            "`moz-fx-data-shared-prod`.udf.keyed_histogram_get_sum(h, 'gpu')",
            "udf_keyed_histogram_get_sum",
        ),
        (
            "`moz-fx-data-shared-prod.udf.keyed_histogram_get_sum`(h, 'gpu')",
            "udf_keyed_histogram_get_sum",
        ),
        ("udf.keyed_histogram_get_sum(h, 'gpu')", "udf_keyed_histogram_get_sum"),
        ("mozfun.hist.extract(h).values", "mozfun_hist_extract"),
    ],
)
def test_udf_calls_become_macros(call, macro):
    out = one(f"SELECT {call} FROM t")
    assert macro.upper() in out.upper()
    assert "MOZFUN." not in out.upper() and "UDF." not in out.upper()


def test_udf_macro_name_strips_project():
    assert udf_macro_name("moz-fx-data-shared-prod.udf.normalize_search_engine") == (
        "udf_normalize_search_engine"
    )
    assert udf_macro_name("mozfun.norm.os") == "mozfun_norm_os"


@pytest.mark.parametrize(
    "call",
    [
        "mozfun.hist.merge(ARRAY_AGG(h))",
        "`moz-fx-data-shared-prod`.udf.normalize_search_engine(engine)",
        "mozfun.hist.percentiles(h, [0.5])",
    ],
)
def test_unsupported_udf_is_a_clear_error(call):
    with pytest.raises(MetricError, match=r"is not available on DuckDB \(supported: "):
        one(f"SELECT {call} FROM t")


def test_sql_that_does_not_parse_names_the_problem():
    with pytest.raises(MetricError, match=r"does not parse as BigQuery: .* line 1, column"):
        parse_bigquery("SELECT a FROM t WHERE")
    with pytest.raises(MetricError, match="empty SQL"):
        parse_bigquery("  ")


def test_script_is_split_into_statements():
    out = to_duckdb(
        "BEGIN TRANSACTION; DELETE FROM `t` WHERE a = 1; "
        "INSERT INTO `t` (a) SELECT 2; COMMIT TRANSACTION;"
    )
    assert [s.split()[0] for s in out] == ["BEGIN", "DELETE", "INSERT", "COMMIT"]


def test_cast_inside_case_branches_becomes_try_cast_but_not_elsewhere():
    out = one(
        "SELECT CASE WHEN s = 'x' THEN CAST(s AS INT64) ELSE CAST(t AS INT64) END, "
        "IF(b, CAST(s AS FLOAT64), NULL), CAST(u AS INT64) FROM t"
    )
    tree = parse_one(out, read="duckdb")
    kinds = [type(c).__name__ for c in tree.find_all(exp.Cast)]
    assert kinds.count("TryCast") == 3
    assert "CAST(u AS BIGINT)" in out


def test_countif_becomes_count_of_case():
    assert one("SELECT COUNTIF(x > 1) FROM t") == "SELECT COUNT(CASE WHEN x > 1 THEN 1 END) FROM t"


def test_numeric_gets_bigquery_precision():
    assert "DECIMAL(38, 9)" in one("SELECT CAST(x AS NUMERIC), CAST(y AS BIGNUMERIC) FROM t")


def test_division_is_checked_and_safe_divide_is_not():
    assert one("SELECT a / b FROM t") == "SELECT BQ_DIV(a, b) FROM t"
    assert "BQ_DIV" not in one("SELECT SAFE_DIVIDE(a, b) FROM t").upper()


def test_nested_rewrites_all_apply():
    # the children of a rewritten node are rewritten too
    out = one("SELECT (a / (b / 2)) / COUNTIF(c) FROM t")
    assert out.upper().count("BQ_DIV") == 3
    assert "COUNT_IF" not in out.upper()


def test_with_offset_becomes_zero_based_subquery():
    out = one("SELECT x, o FROM t, UNNEST(t.arr) AS x WITH OFFSET AS o")
    assert 'GENERATE_SUBSCRIPTS(t.arr, 1) - CAST(1 AS BIGINT) AS "o"' in out
    assert "ORDINALITY" not in out.upper()


def test_options_are_dropped_for_duckdb():
    out = one(
        "CREATE OR REPLACE TABLE `p.d.t` OPTIONS(expiration_timestamp="
        "TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 3 DAY)) AS SELECT 1 AS a"
    )
    assert out.startswith('CREATE OR REPLACE TABLE "d"."t" AS SELECT')
    assert "OPTIONS" not in out.upper()


def test_udf_inside_ignore_nulls_and_unknown_plain_functions():
    out = one(
        "SELECT ARRAY_AGG(mozfun.hist.extract(h) IGNORE NULLS), "
        "ARRAY_AGG(SOME_BUILTIN(h) IGNORE NULLS) FROM t"
    )
    assert out.count("MOZFUN_HIST_EXTRACT(h)") == 2
    assert "SOME_BUILTIN(h)" in out


def test_unnest_of_structs_without_alias_exposes_fields():
    out = one("SELECT (SELECT SUM(value) FROM UNNEST(mozfun.hist.extract(h).values)) FROM t")
    assert "UNNEST(MOZFUN_HIST_EXTRACT(h).values, recursive := TRUE)" in out


@pytest.mark.shared
@pytest.mark.parametrize("platform", ["firefox_desktop", "fenix"])
def test_every_metric_hub_expression_translates(metric_hub, platform):
    """Every select_expression and subquery data source of the platform's metric-hub
    definitions parses as BigQuery and translates to DuckDB (no unsupported UDF)."""
    import tomllib

    definitions = tomllib.loads((metric_hub / "definitions" / f"{platform}.toml").read_text())
    checked = 0
    for metric in definitions.get("metrics", {}).values():
        if expression := metric.get("select_expression"):
            one(f"SELECT {expression.replace('{experiment_slug}', 'x')} AS v FROM t")
            checked += 1
    for source in definitions.get("data_sources", {}).values():
        query = source.get("from_expression", "").strip()
        if query.startswith("("):
            query = query.replace("{experiment_slug}", "x").replace("{dataset}", "ds")
            one(f"SELECT * FROM {query} AS s")
            checked += 1
    assert checked > 10


def test_count_distinct_over_unnest_becomes_list_unique_only_in_that_shape():
    sql = "SELECT (SELECT COUNT(DISTINCT v) FROM UNNEST(a) AS v) AS n FROM t"
    assert "LIST_UNIQUE(a), 0)" in one(sql)
    for other in (
        "SELECT (SELECT COUNT(DISTINCT v) FROM UNNEST(a) AS v WHERE v > 1) AS n FROM t",
        "SELECT (SELECT COUNT(DISTINCT w) FROM UNNEST(a) AS v) AS n FROM t",
        "SELECT (SELECT COUNT(v) FROM UNNEST(a) AS v) AS n FROM t",
        "SELECT (SELECT COUNT(DISTINCT v) FROM UNNEST(a) AS v WITH OFFSET AS o) AS n FROM t",
    ):
        assert "LIST_UNIQUE" not in one(other), other
