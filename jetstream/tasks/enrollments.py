"""`ensure-enrollments`: enrollments, exposure days and window-dependent segments."""

from __future__ import annotations

import datetime as dt

from jetstream import results
from jetstream.config.model import Segment
from jetstream.errors import TransientError
from jetstream.periods import Period, windows_through
from jetstream.sql import enrollments as enr_sql
from jetstream.sql import metrics as met_sql
from jetstream.sql import segments as seg_sql
from jetstream.sql.decompose import Decomposition
from jetstream.tasks.context import ErrorCollector, TaskContext, log
from jetstream.tasks.partials import ensure_days

EXPOSURE_SOURCE = "__exposure_signal__"
SEGMENT_SOURCE_PREFIX = "__segment__"


def ensure_enrollments(ctx: TaskContext, date: dt.date, recreate: bool = False) -> None:
    spec = ctx.spec
    slug = spec.slug
    errors = ErrorCollector(ctx.run_id, slug)
    with ctx.session():
        ctx.ensure_tables()
        enrollments = results.enrollments_table(slug)
        clients = results.enrollment_staging_table(slug)
        exists = ctx.warehouse.table_exists(enrollments)
        if exists and enr_sql.CLIENT_KEY_COLUMN not in ctx.warehouse.table_columns(enrollments):
            # made before the per-day tables were keyed: recompute with the key
            log.info("enrollments lack client_key; recomputing", experiment=slug)
            exists = False
        if recreate or not exists:
            log.info("computing enrollments", experiment=slug)
            ctx.create_table_as(clients, enr_sql.clients_sql(spec.experiment))
        # counted on every run: the unit's error rows are replaced, so a rerun that reuses
        # the enrollments must report the excluded clients again
        if ctx.warehouse.table_exists(clients):
            n = ctx.query(enr_sql.multi_branch_count_sql(ctx.ref(clients))).column(0)[0].as_py()
            if n:
                errors.add(
                    f"{n} clients enrolled in more than one branch were excluded",
                    level="warning",
                    exception_type="MultipleBranches",
                )
            shared = ctx.query(enr_sql.key_collisions_sql(ctx.ref(clients))).column(0)[0].as_py()
            if shared:
                errors.add(
                    f"{shared} clients share a {enr_sql.CLIENT_KEY_COLUMN} with another client "
                    "(a 64-bit hash collision): their daily partials are merged",
                    exception_type="ClientKeyCollision",
                )
        _ensure_exposure_days(ctx, date)
        if recreate or not exists:
            exposure_ref = (
                ctx.ref(results.exposure_days_table(slug)) if spec.exposure_signal else None
            )
            ctx.create_table_as(
                enrollments, enr_sql.enrollments_sql(spec, ctx.ref(clients), exposure_ref)
            )
        _ensure_window_segments(ctx, date, errors)
        ctx.write_errors(errors)


def _ensure_exposure_days(ctx: TaskContext, date: dt.date) -> None:
    spec = ctx.spec
    signal = spec.exposure_signal
    if signal is None:
        return
    slug = spec.slug
    table = results.exposure_days_table(slug)
    clients_ref = ctx.ref(results.enrollment_staging_table(slug))

    def build(first: dt.date, last: dt.date) -> str:
        return met_sql.exposure_days_sql(signal, clients_ref, first, last)

    first_day = met_sql.exposure_days_first_day(spec)
    definition = [met_sql.PARTIALS_LAYOUT, signal]
    ensure_days(
        ctx, EXPOSURE_SOURCE, table, build, date, definition=definition, first_day=first_day
    )


def segment_days_source(segment: Segment) -> str:
    """The partial_days data_source of a segment's daily leaves."""
    return f"{SEGMENT_SOURCE_PREFIX}{segment.name}"


def _ensure_segment_days(
    ctx: TaskContext, segment: Segment, decomposition: Decomposition, date: dt.date
) -> str:
    """Daily leaves of a window-dependent segment through `date`; returns the table's ref."""
    table = results.segment_days_table(ctx.spec.slug, segment.name)
    clients_ref = ctx.ref(results.enrollment_staging_table(ctx.spec.slug))

    def build(first: dt.date, last: dt.date) -> str:
        return seg_sql.segment_days_sql(segment, decomposition, clients_ref, first, last)

    first_day = seg_sql.segment_days_first_day(ctx.spec, segment)
    source = segment_days_source(segment)
    ensure_days(ctx, source, table, build, date, definition=segment, first_day=first_day)
    return ctx.ref(table)


def _ensure_window_segments(ctx: TaskContext, date: dt.date, errors: ErrorCollector) -> None:
    spec = ctx.spec
    window_segments = [s for s in spec.segments if s.depends_on_analysis_window]
    if not window_segments:
        return
    slug = spec.slug
    exp = spec.experiment
    last = exp.last_enrollment_date
    assert last is not None
    seg_ref = ctx.ref(results.segments_table(slug))
    enr_ref = ctx.ref(results.enrollments_table(slug))
    done = {
        (r["period"], r["window_index"], r["segment"])
        for r in ctx.query(seg_sql.segment_windows_sql(seg_ref)).to_pylist()
    }
    # decomposable segments roll up from their daily leaves (one telemetry day per run)
    rolled: dict[str, tuple[Decomposition, str]] = {}
    for seg in window_segments:
        decomposition = seg_sql.segment_decomposition(seg)
        if decomposition is None:
            continue
        try:
            rolled[seg.name] = (decomposition, _ensure_segment_days(ctx, seg, decomposition, date))
        except TransientError:
            raise
        except Exception as exc:  # falls back to telemetry per window
            log.warning("segment daily leaves failed", segment=seg.name, error=str(exc))
    # windows whose membership is the same query (e.g. every window closing on the same
    # date, for a segment bounded by the analysis window's end) are computed once
    pending: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for period in spec.periods:
        if period in (Period.PREENROLLMENT_WEEK, Period.PREENROLLMENT_DAYS28):
            continue
        for w in windows_through(period, date, last, exp.end_date, exp.is_complete):
            for seg in window_segments:
                if (period.value, w.index, seg.name) in done:
                    continue
                if seg.name in rolled:
                    decomposition, days_ref = rolled[seg.name]
                    body = seg_sql.window_segment_rollup_sql(
                        spec, seg, decomposition, enr_ref, days_ref, w.start, w.end
                    )
                else:
                    body = enr_sql.window_segment_sql(spec, seg, enr_ref, w.start, w.end)
                pending.setdefault((seg.name, body), []).append((period.value, w.index))
    for (name, body), windows in pending.items():
        try:
            ctx.transaction(seg_sql.segment_rows_sql(seg_ref, name, body, windows))
        except TransientError:
            raise
        except Exception as exc:  # a broken segment must not stop the others
            errors.add(f"segment {name}: {exc}", exception=exc)
