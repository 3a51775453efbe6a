"""DuckDBWarehouse: BigQuery SQL run on DuckDB, compared to the answer BigQuery gives.

Every expected value below is BigQuery's result for the same SQL, written by hand from
BigQuery's documented semantics. Re-run on every upgrade of sqlglot or duckdb."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from decimal import Decimal

import pyarrow as pa
import pytest

from jetstream.errors import MetricError, TransientError
from jetstream.warehouse import QueryStats, Warehouse, open_warehouse
from jetstream.warehouse.duckdb import DuckDBWarehouse
from jetstream.warehouse.duckdb_types import bigquery_type_name
from jetstream.warehouse.filelock import FileLock
from jetstream.warehouse.mozfun import farm_fingerprint


@pytest.fixture(scope="module")
def mem() -> DuckDBWarehouse:
    wh = open_warehouse("duckdb::memory:")
    assert isinstance(wh, DuckDBWarehouse)
    yield wh
    wh.close()


@pytest.fixture
def wh(tmp_path) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", lock_timeout=30)
    yield warehouse
    warehouse.close()


def row(wh: Warehouse, sql: str, params=None) -> dict:
    [only] = wh.query(sql, params).to_pylist()
    return only


# -- one test per construct: (BigQuery SQL, BigQuery's answer) --------------------------------

CONSTRUCTS = {
    "countif_no_rows_is_0": (
        "SELECT COUNTIF(x > 1) AS v FROM UNNEST([1, 2, 3]) AS x WHERE FALSE",
        0,
    ),
    "countif_counts_true_only": ("SELECT COUNTIF(x > 1) AS v FROM UNNEST([1, 2, 3, NULL]) AS x", 2),
    "countif_window": (
        "SELECT ARRAY_AGG(c ORDER BY x) AS v FROM (SELECT x, COUNTIF(x > 1) OVER "
        "(ORDER BY x) AS c FROM UNNEST([1, 2, 3]) AS x)",
        [0, 1, 2],
    ),
    "dayofweek_sunday_is_1": ("SELECT EXTRACT(DAYOFWEEK FROM DATE '2024-01-07') AS v", 1),
    "dayofweek_saturday_is_7": ("SELECT EXTRACT(DAYOFWEEK FROM DATE '2024-01-06') AS v", 7),
    "dayofweek_timestamp": (
        "SELECT EXTRACT(DAYOFWEEK FROM TIMESTAMP '2024-01-07 23:59:00+00') AS v",
        1,
    ),
    "week_before_first_sunday_is_0": ("SELECT EXTRACT(WEEK FROM DATE '2024-01-06') AS v", 0),
    "week_first_sunday_is_1": ("SELECT EXTRACT(WEEK FROM DATE '2024-01-07') AS v", 1),
    "week_end_of_year": ("SELECT EXTRACT(WEEK FROM DATE '2024-12-31') AS v", 52),
    "week_monday": ("SELECT EXTRACT(WEEK(MONDAY) FROM DATE '2023-01-01') AS v", 0),
    "week_monday_first": ("SELECT EXTRACT(WEEK(MONDAY) FROM DATE '2024-01-01') AS v", 1),
    "isoweek": ("SELECT EXTRACT(ISOWEEK FROM DATE '2023-01-01') AS v", 52),
    "isoyear": ("SELECT EXTRACT(ISOYEAR FROM DATE '2023-01-01') AS v", 2022),
    "cast_int64_is_64_bit": ("SELECT CAST('3000000000' AS INT64) AS v", 3000000000),
    "cast_int64_rounds_half_away": (
        "SELECT [CAST(2.5 AS INT64), CAST(-2.5 AS INT64)] AS v",
        [3, -3],
    ),
    "int_literal_arithmetic_is_64_bit": ("SELECT 2000000000 * 2 AS v", 4000000000),
    "numeric_keeps_9_decimals": (
        "SELECT CAST('1.123456789' AS NUMERIC) AS v",
        Decimal("1.123456789"),
    ),
    "numeric_sum": (
        "SELECT SUM(CAST(x AS NUMERIC)) AS v FROM UNNEST(['0.000000001', '2.5']) AS x",
        Decimal("2.500000001"),
    ),
    "date_add_day_is_date": (
        "SELECT DATE_ADD(DATE '2024-02-28', INTERVAL 2 DAY) AS v",
        dt.date(2024, 3, 1),
    ),
    "date_add_month_clamps": (
        "SELECT DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH) AS v",
        dt.date(2024, 2, 29),
    ),
    "date_sub_is_date": (
        "SELECT DATE_SUB(DATE '2024-03-01', INTERVAL 1 DAY) AS v",
        dt.date(2024, 2, 29),
    ),
    "date_add_string_literal": (
        "SELECT DATE_ADD('2024-01-01', INTERVAL 6 DAY) AS v",
        dt.date(2024, 1, 7),
    ),
    "date_trunc_month": ("SELECT DATE_TRUNC(DATE '2024-05-17', MONTH) AS v", dt.date(2024, 5, 1)),
    "date_trunc_week_is_sunday": (
        "SELECT DATE_TRUNC(DATE '2024-05-17', WEEK) AS v",
        dt.date(2024, 5, 12),
    ),
    "date_trunc_week_monday": (
        "SELECT DATE_TRUNC(DATE '2024-05-17', WEEK(MONDAY)) AS v",
        dt.date(2024, 5, 13),
    ),
    "date_trunc_isoweek": (
        "SELECT DATE_TRUNC(DATE '2024-05-19', ISOWEEK) AS v",
        dt.date(2024, 5, 13),
    ),
    "with_offset_is_0_based": (
        "SELECT ARRAY_AGG(STRUCT(x, o) ORDER BY o) AS v "
        "FROM UNNEST(['a', 'b', 'c']) AS x WITH OFFSET AS o",
        [{"x": "a", "o": 0}, {"x": "b", "o": 1}, {"x": "c", "o": 2}],
    ),
    "with_offset_correlated": (
        "SELECT SUM(o * e) AS v FROM (SELECT [10, 20, 30] AS arr) AS t, "
        "UNNEST(t.arr) AS e WITH OFFSET AS o",
        80,
    ),
    "sum_of_int64_is_int64": ("SELECT SUM(x) AS v FROM UNNEST([1, 2, 3]) AS x", 6),
    "sum_of_no_rows_is_null": ("SELECT SUM(x) AS v FROM UNNEST([1]) AS x WHERE FALSE", None),
    "int_division_is_float": ("SELECT 7 / 2 AS v", 3.5),
    "safe_divide_by_zero_is_null": ("SELECT SAFE_DIVIDE(1, 0) AS v", None),
    "ieee_divide_by_zero_is_inf": ("SELECT IEEE_DIVIDE(1, 0) AS v", float("inf")),
    "div_and_mod": ("SELECT [DIV(7, 2), MOD(-7, 2)] AS v", [3, -1]),
    "cast_in_case_branch": (
        "SELECT ARRAY_AGG(CASE WHEN s = 'x' THEN -1 ELSE CAST(s AS INT64) END ORDER BY s) AS v "
        "FROM UNNEST(['1', 'x', '20']) AS s",
        [1, 20, -1],
    ),
    "cast_in_if_branch": (
        "SELECT SUM(IF(REGEXP_CONTAINS(s, r'^[0-9]+$'), CAST(s AS INT64), 0)) AS v "
        "FROM UNNEST(['1', 'x', '20']) AS s",
        21,
    ),
    "safe_cast": ("SELECT SAFE_CAST('x' AS INT64) AS v", None),
    "qualify": (
        "SELECT x AS v FROM UNNEST([3, 1, 2]) AS x WHERE TRUE "
        "QUALIFY ROW_NUMBER() OVER (ORDER BY x DESC) = 1",
        3,
    ),
    "struct": ("SELECT STRUCT(1 AS a, 'b' AS b) AS v", {"a": 1, "b": "b"}),
    "struct_field": ("SELECT STRUCT(1 AS a, 'b' AS b).b AS v", "b"),
    "unnest_struct_array": (
        "SELECT SUM(e.value) AS v FROM UNNEST([STRUCT('a' AS key, 1 AS value), ('b', 2)]) AS e",
        3,
    ),
    "json_value": ("SELECT JSON_VALUE('{\"a\": {\"b\": 3}}', '$.a.b') AS v", "3"),
    "json_extract_scalar": ("SELECT JSON_EXTRACT_SCALAR('{\"sum\": 42}', '$.sum') AS v", "42"),
    "json_extract_scalar_missing": ("SELECT JSON_EXTRACT_SCALAR('{}', '$.sum') AS v", None),
    "logical_or_and": (
        "SELECT [LOGICAL_OR(x > 2), LOGICAL_AND(x > 2)] AS v FROM UNNEST([1, 3]) AS x",
        [True, False],
    ),
    "count_distinct": ("SELECT COUNT(DISTINCT x) AS v FROM UNNEST([1, 2, 2, NULL]) AS x", 2),
    "approx_count_distinct": (
        "SELECT APPROX_COUNT_DISTINCT(x) AS v FROM UNNEST([1, 2, 2, 3]) AS x",
        3,
    ),
    "array_agg_order": (
        "SELECT ARRAY_AGG(x ORDER BY x DESC) AS v FROM UNNEST([2, 3, 1]) AS x",
        [3, 2, 1],
    ),
    "array_agg_ignore_nulls": (
        "SELECT ARRAY_AGG(x IGNORE NULLS ORDER BY x) AS v FROM UNNEST([2, NULL, 1]) AS x",
        [1, 2],
    ),
    "any_value": ("SELECT ANY_VALUE(x) AS v FROM UNNEST([5, 5]) AS x", 5),
    "date_diff_day": ("SELECT DATE_DIFF(DATE '2024-01-10', DATE '2024-01-01', DAY) AS v", 9),
    "date_diff_week_boundaries": (
        "SELECT DATE_DIFF(DATE '2024-01-14', DATE '2024-01-06', WEEK) AS v",
        2,
    ),
    "date_of_timestamp_utc": (
        "SELECT DATE(TIMESTAMP '2024-01-01 23:30:00') AS v",
        dt.date(2024, 1, 1),
    ),
    "date_of_timestamp_with_zone": (
        "SELECT DATE(TIMESTAMP '2024-01-01 23:30:00-05:00') AS v",
        dt.date(2024, 1, 2),
    ),
    "timestamp_trunc_day_utc": (
        "SELECT EXTRACT(HOUR FROM TIMESTAMP_TRUNC(TIMESTAMP '2024-01-01 23:30:00', DAY)) AS v",
        0,
    ),
    "if": ("SELECT IF(1 > 0, 'a', 'b') AS v", "a"),
    "ifnull": ("SELECT IFNULL(NULL, 3) AS v", 3),
    "coalesce_concat": ("SELECT CONCAT('a', COALESCE(NULL, 'b')) AS v", "ab"),
    "regexp_extract_no_match_is_null": ("SELECT REGEXP_EXTRACT('abc', r'^([0-9]+)') AS v", None),
    "split_safe_offset": ("SELECT SPLIT('10.0.1', '.')[SAFE_OFFSET(1)] AS v", "0"),
    "split_safe_offset_out_of_range": ("SELECT SPLIT('10', '.')[SAFE_OFFSET(1)] AS v", None),
    "generate_date_array": (
        "SELECT ARRAY_LENGTH(GENERATE_DATE_ARRAY('2024-01-01', '2024-01-10')) AS v",
        10,
    ),
    "format_date": ("SELECT FORMAT_DATE('%Y%m%d', DATE '2024-01-02') AS v", "20240102"),
    "parse_date": ("SELECT PARSE_DATE('%Y%m%d', '20240102') AS v", dt.date(2024, 1, 2)),
    "avg_stddev": ("SELECT [AVG(x), STDDEV(x)] AS v FROM UNNEST([1, 2, 3]) AS x", [2.0, 1.0]),
    "select_except": ("SELECT * EXCEPT (a) FROM (SELECT 1 AS a, 2 AS v)", 2),
    "in_unnest": ("SELECT COUNT(*) AS v FROM UNNEST([1, 2, 3]) AS x WHERE x IN UNNEST([1, 3])", 2),
}


@pytest.mark.parametrize("sql,expected", list(CONSTRUCTS.values()), ids=list(CONSTRUCTS))
def test_construct_matches_bigquery(mem, sql, expected):
    assert row(mem, sql)["v"] == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 / 0 AS v",
        "SELECT 1.5 / 0.0 AS v",
        "SELECT x / y AS v FROM UNNEST([1]) AS x, UNNEST([0]) AS y",
    ],
)
def test_division_by_zero_is_an_error_as_in_bigquery(mem, sql):
    with pytest.raises(MetricError, match="division by zero"):
        mem.query(sql)


def test_division_by_zero_not_reached_is_fine(mem):
    sql = (
        "SELECT SUM(CASE WHEN y <> 0 THEN x / y ELSE 0 END) AS v FROM UNNEST([0, 2]) AS y, "
        "UNNEST([4]) AS x"
    )
    assert row(mem, sql)["v"] == 2.0


def test_result_types_are_bigquery_types(mem):
    table = mem.query(
        "SELECT 1 AS i, SUM(x) AS s, COUNTIF(x > 0) AS c, COUNT(*) AS n, "
        "CAST(1.5 AS FLOAT64) AS f, [1, 2] AS a, STRUCT(1 AS k) AS st, "
        "CAST('2024-01-01' AS DATE) AS d, TIMESTAMP '2024-01-01 00:00:00' AS ts "
        "FROM UNNEST([1, 2]) AS x"
    )
    types = {f.name: f.type for f in table.schema}
    assert types["i"] == pa.int64()
    assert types["s"] == pa.int64()
    assert types["c"] == pa.int64()
    assert types["n"] == pa.int64()
    assert types["f"] == pa.float64()
    assert types["a"].value_type == pa.int64()
    assert types["st"].field("k").type == pa.int64()
    assert types["d"] == pa.date32()
    assert types["ts"] == pa.timestamp("us", tz="UTC")


def test_retyping_keeps_the_order_of_rows(mem):
    # the result is re-typed by wrapping the query; ORDER BY must survive that
    got = (
        mem.query(
            "SELECT x, 1 AS one FROM UNNEST(GENERATE_ARRAY(1, 3000)) AS x "
            "ORDER BY MOD(x * 7919, 3001) DESC"
        )
        .column("x")
        .to_pylist()
    )
    assert got == sorted(range(1, 3001), key=lambda x: (x * 7919) % 3001, reverse=True)


def test_farm_fingerprint_is_deterministic_64_bit(mem):
    got = row(
        mem,
        "SELECT FARM_FINGERPRINT('client-1') AS a, FARM_FINGERPRINT('client-1') AS b, "
        "FARM_FINGERPRINT('client-2') AS c, FARM_FINGERPRINT(CAST(NULL AS STRING)) AS d",
    )
    assert got["a"] == got["b"] != got["c"]
    assert got["d"] is None
    # the same function as the Python one, so samples can be reproduced outside SQL
    assert got["a"] == farm_fingerprint(pa.array(["client-1"])).to_pylist()[0]
    assert -(2**63) <= got["a"] < 2**63


def test_time_zone_is_utc(wh):
    with wh.session() as con:
        assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
    data = pa.table(
        {
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 23, 30, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC")
            )
        }
    )
    wh.load_arrow("events", data)
    got = row(
        wh,
        "SELECT DATE(ts) AS d, EXTRACT(HOUR FROM ts) AS h, "
        "TIMESTAMP_TRUNC(ts, DAY) AS t FROM events",
    )
    assert got["d"] == dt.date(2024, 1, 1)
    assert got["h"] == 23
    assert got["t"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_current_date_is_utc_today(mem):
    today = row(mem, "SELECT CURRENT_DATE() AS v")["v"]
    assert today in {
        dt.datetime.now(dt.UTC).date(),
        dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1),
    }


def test_query_parameters(mem):
    got = row(
        mem,
        "SELECT @day AS d, DATE_ADD(@day, INTERVAL 1 DAY) AS e, @n + 1 AS n, "
        "@slug AS s, (SELECT COUNT(*) FROM UNNEST([1, 2, 3]) AS x "
        "WHERE x IN UNNEST(@keep)) AS k",
        {"day": dt.date(2024, 1, 31), "n": 41, "slug": "my-exp", "keep": [1, 3], "unused": 1},
    )
    assert got == {
        "d": dt.date(2024, 1, 31),
        "e": dt.date(2024, 2, 1),
        "n": 42,
        "s": "my-exp",
        "k": 2,
    }
    with pytest.raises(MetricError, match="query parameters without a value: day"):
        mem.query("SELECT @day AS d")


def test_sql_must_parse_as_bigquery(mem):
    with pytest.raises(MetricError, match="does not parse as BigQuery"):
        mem.query("SELECT a FROM t WHERE")
    with pytest.raises(MetricError, match="expected a SELECT"):
        mem.query("DELETE FROM t WHERE TRUE")


def test_sql_error_is_metric_error_with_duckdb_message(mem):
    with pytest.raises(MetricError, match="no_such_table"):
        mem.query("SELECT * FROM no_such_table")


# -- mozfun / udf ------------------------------------------------------------------------

HIST = (
    '{"bucket_count":10,"histogram_type":1,"sum":2628,"range":[1,100],'
    '"values":{"0":12434,"1":297,"13":8}}'
)

MOZFUN = {
    "map_get_key": (
        "SELECT mozfun.map.get_key([STRUCT('foo' AS key, 42 AS value), ('bar', 12)], 'bar') AS v",
        12,
    ),
    "map_get_key_backticks": (
        "SELECT `mozfun.map.get_key`([STRUCT('foo' AS key, 42 AS value)], 'nope') AS v",
        None,
    ),
    "hist_extract_json": (
        f"SELECT mozfun.hist.extract('{HIST}') AS v",
        {
            "bucket_count": 10,
            "histogram_type": 1,
            "sum": 2628,
            "range": [1, 100],
            "values": [
                {"key": 0, "value": 12434},
                {"key": 1, "value": 297},
                {"key": 13, "value": 8},
            ],
        },
    ),
    "hist_extract_compact_boolean": (
        "SELECT mozfun.hist.extract('0,31') AS v",
        {
            "bucket_count": 3,
            "histogram_type": 2,
            "sum": 31,
            "range": [1, 2],
            "values": [{"key": 0, "value": 0}, {"key": 1, "value": 31}, {"key": 2, "value": 0}],
        },
    ),
    "hist_extract_compact_count": (
        "SELECT mozfun.hist.extract('37') AS v",
        {
            "bucket_count": 3,
            "histogram_type": 4,
            "sum": 37,
            "range": [1, 2],
            "values": [{"key": 0, "value": 37}, {"key": 1, "value": 0}],
        },
    ),
    "hist_extract_compact_full": (
        "SELECT mozfun.hist.extract('3;2;5;1,2;0:0,1:5,2:0') AS v",
        {
            "bucket_count": 3,
            "histogram_type": 2,
            "sum": 5,
            "range": [1, 2],
            "values": [{"key": 0, "value": 0}, {"key": 1, "value": 5}, {"key": 2, "value": 0}],
        },
    ),
    "hist_extract_compact_empty_values": (
        "SELECT mozfun.hist.extract('51;1;0;1,50;').values AS v",
        [],
    ),
    "hist_extract_null": ("SELECT mozfun.hist.extract(CAST(NULL AS STRING)) AS v", None),
    "hist_extract_sum_of_values": (
        f"SELECT (SELECT SUM(value) FROM UNNEST(mozfun.hist.extract('{HIST}').values)) AS v",
        12739,
    ),
    "hist_get_key_of_values": (
        f"SELECT mozfun.map.get_key(mozfun.hist.extract('{HIST}').values, 1) AS v",
        297,
    ),
    "hist_threshold_count": (
        'SELECT [mozfun.hist.threshold_count(\'{"values":{"0":1,"1":2, "4": 10, '
        "\"8\": 7}}', 4), mozfun.hist.threshold_count('{}', 1), "
        'mozfun.hist.threshold_count(\'{"values":{"5":1, "6":3}}\', 6)] AS v',
        [17, 0, 3],
    ),
    "json_extract_int_map": (
        'SELECT mozfun.json.extract_int_map(\'{"0":12434,"1":297,"13":8}\') AS v',
        [{"key": 0, "value": 12434}, {"key": 1, "value": 297}, {"key": 13, "value": 8}],
    ),
    "json_extract_int_map_empty": (
        "SELECT ARRAY_LENGTH(mozfun.json.extract_int_map('{}')) AS v",
        0,
    ),
    "json_extract_int_map_overflow_is_null": (
        "SELECT mozfun.json.extract_int_map('{\"1\":147573952589676410000}') AS v",
        [{"key": 1, "value": None}],
    ),
    "bits28_days_since_seen": (
        "SELECT [mozfun.bits28.days_since_seen(1), mozfun.bits28.days_since_seen(8), "
        "mozfun.bits28.days_since_seen(9)] AS v",
        [0, 3, 0],
    ),
    "bits28_days_since_seen_zero": ("SELECT mozfun.bits28.days_since_seen(0) AS v", None),
    "truncate_version": (
        "SELECT [mozfun.norm.truncate_version('16.1.1', 'minor'), "
        "mozfun.norm.truncate_version('16.1.1', 'major'), "
        "mozfun.norm.truncate_version('10', 'minor'), "
        "mozfun.norm.truncate_version('5.1.5-ubuntu-foobar', 'minor'), "
        "mozfun.norm.truncate_version('foo-bar', 'minor')] AS v",
        ["16.1", "16", "10", "5.1", None],
    ),
    "extract_version": (
        "SELECT [mozfun.norm.extract_version('16.1.1', 'minor'), "
        "mozfun.norm.extract_version('16.05.2', 'patch'), "
        "mozfun.norm.extract_version('100.01.1', 'major'), "
        "mozfun.norm.extract_version('10', 'minor')] AS v",
        [Decimal(1), Decimal(2), Decimal(100), None],
    ),
    "fenix_build_to_datetime": (
        "SELECT [mozfun.norm.fenix_build_to_datetime('21571434'), "
        "mozfun.norm.fenix_build_to_datetime('00010000'), "
        "mozfun.norm.fenix_build_to_datetime('93652359'), "
        "mozfun.norm.fenix_build_to_datetime('2015757667'), "
        "mozfun.norm.fenix_build_to_datetime('0000000009'), "
        "mozfun.norm.fenix_build_to_datetime(CAST(1 << 31 AS STRING))] AS v",
        [
            dt.datetime(2020, 6, 5, 14, 34),
            dt.datetime(2018, 1, 1),
            dt.datetime(2027, 12, 31, 23, 59),
            dt.datetime(2020, 8, 13, 4),
            dt.datetime(2014, 12, 28, 1),
            dt.datetime(2014, 12, 28),
        ],
    ),
    "fenix_build_to_datetime_invalid": (
        "SELECT [mozfun.norm.fenix_build_to_datetime('7777777'), "
        "mozfun.norm.fenix_build_to_datetime('hi'), "
        "mozfun.norm.fenix_build_to_datetime('11831860'), "
        "mozfun.norm.fenix_build_to_datetime('11832459')] AS v",
        [None, None, None, None],
    ),
    "fenix_build_id_column": (
        "SELECT REPLACE(CAST(DATE(mozfun.norm.fenix_build_to_datetime('21571434')) AS STRING), "
        "'-', '') AS v",
        "20200605",
    ),
    "norm_os": (
        "SELECT [mozfun.norm.os('Windows_NT'), mozfun.norm.os('WINNT'), mozfun.norm.os('Darwin'),"
        " mozfun.norm.os('GNU/kFreeBSD'), mozfun.norm.os('All the iPhones'),"
        " mozfun.norm.os('Android?'), mozfun.norm.os('IOS')] AS v",
        ["Windows", "Windows", "Mac", "Linux", "iOS", "Android", "Other"],
    ),
    "windows_version_info": (
        "SELECT [mozfun.norm.windows_version_info('Windows_95', NULL, NULL), "
        "mozfun.norm.windows_version_info('Windows_NT', '5.2', NULL), "
        "mozfun.norm.windows_version_info('Windows_NT', '6.1', 7601), "
        "mozfun.norm.windows_version_info('Windows_NT', '10.0', 19043), "
        "mozfun.norm.windows_version_info('Windows_NT', '10.0', 22623), "
        "mozfun.norm.windows_version_info('Darwin', '11.4.2', NULL), "
        "mozfun.norm.windows_version_info('Windows_NT', '10.0', NULL)] AS v",
        ["Windows 95", "Windows XP", "Windows 7", "Windows 10", "Windows 11", None, None],
    ),
    "keyed_histogram_get_sum": (
        "SELECT [`moz-fx-data-shared-prod`.udf.keyed_histogram_get_sum(h, 'key1'), "
        "udf.keyed_histogram_get_sum(h, 'key2'), udf.keyed_histogram_get_sum(h, 'key3'), "
        "udf.keyed_histogram_get_sum(h, 'dne')] AS v FROM (SELECT ["
        'STRUCT(\'key1\' AS key, \'{"bucket_count":3,"histogram_type":4,"sum":1,'
        '"range":[1,2],"values":{"0":1,"1":0}}\' AS value), '
        "STRUCT('key2' AS key, '4,2' AS value), STRUCT('key3' AS key, '{}' AS value)] AS h)",
        [1, 2, None, None],
    ),
    "histogram_max_key_with_nonzero_value": (
        'SELECT [udf.histogram_max_key_with_nonzero_value(\'{"values":{"0":3,"1":2}}\'), '
        "udf.histogram_max_key_with_nonzero_value('{}'), "
        'udf.histogram_max_key_with_nonzero_value(\'{"values":{"5":1}}\')] AS v',
        [1, None, 5],
    ),
    "extract_keyed_scalar_sum": (
        "SELECT [mozfun.map.extract_keyed_scalar_sum([STRUCT('a' AS key, 1 AS value), "
        "('b', 2)]), mozfun.map.extract_keyed_scalar_sum([STRUCT('a' AS key, "
        "CAST(NULL AS INT64) AS value)])] AS v",
        [3, None],
    ),
    "stats_mode_last": (
        "SELECT [mozfun.stats.mode_last(['foo', 'bar', 'baz', 'bar', 'fred']), "
        "mozfun.stats.mode_last(['foo', 'bar', 'baz', 'bar', 'baz', 'fred']), "
        "mozfun.stats.mode_last([NULL, 'foo', NULL])] AS v",
        ["bar", "baz", "foo"],
    ),
}


@pytest.mark.parametrize("sql,expected", list(MOZFUN.values()), ids=list(MOZFUN))
def test_mozfun_matches_bigquery(mem, sql, expected):
    assert row(mem, sql)["v"] == expected


def test_metric_hub_functions_run_over_a_table(mem):
    """The shapes metric-hub definitions use: aggregates of UDFs over telemetry columns."""
    data = pa.table(
        {
            "client_id": ["a", "a", "b"],
            "histogram": ['{"values":{"0":3,"1":2},"sum":2}', "5", None],
            "labeled": [[{"key": "freetext", "value": 2}], [], [{"key": "ink", "value": 1}]],
            "days_active_bits": [1, 4, 0],
        }
    )
    mem.load_arrow("moz-fx-data-shared-prod.telemetry.main_test", data, mode="replace")
    got = mem.query(
        "SELECT client_id, "
        "COALESCE(SUM(mozfun.map.get_key(labeled, 'freetext')) > 0, FALSE) AS used_freetext, "
        "SAFE_DIVIDE(SUM(CAST(JSON_EXTRACT_SCALAR(histogram, '$.sum') AS int64)), "
        "SUM((SELECT SUM(value) FROM UNNEST(mozfun.hist.extract(histogram).values)))) AS mean, "
        "COALESCE(MIN(mozfun.bits28.days_since_seen(days_active_bits)), 30) < 3 AS active, "
        "ARRAY_AGG(mozfun.hist.extract(histogram) IGNORE NULLS) AS hists "
        "FROM `mozdata.telemetry.main_test` GROUP BY client_id ORDER BY client_id"
    ).to_pylist()
    assert [
        (r["client_id"], r["used_freetext"], r["mean"], r["active"], len(r["hists"])) for r in got
    ] == [("a", True, 2 / 10, True, 2), ("b", False, None, False, 0)]


# -- statements and tables ---------------------------------------------------------------


def test_ddl_dml_and_merge(wh):
    wh.execute(
        "CREATE OR REPLACE TABLE `metrics_x` AS "
        "SELECT 'a' AS client_id, 1 AS n UNION ALL SELECT 'b', 2"
    )
    assert wh.execute("DELETE FROM `metrics_x` WHERE n = 1").rows_affected == 1
    assert wh.execute("INSERT INTO `metrics_x` (client_id, n) SELECT 'c', 3").rows_affected == 1
    wh.execute(
        "CREATE OR REPLACE TABLE `updates` AS "
        "SELECT 'b' AS client_id, 20 AS n UNION ALL SELECT 'd', 4"
    )
    merged = wh.execute(
        "MERGE `metrics_x` T USING `updates` S ON T.client_id = S.client_id "
        "WHEN MATCHED THEN UPDATE SET n = S.n "
        "WHEN NOT MATCHED THEN INSERT (client_id, n) VALUES (S.client_id, S.n)"
    )
    assert merged.rows_affected == 2
    got = wh.query("SELECT client_id, n FROM `metrics_x` ORDER BY client_id").to_pylist()
    assert got == [
        {"client_id": "b", "n": 20},
        {"client_id": "c", "n": 3},
        {"client_id": "d", "n": 4},
    ]
    assert wh.table_columns("metrics_x") == {"client_id": "STRING", "n": "INT64"}


def test_script_with_several_statements(wh):
    stats = wh.execute(
        "CREATE TABLE t (a INT64); INSERT INTO t (a) VALUES (1), (2); DELETE FROM t WHERE a = 1;"
    )
    assert stats.rows_affected == 3
    assert wh.query("SELECT a FROM t").to_pylist() == [{"a": 2}]


def test_transaction_commits_all(wh):
    wh.execute("CREATE TABLE metrics_x (w INT64, v FLOAT64)")
    stats = wh.transaction(
        [
            "DELETE FROM metrics_x WHERE w = 1",
            "INSERT INTO metrics_x (w, v) VALUES (1, 0.5), (1, 1.5)",
        ]
    )
    assert isinstance(stats, QueryStats)
    assert stats.rows_affected == 2
    assert wh.query("SELECT SUM(v) AS s FROM metrics_x").to_pylist() == [{"s": 2.0}]


def test_transaction_rolls_back_on_error(wh):
    wh.execute("CREATE TABLE metrics_x (w INT64, v FLOAT64)")
    wh.execute("INSERT INTO metrics_x (w, v) VALUES (1, 0.5)")
    with pytest.raises(MetricError, match="division by zero"):
        wh.transaction(
            ["DELETE FROM metrics_x WHERE w = 1", "INSERT INTO metrics_x (w, v) SELECT 1, 1 / 0"]
        )
    assert wh.query("SELECT w, v FROM metrics_x").to_pylist() == [{"w": 1, "v": 0.5}]


def test_transaction_rolls_back_in_memory_too(mem):
    mem.execute("CREATE OR REPLACE TABLE tx_mem (w INT64)")
    mem.execute("INSERT INTO tx_mem (w) VALUES (1)")
    with pytest.raises(MetricError):
        mem.transaction(["DELETE FROM tx_mem WHERE TRUE", "INSERT INTO tx_mem (w) SELECT 1 / 0"])
    assert mem.query("SELECT COUNT(*) AS n FROM tx_mem").to_pylist() == [{"n": 1}]


def test_create_table_as_gives_bigquery_types(wh):
    stats = wh.create_table_as(
        "enrollments_x",
        "SELECT 'a' AS client_id, 1 AS n, SUM(x) AS s, COUNTIF(x > 1) AS c, [1, 2] AS arr "
        "FROM UNNEST([1, 2]) AS x",
        expiration_days=3,
    )
    assert stats.rows_affected == 1
    assert wh.table_columns("enrollments_x") == {
        "client_id": "STRING",
        "n": "INT64",
        "s": "INT64",
        "c": "INT64",
        "arr": "ARRAY<INT64>",
    }
    with pytest.raises(MetricError, match="already exists"):
        wh.create_table_as("enrollments_x", "SELECT 1 AS a", replace=False)
    wh.create_table_as("enrollments_x", "SELECT 1 AS a")
    assert wh.table_columns("enrollments_x") == {"a": "INT64"}


def test_load_arrow_telemetry_names_and_modes(wh):
    day = dt.date(2024, 1, 1)
    first = pa.table({"client_id": ["a"], "n": pa.array([1], pa.int32()), "submission_date": [day]})
    wh.load_arrow("moz-fx-data-shared-prod.telemetry.clients_daily", first)
    # append by name, with columns in another order
    wh.load_arrow(
        "telemetry.clients_daily",
        pa.table({"submission_date": [day], "n": [2], "client_id": ["b"]}),
    )
    assert wh.table_columns("telemetry.clients_daily") == {
        "client_id": "STRING",
        "n": "INT64",
        "submission_date": "DATE",
    }
    for name in (
        "`moz-fx-data-shared-prod.telemetry.clients_daily`",
        "`mozdata.telemetry.clients_daily`",
        "telemetry.clients_daily",
    ):
        assert row(wh, f"SELECT SUM(n) AS s FROM {name}")["s"] == 3
    wh.load_arrow("telemetry.clients_daily", first, mode="replace")
    assert row(wh, "SELECT COUNT(*) AS c FROM telemetry.clients_daily")["c"] == 1
    with pytest.raises(ValueError, match="mode"):
        wh.load_arrow("telemetry.clients_daily", first, mode="upsert")


def test_load_arrow_nested_types(wh):
    data = pa.table(
        {
            "labeled": pa.array(
                [[{"key": "a", "value": 1}]],
                pa.list_(pa.struct([("key", pa.string()), ("value", pa.int32())])),
            ),
            "f": pa.array([1.5], pa.float32()),
            "ts": pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("ns", tz="UTC")),
        }
    )
    wh.load_arrow("events", data)
    assert wh.table_columns("events") == {
        "labeled": "ARRAY<STRUCT<key STRING, value INT64>>",
        "f": "FLOAT64",
        "ts": "TIMESTAMP",
    }
    assert row(wh, "SELECT mozfun.map.get_key(labeled, 'a') AS v FROM events")["v"] == 1


def test_table_listing_and_dropping(wh):
    assert wh.table_ref("metrics_x") == "`metrics_x`"
    with wh.session():
        for name in ("metrics_b", "metrics_a", "statistics_a"):
            wh.create_table_as(name, "SELECT 1 AS x")
    wh.execute("CREATE VIEW metrics_a_week AS SELECT x / 2 AS half FROM metrics_a")
    assert wh.list_tables("metrics_") == ["metrics_a", "metrics_a_week", "metrics_b"]
    assert row(wh, "SELECT half FROM metrics_a_week")["half"] == 0.5  # view uses a macro
    assert wh.table_exists("metrics_a") and wh.table_exists("metrics_a_week")
    wh.drop_table("metrics_a_week")
    wh.drop_table("metrics_a")
    wh.drop_table("metrics_a")  # gone already: fine
    assert not wh.table_exists("metrics_a")
    assert wh.list_tables() == ["metrics_b", "statistics_a"]
    wh.load_arrow("telemetry.events", pa.table({"a": [1]}))
    assert wh.list_tables("telemetry.") == ["telemetry.events"]
    with pytest.raises(MetricError, match="does not exist"):
        wh.table_columns("metrics_zzz")


def test_dry_run_binds_and_estimates(wh):
    wh.load_arrow("telemetry.events", pa.table({"a": list(range(1000)), "b": [1.0] * 1000}))
    assert wh.dry_run("SELECT a FROM `moz-fx-data-shared-prod.telemetry.events`") == 16000
    assert wh.dry_run("SELECT 1 AS x") == 0
    with pytest.raises(MetricError, match="missing_column"):
        wh.dry_run("SELECT missing_column FROM telemetry.events")
    assert wh.query("SELECT COUNT(*) AS n FROM telemetry.events").to_pylist() == [{"n": 1000}]


def test_bigquery_type_names():
    assert bigquery_type_name("STRUCT(a INTEGER, b VARCHAR[])") == (
        "STRUCT<a INT64, b ARRAY<STRING>>"
    )
    assert bigquery_type_name("DECIMAL(38,9)") == "NUMERIC"
    assert bigquery_type_name("TIMESTAMP WITH TIME ZONE") == "TIMESTAMP"
    assert bigquery_type_name("TIMESTAMP") == "DATETIME"
    assert bigquery_type_name("HUGEINT") == "INT64"


# -- concurrency: one file, several processes -----------------------------------------------


def _worker(path: str, worker: int, rounds: int) -> None:
    wh = DuckDBWarehouse(path, lock_timeout=60)
    for i in range(rounds):
        wh.load_arrow("telemetry.events", pa.table({"worker": [worker], "i": [i]}))
        wh.query("SELECT COUNT(*) AS n FROM telemetry.events")


@pytest.mark.slow
def test_several_processes_share_one_file(tmp_path):
    path = str(tmp_path / "shared.duckdb")
    wh = DuckDBWarehouse(path)
    wh.load_arrow("telemetry.events", pa.table({"worker": [-1], "i": [-1]}))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(path, w, 3)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0, 0]
    got = wh.query(
        "SELECT worker, COUNT(*) AS n FROM telemetry.events GROUP BY worker ORDER BY worker"
    ).to_pylist()
    assert got == [{"worker": -1, "n": 1}] + [{"worker": w, "n": 3} for w in range(2)]


def test_session_holds_the_lock_and_reuses_one_connection(wh):
    with wh.session() as con:
        wh.load_arrow("t", pa.table({"a": [1]}))
        with wh.session() as inner:
            assert inner is con
        assert wh.query("SELECT a FROM t").to_pylist() == [{"a": 1}]
        probe = FileLock(wh.path + ".lock", timeout=0)
        with pytest.raises(TransientError, match="still locked"):
            probe.acquire()
    probe.acquire()  # released at the end of the block
    probe.release()


def test_lock_wait_times_out_with_transient_error(tmp_path):
    holder = DuckDBWarehouse(tmp_path / "w.duckdb")
    waiter = DuckDBWarehouse(tmp_path / "w.duckdb", lock_timeout=0.2)
    entered, release = threading.Event(), threading.Event()

    def hold():
        with holder.session():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(TransientError, match="still locked by another process"):
            waiter.table_exists("x")
    finally:
        release.set()
        thread.join()
    assert waiter.table_exists("x") is False


def test_count_distinct_rollup_rewrite_equals_the_subquery(mem):
    """The LIST_UNIQUE rewrite (speed) gives what the decorrelated subquery gives: NULL
    elements ignored, duplicates across rows counted once, 0 for a client without rows."""
    mem.execute(
        "CREATE TABLE t AS SELECT * FROM UNNEST(["
        "STRUCT('a' AS k, ['x', 'y'] AS arr), STRUCT('a', ['y', CAST(NULL AS STRING)]),"
        "STRUCT('b', CAST([] AS ARRAY<STRING>)), STRUCT('c', CAST(NULL AS ARRAY<STRING>)),"
        "STRUCT('d', ['z', 'z'])])"
    )
    rewritten = "(SELECT COUNT(DISTINCT v) FROM UNNEST(ARRAY_CONCAT_AGG(arr)) AS v)"
    plain = "(SELECT COUNT(DISTINCT v) FROM UNNEST(ARRAY_CONCAT_AGG(arr)) AS v WHERE TRUE)"
    got = mem.query(
        f"SELECT k, {rewritten} AS fast, {plain} AS slow FROM t GROUP BY k ORDER BY k"
    ).to_pylist()
    assert [(r["k"], r["fast"]) for r in got] == [("a", 2), ("b", 0), ("c", 0), ("d", 1)]
    assert all(r["fast"] == r["slow"] for r in got), got


def test_temporary_staging_tables_live_in_the_session_only(wh):
    """A staging table made with temporary=True inside a session is a TEMP table of that
    connection: readable, typed and droppable there, never written to the file."""
    with wh.session():
        wh.create_table_as("staging_t", "SELECT 'a' AS id, 1 AS n, TRUE AS b", temporary=True)
        assert wh.table_columns("staging_t") == {"id": "STRING", "n": "INT64", "b": "BOOL"}
        assert wh.query("SELECT n FROM `staging_t`").to_pylist() == [{"n": 1}]
        assert "staging_t" not in wh.list_tables("staging_")
        wh.execute("CREATE TABLE kept AS SELECT * FROM `staging_t`")
        wh.drop_table("staging_t")
        with pytest.raises(MetricError):
            wh.query("SELECT n FROM `staging_t`")
        wh.create_table_as("staging_u", "SELECT 2 AS n", temporary=True)
    # a new connection: the session's TEMP tables are gone
    with wh.session(), pytest.raises(MetricError):
        wh.query("SELECT n FROM `staging_u`")
    assert wh.query("SELECT n FROM kept").to_pylist() == [{"n": 1}]
    # outside a session a TEMP table would vanish with its statement: a regular table
    wh.create_table_as("staging_v", "SELECT 3 AS n", temporary=True)
    assert wh.table_columns("staging_v") == {"n": "INT64"}
    wh.drop_table("staging_v")
    assert not wh.table_exists("staging_v")


def test_client_ids_are_stored_uncompressed(wh):
    """`analysis_id` columns of tables created with column definitions skip DuckDB's
    dictionary+FSST compression (a third of the time of a metrics insert); the other string
    columns keep it, and the values read back unchanged."""
    from jetstream import results
    from jetstream.sql.results import create_table_sql

    ref = wh.table_ref("metrics_x")
    wh.execute(create_table_sql(ref, results.METRICS_COLUMNS))
    wh.execute(
        f"INSERT INTO {ref} (analysis_id, branch, metric_slug, metric_value) "
        "SELECT CONCAT('client-', CAST(n AS STRING)), 'control', 'm', n "
        "FROM UNNEST(GENERATE_ARRAY(1, 150000)) AS n"
    )
    with wh.session() as con:
        con.execute("CHECKPOINT")
        used = dict(
            con.execute(
                "SELECT column_name, STRING_AGG(DISTINCT compression) FROM "
                "pragma_storage_info('metrics_x') WHERE segment_type = 'VARCHAR' GROUP BY ALL"
            ).fetchall()
        )
    assert used["analysis_id"] == "Uncompressed"
    assert used["branch"] != "Uncompressed"
    got = row(wh, f"SELECT COUNT(DISTINCT analysis_id) AS n, MAX(analysis_id) AS top FROM {ref}")
    assert got == {"n": 150000, "top": "client-99999"}
