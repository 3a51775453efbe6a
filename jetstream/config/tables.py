"""Typed tables: the schema step's output that resolution works on.

`schema.check` reports every structural problem of a parsed file; the functions here turn
the (merged) tables of a checked file into small frozen values, reading each raw key once.
A value of the wrong type becomes "not set" (the structural check has already reported
it), so resolution never looks at raw TOML again. Lists keep each item's index, for
problems that point at `key[i]`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from jetstream.config.model import (
    AnalysisBasis,
    CovariateAdjustment,
    PreTreatment,
    WindowBound,
)
from jetstream.config.values import parse_date, parse_period
from jetstream.statistics import catalogue

ALL_BASES = (AnalysisBasis.ENROLLMENTS, AnalysisBasis.EXPOSURES)
Indexed = tuple[tuple[int, str], ...]  # (index in the TOML list, string item)


@attrs.frozen
class StatisticTable:
    """`[metrics.<m>.statistics.<name>]`. `known` is False for a name missing from the
    catalogue or a value that is not a table (then nothing else is set)."""

    name: str
    known: bool
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)  # catalogue params only
    metric_params: tuple[tuple[str, str], ...] = ()  # (key, metric): numerator, denominator
    covariate: CovariateAdjustment | None = None
    pre_treatments: tuple[PreTreatment, ...] = ()


@attrs.frozen
class MetricTable:
    select_expression: str | None
    data_source: str | None
    depends_on: Indexed
    statistics: tuple[StatisticTable, ...]
    friendly_name: str | None
    description: str | None
    bigger_is_better: bool
    analysis_bases: tuple[AnalysisBasis, ...]
    analysis_units: tuple[str, ...]
    type: str
    category: str | None
    owner: tuple[str, ...]
    deprecated: bool
    level: str | None


@attrs.frozen
class JoinTable:
    data_source: str
    relationship: str | None
    on_expression: str | None


@attrs.frozen
class DataSourceTable:
    from_expression: str | None
    default_dataset: str | None
    joins: tuple[JoinTable, ...] | None  # None: no joins table
    experiments_column_type: str  # lower-cased; checked against the enum by resolution
    client_id_column: str
    submission_date_column: str
    group_id_column: str | None
    analysis_units: tuple[str, ...]
    friendly_name: str | None
    description: str | None


@attrs.frozen
class SegmentDataSourceTable:
    from_expression: str | None
    default_dataset: str | None
    window_start: WindowBound
    window_end: WindowBound
    client_id_column: str
    submission_date_column: str


@attrs.frozen
class SegmentTable:
    select_expression: str | None
    data_source: str | None
    friendly_name: str | None
    description: str | None
    window_start: WindowBound
    window_end: WindowBound


@attrs.frozen
class ExposureSignalTable:
    name: str | None
    select_expression: str | None
    data_source: str | None
    friendly_name: str | None
    description: str | None
    window_start: WindowBound
    window_end: WindowBound


@attrs.frozen
class ParameterTable:
    value: Any  # a string or a table of values by branch (else reported by resolution)
    distinct_by_branch: bool


@attrs.frozen
class ExperimentTable:
    """The `[experiment]` table (defaults' overlaid with the config's)."""

    start_date: dt.date | None = None
    end_date: dt.date | None = None
    enrollment_period: int | None = None
    reference_branch: str | None = None
    skip: bool = False
    is_private: bool = False
    dataset_id: str | None = None
    enrollment_query: str | None = None
    enrollments_query_type: str | None = None
    analysis_unit: str | None = None
    sample_size: int | None = None
    multiple_comparisons: str | None = None
    outcomes: Indexed = ()
    segments: Indexed = ()
    exposure_signal: ExposureSignalTable | None = None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _window(v: Any) -> WindowBound:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | str):
        return v
    return None


def _strings(v: Any) -> tuple[str, ...] | None:
    """The string items of a list; None when `v` is not a list."""
    return tuple(u for u in v if isinstance(u, str)) if isinstance(v, list) else None


def _units(v: Any) -> tuple[str, ...]:
    units = _strings(v)
    return ("client_id",) if units is None else units


def indexed(v: Any) -> Indexed:
    return (
        tuple((i, s) for i, s in enumerate(v) if isinstance(s, str)) if isinstance(v, list) else ()
    )


def statistic_table(name: str, params: Any) -> StatisticTable:
    definition = catalogue.STATISTICS.get(name)
    if definition is None or not isinstance(params, dict):
        return StatisticTable(name, known=False)
    given = {
        k: v
        for k, v in params.items()
        if k not in ("pre_treatments", "covariate_adjustment") and k in definition.params
    }
    metric_params = tuple(
        (k, given[k]) for k in ("numerator", "denominator") if isinstance(given.get(k), str)
    )
    cov = None
    cov_raw = params.get("covariate_adjustment")
    if isinstance(cov_raw, dict):
        period = parse_period(str(cov_raw.get("period", "")))
        if period is not None and period.is_preenrollment:
            cov = CovariateAdjustment(period, _str(cov_raw.get("metric")))
    pts: list[PreTreatment] = []
    raw_pts = params.get("pre_treatments")
    for pt in raw_pts if isinstance(raw_pts, list) else ():
        if isinstance(pt, str) and pt in catalogue.PRE_TREATMENTS:
            pts.append(PreTreatment(pt))
        elif isinstance(pt, dict) and str(pt.get("name")) in catalogue.PRE_TREATMENTS:
            args = {k: v for k, v in pt.items() if k != "name"}
            if catalogue.PERIOD_LENGTH not in catalogue.PRE_TREATMENTS[pt["name"]].params:
                args.pop(catalogue.PERIOD_LENGTH, None)  # accepted everywhere, used by one
            pts.append(PreTreatment(pt["name"], args))
    return StatisticTable(name, True, given, metric_params, cov, tuple(pts))


def metric_table(raw: Mapping[str, Any]) -> MetricTable:
    stats = raw.get("statistics")
    owner = raw.get("owner")
    bases = raw.get("analysis_bases")
    return MetricTable(
        select_expression=_str(raw.get("select_expression")),
        data_source=_str(raw.get("data_source")),
        depends_on=indexed(raw.get("depends_on")),
        statistics=tuple(
            statistic_table(n, p) for n, p in (stats.items() if isinstance(stats, dict) else ())
        ),
        friendly_name=_str(raw.get("friendly_name")),
        description=_str(raw.get("description")),
        bigger_is_better=raw.get("bigger_is_better") is not False,
        analysis_bases=(
            tuple(AnalysisBasis(b) for b in bases if b in ("enrollments", "exposures"))
            if isinstance(bases, list)
            else ALL_BASES
        ),
        analysis_units=_units(raw.get("analysis_units")),
        type=_str(raw.get("type")) or "scalar",
        category=_str(raw.get("category")),
        owner=(owner,) if isinstance(owner, str) else (_strings(owner) or ()),
        deprecated=raw.get("deprecated") is True,
        level=_str(raw.get("level")),
    )


def data_source_table(raw: Mapping[str, Any]) -> DataSourceTable:
    joins = raw.get("joins")
    return DataSourceTable(
        from_expression=_str(raw.get("from_expression")),
        default_dataset=_str(raw.get("default_dataset")),
        joins=(
            tuple(
                JoinTable(
                    name,
                    _str(j.get("relationship")) if isinstance(j, dict) else None,
                    _str(j.get("on_expression")) if isinstance(j, dict) else None,
                )
                for name, j in joins.items()
            )
            if isinstance(joins, dict)
            else None
        ),
        experiments_column_type=str(raw.get("experiments_column_type") or "simple").lower(),
        client_id_column=_str(raw.get("client_id_column")) or "client_id",
        submission_date_column=_str(raw.get("submission_date_column")) or "submission_date",
        group_id_column=_str(raw.get("group_id_column")),
        analysis_units=_units(raw.get("analysis_units")),
        friendly_name=_str(raw.get("friendly_name")),
        description=_str(raw.get("description")),
    )


def segment_data_source_table(raw: Mapping[str, Any]) -> SegmentDataSourceTable:
    return SegmentDataSourceTable(
        from_expression=_str(raw.get("from_expression")),
        default_dataset=_str(raw.get("default_dataset")),
        window_start=_window(raw.get("window_start")),
        window_end=_window(raw.get("window_end")),
        client_id_column=_str(raw.get("client_id_column")) or "client_id",
        submission_date_column=_str(raw.get("submission_date_column")) or "submission_date",
    )


def segment_table(raw: Mapping[str, Any]) -> SegmentTable:
    return SegmentTable(
        select_expression=_str(raw.get("select_expression")),
        data_source=_str(raw.get("data_source")),
        friendly_name=_str(raw.get("friendly_name")),
        description=_str(raw.get("description")),
        window_start=_window(raw.get("window_start")),
        window_end=_window(raw.get("window_end")),
    )


def exposure_signal_table(raw: Mapping[str, Any]) -> ExposureSignalTable:
    return ExposureSignalTable(
        name=_str(raw.get("name")),
        select_expression=_str(raw.get("select_expression")),
        data_source=_str(raw.get("data_source")),
        friendly_name=_str(raw.get("friendly_name")),
        description=_str(raw.get("description")),
        window_start=_window(raw.get("window_start")),
        window_end=_window(raw.get("window_end")),
    )


def parameter_table(raw: Mapping[str, Any]) -> ParameterTable:
    """A parameter merged over its layers: `value` wins over `default`, and two tables of
    values by branch are merged (value's entries winning)."""
    value, default = raw.get("value"), raw.get("default")
    merged = value if value is not None else default
    if isinstance(value, dict) and isinstance(default, dict):
        merged = {**default, **value}
    return ParameterTable(merged, raw.get("distinct_by_branch") is True)


def experiment_table(raw: Mapping[str, Any]) -> ExperimentTable:
    exposure = raw.get("exposure_signal")
    return ExperimentTable(
        start_date=parse_date(raw.get("start_date")),
        end_date=parse_date(raw.get("end_date")),
        enrollment_period=_int(raw.get("enrollment_period")),
        reference_branch=_str(raw.get("reference_branch")),
        skip=raw.get("skip") is True,
        is_private=raw.get("is_private") is True,
        dataset_id=_str(raw.get("dataset_id")),
        enrollment_query=_str(raw.get("enrollment_query")),
        enrollments_query_type=_str(raw.get("enrollments_query_type")),
        analysis_unit=_str(raw.get("analysis_unit")),
        sample_size=_int(raw.get("sample_size")),
        multiple_comparisons=_str(raw.get("multiple_comparisons")),
        outcomes=indexed(raw.get("outcomes")),
        segments=indexed(raw.get("segments")),
        exposure_signal=exposure_signal_table(exposure) if isinstance(exposure, dict) else None,
    )
