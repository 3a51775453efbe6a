"""Frozen attrs classes for a resolved analysis. Everything the SQL, the graph and the
statistics need; nothing here reads files or talks to services."""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Any

import attrs

from jetstream.periods import Period

# A window bound on an exposure signal or a segment: days relative to enrollment, or one of
# these symbolic anchors.
ANALYSIS_WINDOW_START = "analysis_window_start"
ANALYSIS_WINDOW_END = "analysis_window_end"
ENROLLMENT_START = "enrollment_start"
ENROLLMENT_END = "enrollment_end"
WindowBound = int | str | None


def app_dataset(app_id: str | None) -> str | None:
    """The BigQuery dataset of an Experimenter app id, as Jetstream derives it
    (`Analysis._app_id_to_bigquery_dataset`): non-alphanumerics become `_`, lower case;
    e.g. org.mozilla.firefox -> org_mozilla_firefox."""
    if not app_id:
        return None
    return re.sub(r"[^a-zA-Z0-9]", "_", app_id).lower()


class AnalysisBasis(enum.StrEnum):
    ENROLLMENTS = "enrollments"
    EXPOSURES = "exposures"


class ExperimentsColumnType(enum.StrEnum):
    NONE = "none"
    SIMPLE = "simple"
    NATIVE = "native"
    GLEAN = "glean"
    EVENTS_STREAM = "events_stream"


class MultipleComparisons(enum.StrEnum):
    NONE = "none"
    HOLM = "holm"
    BH = "bh"


@attrs.frozen
class DataSourceJoin:
    data_source: str  # name of the joined data source
    relationship: str | None = None  # "many_to_many", "one_to_one", ...
    on_expression: str | None = None


@attrs.frozen
class DataSource:
    name: str
    from_expression: str  # `{dataset}` already substituted
    client_id_column: str = "client_id"
    submission_date_column: str = "submission_date"
    experiments_column_type: ExperimentsColumnType = ExperimentsColumnType.SIMPLE
    default_dataset: str | None = None
    group_id_column: str | None = None
    analysis_units: tuple[str, ...] = ("client_id",)
    joins: tuple[DataSourceJoin, ...] = ()
    friendly_name: str | None = None
    description: str | None = None


@attrs.frozen
class Metric:
    name: str
    select_expression: str  # Jinja functions and {{parameters.*}} already rendered
    data_source: DataSource | None  # None only for metrics computed from depends_on
    friendly_name: str | None = None
    description: str | None = None
    bigger_is_better: bool = True
    analysis_bases: tuple[AnalysisBasis, ...] = (AnalysisBasis.ENROLLMENTS, AnalysisBasis.EXPOSURES)
    depends_on: tuple[str, ...] = ()  # metric names this one is computed from
    type: str = "scalar"
    category: str | None = None
    owner: tuple[str, ...] = ()
    deprecated: bool = False
    # Units the metric can be aggregated by (metric-hub `analysis_units`).
    analysis_units: tuple[str, ...] = ("client_id",)
    level: str | None = None  # metric-hub quality level: gold, silver, bronze


@attrs.frozen
class PreTreatment:
    name: str
    args: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class CovariateAdjustment:
    period: Period  # PREENROLLMENT_WEEK or PREENROLLMENT_DAYS28
    metric: str | None = None  # None: the same metric


@attrs.frozen
class StatisticSpec:
    name: str
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)
    pre_treatments: tuple[PreTreatment, ...] = ()
    covariate_adjustment: CovariateAdjustment | None = None


@attrs.frozen
class Summary:
    """One metric with one statistic, analysed in one period."""

    metric: Metric
    statistic: StatisticSpec


@attrs.frozen
class SegmentDataSource:
    name: str
    from_expression: str
    window_start: WindowBound = 0
    window_end: WindowBound = 0
    client_id_column: str = "client_id"
    submission_date_column: str = "submission_date"
    default_dataset: str | None = None


@attrs.frozen
class Segment:
    name: str
    select_expression: str
    data_source: SegmentDataSource
    friendly_name: str | None = None
    description: str | None = None
    # Set on the segment itself: wins over the data source's window.
    window_start: WindowBound = None
    window_end: WindowBound = None

    @property
    def effective_window(self) -> tuple[WindowBound, WindowBound]:
        start = (
            self.window_start if self.window_start is not None else self.data_source.window_start
        )
        end = self.window_end if self.window_end is not None else self.data_source.window_end
        return start, end

    @property
    def depends_on_analysis_window(self) -> bool:
        """True when the segment must be recomputed for each analysis window."""
        return any(b in (ANALYSIS_WINDOW_START, ANALYSIS_WINDOW_END) for b in self.effective_window)


@attrs.frozen
class ExposureSignal:
    name: str
    select_expression: str
    data_source: DataSource
    friendly_name: str | None = None
    description: str | None = None
    window_start: WindowBound = None
    window_end: WindowBound = None


@attrs.frozen
class Branch:
    slug: str
    ratio: float = 1.0


@attrs.frozen
class ExperimentSettings:
    """The Experimenter record with `[experiment]` overrides applied."""

    slug: str
    app_name: str  # platform, e.g. "firefox_desktop"
    branches: tuple[Branch, ...]
    reference_branch: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    enrollment_period: int | None  # days; last enrollment date = start + period
    is_rollout: bool = False
    is_enrollment_paused: bool = False
    status: str | None = None
    app_id: str | None = None
    randomization_unit: str = "normandy_id"
    outcomes: tuple[str, ...] = ()
    skip: bool = False
    is_private: bool = False
    dataset_id: str | None = None
    enrollment_query: str | None = None
    # normandy | glean-event | fenix-fallback | cirrus | background-update
    enrollments_query_type: str = "normandy"
    analysis_unit: str = "client_id"  # client_id | profile_group_id
    sample_size: int | None = None  # keep sample_id < sample_size (built-in queries only)
    multiple_comparisons: MultipleComparisons = MultipleComparisons.NONE

    @property
    def num_dates_enrollment(self) -> int:
        """Days of enrollment that are analysed: the enrollment period plus one, as Jetstream
        passes `num_dates_enrollment = enrollment_period + 1` to mozanalysis (enrollment
        starts a few hours before UTC midnight; the extra day keeps the last day's
        enrollments)."""
        days = self.enrollment_period if self.enrollment_period is not None else 7
        return max(days, 0) + 1

    @property
    def last_enrollment_date(self) -> dt.date | None:
        """start + enrollment_period: the last day whose enrollments count (mozanalysis
        TimeLimits.last_enrollment_date = first + num_dates_enrollment - 1)."""
        if self.start_date is None:
            return None
        return self.start_date + dt.timedelta(days=self.num_dates_enrollment - 1)

    @property
    def is_complete(self) -> bool:
        """Experimenter status Complete (or an end date set in the config, which the
        reference parser treats as Complete): the overall window is only computed then."""
        return (self.status or "").lower() == "complete"

    @property
    def branch_slugs(self) -> tuple[str, ...]:
        return tuple(b.slug for b in self.branches)


@attrs.frozen
class AnalysisSpec:
    """Everything needed to analyse one experiment, resolved from defaults, the experiment
    config and outcomes. Immutable; the graph, SQL and statistics read only this."""

    experiment: ExperimentSettings
    metrics: dict[Period, tuple[Summary, ...]] = attrs.field(hash=False)
    segments: tuple[Segment, ...] = ()
    exposure_signal: ExposureSignal | None = None
    parameters: dict[str, Any] = attrs.field(factory=dict, hash=False)
    # Every metric definition known to the resolution, including ones only referenced via
    # depends_on or covariate_adjustment (they are computed but not summarised).
    metric_definitions: dict[str, Metric] = attrs.field(factory=dict, hash=False)
    # Every metric to compute per period, summarised or not, in first-listed order: the
    # metrics of `metrics[period]`, metrics listed with no statistic, and (for pre-enrollment
    # periods) the covariates of statistics with covariate_adjustment.
    metric_names: dict[Period, tuple[str, ...]] = attrs.field(factory=dict, hash=False)

    @property
    def slug(self) -> str:
        return self.experiment.slug

    def metrics_for(self, period: Period) -> tuple[Metric, ...]:
        """Distinct metrics analysed in `period`, in first-seen order, with the metrics
        they depend on and the covariate metrics of their statistics (for pre-periods)."""
        seen: dict[str, Metric] = {}
        for s in self.metrics.get(period, ()):
            seen.setdefault(s.metric.name, s.metric)
        for name in self.metric_names.get(period, ()):
            if name in self.metric_definitions:
                seen.setdefault(name, self.metric_definitions[name])
        # a derived metric needs its dependencies computed in the same window
        pending = list(seen.values())
        while pending:
            m = pending.pop()
            for dep in m.depends_on:
                if dep not in seen and dep in self.metric_definitions:
                    seen[dep] = self.metric_definitions[dep]
                    pending.append(seen[dep])
        return tuple(seen.values())

    @property
    def periods(self) -> tuple[Period, ...]:
        return tuple(p for p in Period if self.metrics.get(p) or self.metric_names.get(p))
