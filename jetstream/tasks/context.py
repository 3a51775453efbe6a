"""What every task body gets: the warehouse, the resolved spec, the run id, and an error
collector whose rows are written together with the unit's results."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from jetstream import results
from jetstream.config.model import AnalysisSpec
from jetstream.logs import get_logger
from jetstream.sql import results as res_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from jetstream.experiments import Experiment
    from jetstream.warehouse.base import Warehouse

log = get_logger("jetstream.tasks")

RUN_STARTED_ENV = "JETSTREAM_RUN_STARTED"
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def run_started(environ: dict[str, str] | None = None) -> dt.datetime:
    """When the run this process belongs to started: `JETSTREAM_RUN_STARTED` (ISO 8601, set
    by the runners for every task of a run), else now. Published as the metadata's
    `analysis_start_time`; results UIs show only errors stamped after it."""
    value = (os.environ if environ is None else environ).get(RUN_STARTED_ENV, "").strip()
    if value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            log.warning("ignoring malformed run start", env=RUN_STARTED_ENV, value=value)
        else:
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC).replace(microsecond=0)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _inside_package(filename: str) -> bool:
    try:
        Path(filename).resolve().relative_to(_PACKAGE_ROOT / "jetstream")
    except ValueError:
        return False
    return True


def source_location(exception: BaseException | None = None) -> tuple[str, str]:
    """(file, function) where a problem arose: the innermost frame of `exception`'s
    traceback, else the first caller outside this module. Files inside the package are
    given relative to the checkout (`jetstream/tasks/metrics.py`), others by base name; of
    a traceback, the innermost frame inside the package is chosen (not a library's)."""
    filename, func = "", ""
    if exception is not None and exception.__traceback__ is not None:
        frames = traceback.extract_tb(exception.__traceback__)
        ours = [f for f in frames if _inside_package(f.filename)]
        frame = (ours or frames)[-1]  # the innermost frame of this package, if any
        filename, func = frame.filename, frame.name
    else:
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename == __file__:
            f = f.f_back  # type: ignore[assignment]
        if f is not None:
            filename, func = f.f_code.co_filename, f.f_code.co_name
    path = Path(filename)
    try:
        shown = path.resolve().relative_to(_PACKAGE_ROOT).as_posix()
    except ValueError:
        shown = path.name
    return shown or "<unknown>", func or "<unknown>"


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
        filename, func_name = source_location(exception)
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
                "filename": filename,
                "func_name": func_name,
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
    started: dt.datetime = attrs.field(factory=run_started)
    # for the metadata: the config repository the task read (`--config-repo`) and the
    # experiment's Experimenter record as published, read with the spec (no second fetch)
    config_repo: str | None = None
    record: Experiment | None = None

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
        ):
            self.execute(res_sql.create_table_sql(self.ref(table), cols))
        for stmt in res_sql.ensure_errors_table_sql(
            self.ref(results.ERRORS_TABLE), results.ERRORS_COLUMNS, results.ERRORS_ADDED_COLUMNS
        ):
            self.execute(stmt)

    def write_errors(self, errors: ErrorCollector) -> None:
        ref = self.ref(results.ERRORS_TABLE)
        stmts = [errors.delete_sql(ref)]
        ins = errors.insert_sql(ref)
        if ins:
            stmts.append(ins)
        self.transaction(stmts)
