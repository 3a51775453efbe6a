"""Runs in the mozanalysis oracle virtualenv (not in the project's environment): parses a
metric-hub-layout config repository with mozilla-metric-config-parser and writes, with
mozanalysis's own SQL builders, the BigQuery SQL that Jetstream would run for an
experiment at the given analysis dates.

stdin: {"experiments": path to an Experimenter v8 JSON list, "config_repo": path,
        "slug": str, "analyses": [{"period": "week", "window_index": 0}, ...],
        "enrollments_table": placeholder name for the stored enrollments table}
stdout: {"analyses": [{"period", "window_index", "date", "window_start", "window_end",
         "enrollments_sql", "exposure_signal": bool, "segments": [names],
         "metrics": [{"basis", "sql", "metrics": [names]}]}]}

Time limits follow Jetstream's analysis: `enrollment_period + 1` dates of enrollment;
day/week/days28 use `TimeLimits.for_ts` and keep only the last window, analysed on the date
that closes it; overall is one window from enrollment to the end date; the pre-enrollment
periods are single windows before enrollment.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import attr
from metric_config_parser.analysis import AnalysisSpec
from metric_config_parser.config import LocalConfigCollection
from metric_config_parser.experiment import Branch, EnrollmentsQueryType, Experiment
from metric_config_parser.exposure_signal import AnalysisWindow as WindowName
from mozanalysis.experiment import Experiment as MAExperiment
from mozanalysis.experiment import TimeLimits
from mozanalysis.exposure import ExposureSignal
from mozanalysis.metrics import DataSource, Metric
from mozanalysis.segments import Segment, SegmentDataSource
from mozanalysis.utils import add_days
from mozilla_nimbus_schemas import AnalysisBasis

TS_LABEL = {"day": "daily", "week": "weekly", "days28": "28_day"}
PREENROLLMENT = {"preenrollment_week": 7, "preenrollment_days28": 28}
# metric-config-parser's period keys (AnalysisPeriod values) for our period names
MCP_PERIOD = {
    "day": "day",
    "week": "week",
    "days28": "days28",
    "overall": "overall",
    "preenrollment_week": "preenrollment_week",
    "preenrollment_days28": "preenrollment_days28",
}


def parse_date(value: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(value[:10], "%Y-%m-%d") if value else None


def experiment_from_v8(record: dict) -> Experiment:
    """The Experimenter v8 record as metric-config-parser's Experiment (Jetstream's
    ExperimentV8.to_experiment, written from the documented fields)."""
    return Experiment(
        experimenter_slug=None,
        normandy_slug=record["slug"],
        type="v6",
        status="Live" if not record.get("endDate") else "Complete",
        branches=[Branch(slug=b["slug"], ratio=b.get("ratio", 1)) for b in record["branches"]],
        start_date=parse_date(record.get("startDate")),
        end_date=parse_date(record.get("endDate")),
        proposed_enrollment=record.get("proposedEnrollment"),
        reference_branch=record.get("referenceBranch"),
        is_high_population=False,
        app_name=record["appName"],
        app_id=record.get("appId"),
        outcomes=[o["slug"] for o in record.get("outcomes") or []],
        segments=[s["slug"] if isinstance(s, dict) else s for s in record.get("segments") or []],
        enrollment_end_date=parse_date(record.get("enrollmentEndDate")),
        is_enrollment_paused=record.get("isEnrollmentPaused"),
        is_rollout=bool(record.get("isRollout")),
    )


def load_configs(repo: Path):
    """metric-hub layout: definitions/ at the root, Jetstream configs under jetstream/
    (merged over the root, as Jetstream reads metric-hub)."""
    configs = LocalConfigCollection.from_local_path(str(repo))
    jetstream_dir = repo / "jetstream"
    if jetstream_dir.is_dir():
        configs.merge(LocalConfigCollection.from_local_path(str(jetstream_dir)))
    return configs


def analysis_date(period: str, index: int, start: str, dates_enrollment: int, end: str | None):
    """The date on which Jetstream analyses window `index` of `period` (the date that
    closes it); None when the experiment has no such window."""
    last_enrollment = add_days(start, dates_enrollment - 1)
    if period in TS_LABEL:
        length = {"day": 1, "week": 7, "days28": 28}[period]
        date = add_days(last_enrollment, (index + 1) * length - 1)
        return date if end is None or date <= end else None
    if period == "overall":
        return end if index == 0 else None
    return last_enrollment if index == 0 else None


def time_limits_for(period: str, date: str, start: str, dates_enrollment: int, end: str | None):
    if period in TS_LABEL:
        limits = TimeLimits.for_ts(start, date, TS_LABEL[period], dates_enrollment)
        last = limits.analysis_windows[-1]
        # Jetstream analyses only the window the date closes
        return attr.evolve(
            limits,
            analysis_windows=(last,),
            first_date_data_required=add_days(limits.first_enrollment_date, last.start),
        )
    if period == "overall":
        length = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
        length = length - dates_enrollment + 1
        return TimeLimits.for_single_analysis_window(start, end, 0, length, dates_enrollment)
    days = PREENROLLMENT[period]
    return TimeLimits.for_single_analysis_window(
        start, add_days(date, -1), -days, days, dates_enrollment
    )


def window_limit(value, limits: TimeLimits) -> int | None:
    """Jetstream's translation of an exposure-signal window bound (ExposureSignal.
    _window_limit_to_int): days after the first enrollment date, the analysis-window
    bounds shifted by the length of the enrollment period."""
    if value is None or isinstance(value, int):
        return value
    first = dt.date.fromisoformat(limits.first_enrollment_date)
    enrollment_days = (dt.date.fromisoformat(limits.last_enrollment_date) - first).days
    name = WindowName(value)
    if name == WindowName.ENROLLMENT_START:
        return 0
    if name == WindowName.ENROLLMENT_END:
        return enrollment_days
    if name == WindowName.ANALYSIS_WINDOW_START:
        return limits.analysis_windows[0].start + enrollment_days
    return limits.analysis_windows[0].end + enrollment_days


def ma_data_source(ds) -> DataSource:
    return DataSource.from_mcp_data_source(ds)


def ma_exposure_signal(signal, limits: TimeLimits) -> ExposureSignal | None:
    if signal is None:
        return None
    return ExposureSignal(
        name=signal.name,
        data_source=ma_data_source(signal.data_source),
        select_expr=signal.select_expression,
        friendly_name=signal.friendly_name,
        description=signal.description,
        window_start=window_limit(signal.window_start, limits),
        window_end=window_limit(signal.window_end, limits),
    )


def ma_segment(segment) -> Segment:
    sds = segment.data_source
    return Segment(
        name=segment.name,
        data_source=SegmentDataSource(
            name=sds.name,
            from_expr=sds.from_expression,
            window_start=sds.window_start,
            window_end=sds.window_end,
            client_id_column=sds.client_id_column or "client_id",
            submission_date_column=sds.submission_date_column or "submission_date",
            default_dataset=sds.default_dataset,
        ),
        select_expr=segment.select_expression,
    )


def main() -> None:
    request = json.load(sys.stdin)
    records = json.loads(Path(request["experiments"]).read_text())
    record = next(r for r in records if r["slug"] == request["slug"])
    experiment = experiment_from_v8(record)
    configs = load_configs(Path(request["config_repo"]))
    spec = AnalysisSpec.default_for_experiment(experiment, configs)
    custom = configs.spec_for_experiment(experiment.normandy_slug)
    if custom is not None:
        spec.merge(custom)
        # AnalysisSpec.merge leaves parameters out; merge_parameters gives a config
        # parameter its `value`, else its `default` (as for an outcome's parameters).
        spec.merge_parameters(custom.parameters)
    config = spec.resolve(experiment, configs)
    conf = config.experiment

    start = conf.start_date.strftime("%Y-%m-%d")
    end = conf.end_date.strftime("%Y-%m-%d") if conf.end_date else None
    dates_enrollment = conf.enrollment_period + 1
    # Jetstream's platform configuration: Normandy events on desktop, Glean events elsewhere
    query_type = conf.enrollments_query_type or (
        EnrollmentsQueryType.NORMANDY
        if conf.app_name == "firefox_desktop"
        else EnrollmentsQueryType.GLEAN_EVENT
    )
    ma_exp = MAExperiment(
        experiment_slug=experiment.normandy_slug,
        start_date=start,
        num_dates_enrollment=dates_enrollment,
        # Jetstream passes the app id as a BigQuery dataset name (org_mozilla_firefox)
        app_id=re.sub(r"[^a-zA-Z0-9]", "_", record.get("appId") or "").lower() or None,
        app_name=conf.app_name,
    )
    segments = [ma_segment(s) for s in conf.segments]
    out = []
    by_period = {getattr(k, "value", k): v for k, v in config.metrics.items()}
    for analysis in request["analyses"]:
        period, index = analysis["period"], analysis["window_index"]
        date = analysis_date(period, index, start, dates_enrollment, end)
        if date is None:
            continue
        limits = time_limits_for(period, date, start, dates_enrollment, end)
        signal = ma_exposure_signal(conf.exposure_signal, limits)
        enrollments_sql = ma_exp.build_enrollments_query(
            time_limits=limits,
            enrollments_query_type=query_type,
            custom_enrollments_query=conf.enrollment_query,
            exposure_signal=signal,
            segment_list=segments,
            sample_size=conf.sample_size or None,
        )
        summaries = by_period.get(MCP_PERIOD[period], [])
        metrics_out = []
        for basis in (AnalysisBasis.ENROLLMENTS, AnalysisBasis.EXPOSURES):
            chosen = {}
            for summary in summaries:
                m = summary.metric
                if m.data_source is None or m.select_expression is None:
                    continue  # derived (depends_on) metrics are not SQL
                if basis not in m.analysis_bases:
                    continue
                chosen.setdefault(
                    m.name, Metric(m.name, ma_data_source(m.data_source), m.select_expression)
                )
            if not chosen:
                continue
            sql = ma_exp.build_metrics_query(
                metric_list=list(chosen.values()),
                time_limits=limits,
                enrollments_table=request["enrollments_table"],
                analysis_basis=basis,
                exposure_signal=signal,
            )
            metrics_out.append({"basis": basis.value, "sql": sql, "metrics": sorted(chosen)})
        window = limits.analysis_windows[-1]
        out.append(
            {
                "period": period,
                "window_index": index,
                "date": date,
                "window_start": window.start,
                "window_end": window.end,
                "enrollments_sql": enrollments_sql,
                "exposure_signal": signal is not None,
                "segments": [s.name for s in segments],
                "metrics": metrics_out,
            }
        )
    json.dump({"analyses": out}, sys.stdout)


if __name__ == "__main__":
    main()
