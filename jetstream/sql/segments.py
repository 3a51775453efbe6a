"""Segments whose window refers to the analysis window, rolled up from daily partials.
BigQuery dialect, pure.

Such a segment (e.g. "opened the sidebar 3 times between enrollment and the end of the
analysis window") has a membership per window. Recomputing it from telemetry reads the
segment's source over the whole window again for every window of every period. When its
select expression is decomposable (`sql.decompose`), each telemetry day is instead read
once into `segment_days_<slug>_<segment>` (per enrolled client and day, one column per
aggregate leaf), and a window's membership re-evaluates the expression over the leaves of
the window's days, exactly as the metric roll-ups do. A client without telemetry rows in
the window is not in the segment on either path (the expression is not evaluated over an
empty group). Non-decomposable segments keep `sql.enrollments.window_segment_sql`.
"""

from __future__ import annotations

import datetime as dt

from jetstream.config.model import AnalysisSpec, Segment
from jetstream.sql import literals as lit
from jetstream.sql.decompose import Decomposition, NotDecomposable, decompose, rolled_select
from jetstream.sql.enrollments import (
    CLIENT_KEY_COLUMN,
    earliest_day,
    membership_of,
    segment_window_bounds,
)


def segment_decomposition(segment: Segment) -> Decomposition | None:
    """The segment's leaves and roll-up, or None when it must be computed from telemetry."""
    d = decompose(segment.select_expression, "s")
    return None if isinstance(d, NotDecomposable) else d


def segment_days_first_day(spec: AnalysisSpec, segment: Segment) -> dt.date:
    """The first telemetry day any window of the segment reads."""
    return earliest_day(segment.effective_window[0], spec.experiment)


def segment_days_sql(
    segment: Segment,
    decomposition: Decomposition,
    clients_ref: str,
    first_day: dt.date,
    last_day: dt.date,
) -> str:
    """Per enrolled client and day in [first_day, last_day] with telemetry rows, every leaf
    of the segment's expression. The rows of a day do not depend on `first_day`."""
    ds = segment.data_source
    date_col = f"ds.{ds.submission_date_column}"
    cols = ",\n       ".join(f"{leaf.sql} AS {leaf.column}" for leaf in decomposition.leaves)
    return f"""SELECT e.{CLIENT_KEY_COLUMN},
       {date_col} AS submission_date,
       {cols}
FROM {clients_ref} e
JOIN {ds.from_expression} ds ON ds.{ds.client_id_column} = e.analysis_id
WHERE {date_col} BETWEEN {lit.date(first_day)} AND {lit.date(last_day)}
GROUP BY 1, 2"""


def window_segment_rollup_sql(
    spec: AnalysisSpec,
    segment: Segment,
    decomposition: Decomposition,
    enrollments_ref: str,
    days_ref: str,
    window_start: int,
    window_end: int,
) -> str:
    """Membership for one window (analysis_id, in_segment), from the segment's daily leaves;
    equal to `sql.enrollments.window_segment_sql` over telemetry."""
    b = segment_window_bounds(spec, segment, window_start, window_end)
    dates = f"{lit.date(b.first)} AND {lit.date(b.last)}"
    days = f"SELECT * FROM {days_ref} WHERE submission_date BETWEEN {dates}"
    grouped = rolled_select(
        ["e.analysis_id"],
        [("in_segment", decomposition)],
        f"FROM {enrollments_ref} e\n    JOIN ({days}) l ON l.{CLIENT_KEY_COLUMN} = "
        f"e.{CLIENT_KEY_COLUMN}\n    WHERE l.submission_date BETWEEN {b.lo} AND {b.hi}\n"
        "    GROUP BY e.analysis_id",
    )
    return membership_of(enrollments_ref, grouped)


def segment_windows_sql(seg_ref: str) -> str:
    """The (period, window_index, segment) triples the segments table holds rows of."""
    return f"SELECT DISTINCT period, window_index, segment FROM {seg_ref}"


def segment_rows_sql(
    seg_ref: str, segment: str, body: str, windows: list[tuple[str, int]]
) -> list[str]:
    """Replace the rows of `segment` for `windows` ((period, window index) pairs sharing one
    membership query `body`): a DELETE per window and one INSERT."""
    deletes = [
        f"DELETE FROM {seg_ref} WHERE period = {lit.string(period)} "
        f"AND window_index = {index} AND segment = {lit.string(segment)}"
        for period, index in windows
    ]
    labels = " UNION ALL ".join(
        f"SELECT {lit.string(period)} AS period, {index} AS window_index"
        for period, index in windows
    )
    insert = f"""INSERT INTO {seg_ref} (analysis_id, period, window_index, segment, in_segment)
SELECT m.analysis_id, w.period, w.window_index, {lit.string(segment)}, m.in_segment
FROM ({body}) m
CROSS JOIN ({labels}) w"""
    return [*deletes, insert]
