"""Incremental per-day tables (metric partials, exposure-signal days): each day of
telemetry is read once; a change of definition rebuilds the table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from jetstream import hashing, results
from jetstream.sql import literals as lit
from jetstream.sql.metrics import PRE_ENROLLMENT_DAYS
from jetstream.tasks.context import TaskContext, log


def day_range(ctx: TaskContext, date: dt.date) -> tuple[dt.date, dt.date]:
    exp = ctx.spec.experiment
    assert exp.start_date is not None
    first = exp.start_date - dt.timedelta(days=PRE_ENROLLMENT_DAYS)
    last = min(date, exp.end_date) if exp.end_date else date
    return first, last


def ensure_days(
    ctx: TaskContext,
    source: str,
    table: str,
    build: Callable[[dt.date, dt.date], str],
    date: dt.date,
    definition: Any,
) -> None:
    """Make `table` hold rows for every day from the pre-enrollment start through `date`,
    computing only the days not yet recorded in partial_days (one query per missing run)."""
    slug = ctx.spec.slug
    days_ref = ctx.ref(results.partial_days_table(slug))
    def_hash = hashing.digest(hashing.enrollment_hash(ctx.spec), definition)
    rows = ctx.query(
        f"SELECT submission_date, definition_hash FROM {days_ref} "
        f"WHERE data_source = {lit.string(source)}"
    ).to_pylist()
    stale = any(r["definition_hash"] != def_hash for r in rows)
    done = {r["submission_date"] for r in rows if r["definition_hash"] == def_hash}
    exists = ctx.warehouse.table_exists(table)
    if stale or not exists:
        done = set()
    first, last = day_range(ctx, date)
    missing = [
        first + dt.timedelta(days=i)
        for i in range((last - first).days + 1)
        if first + dt.timedelta(days=i) not in done
    ]
    if not missing:
        return
    log.info(
        "computing daily partials",
        experiment=slug,
        source=source,
        first=missing[0].isoformat(),
        last=missing[-1].isoformat(),
        days=len(missing),
    )
    ref = ctx.ref(table)
    delete_days = f"DELETE FROM {days_ref} WHERE data_source = {lit.string(source)}"
    if stale or not exists:
        ctx.create_table_as(table, build(missing[0], missing[-1]))
        stmts = [delete_days]
    else:
        lo, hi = missing[0], missing[-1]
        stmts = [
            f"DELETE FROM {ref} WHERE submission_date BETWEEN {lit.date(lo)} AND {lit.date(hi)}",
            f"INSERT INTO {ref}\n{build(lo, hi)}",
            delete_days + f" AND submission_date BETWEEN {lit.date(lo)} AND {lit.date(hi)}",
        ]
    values = " UNION ALL ".join(
        f"SELECT {lit.string(source)}, {lit.date(d)}, {lit.string(def_hash)}" for d in missing
    )
    stmts.append(f"INSERT INTO {days_ref} (data_source, submission_date, definition_hash) {values}")
    ctx.transaction(stmts)
