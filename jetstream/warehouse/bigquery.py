"""BigQueryWarehouse: the production warehouse (google-cloud-bigquery).

- Every query job carries the caller's labels and `maximum_bytes_billed`: the argument,
  else the env var JETSTREAM_MAXIMUM_BYTES_BILLED (the settings ConfigMap; `0` or `none`
  for no cap), else `DEFAULT_MAXIMUM_BYTES_BILLED` (5 TiB, about $31 at on-demand prices:
  far above any single analysis job, low enough that a runaway query fails instead).
- With `estimate_jobs` (the default) every job is dry-run first: its estimate is counted
  and a job whose estimate is over the cap fails before it runs, with both numbers.
  `costs` totals the jobs of this warehouse object (jobs, estimated, processed and
  billed bytes); `jetstream task` reports them and the `runs` table records them.
- `dry_run` returns the job's `total_bytes_processed`.
- Query results are read through the BigQuery Storage API (`google-cloud-bigquery-storage`,
  parallel Arrow streams) unless `use_storage_api=False`; without the package the client
  pages through the REST API, which is logged once as a warning.
- `transaction` runs one multi-statement script `BEGIN TRANSACTION; ...; COMMIT TRANSACTION;`;
  when BigQuery aborts it because of a concurrent update of the same table, it is retried
  with exponential backoff, then TransientError.
- `load_arrow` writes the table to parquet in memory and runs a load job (never streaming
  inserts, whose rows cannot be deleted or updated for a while).
- `create_table_as` is DDL with `OPTIONS(expiration_timestamp=...)` when asked.

Table names: 1-part names are in the warehouse's dataset, 2-part `dataset.table` names in its
project, 3-part names are used as given.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import pyarrow as pa
import pyarrow.parquet as pq
import tenacity
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from jetstream.errors import MetricError, TransientError
from jetstream.logs import get_logger
from jetstream.sql.ddl import create_table_as_sql, transaction_script
from jetstream.sql.parameters import scalar_type
from jetstream.warehouse.base import (
    QueryStats,
    check_load_mode,
)
from jetstream.warehouse.transpile import parse_bigquery, parse_bigquery_one, snippet

log = get_logger("jetstream.warehouse.bigquery")

T = TypeVar("T")
DEFAULT_MAXIMUM_BYTES_BILLED = 5 * 2**40
MAXIMUM_BYTES_BILLED_ENV = "JETSTREAM_MAXIMUM_BYTES_BILLED"


def maximum_bytes_billed_setting(environ: Mapping[str, str] | None = None) -> int | None:
    """The cap from JETSTREAM_MAXIMUM_BYTES_BILLED (bytes; `0`/`none`: no cap), else the
    default. A value that is not a number is a ConfigError naming the variable."""
    import os

    from jetstream.errors import ConfigError

    raw = (os.environ if environ is None else environ).get(MAXIMUM_BYTES_BILLED_ENV, "").strip()
    if not raw:
        return DEFAULT_MAXIMUM_BYTES_BILLED
    if raw.lower() in ("0", "none", "unlimited"):
        return None
    try:
        value = int(float(raw))
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(
            f"{MAXIMUM_BYTES_BILLED_ENV}={raw!r}: expected a number of bytes (e.g. 5e12), "
            "or 0 for no cap"
        )
    return value


@attrs.define
class JobCosts:
    """Totals over the query jobs of one warehouse object."""

    jobs: int = 0
    bytes_estimated: int = 0  # dry-run estimates
    bytes_processed: int = 0
    bytes_billed: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


_UNSET: Any = object()
CONCURRENT_UPDATE = ("concurrent update", "could not serialize access")
_TRANSIENT_REASONS = {"backendError", "rateLimitExceeded", "internalError", "jobRateLimitExceeded"}
_LEGACY_TYPES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "RECORD": "STRUCT",
    "BIGNUMERIC": "BIGNUMERIC",
}


def is_concurrent_update(exc: BaseException) -> bool:
    return any(text in str(exc).lower() for text in CONCURRENT_UPDATE)


def _reasons(exc: gexc.GoogleAPICallError) -> set[str]:
    return {str(e.get("reason")) for e in (getattr(exc, "errors", None) or []) if e}


def map_error(exc: BaseException, sql: str = "") -> Exception:
    """google-cloud exception -> TransientError (retryable) or MetricError."""
    where = f"; in: {snippet(sql)}" if sql else ""
    if isinstance(exc, gexc.GoogleAPICallError):
        message = exc.message if getattr(exc, "message", None) else str(exc)
        if (
            isinstance(exc, gexc.ServerError | gexc.TooManyRequests)
            or _reasons(exc) & _TRANSIENT_REASONS
            or is_concurrent_update(exc)
        ):
            return TransientError(f"BigQuery: {message}")
        return MetricError(f"BigQuery: {message}{where}")
    if isinstance(exc, ConnectionError | TimeoutError):
        return TransientError(f"BigQuery: {exc}")
    return MetricError(f"BigQuery: {exc}{where}")


def query_parameter(name: str, value: Any) -> Any:
    """A Python value -> a BigQuery query parameter of the matching type."""
    if isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        kind = scalar_type(items[0]) if items else "STRING"
        return bigquery.ArrayQueryParameter(name, kind, list(value))
    return bigquery.ScalarQueryParameter(name, scalar_type(value), value)


def field_type_name(field: bigquery.SchemaField) -> str:
    """A schema field -> BigQuery standard SQL type name (INT64, ARRAY<STRUCT<...>>...)."""
    kind = _LEGACY_TYPES.get(field.field_type.upper(), field.field_type.upper())
    if kind == "STRUCT":
        inner = ", ".join(f"{f.name} {field_type_name(f)}" for f in field.fields)
        kind = f"STRUCT<{inner}>"
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind


class BigQueryWarehouse:
    name = "bigquery"

    def __init__(
        self,
        project: str,
        dataset: str,
        *,
        client: bigquery.Client | None = None,
        location: str | None = None,
        maximum_bytes_billed: int | None = _UNSET,
        estimate_jobs: bool = True,
        labels: Mapping[str, str] | None = None,
        client_options: Mapping[str, Any] | None = None,
        credentials: Any = None,
        use_storage_api: bool = True,
        transaction_attempts: int = 5,
        retry_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.project = project
        self.dataset = dataset
        self.location = location
        self.maximum_bytes_billed = (
            maximum_bytes_billed_setting()
            if maximum_bytes_billed is _UNSET
            else maximum_bytes_billed
        )
        self.estimate_jobs = estimate_jobs
        self.costs = JobCosts()
        self._storage_client: Any = None
        self._credentials = credentials
        self.default_labels = dict(labels or {})
        self.use_storage_api = use_storage_api
        self.transaction_attempts = max(1, transaction_attempts)
        self.retry_delay = retry_delay
        self._sleep = sleep
        self.client = client or bigquery.Client(
            project=project,
            location=location,
            client_options=dict(client_options) if client_options else None,
            credentials=credentials,
        )

    def __repr__(self) -> str:
        return f"BigQueryWarehouse({self.project!r}, {self.dataset!r})"

    # -- names ------------------------------------------------------------------------------

    def table_id(self, table: str) -> str:
        parts = [p for p in table.replace("`", "").split(".") if p]
        if len(parts) == 1:
            return f"{self.project}.{self.dataset}.{parts[0]}"
        if len(parts) == 2:
            return f"{self.project}.{parts[0]}.{parts[1]}"
        if len(parts) == 3:
            return ".".join(parts)
        raise MetricError(f"invalid table name {table!r}: expected [project.][dataset.]table")

    def table_ref(self, table: str) -> str:
        return f"`{self.table_id(table)}`"

    # -- jobs -------------------------------------------------------------------------------

    def _job_config(
        self,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> bigquery.QueryJobConfig:
        config = bigquery.QueryJobConfig()
        job_labels = {**self.default_labels, **dict(labels or {})}
        if job_labels:
            config.labels = job_labels
        if self.maximum_bytes_billed is not None:
            config.maximum_bytes_billed = int(self.maximum_bytes_billed)
        if params:
            config.query_parameters = [query_parameter(k, v) for k, v in params.items()]
        if dry_run:
            config.dry_run = True
            config.use_query_cache = False
        return config

    def _call(self, fn: Callable[[], T], sql: str = "") -> T:
        try:
            return fn()
        except (gexc.GoogleAPICallError, ConnectionError, TimeoutError) as exc:
            raise map_error(exc, sql) from exc

    def _run_job(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[bigquery.QueryJob, Any]:
        config = self._job_config(params, labels)
        if self.estimate_jobs:
            self._estimate(sql, params, labels)

        def run() -> tuple[bigquery.QueryJob, Any]:
            job = self.client.query(sql, job_config=config, location=self.location)
            return job, job.result()

        job, rows = self._call(run, sql)
        self.costs.jobs += 1
        self.costs.bytes_processed += int(job.total_bytes_processed or 0)
        self.costs.bytes_billed += int(job.total_bytes_billed or 0)
        return job, rows

    def _estimate(
        self, sql: str, params: Mapping[str, Any] | None, labels: Mapping[str, str] | None
    ) -> int:
        """Dry-run the job (free); count the estimate; refuse a job over the cap."""
        config = self._job_config(params, labels, dry_run=True)
        job = self._call(
            lambda: self.client.query(sql, job_config=config, location=self.location), sql
        )
        estimate = int(job.total_bytes_processed or 0)
        self.costs.bytes_estimated += estimate
        cap = self.maximum_bytes_billed
        if cap is not None and estimate > cap:
            raise MetricError(
                f"BigQuery: the job would process {estimate:,} bytes, over the "
                f"maximum_bytes_billed cap of {cap:,} ({MAXIMUM_BYTES_BILLED_ENV}); "
                f"not run: {snippet(sql)}"
            )
        return estimate

    def _bqstorage(self) -> Any:
        """The Storage API read client (created once), or None without the package."""
        if not self.use_storage_api:
            return None
        if self._storage_client is None:
            try:
                from google.cloud import bigquery_storage  # type: ignore[attr-defined,unused-ignore]
            except ImportError:
                log.warning(
                    "bigquery.storage_api_missing",
                    detail="google-cloud-bigquery-storage is not installed: results are "
                    "paged through the REST API (slow for large statistics reads)",
                )
                self.use_storage_api = False
                return None
            self._storage_client = bigquery_storage.BigQueryReadClient(
                credentials=self._credentials
            )
        return self._storage_client

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> pa.Table:
        parse_bigquery_one(sql)
        started = time.monotonic()
        job, rows = self._run_job(sql, params, labels)
        storage = self._bqstorage()
        table = self._call(
            lambda: rows.to_arrow(bqstorage_client=storage, create_bqstorage_client=False), sql
        )
        log.debug(
            "bigquery.query",
            job_id=job.job_id,
            rows=table.num_rows,
            bytes=job.total_bytes_processed,
            seconds=round(time.monotonic() - started, 3),
        )
        return table

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> QueryStats:
        parse_bigquery(sql)
        started = time.monotonic()
        job, _ = self._run_job(sql, params, labels)
        return QueryStats(
            bytes_processed=int(job.total_bytes_processed or 0),
            rows_affected=job.num_dml_affected_rows,
            seconds=time.monotonic() - started,
        )

    def dry_run(self, sql: str) -> int:
        parse_bigquery(sql)
        config = self._job_config(dry_run=True)
        job = self._call(
            lambda: self.client.query(sql, job_config=config, location=self.location), sql
        )
        return int(job.total_bytes_processed or 0)

    def transaction(self, statements: Sequence[str]) -> QueryStats:
        for statement in statements:
            parse_bigquery(statement)
        script = transaction_script(statements)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, TransientError) and is_concurrent_update(e)
            ),
            stop=tenacity.stop_after_attempt(self.transaction_attempts),
            wait=tenacity.wait_exponential(multiplier=self.retry_delay, max=float("inf")),
            sleep=self._sleep,
            before_sleep=lambda s: log.info(
                "bigquery.transaction_retry",
                attempt=s.attempt_number,
                error=str(s.outcome.exception() if s.outcome else ""),
            ),
            reraise=True,
        )
        return retrying(self.execute, script)

    def create_table_as(
        self,
        table: str,
        sql: str,
        replace: bool = True,
        expiration_days: int | None = None,
        temporary: bool = False,
    ) -> QueryStats:
        parse_bigquery_one(sql)
        ddl = create_table_as_sql(self.table_ref(table), sql, replace, expiration_days, temporary)
        return self.execute(ddl)

    def load_arrow(self, table: str, data: pa.Table, mode: str = "append") -> None:
        check_load_mode(mode)
        buffer = io.BytesIO()
        pq.write_table(data, buffer)
        size = buffer.tell()
        buffer.seek(0)
        parquet_options = bigquery.ParquetOptions()
        parquet_options.enable_list_inference = True
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=(
                bigquery.WriteDisposition.WRITE_TRUNCATE
                if mode == "replace"
                else bigquery.WriteDisposition.WRITE_APPEND
            ),
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        )
        if mode == "append":  # new nullable columns (e.g. of the runs table) are added
            config.schema_update_options = [bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION]
        config.parquet_options = parquet_options
        if self.default_labels:
            config.labels = dict(self.default_labels)
        destination = self.table_id(table)

        def load() -> None:
            job = self.client.load_table_from_file(
                buffer, destination, size=size, job_config=config, location=self.location
            )
            job.result()

        self._call(load, f"load into {destination}")

    # -- tables -----------------------------------------------------------------------------

    def table_exists(self, table: str) -> bool:
        try:
            self.client.get_table(self.table_id(table))
        except gexc.NotFound:
            return False
        except gexc.GoogleAPICallError as exc:
            raise map_error(exc) from exc
        return True

    def drop_table(self, table: str) -> None:
        self._call(lambda: self.client.delete_table(self.table_id(table), not_found_ok=True))

    def list_tables(self, prefix: str = "") -> list[str]:
        items = self._call(lambda: list(self.client.list_tables(f"{self.project}.{self.dataset}")))
        return sorted(t.table_id for t in items if t.table_id.startswith(prefix))

    def table_columns(self, table: str) -> dict[str, str]:
        try:
            schema = self.client.get_table(self.table_id(table)).schema
        except gexc.NotFound as exc:
            raise MetricError(f"table {self.table_id(table)} does not exist") from exc
        except gexc.GoogleAPICallError as exc:
            raise map_error(exc) from exc
        return {f.name: field_type_name(f) for f in schema}

    def close(self) -> None:
        self.client.close()
        transport = getattr(self._storage_client, "_transport", None)
        if transport is not None:
            transport.close()
