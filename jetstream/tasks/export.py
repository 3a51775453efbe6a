"""`export`: pivot views, multiple-comparison adjustment, and the published JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from jetstream import results
from jetstream.periods import Period
from jetstream.sql import results as res_sql
from jetstream.tasks import incomplete
from jetstream.tasks.context import TaskContext, log
from jetstream.tasks.statistics import IDENTITY

if TYPE_CHECKING:
    from jetstream.artifacts import ArtifactStore


def create_views(ctx: TaskContext) -> None:
    spec = ctx.spec
    metrics_ref = ctx.ref(results.metrics_table(spec.slug))
    for period in spec.periods:
        names = [m.name for m in spec.metrics_for(period)]
        if not names:
            continue
        view = ctx.ref(results.metrics_view(spec.slug, period.value))
        ctx.execute(res_sql.create_view_sql(view, metrics_ref, names, period.value))


def adjust_p_values(ctx: TaskContext) -> None:
    """Fill p_value_adjusted per period (families: `statistics.multiple_testing`), when
    `[experiment] multiple_comparisons` asks for it."""
    method = ctx.spec.experiment.multiple_comparisons.value
    if method == "none":
        return
    from jetstream import statistics as stats

    ref = ctx.ref(results.statistics_table(ctx.spec.slug))
    rows = ctx.query(res_sql.select_all_sql(ref)).to_pylist()
    if not rows:
        return
    fields = set(attrs.fields_dict(stats.StatisticRow))
    objs = [stats.StatisticRow(**{k: v for k, v in r.items() if k in fields}) for r in rows]
    families: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        key = r["period"]  # every window: a hypothesis is (metric, pair, window)
        families.setdefault(key, []).append(i)
    out = list(rows)
    for idx in families.values():
        adjusted = stats.adjust_p_values(
            [objs[i] for i in idx], method, reference=ctx.spec.experiment.reference_branch
        )
        for i, a in zip(idx, adjusted, strict=True):
            out[i] = {**rows[i], "p_value_adjusted": a.p_value_adjusted}
    import pyarrow as pa

    staging = results.staging_table(ctx.spec.slug, "stats_adjusted")
    ctx.warehouse.load_arrow(staging, pa.Table.from_pylist(out), mode="replace")
    try:
        ctx.transaction(
            [
                res_sql.delete_rows_sql(ref),
                res_sql.copy_rows_sql(ref, ctx.ref(staging), results.STATISTICS_COLUMNS),
            ]
        )
    finally:
        ctx.warehouse.drop_table(staging)


def delete_removed_metrics(ctx: TaskContext) -> None:
    """Rows of metrics no longer in the config (per period) are deleted, with their
    statistics; periods no longer analysed lose all their rows."""
    spec = ctx.spec
    m_ref = ctx.ref(results.metrics_table(spec.slug))
    s_ref = ctx.ref(results.statistics_table(spec.slug))
    analysed = {p.value: [m.name for m in spec.metrics_for(p)] for p in Period}
    ctx.transaction(res_sql.removed_metrics_sql(m_ref, s_ref, analysed, IDENTITY))


def metadata_inputs(
    ctx: TaskContext,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """The outcomes ({slug: summary}) and external config of the metadata document, read
    from the config repository and the Experimenter record the task was given (a task
    without them publishes no outcomes and no external config)."""
    from jetstream import export

    spec = ctx.spec
    if not ctx.config_repo:
        return {}, None
    from jetstream.config import ConfigRepo
    from jetstream.config_checkout import resolve

    repo = ConfigRepo.load(resolve(ctx.config_repo))
    app = spec.experiment.app_name
    outcomes = {}
    for slug in spec.experiment.outcomes:
        doc = repo.outcomes.get((app, slug))
        if doc is not None:
            outcomes[slug] = export.outcome_summary(slug, doc)
    external = export.external_config_overrides(
        spec.experiment,
        ctx.record,
        _experiment_table(repo.experiment_config(spec.slug)),
        url=export.config_file_url(spec.slug, ctx.config_repo),
    )
    return outcomes, external


def _experiment_table(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The `[experiment]` table of an experiment config file ({} without one), None
    without a file."""
    if config is None:
        return None
    table = config.get("experiment")
    return table if isinstance(table, dict) else {}


def run_export(ctx: TaskContext, store: ArtifactStore) -> list[str]:
    from jetstream import export

    spec = ctx.spec
    slug = spec.slug
    with ctx.session():
        ctx.ensure_tables()
        delete_removed_metrics(ctx)
        create_views(ctx)
        adjust_p_values(ctx)
        stat_rows = ctx.query(
            res_sql.select_all_sql(ctx.ref(results.statistics_table(slug)))
        ).to_pylist()
        error_rows = ctx.query(
            res_sql.experiment_errors_sql(ctx.ref(results.ERRORS_TABLE), slug)
        ).to_pylist()
    # tables hold the 0-based window k; published files carry k + 1
    for r in stat_rows:
        r["window_index"] = None if r["window_index"] is None else r["window_index"] + 1
    for r in error_rows:
        r["window"] = None if r["window"] is None else r["window"] + 1
    srm_rows = sorted(
        (r for r in stat_rows if r["statistic"] == "srm"),
        key=lambda r: tuple(
            str(r.get(k)) for k in ("period", "window_index", "analysis_basis", "segment", "branch")
        ),
    )
    for r in srm_rows:
        if r["analysis_basis"] == "exposures":
            r["note"] = "exposure-based populations may be legitimately imbalanced"
    outcomes, external = metadata_inputs(ctx)
    metadata = export.metadata_document(
        export.spec_summary(spec, outcomes=outcomes, external_config=external),
        srm_rows,
        analysis_start_time=ctx.started,
    )
    # tasks that finally failed: an error row each; their periods' files are not replaced
    failed, unpublished = incomplete.failure_rows(incomplete.failed_tasks(), slug, ctx.run_id)
    stat_rows = [r for r in stat_rows if Period.parse(str(r["period"])) not in unpublished]
    periods = [p for p in spec.periods if p not in unpublished]
    paths = export.publish(
        store, slug, stat_rows, [*error_rows, *failed], metadata, periods=periods
    )
    log.info("exported", experiment=slug, files=len(paths))
    return paths
