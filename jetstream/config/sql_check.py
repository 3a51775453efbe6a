"""Whether config SQL fragments parse as BigQuery SQL (sqlglot), with the parser's reason."""

from __future__ import annotations

import functools

import sqlglot
import sqlglot.errors


@functools.lru_cache(maxsize=16384)
def sql_problem(expression: str) -> str | None:
    """None when `SELECT <expression>` parses as BigQuery SQL, else the parser's reason."""
    try:
        sqlglot.parse_one(f"SELECT {expression}", read="bigquery")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = first.get("description") or str(exc).splitlines()[0]
        near = (first.get("highlight") or "").strip()
        return f"does not parse as BigQuery SQL: {desc}" + (f" (near {near!r})" if near else "")
    except sqlglot.errors.SqlglotError as exc:
        return f"does not parse as BigQuery SQL: {str(exc).splitlines()[0]}"
    return None


@functools.lru_cache(maxsize=4096)
def from_problem(from_expression: str) -> str | None:
    """None when `SELECT * FROM <from_expression>` parses as BigQuery SQL."""
    return sql_problem(f"* FROM {from_expression}")


@functools.lru_cache(maxsize=1024)
def query_problem(query: str) -> str | None:
    """None when `query` parses as BigQuery SQL."""
    try:
        sqlglot.parse_one(query, read="bigquery")
    except sqlglot.errors.SqlglotError as exc:
        return f"does not parse as BigQuery SQL: {str(exc).splitlines()[0]}"
    return None
