"""Metrics and their statistics: looked up over the layers, select expressions rendered
and checked, dependencies (depends_on, ratio numerators, covariates) resolved too."""

from __future__ import annotations

from jetstream.config.context import Context
from jetstream.config.layers import METRICS, Found, Ref
from jetstream.config.model import DataSource, Metric, StatisticSpec
from jetstream.config.problems import did_you_mean, key_path
from jetstream.config.sources import Sources
from jetstream.config.tables import MetricTable, StatisticTable
from jetstream.periods import CONFIG_KEYS
from jetstream.statistics import catalogue


class Metrics:
    def __init__(self, ctx: Context, sources: Sources):
        self.ctx = ctx
        self.sources = sources
        self.metrics: dict[str, Metric | None] = {}
        self.tables: dict[str, MetricTable] = {}  # of the metrics looked up
        self.used_by_others: set[str] = set()
        self._building: list[str] = []
        self._statistics: dict[str, list[StatisticSpec]] = {}

    def metric(self, name: str, ref: Ref) -> Metric | None:
        if name in self.metrics:
            return self.metrics[name]
        ctx = self.ctx
        if name in self._building:
            cycle = " -> ".join([*self._building[self._building.index(name) :], name])
            ctx.error_at(ref, f"metrics depend on each other in a cycle: {cycle}")
            return None
        found = ctx.layers.find(METRICS, name)
        if found is None:
            ctx.error_at(
                ref,
                f"undefined metric {name!r} for platform {ctx.app!r}"
                f"{did_you_mean(name, ctx.layers.known_names(METRICS))}",
            )
            self.metrics[name] = None
            return None
        if ctx.bad_name(name, found.top):
            self.metrics[name] = None
            return None
        self._building.append(name)
        try:
            metric = self._build(name, found)
        finally:
            self._building.pop()
        self.metrics[name] = metric
        self.tables[name] = found.table
        return metric

    def _dependencies(self, table: MetricTable, found: Found) -> tuple[list[str], bool]:
        """The depends_on names, resolved; False when one does not resolve."""
        ok = True
        depends: list[str] = []
        if table.depends_on:
            dref = found.origin["depends_on"]
            for i, dep in table.depends_on:
                self.used_by_others.add(dep)
                if self.metric(dep, Ref(dref.file, key_path(dref.key, i))) is None:
                    ok = False
                depends.append(dep)
        return depends, ok

    def _build(self, name: str, found: Found) -> Metric | None:
        ctx = self.ctx
        table: MetricTable = found.table
        depends, ok = self._dependencies(table, found)
        data_source: DataSource | None = None
        rendered: str | None = None
        if table.select_expression is None:
            if not depends:
                ctx.error_at(
                    found.top,
                    f"undefined metric {name!r} for platform {ctx.app!r}: this table has no "
                    "select_expression or depends_on, and no definitions file defines it"
                    f"{did_you_mean(name, ctx.layers.known_names(METRICS) - {name})}",
                )
                return None
        else:
            if table.data_source is None:
                ctx.error_at(
                    found.top, f"metric {name!r} has a select_expression but no data_source"
                )
                ok = False
            else:
                data_source = self.sources.data_source(
                    table.data_source, found.origin["data_source"]
                )
                ok = ok and data_source is not None
            rendered = ctx.render_select(table.select_expression, found.origin["select_expression"])
            if rendered is None:
                return None
        if data_source is not None:
            unsupported = [u for u in table.analysis_units if u not in data_source.analysis_units]
            if unsupported:  # metric-hub's parser refuses these too
                where = found.origin.get("analysis_units", found.top)
                ctx.error_at(
                    where,
                    f"metric {name!r} has analysis unit(s) {', '.join(unsupported)} that its "
                    f"data source {data_source.name!r} does not support (it supports "
                    f"{', '.join(data_source.analysis_units)})",
                )
                return None
        if not ok:
            return None
        return Metric(
            name=name,
            select_expression=rendered or "",
            data_source=data_source,
            friendly_name=table.friendly_name,
            description=table.description,
            bigger_is_better=table.bigger_is_better,
            analysis_bases=table.analysis_bases,
            depends_on=tuple(depends),
            type=table.type,
            category=table.category,
            owner=table.owner,
            deprecated=table.deprecated,
            analysis_units=table.analysis_units,
            level=table.level,
        )

    def statistics(self, name: str) -> list[StatisticSpec]:
        """The statistics of a resolved metric (the same in every period it is listed in)."""
        if name not in self._statistics:
            self._statistics[name] = self._build_statistics(name)
        return self._statistics[name]

    def _build_statistics(self, name: str) -> list[StatisticSpec]:
        table = self.tables.get(name)
        found = self.ctx.layers.find(METRICS, name)
        sref = found.origin.get("statistics") if found is not None else None
        out: list[StatisticSpec] = []
        for stat in table.statistics if table is not None else ():
            if not stat.known:
                # The structural check reports the experiment config's own statistics.
                if sref and sref.file != self.ctx.config_path:
                    self.ctx.error(
                        sref.file,
                        key_path(sref.key, stat.name),
                        f"unknown statistic {stat.name!r}"
                        f"{did_you_mean(stat.name, catalogue.STATISTICS)}",
                    )
                continue
            where = Ref(sref.file, key_path(sref.key, stat.name)) if sref else Ref("", "")
            self._statistic_metrics(stat, where)
            out.append(
                StatisticSpec(
                    name=stat.name,
                    params=dict(stat.params),  # defaults are applied by the statistics engine
                    pre_treatments=stat.pre_treatments,
                    covariate_adjustment=stat.covariate,
                )
            )
        return out

    def _statistic_metrics(self, stat: StatisticTable, where: Ref) -> None:
        """Resolve the metrics a statistic reads besides its own."""
        for key, metric in stat.metric_params:
            self.used_by_others.add(metric)
            self.metric(metric, Ref(where.file, key_path(where.key, key)))
        cov = stat.covariate
        if cov is not None and cov.metric is not None:
            self.used_by_others.add(cov.metric)
            self.metric(
                cov.metric,
                Ref(where.file, key_path(where.key, "covariate_adjustment", "metric")),
            )

    def no_statistic_warnings(self) -> None:
        """Warnings for metrics of the config that are never analysed. A metric that is not
        computed but defined (or redefined) by the config is still resolved, so that its
        errors (SQL that does not parse, an undefined template, a dependency cycle) are
        errors as everywhere else."""
        ctx = self.ctx
        used = set(self.used_by_others)
        for name, raw in ctx.layers.config.tables(METRICS).items():
            if name in CONFIG_KEYS or name in used:
                continue
            where = key_path("metrics", name)
            if name not in self.metrics:
                if "select_expression" in raw or "depends_on" in raw:
                    self.metric(name, Ref(ctx.config_path, where))
                ctx.warn(
                    ctx.config_path,
                    where,
                    "metric is not listed in any analysis period, no other metric uses it and "
                    "no outcome of this experiment lists it: it is not computed",
                )
            elif self.metrics[name] is not None and not self.tables[name].statistics:
                ctx.warn(
                    ctx.config_path,
                    where,
                    "metric has no statistic and nothing depends on it: "
                    "it is computed but never analysed",
                )
