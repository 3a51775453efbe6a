"""What every task body gets: the warehouse, the resolved spec, the run id, and an error
collector whose rows are written together with the unit's results."""

from __future__ import annotations

import contextlib
import datetime as dt
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from jetstream import results
from jetstream.config.model import AnalysisSpec
from jetstream.logs import get_logger
from jetstream.sql import results as res_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from jetstream.warehouse.base import Warehouse

log = get_logger("jetstream.tasks")


@attrs.define
class ErrorCollector:
    """Error and warning rows of one unit. Written with delete-then-insert per unit key, so a
    rerun replaces (never duplicates) the unit's errors."""

    run: str
    experiment: str
    period: str | None = None
    window: int | None = None
    data_source: str | None = None
    rows: list[dict[str, Any]] = attrs.field(factory=list)

    def add(
        self,
        message: str,
        *,
        level: str = "error",
        metric: str | None = None,
        statistic: str | None = None,
        exception: BaseException | None = None,
        exception_type: str | None = None,
    ) -> None:
        etype = exception_type or (type(exception).__name__ if exception else None)
        self.rows.append(
            {
                "run": self.run,
                "experiment": self.experiment,
                "period": self.period,
                "window": self.window,
                "data_source": self.data_source,
                "metric": metric,
                "statistic": statistic,
                "level": level,
                "exception_type": etype,
                "message": message,
                "timestamp": dt.datetime.now(dt.UTC).replace(microsecond=0),
            }
        )
        (log.warning if level == "warning" else log.error)(
            "unit problem", metric=metric, statistic=statistic, message=message
        )
        if exception is not None and level == "error":
            log.debug("traceback", tb="".join(traceback.format_exception(exception)))

    def delete_sql(self, errors_ref: str) -> str:
        return res_sql.delete_errors_sql(
            errors_ref, self.experiment, self.period, self.window, self.data_source
        )

    def insert_sql(self, errors_ref: str) -> str | None:
        return res_sql.insert_errors_sql(errors_ref, results.ERRORS_COLUMNS, self.rows)


@attrs.define
class TaskContext:
    warehouse: Warehouse
    spec: AnalysisSpec
    run_id: str
    bytes_processed: int = 0

    def ref(self, table: str) -> str:
        return self.warehouse.table_ref(table)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold the warehouse (DuckDB: the file lock) across several statements."""
        opener = getattr(self.warehouse, "session", None)
        if opener is None:
            yield
            return
        with opener():
            yield

    def query(self, sql: str) -> pa.Table:
        return self.warehouse.query(sql, labels=self.labels())

    def execute(self, sql: str) -> None:
        stats = self.warehouse.execute(sql, labels=self.labels())
        self.bytes_processed += int(getattr(stats, "bytes_processed", 0) or 0)

    def create_table_as(self, table: str, sql: str, temporary: bool = False) -> None:
        stats = self.warehouse.create_table_as(table, sql, replace=True, temporary=temporary)
        self.bytes_processed += int(getattr(stats, "bytes_processed", 0) or 0)

    def transaction(self, statements: list[str]) -> None:
        stats = self.warehouse.transaction([s for s in statements if s])
        self.bytes_processed += int(getattr(stats, "bytes_processed", 0) or 0)

    def labels(self) -> dict[str, str]:
        return {"experiment": results.safe(self.spec.slug)[:63], "run": self.run_id[:63]}

    def ensure_tables(self) -> None:
        slug = self.spec.slug
        for table, cols in (
            (results.metrics_table(slug), results.METRICS_COLUMNS),
            (results.statistics_table(slug), results.STATISTICS_COLUMNS),
            (results.segments_table(slug), results.SEGMENTS_COLUMNS),
            (results.partial_days_table(slug), results.PARTIAL_DAYS_COLUMNS),
            (results.ERRORS_TABLE, results.ERRORS_COLUMNS),
        ):
            self.execute(res_sql.create_table_sql(self.ref(table), cols))

    def write_errors(self, errors: ErrorCollector) -> None:
        ref = self.ref(results.ERRORS_TABLE)
        stmts = [errors.delete_sql(ref)]
        ins = errors.insert_sql(ref)
        if ins:
            stmts.append(ins)
        self.transaction(stmts)
