"""mozfun / udf functions and BigQuery built-ins that DuckDB lacks, as DuckDB macros.

BigQuery SQL calls `mozfun.map.get_key(m, k)`, `` `mozfun.map.get_key`(m, k) ``,
`udf.keyed_histogram_get_sum(...)` or `` `moz-fx-data-shared-prod`.udf.x(...) ``; the
transpiler (transpile.py) renames each call to a flat macro name (`mozfun_map_get_key`,
`udf_keyed_histogram_get_sum`) defined here as a TEMP macro on every DuckDB connection.
The macros follow the semantics of the BigQuery definitions in mozilla/bigquery-etl
(re-implemented with DuckDB list and JSON functions; every one has a test).

Data shapes follow BigQuery: a "map" is a LIST of STRUCT(key, value); histograms are JSON
strings or the compact encodings `"5"`, `"0,5"`, `"3;2;5;1,2;0:0,1:5,2:0"`.

Supported (used by firefox_desktop, fenix and the jetstream configs):
  mozfun.map.get_key, udf.get_key, mozfun.map.extract_keyed_scalar_sum,
  mozfun.hist.extract, mozfun.hist.threshold_count, mozfun.json.extract_int_map,
  mozfun.bits28.days_since_seen, mozfun.norm.truncate_version, mozfun.norm.extract_version,
  mozfun.norm.fenix_build_to_datetime, mozfun.norm.os, mozfun.norm.windows_version_info,
  mozfun.stats.mode_last, udf.keyed_histogram_get_sum, udf.extract_histogram_sum,
  udf.histogram_max_key_with_nonzero_value.

Not supported on DuckDB (a query using them fails with a MetricError naming the function):
  mozfun.hist.merge, mozfun.hist.percentiles, udf.normalize_search_engine,
  udf.monetized_search, and every other mozfun/udf function.

Built-in shims: `bq_div` (BigQuery `/`: division by zero is an error), `bq_dayofweek`,
`bq_week` (EXTRACT numbering), and the Python UDF `farm_fingerprint`: a deterministic
signed 64-bit hash of the UTF-8 string (the first 8 bytes of BLAKE2b). It is stable across
runs, processes and machines but NOT bit-identical to BigQuery's FARM_FINGERPRINT: samples
drawn with `MOD(ABS(FARM_FINGERPRINT(id)), n)` differ between the two warehouses.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa

MAP_ENTRY = "STRUCT(key BIGINT, value BIGINT)"
HISTOGRAM = (
    "STRUCT(bucket_count BIGINT, histogram_type BIGINT, sum BIGINT, range BIGINT[], "
    f'"values" {MAP_ENTRY}[])'
)

# name -> (parameters, DuckDB expression). Order matters: a macro may use earlier ones.
MACROS: dict[str, tuple[str, str]] = {
    "bq_div": (
        "a, b",
        "CASE WHEN b = 0 THEN error('division by zero: ' || CAST(a AS VARCHAR) || ' / 0') "
        "ELSE a / b END",
    ),
    "ieee_divide": ("a, b", "CAST(a AS DOUBLE) / CAST(b AS DOUBLE)"),
    "bq_dayofweek": ("d", "dayofweek(d) + 1"),
    # weeks start on weekday `s` (0 = Sunday); days before the first such day are week 0
    "bq_week": (
        "d, s",
        "(dayofyear(d) + 6 - ((s - dayofweek(date_trunc('year', d)) + 7) % 7)) // 7",
    ),
    "mozfun_map_get_key": ("m, k", "(list_filter(m, lambda e: e.key = k))[1].value"),
    "udf_get_key": ("m, k", "mozfun_map_get_key(m, k)"),
    "mozfun_map_extract_keyed_scalar_sum": (
        "m",
        "CAST(list_sum(list_transform(m, lambda e: e.value)) AS BIGINT)",
    ),
    "mozfun_json_extract_int_map": (
        "input",
        "COALESCE(list_transform("
        "list_filter(string_split(replace(trim(CAST(input AS VARCHAR), '{}'), '\"', ''), ','),"
        " lambda e: length(e) > 0),"
        " lambda e: {'key': TRY_CAST(trim(split_part(e, ':', 1)) AS BIGINT),"
        " 'value': TRY_CAST(trim(split_part(e, ':', 2)) AS BIGINT)}),"
        f" CAST([] AS {MAP_ENTRY}[]))",
    ),
    "mozfun_hist_extract": (
        "input",
        f"""CAST(CASE
        WHEN starts_with(trim(input), '{{') AND json_valid(input) THEN {{
          'bucket_count': TRY_CAST(json_extract_string(input, '$.bucket_count') AS BIGINT),
          'histogram_type': TRY_CAST(json_extract_string(input, '$.histogram_type') AS BIGINT),
          'sum': TRY_CAST(json_extract_string(input, '$.sum') AS BIGINT),
          'range': COALESCE(TRY_CAST(json_extract(input, '$.range') AS BIGINT[]),
                            CAST([] AS BIGINT[])),
          'values': mozfun_json_extract_int_map(json_extract(input, '$.values'))}}
        WHEN len(string_split(input, ';')) = 5 THEN {{
          'bucket_count': TRY_CAST(string_split(input, ';')[1] AS BIGINT),
          'histogram_type': TRY_CAST(string_split(input, ';')[2] AS BIGINT),
          'sum': TRY_CAST(string_split(input, ';')[3] AS BIGINT),
          'range': list_transform(string_split(string_split(input, ';')[4], ','),
                                  lambda b: TRY_CAST(b AS BIGINT)),
          'values': list_transform(
            list_filter(string_split(string_split(input, ';')[5], ','),
                        lambda e: length(e) >= 3),
            lambda e: {{'key': TRY_CAST(split_part(e, ':', 1) AS BIGINT),
                        'value': TRY_CAST(split_part(e, ':', 2) AS BIGINT)}})}}
        WHEN len(string_split(input, ',')) = 2 THEN {{
          'bucket_count': 3, 'histogram_type': 2,
          'sum': TRY_CAST(string_split(input, ',')[2] AS BIGINT),
          'range': [1, 2],
          'values': [{{'key': 0, 'value': TRY_CAST(string_split(input, ',')[1] AS BIGINT)}},
                     {{'key': 1, 'value': TRY_CAST(string_split(input, ',')[2] AS BIGINT)}},
                     {{'key': 2, 'value': 0}}]}}
        WHEN len(string_split(input, ',')) = 1 THEN {{
          'bucket_count': 3, 'histogram_type': 4,
          'sum': TRY_CAST(input AS BIGINT),
          'range': [1, 2],
          'values': [{{'key': 0, 'value': TRY_CAST(input AS BIGINT)}},
                     {{'key': 1, 'value': 0}}]}}
        END AS {HISTOGRAM})""",
    ),
    "mozfun_hist_threshold_count": (
        "histogram, threshold",
        "COALESCE(CAST(list_sum(list_transform(list_filter("
        'mozfun_hist_extract(histogram)."values", lambda e: e.key >= threshold),'
        " lambda e: e.value)) AS BIGINT), 0)",
    ),
    "udf_histogram_max_key_with_nonzero_value": (
        "histogram",
        'list_max(list_transform(list_filter(mozfun_hist_extract(histogram)."values",'
        " lambda e: e.value > 0), lambda e: e.key))",
    ),
    "udf_extract_histogram_sum": (
        "input",
        "TRY_CAST(COALESCE("
        "CASE WHEN json_valid(input) THEN json_extract_string(input, '$.sum') END,"
        " string_split(input, ';')[3], string_split(input, ',')[2], input) AS BIGINT)",
    ),
    "udf_keyed_histogram_get_sum": (
        "keyed_histogram, target_key",
        "udf_extract_histogram_sum(mozfun_map_get_key(keyed_histogram, target_key))",
    ),
    "mozfun_bits28_days_since_seen": (
        "bits",
        "CASE WHEN (bits & -bits) > 0 THEN CAST(round(log2(bits & -bits)) AS BIGINT) END",
    ),
    # Matches the bigquery-etl tests: "16.1.1" -> "16.1" (minor) / "16" (major), "10" -> "10",
    # a version that does not start with a digit -> NULL.
    "mozfun_norm_truncate_version": (
        "os_version, truncation_level",
        "CASE WHEN NOT regexp_matches(os_version, '^[0-9]') THEN NULL"
        " WHEN truncation_level = 'minor'"
        " THEN regexp_replace(os_version, '^([0-9]+.[0-9]+).*', '\\1')"
        " WHEN truncation_level = 'major' THEN regexp_replace(os_version, '^([0-9]+).*', '\\1')"
        " ELSE os_version END",
    ),
    "mozfun_norm_extract_version": (
        "version_string, extraction_level",
        "CAST(NULLIF(CASE extraction_level"
        " WHEN 'patch' THEN regexp_extract(version_string, '^[0-9]+[.][0-9]+[.]([0-9]+).*', 1)"
        " WHEN 'minor' THEN regexp_extract(version_string, '^[0-9]+[.]([0-9]+).*', 1)"
        " WHEN 'major' THEN regexp_extract(version_string, '^([0-9]+).*', 1)"
        " END, '') AS DECIMAL(38, 9))",
    ),
    "mozfun_norm_fenix_build_to_datetime": (
        "app_build",
        "CASE WHEN length(app_build) = 8 AND substr(app_build, 5, 2) < '24'"
        " AND substr(app_build, 7, 2) < '60' THEN"
        " make_timestamp(2018 + TRY_CAST(substr(app_build, 1, 1) AS BIGINT), 1, 1,"
        " TRY_CAST(substr(app_build, 5, 2) AS BIGINT), TRY_CAST(substr(app_build, 7, 2) AS BIGINT),"
        " 0) + to_days(CAST(TRY_CAST(substr(app_build, 2, 3) AS BIGINT) - 1 AS INTEGER))"
        " WHEN length(app_build) = 10 THEN TIMESTAMP '2014-12-28 00:00:00'"
        " + to_hours((TRY_CAST(app_build AS BIGINT) & 1048575) >> 3)"
        " END",
    ),
    "mozfun_norm_os": (
        "os",
        "CASE WHEN os LIKE 'Windows%' OR os LIKE 'WINNT%' THEN 'Windows'"
        " WHEN os LIKE 'Darwin%' THEN 'Mac'"
        " WHEN os LIKE '%Linux%' OR os LIKE '%BSD%' OR os LIKE '%SunOS%' OR os LIKE '%Solaris%'"
        " THEN 'Linux'"
        " WHEN os LIKE 'iOS%' OR os LIKE '%iPhone%' THEN 'iOS'"
        " WHEN os LIKE 'Android%' THEN 'Android'"
        " ELSE 'Other' END",
    ),
    "mozfun_norm_windows_version_info": (
        "os, os_version, windows_build_number",
        "CASE WHEN os NOT IN ('Windows_NT', 'Windows_95', 'Windows_98') THEN NULL"
        " WHEN os = 'Windows_95' THEN 'Windows 95'"
        " WHEN os = 'Windows_98' THEN 'Windows 98'"
        " WHEN os_version = '4.0' AND os = 'Windows_NT' THEN 'Windows NT 4.0'"
        " WHEN os_version = '5.0' THEN 'Windows 2000'"
        " WHEN os_version = '5.1' OR os_version = '5.2' THEN 'Windows XP'"
        " WHEN os_version = '6.0' THEN 'Windows Vista'"
        " WHEN os_version = '6.1' THEN 'Windows 7'"
        " WHEN os_version = '6.2' THEN 'Windows 8'"
        " WHEN os_version = '6.3' THEN 'Windows 8.1'"
        " WHEN os_version = '10.0' AND windows_build_number >= 22000 THEN 'Windows 11'"
        " WHEN os_version = '10.0' AND windows_build_number < 22000 THEN 'Windows 10'"
        " ELSE NULL END",
    ),
    # most frequent non-NULL element; ties go to the one that appears last
    "mozfun_stats_mode_last": (
        "list",
        "(SELECT _v FROM (SELECT UNNEST(list) AS _v, GENERATE_SUBSCRIPTS(list, 1) AS _i)"
        " WHERE _v IS NOT NULL GROUP BY _v ORDER BY count(*) DESC, max(_i) DESC LIMIT 1)",
    ),
}

UNSUPPORTED = (
    "mozfun.hist.merge",
    "mozfun.hist.percentiles",
    "udf.normalize_search_engine",
    "udf.monetized_search",
)

SUPPORTED: frozenset[str] = frozenset(MACROS)


PYTHON_UDFS = ("farm_fingerprint",)


def macro_sql(name: str) -> str:
    params, body = MACROS[name]
    return f"CREATE OR REPLACE TEMP MACRO {name}({params}) AS ({body})"


def _calls(sql: str) -> set[str]:
    return {m.group(1).lower() for m in _CALL.finditer(sql)} & SUPPORTED


_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def macros_needed(sql: str) -> list[str]:
    """The macros `sql` calls, with the macros they call, in creation order."""
    needed: set[str] = set()
    todo = _calls(sql)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo |= _calls(MACROS[name][1])
    return [name for name in MACROS if name in needed]


def macro_statements() -> list[str]:
    return [macro_sql(name) for name in MACROS]


def farm_fingerprint(values: pa.Array) -> pa.Array:
    """Vectorised (arrow) UDF: VARCHAR -> BIGINT, deterministic; see the module docstring."""
    out: list[int | None] = []
    for value in values.to_pylist():
        if value is None:
            out.append(None)
            continue
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        digest = hashlib.blake2b(data, digest_size=8).digest()
        out.append(int.from_bytes(digest, "little", signed=True))
    return pa.array(out, type=pa.int64())
