"""Metric SQL per data source: daily partials, exact roll-ups, direct computation, and the
row-per-metric insert. BigQuery dialect, pure.

A unit of work is (experiment, period, window, data source). For each analysis basis it
builds one wide query (one column per metric, one row per client) from:
- roll-ups of the stored daily partials for decomposable metrics (no telemetry read), and
- a direct query over telemetry for the others (COUNT DISTINCT, ARRAY_AGG, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import attrs

from jetstream.config.model import (
    AnalysisBasis,
    AnalysisSpec,
    DataSource,
    ExperimentsColumnType,
    ExposureSignal,
    Metric,
)
from jetstream.periods import Period, window
from jetstream.sql import literals as lit
from jetstream.sql.decompose import Decomposition, NotDecomposable, decompose, rolled_select
from jetstream.sql.enrollments import (
    CLIENT_KEY_COLUMN,
    bounded,
    earliest_day,
    exposure_signal_dates,
)

EXPOSED_COLUMN = "_jetstream_exposed"  # see wide_sql(flag_exposed=...)
# days from the client's enrollment date to the row's day, stored in each partials row
ENROLLMENT_DAY_COLUMN = "enrollment_day"
# in the definition hash of the per-day tables: a new layout rebuilds them (3: rows keyed
# by CLIENT_KEY_COLUMN instead of analysis_id)
PARTIALS_LAYOUT = 3
KEY = CLIENT_KEY_COLUMN
PRE_ENROLLMENT_DAYS = 28  # the longest pre-enrollment period (preenrollment_days28)


def lead_days(periods: Iterable[Period]) -> int:
    """How many days before a client's enrollment date the windows of `periods` start:
    28 with preenrollment_days28, 7 with preenrollment_week, else 0 (every other window
    starts on or after the enrollment or exposure date, which is never before it)."""
    return max((-window(p, 0).start for p in periods if p.is_preenrollment), default=0)


def source_lead_days(spec: AnalysisSpec, data_source: str) -> int:
    """`lead_days` of the periods in which some metric of `data_source` is analysed: the
    daily partials of that source start this many days before the experiment's start."""
    return lead_days(
        p
        for p in spec.periods
        if any(m.data_source is not None and m.data_source.name == data_source
               for m in spec.metrics_for(p))
    )  # fmt: skip


def partials_first_day(spec: AnalysisSpec, data_source: str) -> dt.date:
    """The first telemetry day the daily partials of `data_source` read."""
    start = spec.experiment.start_date
    assert start is not None, f"{spec.slug}: no start date"
    return start - dt.timedelta(days=source_lead_days(spec, data_source))


@attrs.frozen
class MetricPlan:
    """How one metric of a data source is computed."""

    metric: Metric
    decomposition: Decomposition | None  # None: computed directly from telemetry
    reason: str | None = None  # why not decomposable

    @property
    def method(self) -> str:
        return "rollup" if self.decomposition is not None else "direct"


def plan_metrics(metrics: Sequence[Metric]) -> list[MetricPlan]:
    out = []
    for i, m in enumerate(metrics):
        d = decompose(m.select_expression, f"l{i}")
        if isinstance(d, NotDecomposable):
            out.append(MetricPlan(m, None, d.reason))
        else:
            out.append(MetricPlan(m, d))
    return out


def experiments_filter(ds: DataSource, slug: str, date_expr: str) -> str:
    """Rows of the enrollment day count only when they carry the experiment annotation."""
    t = ds.experiments_column_type
    key = lit.string(slug)
    if t is ExperimentsColumnType.SIMPLE:
        cond = f"mozfun.map.get_key(ds.experiments, {key}) IS NOT NULL"
    elif t is ExperimentsColumnType.NATIVE:
        cond = f"mozfun.map.get_key(ds.experiments, {key}).branch IS NOT NULL"
    elif t is ExperimentsColumnType.GLEAN:
        cond = f"mozfun.map.get_key(ds.ping_info.experiments, {key}).branch IS NOT NULL"
    else:
        return "TRUE"
    return f"(ds.{ds.submission_date_column} != {date_expr} OR {cond})"


def partials_sql(
    spec: AnalysisSpec,
    ds: DataSource,
    plans: Sequence[MetricPlan],
    enrollments_ref: str,
    first_day: dt.date,
    last_day: dt.date,
) -> str:
    """Per enrolled client and day in [first_day, last_day], every leaf of the source's
    decomposable metrics. Each day of telemetry is read once per experiment; the caller
    picks the days (from `partials_first_day`). A client's rows start PRE_ENROLLMENT_DAYS
    before its enrollment whatever the source's lead, so the rows of a day never depend on
    which periods use the source: when a pre-enrollment period is added later, only the
    earlier days are missing and get computed (tasks.partials.ensure_days)."""
    leaves = [leaf for p in plans if p.decomposition for leaf in p.decomposition.leaves]
    date_col = f"ds.{ds.submission_date_column}"
    cols = ",\n       ".join(f"{leaf.sql} AS {leaf.column}" for leaf in leaves)
    return f"""SELECT e.{KEY},
       {date_col} AS submission_date,
       DATE_DIFF({date_col}, e.enrollment_date, DAY) AS {ENROLLMENT_DAY_COLUMN},
       {cols}
FROM {enrollments_ref} e
JOIN {ds.from_expression} ds ON ds.{ds.client_id_column} = e.analysis_id
WHERE {date_col} BETWEEN {lit.date(first_day)} AND {lit.date(last_day)}
  AND {date_col} >= {lit.add_days("e.enrollment_date", -PRE_ENROLLMENT_DAYS)}
  AND {experiments_filter(ds, spec.slug, "e.enrollment_date")}
GROUP BY 1, 2, 3"""


def exposure_days_first_day(spec: AnalysisSpec) -> dt.date:
    """The first telemetry day the custom exposure signal's window can reach."""
    sig = spec.exposure_signal
    return earliest_day(sig.window_start if sig is not None else None, spec.experiment)


def exposure_days_sql(
    signal: ExposureSignal, clients_ref: str, first_day: dt.date, last_day: dt.date
) -> str:
    """Days on which each enrolled client matched the custom exposure signal, with the
    day's ENROLLMENT_DAY_COLUMN (days since the client's enrollment)."""
    ds = signal.data_source
    date_col = f"ds.{ds.submission_date_column}"
    return f"""SELECT e.{KEY}, {date_col} AS submission_date,
       DATE_DIFF({date_col}, e.enrollment_date, DAY) AS {ENROLLMENT_DAY_COLUMN}
FROM {clients_ref} e
JOIN {ds.from_expression} ds ON ds.{ds.client_id_column} = e.analysis_id
WHERE {date_col} BETWEEN {lit.date(first_day)} AND {lit.date(last_day)}
  AND {date_col} >= {lit.add_days("e.enrollment_date", -PRE_ENROLLMENT_DAYS)}
GROUP BY 1, 2, 3
HAVING COALESCE(LOGICAL_OR({signal.select_expression}), FALSE)"""


@attrs.frozen
class WindowSpec:
    start: int  # days after the anchor (enrollment or exposure date)
    end: int


def population_sql(
    spec: AnalysisSpec,
    basis: AnalysisBasis,
    window: WindowSpec,
    enrollments_ref: str,
    exposure_days_ref: str | None,
) -> tuple[str, str]:
    """The population of a basis for a window: (query with analysis_id, its key, branch,
    enrollment_date, anchor_date; the anchor column)."""
    base = (
        f"SELECT analysis_id, {KEY}, branch, enrollment_date, {{anchor}} AS anchor_date "
        f"FROM {enrollments_ref}"
    )
    if basis is AnalysisBasis.ENROLLMENTS:
        return base.format(anchor="enrollment_date"), "enrollment_date"
    if spec.exposure_signal is None:
        return (
            base.format(anchor="exposure_date") + " WHERE exposure_date IS NOT NULL",
            "exposure_date",
        )
    sig = spec.exposure_signal
    assert exposure_days_ref is not None
    # each exposure day knows its day since enrollment: no join to find who is exposed;
    # the signal's dates for this window as Jetstream has them (exposure_signal_dates)
    dates = exposure_signal_dates(spec.experiment, sig, window.start, window.end)
    conds = [
        f"x.submission_date BETWEEN {lit.date(dates.first)} AND {lit.date(dates.last)}",
        f"x.{ENROLLMENT_DAY_COLUMN} >= 0",
    ]
    body = f"""SELECT e.analysis_id, e.{KEY}, e.branch, e.enrollment_date,
       e.enrollment_date AS anchor_date
    FROM {enrollments_ref} e
    WHERE e.{KEY} IN (
        SELECT x.{KEY} FROM {exposure_days_ref} x
        WHERE {" AND ".join(conds)}
    )"""
    return body, "enrollment_date"


def window_dates(spec: AnalysisSpec, window: WindowSpec) -> tuple[dt.date, dt.date] | None:
    """Constant dates covering every client's window (None without enrollment dates).
    Anchors (enrollment or exposure dates) all fall between the start date and the last
    enrollment date."""
    exp = spec.experiment
    if exp.start_date is None or exp.last_enrollment_date is None:
        return None
    return (
        exp.start_date + dt.timedelta(days=window.start),
        exp.last_enrollment_date + dt.timedelta(days=window.end),
    )


def bounded_source(spec: AnalysisSpec, ds: DataSource, window: WindowSpec) -> str:
    """The data source limited to `window_dates`, so the warehouse prunes partitions
    (BigQuery bills what it scans)."""
    dates = window_dates(spec, window)
    if dates is None:
        return ds.from_expression
    return bounded(ds.from_expression, ds.submission_date_column, *dates)


def wide_sql(
    spec: AnalysisSpec,
    ds: DataSource | None,
    plans: Sequence[MetricPlan],
    basis: AnalysisBasis,
    window: WindowSpec,
    enrollments_ref: str,
    partials_ref: str | None,
    exposure_days_ref: str | None = None,
    flag_exposed: str | None = None,
) -> str:
    """One row per client of the basis population, one column per metric; with
    `flag_exposed` (a population query) also the BOOL column EXPOSED_COLUMN: whether the
    client is in that population."""
    population, anchor = population_sql(spec, basis, window, enrollments_ref, exposure_days_ref)
    lo = lit.add_days("p.anchor_date", window.start)
    hi = lit.add_days("p.anchor_date", window.end)
    ctes = [f"population AS ({population})"]
    selects = ["p.analysis_id", "p.branch"]
    joins = []
    rolled = [pl for pl in plans if pl.decomposition is not None]
    direct = [pl for pl in plans if pl.decomposition is None]
    if rolled:
        assert partials_ref is not None
        columns = [
            (lit.ident(pl.metric.name), pl.decomposition)
            for pl in rolled
            if pl.decomposition is not None
        ]
        # constant bounds too: the warehouse skips the partials of other days
        dates = window_dates(spec, window)
        days = "TRUE"
        if dates is not None:
            days = f"submission_date BETWEEN {lit.date(dates[0])} AND {lit.date(dates[1])}"
        if anchor == "enrollment_date":
            # windows count from enrollment: each partials row knows its day of the window,
            # so the leaves are filtered, then aggregated per client, before any join; a
            # client without rows in the window gets the expression over no rows
            partials = f"""(
        SELECT * FROM {partials_ref}
        WHERE {days} AND {ENROLLMENT_DAY_COLUMN} BETWEEN {window.start} AND {window.end}
    )"""
            by_client = rolled_select(
                [f"l.{KEY}"], columns, f"FROM {partials} l\n    GROUP BY l.{KEY}"
            )
            ctes.append(f"rolled AS (\n{by_client}\n)")
            none = rolled_select([], columns, f"FROM (SELECT * FROM {partials_ref} WHERE FALSE) l")
            ctes.append(f"no_rows AS (\n{none}\n)")
            joins.append(f"LEFT JOIN rolled r ON r.{KEY} = p.{KEY}")
            joins.append("CROSS JOIN no_rows z")
            selects += [
                f"IF(r.{KEY} IS NULL, z.{name}, r.{name}) AS {name}"
                for name in (lit.ident(pl.metric.name) for pl in rolled)
            ]
        else:
            partials = f"(\n        SELECT * FROM {partials_ref}\n        WHERE {days}\n    )"
            by_client = rolled_select(
                [f"p.{KEY}"],
                columns,
                f"""FROM population p
    LEFT JOIN {partials} l
      ON l.{KEY} = p.{KEY} AND l.submission_date BETWEEN {lo} AND {hi}
    GROUP BY p.{KEY}""",
            )
            ctes.append(f"rolled AS (\n{by_client}\n)")
            joins.append(f"LEFT JOIN rolled r ON r.{KEY} = p.{KEY}")
            selects += [f"r.{lit.ident(pl.metric.name)}" for pl in rolled]
    if direct:
        assert ds is not None
        date_col = f"ds.{ds.submission_date_column}"
        cols = ",\n           ".join(
            f"{pl.metric.select_expression} AS {lit.ident(pl.metric.name)}" for pl in direct
        )
        ctes.append(
            f"""direct AS (
    SELECT e.analysis_id,
           {cols}
    FROM population e
    LEFT JOIN {bounded_source(spec, ds, window)} ds
      ON ds.{ds.client_id_column} = e.analysis_id
     AND {date_col} BETWEEN {lit.add_days("e.anchor_date", window.start)} AND {lit.add_days("e.anchor_date", window.end)}
     AND {experiments_filter(ds, spec.slug, "e.enrollment_date")}
    GROUP BY e.analysis_id
)"""
        )
        joins.append("LEFT JOIN direct d ON d.analysis_id = p.analysis_id")
        selects += [f"d.{lit.ident(pl.metric.name)}" for pl in direct]
    if flag_exposed is not None:
        ctes.append(f"exposed AS (SELECT {KEY} FROM ({flag_exposed}))")
        joins.append(f"LEFT JOIN exposed x ON x.{KEY} = p.{KEY}")
        selects.append(f"x.{KEY} IS NOT NULL AS {EXPOSED_COLUMN}")
    with_sql = ",\n".join(ctes)
    sel = ",\n       ".join(selects)
    join_sql = "\n".join(joins)
    return f"WITH {with_sql}\nSELECT {sel}\nFROM population p\n{join_sql}"


def exposed_subset_sql(wide_ref: str) -> str:
    """The rows of a wide table made with `flag_exposed` whose client is exposed."""
    return f"(SELECT * FROM {wide_ref} WHERE {EXPOSED_COLUMN})"


def direct_only_sql(
    spec: AnalysisSpec,
    ds: DataSource,
    metrics: Sequence[Metric],
    basis: AnalysisBasis,
    window: WindowSpec,
    enrollments_ref: str,
    exposure_days_ref: str | None = None,
) -> str:
    """Every metric computed straight from telemetry (the reference's way; used by tests
    and by the benchmark to compare telemetry rows scanned)."""
    plans = [MetricPlan(m, None, "forced direct") for m in metrics]
    return wide_sql(spec, ds, plans, basis, window, enrollments_ref, None, exposure_days_ref)


def derived_sql(
    metrics: Sequence[Metric],
    metrics_ref: str,
    basis: AnalysisBasis,
    period: str,
    window_index: int,
) -> str:
    """Metrics computed from other metrics' values (depends_on), per client."""
    deps = sorted({d for m in metrics for d in m.depends_on})
    pivot = ",\n           ".join(
        f"MAX(IF(metric_slug = {lit.string(d)}, metric_value, NULL)) AS {lit.ident(d)}"
        for d in deps
    )
    cols = ",\n       ".join(f"{m.select_expression} AS {lit.ident(m.name)}" for m in metrics)
    return f"""WITH deps AS (
    SELECT analysis_id, branch,
           {pivot}
    FROM {metrics_ref}
    WHERE analysis_basis = {lit.string(basis.value)}
      AND period = {lit.string(period)}
      AND window_index = {int(window_index)}
      AND metric_slug IN ({lit.strings(deps)})
    GROUP BY analysis_id, branch
)
SELECT analysis_id, branch,
       {cols}
FROM deps"""
