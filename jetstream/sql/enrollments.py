"""Enrollments, exposures and enrollment-time segments (BigQuery SQL). Pure.

Steps, each one statement so they can be saved, dry-run and retried separately:

1. `clients_sql`: one row per client who enrolled during the enrollment period (the start
   date through start + enrollment_period, as Jetstream), with the number of distinct
   branches it was seen in (>1: excluded, counted in a warning; Jetstream keeps a row
   per branch instead). The rows come from the experiment's `enrollment_query`, else the
   built-in query of its `enrollments_query_type` (`jetstream.sql.enrollment_queries`).
2. `enrollments_sql`: single-branch clients with exposure date/count and one BOOL column
   per enrollment-time segment.

Both carry CLIENT_KEY_COLUMN, `FARM_FINGERPRINT(analysis_id)`: the per-day tables
(metric partials, exposure-signal days, segment days) store it instead of the id, so the
daily roll-ups group and join on an INT64 rather than a 36-character string (about twice
as fast on DuckDB). It is a pure function of the id, so a client keeps its key when the
enrollments are recomputed; `key_collisions_sql` checks that no two clients share one.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

from jetstream.config.model import (
    ANALYSIS_WINDOW_END,
    ANALYSIS_WINDOW_START,
    ENROLLMENT_END,
    ENROLLMENT_START,
    AnalysisSpec,
    ExperimentSettings,
    ExposureSignal,
    Segment,
    WindowBound,
)
from jetstream.sql import literals as lit
from jetstream.sql.enrollment_queries import (
    QUERY_TYPES,
    UnsupportedEnrollment,
    enrollment_rows_sql,
    exposure_rows_sql,
)

CLIENT_KEY_COLUMN = "client_key"
CLIENT_KEY_SQL = "FARM_FINGERPRINT(analysis_id)"
SUPPORTED_QUERY_TYPES = QUERY_TYPES

__all__ = ["UnsupportedEnrollment"]


def enrollment_dates(exp: ExperimentSettings) -> tuple[dt.date, dt.date]:
    """(first, last) enrollment date: mozanalysis TimeLimits with Jetstream's
    `num_dates_enrollment = enrollment_period + 1`, so last = start + enrollment_period."""
    if exp.start_date is None or exp.last_enrollment_date is None:
        raise UnsupportedEnrollment(f"experiment {exp.slug} has no start date")
    return exp.start_date, exp.last_enrollment_date


def custom_id_column(query: str) -> str:
    """The id column of a custom enrollment query: `analysis_id` (what mozanalysis asks
    for) when the query names it, else `client_id` (configs written for older Jetstream)."""
    return "analysis_id" if re.search(r"\banalysis_id\b", query, re.IGNORECASE) else "client_id"


def clients_sql(exp: ExperimentSettings) -> str:
    """Per enrolled client: its (smallest) branch, the number of distinct branches it was
    seen in, its first enrollment date and its enrollment events."""
    start, last = enrollment_dates(exp)
    if exp.enrollment_query:
        # used as given, as Jetstream does: no date filter and no sampling
        column = custom_id_column(exp.enrollment_query)
        rows = f"""
    SELECT CAST({column} AS STRING) AS analysis_id, branch, enrollment_date,
           num_enrollment_events
    FROM ({exp.enrollment_query})"""
    else:
        rows = "\n" + enrollment_rows_sql(exp, start, last)
    return f"""WITH enrollment_rows AS ({rows}
)
SELECT analysis_id,
       {CLIENT_KEY_SQL} AS {CLIENT_KEY_COLUMN},
       MIN(branch) AS branch,
       COUNT(DISTINCT branch) AS num_branches,
       MIN(enrollment_date) AS enrollment_date,
       SUM(num_enrollment_events) AS num_enrollment_events
FROM enrollment_rows
WHERE analysis_id IS NOT NULL AND branch IS NOT NULL
GROUP BY analysis_id"""


def multi_branch_count_sql(clients_ref: str) -> str:
    """Clients seen in more than one branch (excluded: see docs, Differences from
    Jetstream)."""
    return f"SELECT COUNT(*) AS n FROM {clients_ref} WHERE num_branches > 1"


def key_collisions_sql(clients_ref: str) -> str:
    """Clients whose CLIENT_KEY_COLUMN another client shares (their per-day rows would be
    merged); 0 but for a 64-bit hash collision."""
    return f"SELECT COUNT(*) - COUNT(DISTINCT {CLIENT_KEY_COLUMN}) AS n FROM {clients_ref}"


@attrs.frozen
class ExposureDates:
    """The constant date range of a custom exposure signal for one analysis window."""

    first: dt.date
    last: dt.date


def exposure_signal_dates(
    exp: ExperimentSettings, signal: ExposureSignal, window_start: int, window_end: int
) -> ExposureDates:
    """Days on which a custom exposure signal counts, as Jetstream and mozanalysis compute
    them (jetstream exposure_signal.py `_window_limit_to_int`, mozanalysis
    `ExposureSignal.build_query`): bounds are days after the experiment's start date;
    `enrollment_start` is 0, `enrollment_end` the enrollment period, `analysis_window_start`
    / `analysis_window_end` the analysis window's start / end plus the enrollment period;
    no start is 0 and no (or a zero) end is the last enrollment date. A client counts as
    exposed by a matching day within these dates on or after its enrollment date."""
    start, last = enrollment_dates(exp)
    period = (last - start).days

    def offset(bound: WindowBound) -> int | None:
        if bound is None or isinstance(bound, int):
            return bound
        return {
            ENROLLMENT_START: 0,
            ENROLLMENT_END: period,
            ANALYSIS_WINDOW_START: window_start + period,
            ANALYSIS_WINDOW_END: window_end + period,
        }[bound]

    lo, hi = offset(signal.window_start), offset(signal.window_end)
    first = start + dt.timedelta(days=lo or 0)
    return ExposureDates(first, start + dt.timedelta(days=hi) if hi else last)


def _signal_exposures(spec: AnalysisSpec, exposure_days_ref: str, clients_ref: str) -> str:
    """Exposures by the custom signal over its window for the enrollment table, which
    Jetstream computes with the time limits of the first daily window ([0, 0])."""
    assert spec.exposure_signal is not None
    dates = exposure_signal_dates(spec.experiment, spec.exposure_signal, 0, 0)
    return f"""
    SELECT c.analysis_id, c.branch, MIN(x.submission_date) AS exposure_date,
           COUNT(x.submission_date) AS num_exposure_events
    FROM {clients_ref} c
    JOIN {exposure_days_ref} x
      ON x.{CLIENT_KEY_COLUMN} = c.{CLIENT_KEY_COLUMN}
     AND x.submission_date >= c.enrollment_date
    WHERE x.submission_date BETWEEN {lit.date(dates.first)} AND {lit.date(dates.last)}
    GROUP BY 1, 2"""


def bound_offset(bound: WindowBound, default: int) -> int:
    """Integer day offsets for enrollment-time windows (symbolic bounds resolve later)."""
    if bound is None:
        return default
    if isinstance(bound, int):
        return bound
    raise ValueError(f"window bound {bound!r} is not an enrollment-time offset")


def bounded(from_expression: str, date_column: str, lo: dt.date, hi: dt.date) -> str:
    """A source limited to constant dates, so the warehouse prunes partitions."""
    return (
        f"(SELECT * FROM {from_expression} AS bounded "
        f"WHERE bounded.{date_column} BETWEEN {lit.date(lo)} AND {lit.date(hi)})"
    )


def segment_sql(
    segment: Segment,
    anchor_ref: str,
    lo: int,
    hi: int,
    exp: ExperimentSettings | None = None,
) -> str:
    """Segment membership per client over [anchor + lo, anchor + hi] days.

    `anchor_ref` is a table with analysis_id and enrollment_date.
    """
    ds = segment.data_source
    date_col = f"ds.{ds.submission_date_column}"
    source = ds.from_expression
    if exp is not None:
        start, last = enrollment_dates(exp)
        source = bounded(
            ds.from_expression,
            ds.submission_date_column,
            start + dt.timedelta(days=lo),
            last + dt.timedelta(days=hi),
        )
    return f"""
    SELECT e.analysis_id, {segment.select_expression} AS in_segment
    FROM {anchor_ref} e
    JOIN {source} ds ON ds.{ds.client_id_column} = e.analysis_id
    WHERE {date_col} BETWEEN {lit.add_days("e.enrollment_date", lo)}
                         AND {lit.add_days("e.enrollment_date", hi)}
    GROUP BY e.analysis_id"""


def enrollment_time_segments(spec: AnalysisSpec) -> tuple[Segment, ...]:
    return tuple(s for s in spec.segments if not s.depends_on_analysis_window)


def enrollments_sql(
    spec: AnalysisSpec, clients_ref: str, exposure_days_ref: str | None = None
) -> str:
    """The enrollments table: the analysed clients, exposures, enrollment-time segments."""
    exp = spec.experiment
    start, last = enrollment_dates(exp)
    if spec.exposure_signal is not None:
        if exposure_days_ref is None:
            raise ValueError("a custom exposure signal needs its exposure days table")
        exposures = _signal_exposures(spec, exposure_days_ref, "clients")
    else:
        exposures = "\n" + exposure_rows_sql(exp, "clients", start, last)
    ctes = [f"clients AS (SELECT * FROM {clients_ref} WHERE num_branches = 1)"]
    ctes.append(f"exposures AS ({exposures}\n)")
    seg_cols = []
    joins = []
    for i, seg in enumerate(enrollment_time_segments(spec)):
        lo_b, hi_b = seg.effective_window
        lo, hi = bound_offset(lo_b, 0), bound_offset(hi_b, 0)
        ctes.append(f"seg_{i} AS ({segment_sql(seg, 'clients', lo, hi, exp)}\n)")
        joins.append(f"LEFT JOIN seg_{i} ON seg_{i}.analysis_id = c.analysis_id")
        seg_cols.append(f"COALESCE(seg_{i}.in_segment, FALSE) AS {lit.ident(seg.name)}")
    cols = ",\n       ".join(
        [
            "c.analysis_id",
            f"c.{CLIENT_KEY_COLUMN}",
            "c.branch",
            "c.enrollment_date",
            "c.num_enrollment_events",
            "x.exposure_date",
            "COALESCE(x.num_exposure_events, 0) AS num_exposure_events",
            *seg_cols,
        ]
    )
    join_sql = "\n".join(
        [
            "LEFT JOIN exposures x ON x.analysis_id = c.analysis_id AND x.branch = c.branch",
            *joins,
        ]
    )
    with_sql = ",\n".join(ctes)
    return f"WITH {with_sql}\nSELECT {cols}\nFROM clients c\n{join_sql}"


def bound_offset_or_date(
    bound: WindowBound, default: str, window_start: int, window_end: int, exp: ExperimentSettings
) -> int | dt.date:
    """`resolve_bound` as days after `e.enrollment_date` (int), or a constant date for the
    enrollment-period bounds."""
    b = default if bound is None else bound
    if isinstance(b, int):
        return b
    if b == ANALYSIS_WINDOW_START:
        return window_start
    if b == ANALYSIS_WINDOW_END:
        return window_end
    start, last = enrollment_dates(exp)
    if b == ENROLLMENT_START:
        return start
    if b == ENROLLMENT_END:
        return last
    raise ValueError(f"unknown window bound {b!r}")


def resolve_bound(
    bound: WindowBound,
    default: str,
    window_start: int,
    window_end: int,
    exp: ExperimentSettings,
) -> str:
    """A symbolic or integer window bound as a DATE expression relative to `e.enrollment_date`."""
    b = bound_offset_or_date(bound, default, window_start, window_end, exp)
    return lit.add_days("e.enrollment_date", b) if isinstance(b, int) else lit.date(b)


def bound_date(
    bound: WindowBound,
    default: str,
    window_start: int,
    window_end: int,
    anchor: dt.date,
    exp: ExperimentSettings,
) -> dt.date:
    """`resolve_bound` evaluated for a client enrolled on `anchor` (a constant date)."""
    b = bound_offset_or_date(bound, default, window_start, window_end, exp)
    return anchor + dt.timedelta(days=b) if isinstance(b, int) else b


def earliest_day(bound: WindowBound, exp: ExperimentSettings) -> dt.date:
    """The first telemetry day a window starting at `bound` can reach for any client, when
    it starts no later than enrollment: the start date, or earlier for a fixed negative
    offset (a per-day table of that window starts here)."""
    start, _ = enrollment_dates(exp)
    return start + dt.timedelta(days=min(bound, 0) if isinstance(bound, int) else 0)


@attrs.frozen
class SegmentBounds:
    """A window-dependent segment's window for one analysis window: per client (DATE
    expressions over `e.enrollment_date`) and as constant dates covering every client."""

    lo: str
    hi: str
    first: dt.date
    last: dt.date


def segment_window_bounds(
    spec: AnalysisSpec, segment: Segment, window_start: int, window_end: int
) -> SegmentBounds:
    exp = spec.experiment
    lo_b, hi_b = segment.effective_window
    start, last = enrollment_dates(exp)
    return SegmentBounds(
        resolve_bound(lo_b, ANALYSIS_WINDOW_START, window_start, window_end, exp),
        resolve_bound(hi_b, ANALYSIS_WINDOW_END, window_start, window_end, exp),
        bound_date(lo_b, ANALYSIS_WINDOW_START, window_start, window_end, start, exp),
        bound_date(hi_b, ANALYSIS_WINDOW_END, window_start, window_end, last, exp),
    )


def window_segment_sql(
    spec: AnalysisSpec, segment: Segment, enrollments_ref: str, window_start: int, window_end: int
) -> str:
    """Membership of a segment whose window refers to the analysis window, for one window."""
    ds = segment.data_source
    b = segment_window_bounds(spec, segment, window_start, window_end)
    source = bounded(ds.from_expression, ds.submission_date_column, b.first, b.last)
    lo, hi = b.lo, b.hi
    return membership_sql(
        enrollments_ref,
        segment.select_expression,
        f"{source} ds ON ds.{ds.client_id_column} = e.analysis_id\n"
        f"    WHERE ds.{ds.submission_date_column} BETWEEN {lo} AND {hi}",
    )


def membership_sql(enrollments_ref: str, expression: str, rows: str) -> str:
    """(analysis_id, in_segment) for every client of `enrollments_ref`: `expression` over
    the client's `rows` (a JOIN target, its ON and WHERE); FALSE for a client without rows
    (the expression is not evaluated over an empty group)."""
    grouped = f"""SELECT e.analysis_id, {expression} AS in_segment
    FROM {enrollments_ref} e
    JOIN {rows}
    GROUP BY e.analysis_id"""
    return membership_of(enrollments_ref, grouped)


def membership_of(enrollments_ref: str, grouped: str) -> str:
    """(analysis_id, in_segment) for every client of `enrollments_ref` from `grouped`, a
    query of (analysis_id, in_segment) for the clients with rows; FALSE for the others."""
    return f"""SELECT e.analysis_id,
       COALESCE(s.in_segment, FALSE) AS in_segment
FROM {enrollments_ref} e
LEFT JOIN (
    {grouped}
) s ON s.analysis_id = e.analysis_id"""
