"""The statistics' read: per client, the stored values of a unit's metrics (or those of
the unit's staging table), covariates, the client key and segment membership, in one
query per group of bases. BigQuery dialect, pure: tables are named through `ref`, a
function from a table name to its qualified reference."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from jetstream import results
from jetstream.config.model import AnalysisBasis, AnalysisSpec, Metric, Summary
from jetstream.periods import Period, Window
from jetstream.sql import literals as lit
from jetstream.sql.enrollments import CLIENT_KEY_COLUMN
from jetstream.sql.metrics import EXPOSED_COLUMN
from jetstream.sql.results import to_float

TableRef = Callable[[str], str]  # table name -> qualified reference

EXPOSED = "exposed"  # BOOL column of a read serving both bases: in the exposures basis


@attrs.frozen
class Columns:
    """SQL aliases for the values a unit's statistics read."""

    metrics: dict[str, str]  # metric slug -> alias
    covariates: dict[tuple[str, str], str]  # (period, metric) -> alias


@attrs.frozen
class StagedSource:
    """A staging table holding a unit's metric values as wide columns (metric slug ->
    BigQuery type in `types`)."""

    table: str
    types: Mapping[str, str]


def columns(summaries: Sequence[Summary], metrics: Sequence[Metric]) -> Columns:
    """The aliases of the metrics with a value, of ratio components and covariates."""
    wanted: dict[str, None] = {m.name: None for m in metrics if m.select_expression.strip()}
    covs: dict[tuple[str, str], None] = {}
    for s in summaries:
        for key in ("numerator", "denominator"):
            v = s.statistic.params.get(key)
            if isinstance(v, str):
                wanted[v] = None
        cov = s.statistic.covariate_adjustment
        if cov is not None:
            covs[(cov.period.value, cov.metric or s.metric.name)] = None
    return Columns(
        {name: f"m{i}" for i, name in enumerate(wanted)},
        {key: f"c{i}" for i, key in enumerate(covs)},
    )


def segment_columns(spec: AnalysisSpec, period: Period) -> dict[str, str]:
    """Segment name -> the alias of its BOOL membership column in the read: enrollment-time
    segments (s0, s1, ...), then, outside pre-enrollment periods, window segments (w0, ...)."""
    out = {
        s.name: f"s{i}"
        for i, s in enumerate(s for s in spec.segments if not s.depends_on_analysis_window)
    }
    if not period.is_preenrollment:
        wsegs = [s for s in spec.segments if s.depends_on_analysis_window]
        out.update({s.name: f"w{i}" for i, s in enumerate(wsegs)})
    return out


def read_sql(
    ref: TableRef,
    spec: AnalysisSpec,
    period: Period,
    window: Window,
    bases: Sequence[AnalysisBasis],
    cols: Columns,
    metrics: Sequence[Metric] = (),
    staged: StagedSource | None = None,
) -> str:
    """Per-client values of a unit's metrics (with covariates and segment membership) for
    one basis, or for both at once when the exposures basis is the exposed subset of the
    enrollments basis (`tasks.staging.exposures_within_enrollments`): then each metric's
    column holds its enrollments value when it has one (else its exposures value), and
    the column EXPOSED says which clients have exposures rows.

    The values come from the stored rows, or from `staged`, the unit's staging table of
    those bases (the same values: the stored rows are its columns as FLOAT64)."""
    slug = spec.slug
    m_ref = ref(results.metrics_table(slug))
    bases = list(bases)
    own = {m.name: m.analysis_bases for m in metrics}
    if staged is not None:
        cur = _staged_cur(ref(staged.table), staged.types, bases, cols, own)
    else:
        cur = _stored_cur(m_ref, period, window, bases, cols, own)

    selects = ["cur.*"]
    joins = []
    # stored rows are unique per client within (basis, period, window, metric) and
    # segment rows within (period, window, segment): one filtered join per column
    for (p, m), alias in cols.covariates.items():
        joins.append(
            f"""LEFT JOIN (
    SELECT analysis_id, metric_value FROM {m_ref}
    WHERE analysis_basis = 'enrollments' AND period = {lit.string(p)} AND window_index = 0
      AND metric_slug = {lit.string(m)}
) {alias} ON {alias}.analysis_id = cur.analysis_id"""
        )
        selects.append(f"{alias}.metric_value AS {alias}")
    # the client's key orders the rows (run_statistics) and the enrollment-time segments
    joins.append(
        f"LEFT JOIN {ref(results.enrollments_table(slug))} e ON e.analysis_id = cur.analysis_id"
    )
    selects.append(f"e.{CLIENT_KEY_COLUMN} AS {CLIENT_KEY_COLUMN}")
    segs = [s for s in spec.segments if not s.depends_on_analysis_window]
    selects += [f"e.{lit.ident(s.name)} AS s{i}" for i, s in enumerate(segs)]
    wsegs = [s for s in spec.segments if s.depends_on_analysis_window]
    if wsegs and not period.is_preenrollment:
        for i, seg in enumerate(wsegs):
            joins.append(
                f"""LEFT JOIN (
    SELECT analysis_id, in_segment FROM {ref(results.segments_table(slug))}
    WHERE period = {lit.string(period.value)} AND window_index = {window.index}
      AND segment = {lit.string(seg.name)}
) w{i} ON w{i}.analysis_id = cur.analysis_id"""
            )
            selects.append(f"w{i}.in_segment AS w{i}")
    # unordered: run_statistics sorts by client key, outside the warehouse session
    return f"WITH {cur}\nSELECT {', '.join(selects)}\nFROM cur\n" + "\n".join(joins)


Bases = Mapping[str, Sequence[AnalysisBasis]]  # metric slug -> its analysis bases


def _pick(name: str, bases: Sequence[AnalysisBasis], own: Bases) -> AnalysisBasis:
    """The basis whose value a metric's column holds in a read serving `bases`."""
    return next((b for b in bases if b in own.get(name, bases)), bases[0])


def _stored_cur(
    m_ref: str,
    period: Period,
    window: Window,
    bases: Sequence[AnalysisBasis],
    cols: Columns,
    own: Bases,
) -> str:
    def chosen(name: str) -> str:
        if len(bases) == 1:
            return ""
        return f" AND analysis_basis = {lit.string(_pick(name, bases, own).value)}"

    pivot = ",\n           ".join(
        f"MAX(IF(metric_slug = {lit.string(name)}{chosen(name)}, metric_value, NULL)) AS {alias}"
        for name, alias in cols.metrics.items()
    )
    if len(bases) > 1:
        pivot += f""",
           COUNTIF(analysis_basis = {lit.string(AnalysisBasis.EXPOSURES.value)}) > 0 AS {EXPOSED}"""
    return f"""cur AS (
    SELECT analysis_id, branch,
           {pivot}
    FROM {m_ref}
    WHERE period = {lit.string(period.value)} AND window_index = {window.index}
      AND analysis_basis IN ({lit.strings([b.value for b in bases])})
      AND metric_slug IN ({lit.strings(cols.metrics)})
    GROUP BY analysis_id, branch
)"""


def _staged_cur(
    staged_ref: str,
    types: Mapping[str, str],
    bases: Sequence[AnalysisBasis],
    cols: Columns,
    own: Bases,
) -> str:
    """`_stored_cur` from the staging table: each column as the stored metric_value
    (results.to_float); with both bases, a metric stored only on the exposures basis has
    no value for the clients outside it, as in the stored rows."""
    selects = []
    for name, alias in cols.metrics.items():
        column = lit.ident(name)
        if len(bases) > 1 and _pick(name, bases, own) is AnalysisBasis.EXPOSURES:
            # the CAST outside the IF: a failing CAST errors on both engines (inside a
            # branch, the DuckDB path would make it a TRY_CAST: NULL)
            column = f"IF({EXPOSED_COLUMN}, {column}, NULL)"
        value = to_float(column, types.get(name, "FLOAT64"))
        selects.append(f"{value} AS {alias}")
    if len(bases) > 1:
        selects.append(f"{EXPOSED_COLUMN} AS {EXPOSED}")
    cols_sql = ",\n           ".join(selects)
    return f"""cur AS (
    SELECT analysis_id, branch,
           {cols_sql}
    FROM {staged_ref}
)"""
