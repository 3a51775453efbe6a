"""Differential execution: the BigQuery text the engine issues runs on ZetaSQL's reference
engine (GoogleSQL's own evaluator, PyPI `zetasql`) and through our DuckDB path
(DuckDBWarehouse: sqlglot transpile + fixes) over the same tables, and the results agree as
multisets of rows (floats within a relative 1e-9).

The statements are recorded (JETSTREAM_SQL_LOG) from a small demo run (the shipped demo
config plus one metric that stays on the direct path) and the live-monitoring jobs, both
on DuckDB files; each chosen statement's SELECT (a CREATE TABLE AS / INSERT ... SELECT
runs its SELECT part) is then run on both engines, the reference engine getting the
DuckDB tables' final contents. One statement per family: enrollments, exposures, segments
at enrollment and per window, partials, roll-ups, direct metrics, derived metrics,
monitoring aggregates (enrollment events, search, cumulative population).

Known differences, explicit below:
- FARM_FINGERPRINT: DuckDB computes a deterministic stand-in (docs/architecture.md), so a
  column computed by it is compared by structure only (non-NULL INT64, one key per id).
- mozfun UDFs are not evaluable by the reference engine (a catalog function has no
  implementation there): `mozfun.map.get_key(m, k)` is inlined on the ZetaSQL side as its
  BigQuery definition, `(SELECT value FROM UNNEST(m) WHERE key = k LIMIT 1)`; statements
  calling other UDFs are not chosen.
- The reference engine only fills tables of the root catalog: on its side a table path
  such as mozdata.telemetry.clients_daily is written as one quoted name.

ZetaSQL runs in its own virtualenv (tests/zetasql/harness.py); skipped, with the reason,
only when that virtualenv cannot be built. Slow.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from jetstream import synthetic
from jetstream.warehouse import open_warehouse
from tests.zetasql import collect, harness

pytestmark = pytest.mark.slow

CLIENTS = 40
DAYS = 8
DIRECT_METRIC = """
[metrics.engine_variety]
select_expression = "COUNT(DISTINCT REVERSE(engine))"
data_source = "search_daily"
friendly_name = "Engine variety"
description = "Distinct search engines (a function the roll-up does not decompose)."

[metrics.engine_variety.statistics.bootstrap_mean]
"""

# family -> (where the statement writes or what it starts with, a text it must contain)
FAMILIES: dict[str, tuple[str, str]] = {
    "enrollments": (r"CREATE OR REPLACE TABLE `enrollment_clients_", "GROUP BY analysis_id"),
    "exposures": (r"CREATE OR REPLACE TABLE `exposure_days_", "LOGICAL_OR"),
    "segments at enrollment": (r"CREATE OR REPLACE TABLE `enrollments_", "seg_0 AS"),
    "segments per window": (r"INSERT INTO `segments_", "in_segment"),
    "partials": (r"(CREATE OR REPLACE TABLE|INSERT INTO) `partials_\w+_clients_daily`", "SUM("),
    "roll-ups": (r"CREATE OR REPLACE TABLE `staging_\w+_week_0_clients_daily_", "rolled AS"),
    "direct metrics": (r"CREATE OR REPLACE TABLE `staging_\w+_week_0_search_daily_", "direct AS"),
    "derived metrics": (r"WITH cur AS", "COUNTIF(analysis_basis = 'exposures')"),
    "monitoring enrollment aggregates": (r"INSERT INTO `monitoring_enrollment_hourly`", "COUNT"),
    "monitoring search aggregates": (r"INSERT INTO `monitoring_search_daily`", "SUM"),
    "monitoring cumulative population": (
        r"INSERT INTO `experiment_enrollment_cumulative_population_estimate`",
        "SELECT",
    ),
}
FINGERPRINTED = {"enrollments": ["client_key"]}  # computed by FARM_FINGERPRINT here

_CTAS = re.compile(
    r"^CREATE (?:OR REPLACE )?(?:TEMP |TEMPORARY )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?`[^`]+`"
    r"\s*(?:OPTIONS\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\s*)?AS\s",
    re.S,
)
_INSERT = re.compile(r"^INSERT INTO `[^`]+`\s*(?:\([^()]*\)\s*)?(?=SELECT|WITH|\()", re.S)
_PART = r"(?:`[^`]+`|[A-Za-z_][\w-]*)"
_TABLE = re.compile(rf"\b(FROM|JOIN)\s+({_PART}(?:\.{_PART})*)")
_GET_KEY = re.compile(r"(?:`?moz-fx-data-shared-prod`?\.)?(?:mozfun\.map|udf)\.get_key\(")


def statements(log: list[dict]) -> list[str]:
    """Every SQL statement of the log, scripts split into their statements."""
    out = []
    for entry in log:
        if entry["kind"] == "sql":
            out += [s.strip() for s in re.split(r";\s*\n", entry["sql"]) if s.strip(" ;\n")]
    return out


def select_part(statement: str) -> str | None:
    """The query a statement runs: itself, or the SELECT of a CREATE ... AS / INSERT."""
    text = statement.strip().rstrip(";")
    if re.match(r"^(SELECT|WITH)\b", text):
        return text
    for pattern in (_CTAS, _INSERT):
        match = pattern.match(text)
        if match:
            return text[match.end() :].strip()
    return None


def duckdb_name(path: str) -> str:
    """How the DuckDB warehouse names a BigQuery table path (transpile.py's rule)."""
    parts = path.replace("`", "").split(".")
    if len(parts) == 3:
        parts = parts[1:]
    return ".".join(parts) if len(parts) == 2 else f"main.{parts[0]}"


def split_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose '(' is before `start`; and its end."""
    depth, args, current, i = 0, [], [], start
    while i < len(text):
        ch = text[i]
        if ch == "'":
            end = text.index("'", i + 1)
            current.append(text[i : end + 1])
            i = end + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    raise ValueError(f"unbalanced call in {text[:200]}")


def for_zetasql(sql: str, tables: set[str]) -> tuple[str, list[str]]:
    """The ZetaSQL side's text (known differences above) and the table names it reads."""
    while match := _GET_KEY.search(sql):
        (mapping, key), end = split_args(sql, match.end())
        inlined = f"(SELECT _kv.value FROM UNNEST({mapping}) AS _kv WHERE _kv.key = {key} LIMIT 1)"
        sql = sql[: match.start()] + inlined + sql[end:]
    used: list[str] = []

    def quote(match: re.Match) -> str:
        written = match.group(2).replace("`", "")
        if duckdb_name(written) not in tables:
            return match.group(0)  # a CTE, an alias, UNNEST
        if written not in used:
            used.append(written)
        return f"{match.group(1)} `{written}`"

    return _TABLE.sub(quote, sql), used


BQ_TYPES = {
    "string": "STRING", "large_string": "STRING", "int64": "INT64", "int32": "INT64",
    "double": "FLOAT64", "float": "FLOAT64", "bool": "BOOL", "date32[day]": "DATE",
}  # fmt: skip


def bigquery_type(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_decimal(arrow_type):
        return "NUMERIC"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"ARRAY<{bigquery_type(arrow_type.value_type)}>"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(
            f"`{arrow_type.field(i).name}` {bigquery_type(arrow_type.field(i).type)}"
            for i in range(arrow_type.num_fields)
        )
        return f"STRUCT<{fields}>"
    return BQ_TYPES[str(arrow_type)]


def encode(value):
    """A DuckDB value in evaluate.py's JSON encoding."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return [encode(v) for v in value.values()]
    if isinstance(value, list):
        return [encode(v) for v in value]
    return value


def normal(value):
    """A value of either side in one comparable form."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return tuple(normal(v) for v in value.values())
    if isinstance(value, list | tuple):
        return tuple(normal(v) for v in value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", value):
        return dt.datetime.fromisoformat(value).astimezone(dt.UTC).isoformat()
    return value


def sort_key(row: tuple) -> str:
    def rough(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.6g}"
        if isinstance(v, tuple):
            return tuple(rough(x) for x in v)
        return v

    return repr(tuple(rough(v) for v in row))


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False  # FLOAT64 against NULL, INT64 or BOOL
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def compare(duck_rows: list[tuple], zeta_rows: list[tuple]) -> str | None:
    """None when the rows are equal as multisets (floats with tolerance), else why not."""
    if len(duck_rows) != len(zeta_rows):
        return f"{len(duck_rows)} rows on DuckDB, {len(zeta_rows)} on ZetaSQL"
    for d, z in zip(sorted(duck_rows, key=sort_key), sorted(zeta_rows, key=sort_key), strict=True):
        if not same(d, z):
            return f"row differs:\n  duckdb  {d}\n  zetasql {z}"
    return None


def without_fingerprints(columns: list[str], rows: list[tuple], names: list[str]):
    """Rows with the FARM_FINGERPRINT columns replaced by a check of their structure."""
    keep = [i for i, c in enumerate(columns) if c not in names]
    for name in names:
        i = columns.index(name)
        keys = [r[i] for r in rows]
        assert all(type(k) is int for k in keys), f"{name}: not all INT64: {keys[:5]}"
        ids = [r[columns.index("analysis_id")] for r in rows]
        assert len(set(keys)) == len(set(ids)), f"{name}: not one key per analysis_id"
    return [tuple(r[i] for i in keep) for r in rows]


@pytest.mark.parametrize(
    ("duck", "zeta", "problem"),
    [
        ([(1, 0.1 + 0.2)], [(1, 0.3)], None),  # floats within tolerance
        ([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], None),  # order does not matter
        ([(1, "a"), (1, "a")], [(1, "a")], "2 rows on DuckDB, 1 on ZetaSQL"),
        ([(1, "a"), (1, "a")], [(1, "a"), (2, "a")], "row differs"),  # a multiset
        ([(1, 0.3)], [(1, 0.31)], "row differs"),
        ([(1, None)], [(1, 0.0)], "row differs"),
        ([(1, 1)], [(1, 1.0)], "row differs"),  # INT64 is not FLOAT64
    ],
)
def test_compare_finds_differences(duck, zeta, problem):
    found = compare(duck, zeta)
    assert (found is None) if problem is None else (problem in found), found


def test_zetasql_text_inlines_get_key_and_quotes_table_paths():
    sql = (
        "SELECT mozfun.map.get_key(ds.experiments, 'x') AS b FROM mozdata.telemetry.events ds"
        " JOIN `enrollments_x` e ON TRUE JOIN cte ON TRUE"
    )
    text, used = for_zetasql(sql, {"telemetry.events", "main.enrollments_x"})
    assert text == (
        "SELECT (SELECT _kv.value FROM UNNEST(ds.experiments) AS _kv WHERE _kv.key = 'x'"
        " LIMIT 1) AS b FROM `mozdata.telemetry.events` ds JOIN `enrollments_x` e ON TRUE"
        " JOIN cte ON TRUE"
    )
    assert used == ["mozdata.telemetry.events", "enrollments_x"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    try:
        harness.venv_python()
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    tmp = tmp_path_factory.mktemp("differential")
    repo = tmp / "config"
    shutil.copytree(synthetic.DEMO_DIR, repo)
    experiment = repo / "jetstream" / "demo-sidebar-redesign.toml"
    text = experiment.read_text().replace("weekly = [\n", 'weekly = [\n  "engine_variety",\n', 1)
    experiment.write_text(text + DIRECT_METRIC)
    demo_log, demo_db = collect.demo(tmp, clients=CLIENTS, days=DAYS, config_repo=repo)
    monitoring_db = tmp / "monitoring.duckdb"
    monitoring_log = collect.monitoring(tmp, warehouse=f"duckdb:{monitoring_db}")
    return {"demo": (demo_log, demo_db), "monitoring": (monitoring_log, monitoring_db)}


def choose(log: list[dict], families: list[str]) -> dict[str, str]:
    """The first statement of each family (its query part)."""
    chosen: dict[str, str] = {}
    for statement in statements(log):
        for family in families:
            start, contains = FAMILIES[family]
            query = select_part(statement)
            if (
                family not in chosen
                and query
                and re.match(start, statement)
                and contains in statement
                and "mozfun." not in _GET_KEY.sub("", query)
            ):
                chosen[family] = query
    return chosen


def table_names(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    return {f"{s}.{t}" for s, t in rows}


def run_both(db: Path, chosen: dict[str, str]) -> dict[str, dict]:
    """Each query on DuckDB (the warehouse) and on ZetaSQL (the warehouse's tables)."""
    known = table_names(db)
    wh = open_warehouse(f"duckdb:{db}")
    try:
        zeta_queries, contents, duck = [], {}, {}
        for family, query in chosen.items():
            zeta_sql, used = for_zetasql(query, known)
            zeta_queries.append({"sql": zeta_sql, "tables": used})
            for written in used:
                if written not in contents:
                    schema, table = duckdb_name(written).split(".")
                    ref = f"`{table}`" if schema == "main" else f"`{schema}.{table}`"
                    data = wh.query(f"SELECT * FROM {ref}")
                    contents[written] = {
                        "columns": [[f.name, bigquery_type(f.type)] for f in data.schema],
                        "rows": [[encode(v) for v in row.values()] for row in data.to_pylist()],
                    }
            result = wh.query(query)
            duck[family] = (result.column_names, [tuple(r.values()) for r in result.to_pylist()])
    finally:
        wh.close()
    zeta = harness.evaluate(contents, zeta_queries)
    return {
        family: {"duckdb": duck[family], "zetasql": z, "sql": query}
        for (family, query), z in zip(chosen.items(), zeta, strict=True)
    }


@pytest.fixture(scope="module")
def results(recorded) -> dict[str, dict]:
    demo_log, demo_db = recorded["demo"]
    monitoring_log, monitoring_db = recorded["monitoring"]
    monitoring = [f for f in FAMILIES if f.startswith("monitoring")]
    out = run_both(demo_db, choose(demo_log, [f for f in FAMILIES if f not in monitoring]))
    out.update(run_both(monitoring_db, choose(monitoring_log, monitoring)))
    return out


def test_every_family_is_covered(results):
    assert sorted(results) == sorted(FAMILIES)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_both_engines_agree(results, family):
    result = results[family]
    zeta = result["zetasql"]
    assert zeta["ok"], f"ZetaSQL: {zeta['error']}\n{result['sql']}"
    duck_columns, duck_rows = result["duckdb"]
    # an unnamed column (a literal in INSERT ... SELECT) has no name on ZetaSQL
    named = [(d, z) for d, z in zip(duck_columns, zeta["columns"], strict=True) if z]
    assert all(d == z for d, z in named), (duck_columns, zeta["columns"])
    duck_rows = [tuple(normal(v) for v in r) for r in duck_rows]
    zeta_rows = [tuple(normal(v) for v in r) for r in zeta["rows"]]
    if family in FINGERPRINTED:
        duck_rows = without_fingerprints(duck_columns, duck_rows, FINGERPRINTED[family])
        zeta_rows = without_fingerprints(duck_columns, zeta_rows, FINGERPRINTED[family])
    assert duck_rows, f"no rows: the comparison would prove nothing\n{result['sql']}"
    problem = compare(duck_rows, zeta_rows)
    assert problem is None, f"{family}: {problem}\n{result['sql']}"


# -- CAST inside IF/CASE --------------------------------------------------------------------
# On BigQuery a CAST that fails on a row a branch selects is an error; the DuckDB path makes
# every CAST inside an IF/CASE branch a TRY_CAST (transpile.py: DuckDB may evaluate a branch
# for rows its condition excludes), i.e. NULL. The SQL we generate therefore puts no CAST in
# a branch: a cast meant to fail loudly sits outside the IF (CAST(IF(c, x, NULL) AS T)), one
# meant to give NULL is a SAFE_CAST; both engines then agree.

EXPOSED_VALUE = re.compile(r"CAST\(IF\(_jetstream_exposed, `(\w+)`, NULL\) AS FLOAT64\)")


def casts_in_branches(sql: str) -> list[str]:
    """The CASTs (not SAFE_CASTs) inside an IF/CASE branch of any statement of `sql`."""
    import sqlglot
    from sqlglot import exp

    found = []
    for statement in sqlglot.parse(sql, read="bigquery"):
        for cast in statement.find_all(exp.Cast):
            if type(cast) is not exp.Cast:
                continue
            child, parent = cast, cast.parent
            while parent is not None and not isinstance(parent, exp.Select | exp.Subquery):
                # a WHEN ... THEN is an If inside the Case; ELSE is the Case's default
                if (isinstance(parent, exp.If) and child.arg_key in ("true", "false")) or (
                    isinstance(parent, exp.Case) and child.arg_key == "default"
                ):
                    found.append(parent.sql("bigquery"))
                    break
                child, parent = parent, parent.parent
    return found


def test_generated_sql_has_no_cast_inside_a_branch(recorded):
    demo_log, _ = recorded["demo"]
    monitoring_log, _ = recorded["monitoring"]
    found = [c for s in statements(demo_log + monitoring_log) for c in casts_in_branches(s)]
    assert not found, found
    # the exposures-basis value of a statistics read: the CAST outside the IF
    assert any(EXPOSED_VALUE.search(s) for s in statements(demo_log))


def run_probe(sql: str, rows: list[tuple[bool, str]]) -> tuple[object, object]:
    """`sql` (reading table `probe` (exposed BOOL, v STRING)) on both engines: each side's
    values, or "error"."""
    import pyarrow as pa

    table = pa.table({"exposed": [r[0] for r in rows], "v": [r[1] for r in rows]})
    wh = open_warehouse("duckdb::memory:")
    try:
        wh.load_arrow("probe", table, mode="replace")
        try:
            duck = sorted(wh.query(sql).column("x").to_pylist(), key=repr)
        except Exception:
            duck = "error"
    finally:
        wh.close()
    contents = {"probe": {"columns": [["exposed", "BOOL"], ["v", "STRING"]], "rows": rows}}
    (zeta,) = harness.evaluate(contents, [{"sql": sql, "tables": ["probe"]}])
    if not zeta["ok"]:
        assert "OUT_OF_RANGE" in zeta["error"] or "Bad" in zeta["error"], zeta["error"]
    return duck, sorted((r[0] for r in zeta["rows"]), key=repr) if zeta["ok"] else "error"


def test_cast_probe_both_engines_agree_on_the_generated_form(recorded):
    demo_log, _ = recorded["demo"]
    match = next(m for s in statements(demo_log) if (m := EXPOSED_VALUE.search(s)))
    generated = (
        match.group(0).replace(f"`{match.group(1)}`", "v").replace("_jetstream_exposed", "exposed")
    )
    sql = f"SELECT {generated} AS x FROM `probe`"
    # a value that does not cast, on a row the IF excludes: NULL on both
    assert run_probe(sql, [(True, "1.5"), (False, "abc")]) == ([1.5, None], [1.5, None])
    # ... on a row it selects: an error on both (as the stored metric_value's CAST)
    assert run_probe(sql, [(True, "abc"), (False, "1.5")]) == ("error", "error")
    # SAFE_CAST, where NULL is meant: NULL on both
    safe = "SELECT IF(exposed, SAFE_CAST(v AS FLOAT64), NULL) AS x FROM `probe`"
    assert run_probe(safe, [(True, "abc"), (True, "2")]) == ([2.0, None], [2.0, None])
    # and CAST where an error is meant, outside any branch: an error on both
    plain = "SELECT CAST(v AS FLOAT64) AS x FROM `probe`"
    assert run_probe(plain, [(True, "abc")]) == ("error", "error")


def test_cast_probe_shows_the_difference_the_generated_form_avoids():
    """The form the generator no longer emits: a CAST in a branch errors on BigQuery's
    engine but gives NULL through the DuckDB path's TRY_CAST. This is why it is avoided."""
    try:
        harness.venv_python()
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    sql = "SELECT IF(exposed, CAST(v AS FLOAT64), NULL) AS x FROM `probe`"
    assert run_probe(sql, [(True, "abc")]) == ([None], "error")
