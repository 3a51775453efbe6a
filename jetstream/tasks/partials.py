"""Incremental per-day tables (metric partials, exposure-signal days): each day of
telemetry is read once; a change of definition rebuilds the table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from jetstream import hashing, results
from jetstream.sql import partials as part_sql
from jetstream.sql.metrics import PRE_ENROLLMENT_DAYS
from jetstream.tasks.context import TaskContext, log


def day_range(
    ctx: TaskContext, date: dt.date, first_day: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """The days a per-day table covers on `date`: from `first_day` (default: the longest
    pre-enrollment period before the start; metric partials pass
    `sql.metrics.partials_first_day`, the first day their metrics need) through `date`,
    capped at the end date."""
    exp = ctx.spec.experiment
    assert exp.start_date is not None
    first = first_day or exp.start_date - dt.timedelta(days=PRE_ENROLLMENT_DAYS)
    last = min(date, exp.end_date) if exp.end_date else date
    return first, last


def runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days -> (first, last) of each run of consecutive days."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in days:
        if out and (d - out[-1][1]).days == 1:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def ensure_days(
    ctx: TaskContext,
    source: str,
    table: str,
    build: Callable[[dt.date, dt.date], str],
    date: dt.date,
    definition: Any,
    first_day: dt.date | None = None,
) -> None:
    """Make `table` hold rows for every day of `day_range` through `date`, computing only
    the days not yet recorded in partial_days under the current definition hash (one query
    per run of consecutive missing days). `build`'s rows of a day must not depend on
    `first_day`: then an earlier `first_day` (a pre-enrollment period added later) just
    leaves earlier days missing, and they are computed; a change of `definition` rebuilds
    the table."""
    slug = ctx.spec.slug
    days_ref = ctx.ref(results.partial_days_table(slug))
    def_hash = hashing.digest(hashing.enrollment_hash(ctx.spec), definition)
    rows = ctx.query(part_sql.recorded_days_sql(days_ref, source)).to_pylist()
    stale = any(r["definition_hash"] != def_hash for r in rows)
    done = {r["submission_date"] for r in rows if r["definition_hash"] == def_hash}
    exists = ctx.warehouse.table_exists(table)
    if stale or not exists:
        done = set()
    first, last = day_range(ctx, date, first_day)
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
    if stale or not exists:
        ctx.create_table_as(table, build(missing[0], missing[-1]))
        stmts = [part_sql.forget_days_sql(days_ref, source)]
    else:
        stmts = []
        for lo, hi in runs(missing):
            stmts += part_sql.replace_days_sql(ref, lo, hi, build(lo, hi))
            stmts.append(part_sql.forget_days_sql(days_ref, source, (lo, hi)))
    stmts.append(part_sql.record_days_sql(days_ref, source, missing, def_hash))
    ctx.transaction(stmts)
