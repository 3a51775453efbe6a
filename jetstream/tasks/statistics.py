"""Statistics for a unit's metrics: read the per-client values (with covariates, ratio
components and segment membership) in one query per basis, compute each configured
statistic per segment in numpy, store rows with delete + insert in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jetstream import hashing, results
from jetstream.config.model import AnalysisBasis, AnalysisSpec, Metric, Summary
from jetstream.errors import TransientError
from jetstream.periods import Period, Window
from jetstream.problems import Tally
from jetstream.sql import results as res_sql
from jetstream.sql import statistics as stat_sql
from jetstream.sql.enrollments import CLIENT_KEY_COLUMN
from jetstream.sql.statistics import Columns
from jetstream.tasks.context import ErrorCollector, TaskContext, log
from jetstream.tasks.staging import Staged, bases_for, exposures_within_enrollments

if TYPE_CHECKING:  # the statistics package imports scipy: loaded when first needed
    from jetstream.statistics import BranchRows, StatisticRow

Row = tuple["StatisticRow", str]  # a statistic row and its definition hash

Reads = list[tuple[list[AnalysisBasis], pa.Table]]  # the bases each read serves, its rows

ALL_SEGMENT = "all"
IDENTITY = "identity"


def summaries_of(spec: AnalysisSpec, period: Period, metrics: Sequence[Metric]) -> list[Summary]:
    """The statistics configured for `metrics` in `period`."""
    names = {m.name for m in metrics}
    return [s for s in spec.metrics.get(period, ()) if s.metric.name in names]


def _segment_masks(ctx: TaskContext, period: Period, data: pa.Table) -> dict[str, np.ndarray]:
    masks = {ALL_SEGMENT: np.ones(data.num_rows, dtype=bool)}
    for name, alias in stat_sql.segment_columns(ctx.spec, period).items():
        masks[name] = _bool(data.column(alias))
    return masks


def _bool(col: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _float(col: pa.ChunkedArray) -> np.ndarray:
    # nulls of a float64 arrow array become NaN in numpy
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def read_statistics(
    ctx: TaskContext,
    period: Period,
    window: Window,
    metrics: Sequence[Metric],
    staged: Sequence[Staged] = (),
) -> Reads:
    """The per-client rows the unit's statistics read, one query per group of bases; from
    a `staged` table holding every needed column of those bases when there is one."""
    cols = stat_sql.columns(summaries_of(ctx.spec, period, metrics), metrics)
    if not metrics or not cols.metrics:
        return []
    bases = bases_for(period, metrics)
    if exposures_within_enrollments(ctx.spec, period, bases):
        groups = [bases]
    else:
        groups = [[b] for b in bases]
    out: Reads = []
    for group in groups:
        source = next(
            (
                st
                for st in staged
                if st.bases == frozenset(group) and set(cols.metrics) <= set(st.names)
            ),
            None,
        )
        staged_source = (
            None if source is None else stat_sql.StagedSource(source.table, source.types)
        )
        sql = stat_sql.read_sql(
            ctx.ref, ctx.spec, period, window, group, cols, metrics, staged_source
        )
        with ctx.session():
            out.append((group, ctx.query(sql)))
    return out


def run_statistics(
    ctx: TaskContext,
    period: Period,
    window: Window,
    metrics: Sequence[Metric],
    errors: ErrorCollector,
    reads: Reads | None = None,
) -> int:
    """Compute and store the unit's statistics from `reads` (default: read the stored
    rows now)."""
    spec = ctx.spec
    summaries = summaries_of(spec, period, metrics)
    if not metrics:
        return 0
    cols = stat_sql.columns(summaries, metrics)
    if not cols.metrics:
        return 0
    # once per summary, not per segment and basis
    hashes = [hashing.statistic_hash(spec, s.metric, s.statistic) for s in summaries]
    rows: list[Row] = []
    if reads is None:
        reads = read_statistics(ctx, period, window, metrics)
    # the statistics' problems, one row per kind with its count (not one per segment,
    # basis and reference branch)
    tally = Tally()
    for read_bases, unordered in reads:
        data = in_key_order(unordered)
        for basis in read_bases:
            rows += _basis_statistics(
                ctx, period, window, basis, data, summaries, cols, hashes, errors, tally
            )
    for level, metric, statistic, etype, message in tally.rows():
        errors.add(message, level=level, metric=metric, statistic=statistic, exception_type=etype)
    n = _store(ctx, period, window, metrics, rows)
    log.info("statistics stored", period=period.value, window=window.published_index, rows=n)
    return n


def in_key_order(rows: pa.Table) -> pa.Table:
    """`rows` in a fixed order, whatever order the warehouse returned them in, so the
    resampling statistics reproduce their results exactly on reruns: by client key (an
    INT64 argsort: 0.07 s for 600k clients, against 0.32 s to sort their 36-character ids),
    then by id among clients sharing a key (a hash collision; reported by
    ensure-enrollments). The id and key columns, which no statistic reads, are dropped
    before the reordering, so it moves no strings."""
    keys = rows.column(CLIENT_KEY_COLUMN).to_numpy(zero_copy_only=False)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    if ordered.size > 1 and bool((ordered[1:] == ordered[:-1]).any()):
        order = pc.sort_indices(
            rows, [(CLIENT_KEY_COLUMN, "ascending"), ("analysis_id", "ascending")]
        ).to_numpy()
    return rows.drop_columns(["analysis_id", CLIENT_KEY_COLUMN]).take(order)


def _basis_statistics(
    ctx: TaskContext,
    period: Period,
    window: Window,
    basis: AnalysisBasis,
    data: pa.Table,
    summaries: Sequence[Summary],
    cols: Columns,
    hashes: Sequence[str],
    errors: ErrorCollector,
    tally: Tally,
) -> list[Row]:
    """Identity counts, SRM checks and every summary of one basis, for every segment."""
    from jetstream import statistics as stats

    exp = ctx.spec.experiment
    rows: list[Row] = []
    in_basis = np.ones(data.num_rows, dtype=bool)
    if stat_sql.EXPOSED in data.column_names and basis is AnalysisBasis.EXPOSURES:
        in_basis = _bool(data.column(stat_sql.EXPOSED))
    if not in_basis.any():
        errors.add(f"no clients in the {basis.value} basis", level="warning")
        return rows
    # branch codes once per read, branch rows once per segment: no string
    # comparisons in the hundreds of statistic calls that follow
    encoded = pc.dictionary_encode(data.column("branch").combine_chunks())
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    codes_all = indices.to_numpy(zero_copy_only=False)
    branch_names = [str(v) for v in encoded.dictionary.to_pylist()]
    values = {alias: _float(data.column(alias)) for alias in cols.metrics.values()}
    covs = {alias: _float(data.column(alias)) for alias in cols.covariates.values()}
    masks = {k: m & in_basis for k, m in _segment_masks(ctx, period, data).items()}
    arrays = Arrays(values, covs, cols, tally)
    ratios = {b.slug: b.ratio for b in exp.branches}
    for segment, mask in masks.items():
        branch = stats.BranchRows.from_codes(codes_all[mask], branch_names)
        counts = {}
        for b in exp.branch_slugs:
            found = branch.of(b)
            counts[b] = 0 if found is None else int(found.size)
        for b, n in counts.items():
            count = stats.StatisticRow(
                metric=IDENTITY,
                statistic="count",
                branch=b,
                point=float(n),
                segment=segment,
                analysis_basis=basis.value,
            )
            rows.append((count, ""))
        srm_rows, srm_problems = stats.srm_check(counts, ratios, metric=IDENTITY)
        for r in srm_rows:
            srm = attrs.evolve(r, metric=IDENTITY, segment=segment, analysis_basis=basis.value)
            rows.append((srm, ""))
        for problem in srm_problems:
            note = (
                " (exposure-based populations may be legitimately imbalanced)"
                if basis is AnalysisBasis.EXPOSURES
                else ""
            )
            errors.add(
                f"{problem.message} [segment {segment}, {basis.value} basis]{note}",
                level=problem.level,
                metric=IDENTITY,
                statistic="srm",
                exception_type="SampleRatioMismatch",
            )
        for i, s in enumerate(summaries):
            if basis not in s.metric.analysis_bases and not period.is_preenrollment:
                continue
            part = Slice(basis, segment, mask, branch)
            rows += _one_summary(ctx, s, period, window, part, arrays, errors, hashes[i])
    return rows


@attrs.frozen
class Arrays:
    """One read's per-client columns: metric values and covariates by SQL alias."""

    values: dict[str, np.ndarray]
    covs: dict[str, np.ndarray]
    cols: Columns
    tally: Tally


@attrs.frozen(eq=False)
class Slice:
    """The rows one set of statistics sees: a basis and segment, their row mask and
    branch rows."""

    basis: AnalysisBasis
    segment: str
    mask: np.ndarray
    branch: BranchRows


def _one_summary(
    ctx: TaskContext,
    s: Summary,
    period: Period,
    window: Window,
    part: Slice,
    arrays: Arrays,
    errors: ErrorCollector,
    definition_hash: str,
) -> list[Row]:
    from jetstream import statistics as stats

    spec = ctx.spec
    basis, segment, mask, branch = part.basis, part.segment, part.mask, part.branch
    values, covs, cols = arrays.values, arrays.covs, arrays.cols
    st = s.statistic
    # only the columns this statistic reads (its metric, a ratio's components)
    needed = {s.metric.name} | {
        v for k in ("numerator", "denominator") if isinstance(v := st.params.get(k), str)
    }
    table: dict[str, np.ndarray] = {
        name: values[alias][mask] for name, alias in cols.metrics.items() if name in needed
    }
    if not s.metric.select_expression.strip() and st.name != "population_ratio":
        errors.add(
            f"{s.metric.name} has no select_expression; only population_ratio can summarise it",
            metric=s.metric.name,
            statistic=st.name,
            exception_type="ConfigError",
        )
        return []
    covariate = None
    cov = st.covariate_adjustment
    if cov is not None:
        alias = cols.covariates[(cov.period.value, cov.metric or s.metric.name)]
        arr = covs[alias][mask]
        if np.all(np.isnan(arr)):
            errors.add(
                f"no {cov.period.value} values of {cov.metric or s.metric.name}: "
                "unadjusted model used",
                level="warning",
                metric=s.metric.name,
                statistic=st.name,
            )
        else:
            covariate = "__covariate__"
            table[covariate] = arr
    seed = stats.derive_seed(
        spec.slug, s.metric.name, st.name, period.value, window.index, segment, basis.value
    )
    try:
        out, problems = stats.summarise(
            stats.SummaryRequest(
                table,
                s.metric.name,
                st.name,
                params={k: v for k, v in st.params.items() if k != "covariate_adjustment"},
                pre_treatments=[(p.name, p.args) for p in st.pre_treatments],
                covariate=covariate,
                reference_branch=None,
                branches=list(spec.experiment.branch_slugs),
                seed=seed,
                analysis_period_days=window.length,
                branch_codes=branch,
            )
        )
    except TransientError:
        raise
    except Exception as exc:
        errors.add(f"{st.name}: {exc}", metric=s.metric.name, statistic=st.name, exception=exc)
        return []
    # counted per kind over the unit's segments and bases (deciles repeat a message for
    # every parameter: one occurrence per distinct message of this call)
    for level, message in dict.fromkeys((p.level, p.message) for p in problems):
        arrays.tally.add(
            message,
            level=level,
            metric=s.metric.name,
            statistic=st.name,
            exception_type="StatisticError",
            segment=segment,
            basis=basis.value,
        )
    return [
        (attrs.evolve(r, segment=segment, analysis_basis=basis.value), definition_hash) for r in out
    ]


def _store(
    ctx: TaskContext,
    period: Period,
    window: Window,
    metrics: Sequence[Metric],
    rows: Sequence[Row],
) -> int:
    slug = ctx.spec.slug
    names = sorted({m.name for m in metrics} | {IDENTITY})
    records = []
    for r, h in rows:
        rec = {name: getattr(r, name, None) for name, _ in results.STATISTICS_COLUMNS}
        rec.update(period=period.value, window_index=window.index, definition_hash=h)
        records.append(rec)
    schema = pa.schema(
        [
            (name, {"STRING": pa.string(), "FLOAT64": pa.float64(), "INT64": pa.int64()}[typ])
            for name, typ in results.STATISTICS_COLUMNS
        ]
    )
    table = pa.Table.from_pylist(records, schema=schema)
    ref = ctx.ref(results.statistics_table(slug))
    staging = results.staging_table(slug, "stats", period.value, str(window.index), names[0])
    bases = None
    if not metrics or not records:
        bases = sorted({str(r["analysis_basis"]) for r in records} or {"enrollments"})
    delete = res_sql.delete_rows_sql(
        ref,
        metric_column=res_sql.STATISTICS_METRIC_COLUMN,
        period=period.value,
        window_index=window.index,
        bases=bases,
        metrics=names,
    )
    with ctx.session():
        ctx.warehouse.load_arrow(staging, table, mode="replace")
        try:
            insert = res_sql.copy_rows_sql(ref, ctx.ref(staging), results.STATISTICS_COLUMNS)
            ctx.transaction([delete, insert])
        finally:
            ctx.warehouse.drop_table(staging)
    return len(records)
