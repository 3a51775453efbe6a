"""Data sources and segment data sources: looked up over the layers, their
from_expression rendered and checked to parse, joins resolved."""

from __future__ import annotations

from collections.abc import Callable

from jetstream.config.context import Context
from jetstream.config.layers import DATA_SOURCES, SEGMENT_DATA_SOURCES, Found, Ref
from jetstream.config.model import (
    DataSource,
    DataSourceJoin,
    ExperimentsColumnType,
    SegmentDataSource,
)
from jetstream.config.problems import did_you_mean, key_path
from jetstream.config.sql_check import from_problem
from jetstream.config.tables import DataSourceTable, SegmentDataSourceTable
from jetstream.config.templating import (
    TemplateError,
    render_from_expression,
    substitute_dataset,
)


class Sources:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.data_sources: dict[str, DataSource | None] = {}

    def data_source(self, name: str, ref: Ref) -> DataSource | None:
        if name in self.data_sources:
            return self.data_sources[name]
        self.data_sources[name] = None  # guards join cycles
        ctx = self.ctx
        found = self._head(
            DATA_SOURCES,
            "data source",
            name,
            ref,
            lambda text, dataset: render_from_expression(
                text, ctx.renderer, ctx.experiment_dataset or dataset or ctx.platform_dataset
            ),
        )
        if found is None:
            return None
        head, rendered = found
        table: DataSourceTable = head.table
        joins: list[DataSourceJoin] = []
        if table.joins is not None:
            jref = head.origin["joins"]
            for join in table.joins:
                jname = join.data_source
                if self.data_source(jname, Ref(jref.file, key_path(jref.key, jname))) is None:
                    return None
                joins.append(DataSourceJoin(jname, join.relationship, join.on_expression))
        ect = table.experiments_column_type
        if ect not in ExperimentsColumnType._value2member_map_:
            ctx.error_at(
                head.origin["experiments_column_type"], f"unknown experiments_column_type {ect!r}"
            )
            return None
        ds = DataSource(
            name=name,
            from_expression=rendered,
            client_id_column=table.client_id_column,
            submission_date_column=table.submission_date_column,
            experiments_column_type=ExperimentsColumnType(ect),
            default_dataset=table.default_dataset,
            group_id_column=table.group_id_column,
            analysis_units=table.analysis_units,
            joins=tuple(joins),
            friendly_name=table.friendly_name,
            description=table.description,
        )
        self.data_sources[name] = ds
        return ds

    def segment_data_source(self, name: str, ref: Ref) -> SegmentDataSource | None:
        found = self._head(
            SEGMENT_DATA_SOURCES, "segment data source", name, ref, self._render_from
        )
        if found is None:
            return None
        head, rendered = found
        table: SegmentDataSourceTable = head.table
        return SegmentDataSource(
            name=name,
            from_expression=rendered,
            window_start=0 if table.window_start is None else table.window_start,
            window_end=0 if table.window_end is None else table.window_end,
            client_id_column=table.client_id_column,
            submission_date_column=table.submission_date_column,
            default_dataset=table.default_dataset,
        )

    def _render_from(self, from_expr: str, default_dataset: str | None) -> str:
        """A segment data source's from_expression: Jinja (as the reference tool), then
        `{dataset}`."""
        text = self.ctx.renderer.render(from_expr)
        return substitute_dataset(text, default_dataset or self.ctx.platform_dataset)

    def _head(
        self,
        section: str,
        label: str,
        name: str,
        ref: Ref,
        render: Callable[[str, str | None], str],
    ) -> tuple[Found, str] | None:
        """Look up a (segment) data source and render its from_expression; on any problem
        record it and return None."""
        ctx = self.ctx
        head = ctx.layers.find(section, name)
        if head is None:
            ctx.error_at(
                ref,
                f"undefined {label} {name!r} for platform {ctx.app!r}"
                f"{did_you_mean(name, ctx.layers.known_names(section))}",
            )
            return None
        if ctx.bad_name(name, head.top):
            return None
        table: DataSourceTable | SegmentDataSourceTable = head.table
        if table.from_expression is None:
            ctx.error_at(head.top, f"{label} {name!r} has no from_expression")
            return None
        fref = head.origin["from_expression"]
        try:
            rendered = render(table.from_expression, table.default_dataset)
        except TemplateError as exc:
            ctx.error_at(fref, str(exc))
            return None
        msg = from_problem(rendered)
        if msg:
            ctx.error_at(fref, msg)
            return None
        return head, rendered
