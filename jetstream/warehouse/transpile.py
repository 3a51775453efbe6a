"""BigQuery SQL -> DuckDB SQL, in one place.

Every query in the project is written in BigQuery dialect. The DuckDB warehouse runs it by
transpiling with sqlglot (read="bigquery", write="duckdb") after the AST transforms below,
which fix the differences that otherwise give silently wrong answers on DuckDB. Each one is
covered by a test against the known BigQuery result (tests/warehouse/test_transpile.py and
tests/warehouse/test_duckdb.py); re-run them on every upgrade of sqlglot or duckdb.

| BigQuery construct | problem on DuckDB | fix here |
|---|---|---|
| `COUNTIF(x)` | NULL over no rows (BigQuery: 0), HUGEINT | `COUNT(CASE WHEN x THEN 1 END)` |
| `EXTRACT(DAYOFWEEK ...)` | 0 = Sunday (BigQuery: 1 = Sunday) | macro `bq_dayofweek` |
| `EXTRACT(WEEK[(<DAY>)] ...)` | ISO week (BigQuery: weeks start on Sunday/<DAY>, week 0 before the first) | macro `bq_week` |
| `EXTRACT(ISOWEEK ...)` | not recognised | `EXTRACT(WEEK ...)` (ISO on DuckDB) |
| `DATE_ADD/DATE_SUB/DATE_TRUNC` on DATE | return TIMESTAMP | wrapped in `CAST(... AS DATE)` |
| `NUMERIC`, `BIGNUMERIC` | DECIMAL(18,3): loses decimals | `DECIMAL(38, 9)` (BIGNUMERIC too: DuckDB's maximum precision is 38) |
| `a / b` with b = 0 | inf / nan (BigQuery: error) | macro `bq_div` raises "division by zero"; `SAFE_DIVIDE` still gives NULL |
| `UNNEST(a) AS x WITH OFFSET AS o` | 1-based ordinality | lateral subquery with `GENERATE_SUBSCRIPTS(a, 1) - 1` |
| `FROM UNNEST(array_of_structs)` (no alias) | one struct column, not a column per field | `(SELECT UNNEST(a, recursive := TRUE))` |
| integer literals in arithmetic | INT32 arithmetic overflows | `CAST(literal AS BIGINT)` |
| `CAST` inside a `CASE`/`IF` branch | duckdb 2.0 may evaluate it for rows the `WHEN` excludes | `TRY_CAST` (a cast that fails on a selected row gives NULL, not an error) |
| `mozfun.*`, `udf.*` calls | no such functions | renamed to DuckDB macros (see `mozfun.py`); unknown ones raise MetricError |
| `project.dataset.table` | no catalogs | see table names below |

One rewrite is for speed, not correctness: `(SELECT COUNT(DISTINCT v) FROM UNNEST(a) AS v)`
(how a COUNT(DISTINCT) metric is rolled up from daily partials) becomes
`COALESCE(LIST_UNIQUE(a), 0)` (distinct non-NULL elements: the same count, 0 for a NULL
array); DuckDB otherwise decorrelates the subquery into joins and group-bys, several times
slower.

Not fixed here but in the DuckDB warehouse, because they need the connection: integer `SUM`
(HUGEINT on DuckDB) and INT32 results are cast to BIGINT (INT64) and FLOAT to DOUBLE on the way
out (`query`, `create_table_as`); `FARM_FINGERPRINT` is a Python UDF; `SET TimeZone='UTC'`.

Table names: a 3-part name `project.dataset.table` drops its project and becomes the DuckDB
`dataset.table` (schema.table), so `moz-fx-data-shared-prod.telemetry.clients_daily` and
`mozdata.telemetry.clients_daily` are both `telemetry.clients_daily`; a 2-part name is
schema.table; a 1-part name is a table in the main schema.

This module is pure: no I/O.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from jetstream.errors import MetricError

WEEKDAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")
NUMERIC_PRECISION = 38
NUMERIC_SCALE = 9
_ARITHMETIC = (
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Mod,
    exp.IntDiv,
    exp.BitwiseLeftShift,
    exp.BitwiseRightShift,
    exp.BitwiseAnd,
    exp.BitwiseOr,
    exp.BitwiseXor,
)


def snippet(sql: str, limit: int = 200) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def parse_bigquery(sql: str) -> list[exp.Expr]:
    """Parse BigQuery SQL (one statement or a script); MetricError if it does not parse."""
    if not sql or not sql.strip():
        raise MetricError("empty SQL given to the warehouse")
    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        problem = first.get("description") or str(exc).splitlines()[0]
        raise MetricError(
            f"SQL does not parse as BigQuery: {problem}{where}, in: {snippet(sql)}"
        ) from exc
    except SqlglotError as exc:
        raise MetricError(f"SQL does not parse as BigQuery: {exc}, in: {snippet(sql)}") from exc
    if not statements:
        raise MetricError(f"no SQL statement found in: {snippet(sql)}")
    return statements


def parse_bigquery_one(sql: str) -> exp.Expr:
    statements = parse_bigquery(sql)
    if len(statements) != 1:
        raise MetricError(f"expected one SQL statement, got {len(statements)} in: {snippet(sql)}")
    return statements[0]


def split_table_name(name: str) -> tuple[str | None, str]:
    """`[project.]dataset.table` / `table` -> (DuckDB schema or None, table). Backticks ok."""
    parts = [p for p in name.replace("`", "").split(".") if p]
    if not parts or len(parts) > 3:
        raise MetricError(f"invalid table name {name!r}: expected [project.][dataset.]table")
    if len(parts) == 1:
        return None, parts[0]
    return parts[-2], parts[-1]


def duckdb_table_sql(name: str) -> str:
    """A quoted DuckDB reference for a table name given in BigQuery form."""
    schema, table = split_table_name(name)
    quoted = '"' + table.replace('"', '""') + '"'
    return quoted if schema is None else '"' + schema.replace('"', '""') + '".' + quoted


# -- transforms (each takes and returns a node; applied with Expression.transform) ----------


def _dotted_parts(node: exp.Expr) -> list[str] | None:
    if isinstance(node, exp.Identifier):
        return [node.name]
    if isinstance(node, exp.Column) and not node.args.get("table"):
        return [node.name]
    if isinstance(node, exp.Dot):
        left = _dotted_parts(node.this)
        right = _dotted_parts(node.expression)
        return left + right if left is not None and right is not None else None
    return None


def _udf_call(node: exp.Expr) -> tuple[str, list[exp.Expr]] | None:
    """A dotted user-defined function call -> (dotted name, args); None for anything else."""
    if isinstance(node, exp.Anonymous) and isinstance(node.this, exp.Identifier):
        name = node.this.name
        if "." in name:
            return name, list(node.expressions)
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Anonymous) and node.table:
        # parsed this way in some contexts, e.g. ARRAY_AGG(mozfun.hist.extract(h) IGNORE NULLS)
        func = node.this
        prefix = [p.name for p in node.parts[:-1]]
        fname = func.this.name if isinstance(func.this, exp.Identifier) else str(func.this)
        return ".".join([*prefix, fname]), list(func.expressions)
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
        dotted = _dotted_parts(node.this)
        func = node.expression
        if dotted is not None:
            fname = func.this.name if isinstance(func.this, exp.Identifier) else str(func.this)
            return ".".join([*dotted, fname]), list(func.expressions)
    return None


def udf_macro_name(dotted: str) -> str:
    """`moz-fx-data-shared-prod.udf.x` / `mozfun.map.get_key` -> `udf_x` / `mozfun_map_get_key`."""
    parts = dotted.replace("`", "").lower().split(".")
    if parts[0] not in ("mozfun", "udf", "udf_js") and len(parts) >= 3:
        parts = parts[1:]  # a project prefix such as moz-fx-data-shared-prod
    return "_".join(p.replace("-", "_") for p in parts)


def _rename_udfs(supported: frozenset[str]):
    def transform(node: exp.Expr) -> exp.Expr:
        call = _udf_call(node)
        if call is None:
            return node
        dotted, args = call
        macro = udf_macro_name(dotted)
        if macro not in supported:
            raise MetricError(
                f"function {dotted} is not available on DuckDB (supported: "
                f"{', '.join(sorted(m for m in supported if '_' in m))})"
            )
        return exp.Anonymous(this=macro, expressions=args)

    return transform


def _drop_project(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Table) and node.args.get("catalog") is not None:
        node.set("catalog", None)
    return node


def _countif(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.CountIf):
        return exp.Count(this=exp.Case(ifs=[exp.If(this=node.this, true=exp.Literal.number(1))]))
    return node


def _count_distinct_unnest(node: exp.Expr) -> exp.Expr:
    """`(SELECT COUNT(DISTINCT v) FROM UNNEST(a) AS v)` -> `COALESCE(LIST_UNIQUE(a), 0)`
    (only that exact shape: one aggregate of the unnested alias, no other clause)."""
    if not isinstance(node, exp.Subquery) or not isinstance(node.this, exp.Select):
        return node
    select = node.this
    source = select.args.get("from_") or select.args.get("from")
    if (
        len(select.expressions) != 1
        or source is None
        or not isinstance(source.this, exp.Unnest)
        or any(
            select.args.get(k) for k in ("joins", "where", "group", "having", "qualify", "limit")
        )
    ):
        return node
    unnest = source.this
    alias = unnest.args.get("alias")
    columns = alias.columns if alias is not None else []
    count = select.expressions[0]
    if (
        len(unnest.expressions) != 1
        or unnest.args.get("offset")
        or len(columns) != 1
        or not isinstance(count, exp.Count)
        or not isinstance(count.this, exp.Distinct)
        or len(count.this.expressions) != 1
    ):
        return node
    arg = count.this.expressions[0]
    if not isinstance(arg, exp.Column) or arg.table or arg.name != columns[0].name:
        return node
    unique = exp.Anonymous(this="LIST_UNIQUE", expressions=[unnest.expressions[0].copy()])
    return exp.Coalesce(this=unique, expressions=[exp.Literal.number(0)])  # NULL array: 0


def _extract(node: exp.Expr) -> exp.Expr:
    if not isinstance(node, exp.Extract):
        return node
    part = node.this
    value = node.expression
    if isinstance(part, exp.WeekStart):
        day = part.this.name.upper()
        if day not in WEEKDAYS:
            raise MetricError(f"EXTRACT(WEEK({day})): unknown weekday")
        return exp.Anonymous(
            this="bq_week", expressions=[value, exp.Literal.number(WEEKDAYS.index(day))]
        )
    name = part.name.upper()
    if name == "DAYOFWEEK":
        return exp.Anonymous(this="bq_dayofweek", expressions=[value])
    if name == "WEEK":
        return exp.Anonymous(this="bq_week", expressions=[value, exp.Literal.number(0)])
    if name == "ISOWEEK":
        node.set("this", exp.var("WEEK"))
    return node


def _as_date(value: exp.Expr) -> exp.Expr:
    if isinstance(value, exp.Literal) and value.is_string:
        return exp.Cast(this=value, to=exp.DataType.build("DATE"))
    return value


def _date_arith(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.DateAdd | exp.DateSub | exp.DateTrunc) and not isinstance(
        node.parent, exp.Cast
    ):
        node.set("this", _as_date(node.this))
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    return node


def _numeric(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.DataType) and (
        node.this == exp.DataType.Type.BIGDECIMAL
        or (node.this == exp.DataType.Type.DECIMAL and not node.expressions)
    ):
        return exp.DataType.build(f"DECIMAL({NUMERIC_PRECISION}, {NUMERIC_SCALE})")
    return node


def _division(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Div) and not node.args.get("safe") and not node.args.get("typed"):
        return exp.Anonymous(this="bq_div", expressions=[node.this, node.expression])
    return node


def _int_literals(node: exp.Expr) -> exp.Expr:
    if (
        isinstance(node, exp.Literal)
        and not node.is_string
        and isinstance(node.parent, _ARITHMETIC)
        and node.this.lstrip("-").isdigit()
    ):
        return exp.Cast(this=node, to=exp.DataType.build("BIGINT"))
    return node


def _in_case_branch(node: exp.Expr) -> bool:
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.If) and child.arg_key in ("true", "false"):
            return True
        if isinstance(parent, exp.Case) and child.arg_key == "default":
            return True
        if isinstance(parent, exp.Subquery | exp.Select):
            return False
        child, parent = parent, parent.parent
    return False


def _cast_in_case(tree: exp.Expr) -> None:
    for cast in list(tree.find_all(exp.Cast)):
        if type(cast) is exp.Cast and _in_case_branch(cast):
            cast.replace(exp.TryCast(this=cast.this, to=cast.args["to"]))


def _unnest_fields(unnest: exp.Unnest, index: int) -> None:
    """`FROM UNNEST(array_of_structs)` without an alias: BigQuery makes each struct field a
    column; DuckDB gives one struct column, unless unnested recursively in a subquery."""
    array = unnest.expressions[0]
    select = exp.select(
        exp.Explode(
            this=array.copy(),
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier("recursive"), expression=exp.true())
            ],
        )
    )
    unnest.replace(
        exp.Subquery(
            this=select, alias=exp.TableAlias(this=exp.to_identifier(f"_unnest_fields_{index}"))
        )
    )


def _unnest_with_offset(tree: exp.Expr) -> None:
    for index, unnest in enumerate(list(tree.find_all(exp.Unnest))):
        offset = unnest.args.get("offset")
        alias = unnest.args.get("alias")
        if (
            not isinstance(offset, exp.Expr)
            and alias is None
            and isinstance(unnest.parent, exp.From | exp.Join)
            and len(unnest.expressions) == 1
        ):
            _unnest_fields(unnest, index)
            continue
        if not isinstance(offset, exp.Expr):
            continue
        if not isinstance(unnest.parent, exp.From | exp.Join):
            raise MetricError("UNNEST ... WITH OFFSET is only supported in FROM and JOIN")
        if len(unnest.expressions) != 1:
            raise MetricError("UNNEST ... WITH OFFSET of several arrays is not supported")
        array = unnest.expressions[0]
        columns = alias.columns if alias is not None else []
        element = columns[0].name if columns else (alias.name if alias is not None else "")
        element = element or "f0_"
        offset_name = offset.name if isinstance(offset, exp.Identifier) else "offset"
        subscripts = exp.Anonymous(
            this="GENERATE_SUBSCRIPTS", expressions=[array.copy(), exp.Literal.number(1)]
        )
        select = exp.select(
            exp.alias_(exp.Unnest(expressions=[array.copy()]), element, quoted=True),
            exp.alias_(
                exp.Sub(this=subscripts, expression=exp.Literal.number(1)), offset_name, quoted=True
            ),
        )
        unnest.replace(
            exp.Subquery(
                this=select, alias=exp.TableAlias(this=exp.to_identifier(f"_unnest_offset_{index}"))
            )
        )


def _strip_options(tree: exp.Expr) -> None:
    """BigQuery table OPTIONS(...) mean nothing to DuckDB (expiration is handled elsewhere)."""
    properties = tree.args.get("properties") if isinstance(tree, exp.Create) else None
    if properties is not None:
        properties.set(
            "expressions",
            [
                p
                for p in properties.expressions
                if not isinstance(p, exp.Property) or isinstance(p, exp.TemporaryProperty)
            ],
        )


def _rewrite_bottom_up(tree: exp.Expr, fixes) -> exp.Expr:
    """Apply `fixes` to every node, children before parents; returns the (new) root.

    sqlglot's Expression.transform does not visit the children of a replaced node, so the
    rewrite walks a snapshot of the tree in reverse pre-order instead."""
    root = tree
    for node in reversed(list(tree.walk(bfs=False))):
        parent, arg_key, index = node.parent, node.arg_key, node.index
        new = node
        for fix in fixes:
            new = fix(new)
        if new is not node:
            if parent is None or arg_key is None:
                root = new
            else:
                parent.set(arg_key, new, index)
    return root


def transform_statement(statement: exp.Expr, udfs: frozenset[str]) -> exp.Expr:
    """Apply every BigQuery->DuckDB fix to one parsed statement (a copy is returned)."""
    tree = statement.copy()
    _unnest_with_offset(tree)
    _cast_in_case(tree)
    _strip_options(tree)
    fixes = (
        _rename_udfs(udfs),
        _drop_project,
        _countif,
        _count_distinct_unnest,
        _extract,
        _date_arith,
        _numeric,
        _division,
        _int_literals,
    )
    return _rewrite_bottom_up(tree, fixes)


def to_duckdb(sql: str, udfs: frozenset[str] = frozenset()) -> list[str]:
    """BigQuery SQL (one statement or a script) -> DuckDB statements.

    `udfs` names the DuckDB macros available for `mozfun.`/`udf.` calls (see mozfun.py)."""
    out = []
    for statement in parse_bigquery(sql):
        tree = transform_statement(statement, udfs)
        try:
            out.append(tree.sql(dialect="duckdb"))
        except SqlglotError as exc:
            raise MetricError(f"cannot translate to DuckDB: {exc} in: {snippet(sql)}") from exc
    return out


def is_query(sql_statement: exp.Expr) -> bool:
    return isinstance(sql_statement, exp.Query)
