"""Literal rendering for BigQuery SQL (values are inlined so saved SQL is runnable)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


def string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


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
