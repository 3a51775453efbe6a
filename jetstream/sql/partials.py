"""Statements of the incremental per-day tables (metric partials, exposure-signal days,
segment leaves) and of `partial_days`, the record of which days each holds under which
definition hash (`tasks.partials.ensure_days`). BigQuery dialect, pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from jetstream.sql import literals as lit


def recorded_days_sql(days_ref: str, source: str) -> str:
    """The days recorded for `source`, with their definition hash."""
    return (
        f"SELECT submission_date, definition_hash FROM {days_ref} "
        f"WHERE data_source = {lit.string(source)}"
    )


def between(lo: dt.date, hi: dt.date) -> str:
    return f"submission_date BETWEEN {lit.date(lo)} AND {lit.date(hi)}"


def forget_days_sql(days_ref: str, source: str, days: tuple[dt.date, dt.date] | None = None) -> str:
    """Delete the record of `source`'s days (all, or those of the inclusive range `days`)."""
    sql = f"DELETE FROM {days_ref} WHERE data_source = {lit.string(source)}"
    return sql if days is None else f"{sql} AND {between(*days)}"


def replace_days_sql(table_ref: str, lo: dt.date, hi: dt.date, body: str) -> list[str]:
    """Replace the rows of the days `lo`..`hi` of a per-day table by `body`'s rows."""
    return [f"DELETE FROM {table_ref} WHERE {between(lo, hi)}", f"INSERT INTO {table_ref}\n{body}"]


def record_days_sql(
    days_ref: str, source: str, days: Sequence[dt.date], definition_hash: str
) -> str:
    """Record `days` of `source` as computed under `definition_hash`."""
    values = " UNION ALL ".join(
        f"SELECT {lit.string(source)}, {lit.date(d)}, {lit.string(definition_hash)}" for d in days
    )
    return f"INSERT INTO {days_ref} (data_source, submission_date, definition_hash) {values}"
