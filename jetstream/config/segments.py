"""The experiment's segments and exposure signal."""

from __future__ import annotations

from jetstream.config.context import Context
from jetstream.config.layers import SEGMENTS, Ref
from jetstream.config.model import ExposureSignal, Segment
from jetstream.config.problems import did_you_mean, key_path
from jetstream.config.sources import Sources
from jetstream.config.tables import ExperimentTable, SegmentTable

RECORD_SEGMENTS = "(segments of the experiment record)"
EXPOSURE_SIGNAL = "experiment.exposure_signal"


def segments(ctx: Context, sources: Sources, table: ExperimentTable) -> list[Segment]:
    """The segments the config and the experiment record list, in that order."""
    wanted = [
        (name, Ref(ctx.config_path, key_path("experiment.segments", i)))
        for i, name in table.segments
    ]
    wanted += [(name, Ref(ctx.config_path, RECORD_SEGMENTS)) for name in ctx.exp.segments]
    out: list[Segment] = []
    seen: set[str] = set()
    for name, ref in wanted:
        if name in seen:
            continue
        seen.add(name)
        if ref.key == RECORD_SEGMENTS and ctx.layers.find(SEGMENTS, name) is None:
            # The config cannot fix the record: skip the segment, do not fail the analysis.
            ctx.warn(ref.file, ref.key, f"segment {name!r} is not defined: not analysed")
            continue
        seg = segment(ctx, sources, name, ref)
        if seg is not None:
            out.append(seg)
    return out


def segment(ctx: Context, sources: Sources, name: str, ref: Ref) -> Segment | None:
    found = ctx.layers.find(SEGMENTS, name)
    if found is None:
        ctx.error_at(
            ref,
            f"undefined segment {name!r} for platform {ctx.app!r}"
            f"{did_you_mean(name, ctx.layers.known_names(SEGMENTS))}",
        )
        return None
    if ctx.bad_name(name, found.top):
        return None
    table: SegmentTable = found.table
    if table.select_expression is None or table.data_source is None:
        ctx.error_at(found.top, f"segment {name!r} needs select_expression and data_source")
        return None
    sds = sources.segment_data_source(table.data_source, found.origin["data_source"])
    rendered = ctx.render_select(table.select_expression, found.origin["select_expression"])
    if rendered is None or sds is None:
        return None
    return Segment(
        name=name,
        select_expression=rendered,
        data_source=sds,
        friendly_name=table.friendly_name,
        description=table.description,
        window_start=table.window_start,
        window_end=table.window_end,
    )


def exposure_signal(
    ctx: Context, sources: Sources, table: ExperimentTable
) -> ExposureSignal | None:
    signal = table.exposure_signal
    if signal is None:
        return None
    select, ds_name, name = signal.select_expression, signal.data_source, signal.name
    if select is None or ds_name is None or name is None:
        return None  # the structural check reports the missing keys
    ds = sources.data_source(ds_name, Ref(ctx.config_path, f"{EXPOSURE_SIGNAL}.data_source"))
    rendered = ctx.render_select(
        select, Ref(ctx.config_path, f"{EXPOSURE_SIGNAL}.select_expression")
    )
    if rendered is None or ds is None:
        return None
    return ExposureSignal(
        name=name,
        select_expression=rendered,
        data_source=ds,
        friendly_name=signal.friendly_name,
        description=signal.description,
        window_start=signal.window_start,
        window_end=signal.window_end,
    )
