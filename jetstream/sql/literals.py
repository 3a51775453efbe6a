"""Literal rendering for BigQuery SQL (values are inlined so saved SQL is runnable)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


def string(value: str) -> str:
    return f"'{string_body(value)}'"


def string_body(value: str) -> str:
    """`value` escaped for the inside of a BigQuery string literal, single- or double-quoted:
    backslashes, both quote characters and line breaks are escaped, so the text can end
    neither the literal nor the line it stands on."""
    return (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def date(value: dt.date) -> str:
    return f"DATE '{value.isoformat()}'"


def strings(values: Iterable[str]) -> str:
    return ", ".join(string(v) for v in values)


def ident(name: str) -> str:
    """A column alias; metric and segment slugs are identifiers already, quote defensively."""
    return f"`{name}`"


def add_days(expr: str, days: int) -> str:
    if days == 0:
        return expr
    op = "DATE_ADD" if days > 0 else "DATE_SUB"
    return f"{op}({expr}, INTERVAL {abs(days)} DAY)"
