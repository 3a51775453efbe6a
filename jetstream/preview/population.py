"""Who a preview analyses, and the spec changes that say so. Pure.

By default the population is the clients who enrolled, sampled deterministically by id
(`[experiment] sample_size`, whole percent, which the enrollment SQL applies). With
`generate_population` nobody needs to have enrolled: clients seen in an activity data
source during the enrollment period are sampled by a hash of their id and assigned to
branches at the configured ratios by another hash, through `[experiment] enrollment_query`,
the engine's own hook for custom enrollments.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import attrs

from jetstream.config.model import AnalysisSpec, DataSource, ExperimentSettings
from jetstream.graph import metrics_of_node
from jetstream.periods import Period
from jetstream.preview.dates import PreviewDates
from jetstream.sql import literals as lit

SAMPLE_BUCKETS = 1_000_000  # population sampling resolution: 0.0001 %
BRANCH_BUCKETS = 10_000


def sample_percent_for_enrollments(percent: float) -> int:
    """The engine samples enrolled clients by whole percent: 1..100."""
    if percent != int(percent) or not 1 <= percent <= 100:
        raise ValueError(
            f"--population-sample-size {percent:g}: sampling enrolled clients takes a whole "
            "percentage from 1 to 100 (use --generate-population for finer samples)"
        )
    return int(percent)


def activity_source(spec: AnalysisSpec, periods: Sequence[Period]) -> DataSource:
    """The data source to draw a generated population from: the one most of the analysed
    metrics read (a `clients_daily` wins a tie)."""
    counts: collections.Counter[str] = collections.Counter()
    by_name: dict[str, DataSource] = {}
    for period in periods:
        for m in spec.metrics_for(period):
            if m.data_source is None:
                continue
            counts[m.data_source.name] += 1
            by_name[m.data_source.name] = m.data_source
    if not counts:
        raise ValueError(f"{spec.slug}: no metric reads a data source to draw clients from")
    best = max(counts.items(), key=lambda kv: (kv[1], "clients_daily" in kv[0], kv[0]))
    return by_name[best[0]]


def generated_population_sql(
    exp: ExperimentSettings, source: DataSource, dates: PreviewDates, percent: float
) -> str:
    """Enrollment rows (client_id, branch, enrollment_date, num_enrollment_events) for a
    sample of the clients active in `source` during the enrollment period."""
    if not 0 < percent <= 100:
        raise ValueError(f"--population-sample-size must be in (0, 100], got {percent:g}")
    if not exp.branches:
        raise ValueError(f"{exp.slug}: no branches to assign clients to")
    cid = source.client_id_column
    day = source.submission_date_column
    keep = max(1, round(percent / 100 * SAMPLE_BUCKETS))
    total = sum(float(b.ratio) for b in exp.branches)
    if total <= 0:
        raise ValueError(f"{exp.slug}: branch ratios must be positive")
    cases, cumulative = [], 0.0
    for b in exp.branches[:-1]:
        cumulative += float(b.ratio) / total
        cases.append(
            f"WHEN bucket < {round(cumulative * BRANCH_BUCKETS)} THEN {lit.string(b.slug)}"
        )
    last = lit.string(exp.branches[-1].slug)
    branch = f"CASE {' '.join(cases)} ELSE {last} END" if cases else last
    salt = lit.string(exp.slug + ":")
    return f"""SELECT client_id, {branch} AS branch, enrollment_date, 1 AS num_enrollment_events
FROM (
  SELECT client_id, enrollment_date,
         MOD(ABS(FARM_FINGERPRINT(CONCAT({salt}, client_id))), {BRANCH_BUCKETS}) AS bucket
  FROM (
    SELECT CAST({cid} AS STRING) AS client_id, MIN({day}) AS enrollment_date
    FROM {source.from_expression} AS population_source
    WHERE {day} BETWEEN {lit.date(dates.start)} AND {lit.date(dates.last_enrollment)}
      AND {cid} IS NOT NULL
      AND MOD(ABS(FARM_FINGERPRINT(CAST({cid} AS STRING))), {SAMPLE_BUCKETS}) < {keep}
    GROUP BY 1
  )
)"""


def analysed_periods(spec: AnalysisSpec, periods: Sequence[Period]) -> list[Period]:
    """The chosen periods plus the pre-enrollment periods their statistics' covariate
    adjustments read."""
    out = [p for p in periods if spec.metrics.get(p)]
    for p in list(out):
        for s in spec.metrics.get(p, ()):
            cov = s.statistic.covariate_adjustment
            if cov is not None and cov.period not in out:
                out.append(cov.period)
    return [p for p in Period if p in out]


def preview_spec(
    spec: AnalysisSpec,
    dates: PreviewDates,
    periods: Sequence[Period],
    *,
    sample_percent: float,
    generate_population: bool = False,
) -> tuple[AnalysisSpec, str]:
    """The spec the preview runs, and a sentence describing its population."""
    keep = analysed_periods(spec, periods)
    if not keep:
        have = ", ".join(p.value for p in spec.periods) or "none"
        wanted = ", ".join(p.value for p in periods)
        raise ValueError(
            f"{spec.slug}: no metrics in the analysis periods {wanted} (configured: {have})"
        )
    exp = attrs.evolve(
        spec.experiment,
        start_date=dates.start,
        enrollment_period=dates.enrollment_period,
        end_date=dates.end,
        status=None,
        skip=False,
        is_enrollment_paused=False,
    )
    if generate_population:
        source = activity_source(spec, keep)
        exp = attrs.evolve(
            exp,
            enrollment_query=generated_population_sql(exp, source, dates, sample_percent),
            sample_size=None,
        )
        ratios = ", ".join(f"{b.slug} {b.ratio:g}" for b in exp.branches)
        population = (
            f"generated: {sample_percent:g}% of the clients active in {source.name} during "
            f"enrollment, assigned to branches at ratios {ratios}"
        )
    else:
        exp = attrs.evolve(exp, sample_size=sample_percent_for_enrollments(sample_percent))
        population = f"enrolled clients, {sample_percent:g}% sampled by client id"
    metrics = {p: s for p, s in spec.metrics.items() if p in keep}
    names = {p: n for p, n in spec.metric_names.items() if p in keep}
    return attrs.evolve(spec, experiment=exp, metrics=metrics, metric_names=names), population


def unit_metrics(spec: AnalysisSpec, period: Period, data_source: str) -> list[str]:
    return [m.name for m in metrics_of_node(spec, period, data_source)]
