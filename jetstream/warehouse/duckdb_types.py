"""Types and storage options between BigQuery and DuckDB: BigQuery's integer and float
widths on DuckDB results, BigQuery type names of DuckDB columns, Arrow tables in BigQuery's
type system, and DuckDB-only storage options (see `duckdb.py`'s docstring on storage)."""

from __future__ import annotations

import re

import pyarrow as pa
from sqlglot import exp

_WIDEN = re.compile(
    r"\b(TINYINT|SMALLINT|INTEGER|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT)\b"
)
UNCOMPRESSED_COLUMNS = ("analysis_id",)


def with_storage_options(statement: exp.Expr, duck_sql: str) -> str:
    """`duck_sql` (the DuckDB text of `statement`) with `USING COMPRESSION uncompressed` after
    each UNCOMPRESSED_COLUMNS column of a CREATE TABLE's column definitions."""
    if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
        return duck_sql
    for col in statement.this.expressions:
        if isinstance(col, exp.ColumnDef) and col.name.lower() in UNCOMPRESSED_COLUMNS:
            text = col.sql(dialect="duckdb")
            if duck_sql.count(text) == 1 and not col.args.get("constraints"):
                duck_sql = duck_sql.replace(text, f"{text} USING COMPRESSION uncompressed")
    return duck_sql


def bigquery_duckdb_type(duck_type: str) -> str:
    """A DuckDB type with every integer widened to BIGINT and FLOAT to DOUBLE (quoted field
    names untouched)."""
    parts = duck_type.split('"')
    for i in range(0, len(parts), 2):
        parts[i] = _WIDEN.sub(lambda m: "DOUBLE" if m.group(1) == "FLOAT" else "BIGINT", parts[i])
    return '"'.join(parts)


def bigquery_type_name(duck_type: str) -> str:
    """DuckDB type -> BigQuery type name (INT64, FLOAT64, STRING, ARRAY<...>, STRUCT<...>)."""
    try:
        name = exp.DataType.build(bigquery_duckdb_type(duck_type), dialect="duckdb").sql("bigquery")
    except Exception:  # noqa: BLE001 - an exotic type: report DuckDB's name
        return duck_type
    return re.sub(r"NUMERIC\(\d+, \d+\)", "NUMERIC", name).replace("`", "")


def normalise_arrow(data: pa.Table) -> pa.Table:
    """Arrow table -> BigQuery's type system: int64, float64, string, microsecond times."""
    fields = [pa.field(f.name, _normalise_type(f.type), f.nullable) for f in data.schema]
    schema = pa.schema(fields)
    if schema.equals(data.schema):
        return data
    columns = []
    for column, field in zip(data.columns, schema, strict=True):
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _normalise_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _normalise_type(t.value_type)
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t) and t.unit != "us":
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(pa.field(t.value_field.name, _normalise_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _normalise_type(f.type), f.nullable) for f in t])
    return t
