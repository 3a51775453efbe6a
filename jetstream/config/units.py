"""The analysis unit applied to a resolved spec. Pure.

With `analysis_unit = "profile_group_id"` mozanalysis joins every data source on its
`group_id_column` (metric-config-parser's default: `profile_group_id`) instead of its
`client_id_column`, for metrics, segments and the exposure signal alike. The SQL joins
`ds.<client_id_column> = analysis_id`, so the spec's data sources get that column as their
join column here; nothing else changes.
"""

from __future__ import annotations

import attrs

from jetstream.config.model import (
    AnalysisSpec,
    DataSource,
    Metric,
    Segment,
    Summary,
)

CLIENT_ID = "client_id"
PROFILE_GROUP_ID = "profile_group_id"
DEFAULT_GROUP_ID_COLUMN = "profile_group_id"  # metric-config-parser DataSource default


def join_column(ds: DataSource, unit: str) -> str:
    """The column of `ds` that holds the analysis unit's id."""
    if unit == PROFILE_GROUP_ID:
        return ds.group_id_column or DEFAULT_GROUP_ID_COLUMN
    return ds.client_id_column


def for_analysis_unit(spec: AnalysisSpec) -> AnalysisSpec:
    """`spec` with every data source joined on the analysis unit's column."""
    unit = spec.experiment.analysis_unit
    if unit == CLIENT_ID:
        return spec
    sources: dict[int, DataSource] = {}

    def source(ds: DataSource) -> DataSource:
        key = id(ds)
        if key not in sources:
            sources[key] = attrs.evolve(ds, client_id_column=join_column(ds, unit))
        return sources[key]

    def metric(m: Metric) -> Metric:
        return m if m.data_source is None else attrs.evolve(m, data_source=source(m.data_source))

    def segment(s: Segment) -> Segment:
        # segment data sources have no group_id_column: the parser's default
        ds = attrs.evolve(s.data_source, client_id_column=DEFAULT_GROUP_ID_COLUMN)
        return attrs.evolve(s, data_source=ds)

    signal = spec.exposure_signal
    return attrs.evolve(
        spec,
        metrics={
            p: tuple(Summary(metric(s.metric), s.statistic) for s in summaries)
            for p, summaries in spec.metrics.items()
        },
        metric_definitions={k: metric(m) for k, m in spec.metric_definitions.items()},
        segments=tuple(segment(s) for s in spec.segments),
        exposure_signal=(
            None if signal is None else attrs.evolve(signal, data_source=source(signal.data_source))
        ),
    )
