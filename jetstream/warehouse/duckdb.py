"""DuckDBWarehouse: the embedded warehouse, a DuckDB file that runs BigQuery-dialect SQL.

SQL is transpiled by `transpile.py` (sqlglot plus the fixes listed there) and runs with the
macros and UDFs of `mozfun.py`; every connection sets `TimeZone='UTC'`.

Several processes (the local runner's workers) share one file, and DuckDB allows only one
process to open a file read-write (and none to read it meanwhile). So every operation opens
the file under an exclusive `fcntl.flock` on `PATH.lock`, and closes it when done: processes
take turns. Waiting for the lock lasts up to `lock_timeout` seconds (10 minutes by default),
then TransientError. `with wh.session():` holds the lock and the connection across several
calls (nested calls reuse it). `duckdb::memory:` keeps one in-memory connection (tests).
`compact()` rewrites the file with its live data only (used by shred: a DELETE leaves the
deleted strings in the file's blocks).

Table names follow transpile.split_table_name: `project.dataset.table` -> `dataset.table`
(schema.table), `dataset.table` -> schema.table, `table` -> the main schema. `load_arrow`
creates the schema when needed. Tables do not expire here: `expiration_days` is ignored.

Types follow BigQuery: loaded arrow integers become BIGINT (INT64), floats DOUBLE; query
results and CREATE TABLE AS columns of other integer types (INT32 literals, HUGEINT sums)
are cast to BIGINT and FLOAT to DOUBLE.

Storage: a column named in UNCOMPRESSED_COLUMNS (`analysis_id`) of a CREATE TABLE with
column definitions is stored uncompressed (`USING COMPRESSION uncompressed`, which sqlglot
cannot express, so it is added to the generated text). Client ids are random 36-character
strings: DuckDB's dictionary+FSST compression of them costs about a third of the time of an
insert into `metrics_<slug>` (10M rows: 16.1 s -> 10.4 s uncompressed) and saves about 45%
of that table's size (431 MB -> 801 MB). The metrics table takes ~18M rows a day at 1M
clients, so the time matters more here; BigQuery has no such option and needs none.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import tenacity
from sqlglot import exp

from jetstream.errors import MetricError, TransientError
from jetstream.logs import get_logger
from jetstream.warehouse import mozfun, sql_log
from jetstream.warehouse.base import QueryStats, check_load_mode
from jetstream.warehouse.duckdb_types import (
    bigquery_duckdb_type,
    bigquery_type_name,
    normalise_arrow,
    with_storage_options,
)
from jetstream.warehouse.filelock import FileLock
from jetstream.warehouse.transpile import (
    duckdb_table_sql,
    parse_bigquery,
    parse_bigquery_one,
    snippet,
    split_table_name,
    transform_statement,
)

log = get_logger("jetstream.warehouse.duckdb")

MEMORY = ":memory:"
_DML = (exp.Insert, exp.Delete, exp.Update, exp.Merge)


def _error(exc: Exception, sql: str) -> Exception:
    message = str(exc).strip()
    lowered = message.lower()
    if isinstance(exc, duckdb.TransactionException) or (
        isinstance(exc, duckdb.IOException) and "lock" in lowered
    ):
        return TransientError(f"DuckDB: {message}")
    return MetricError(f"DuckDB: {message}; in: {snippet(sql)}")


class DuckDBWarehouse:
    name = "duckdb"

    def __init__(
        self,
        path: str | Path,
        *,
        lock_timeout: float = 600.0,
        threads: int | None = None,
        memory_limit: str | None = None,
    ):
        self.path = str(path)
        self.memory = self.path == MEMORY
        self.lock_timeout = lock_timeout
        self._config: dict[str, Any] = {}
        if threads:
            self._config["threads"] = int(threads)
        if memory_limit:
            self._config["memory_limit"] = memory_limit
        self._local = threading.local()
        self._memory_session: _Session | None = None
        self._memory_lock = threading.RLock()
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path!r})"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(self.path, config=dict(self._config))
        try:
            con.execute("SET TimeZone='UTC'")
        except Exception:
            con.close()
            raise
        return con

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the file lock and one connection for the calls made inside the block; yields
        the DuckDB connection (raw DuckDB SQL; the BigQuery macros are created on demand)."""
        with self._session() as sess:
            yield sess.con

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        if self.memory:
            with self._memory_lock:
                if self._memory_session is None:
                    self._memory_session = _Session(self._connect())
                yield self._memory_session
            return
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        lock = FileLock(self.path + ".lock", self.lock_timeout)
        started = time.monotonic()
        deadline = started + self.lock_timeout
        lock.acquire(deadline)
        try:
            sess = _Session(self._open_locked(deadline))
            waited = time.monotonic() - started
            if waited > 1:
                log.debug("duckdb.lock_waited", path=self.path, seconds=round(waited, 3))
            self._local.session = sess
            try:
                yield sess
            finally:
                self._local.session = None
                sess.con.close()
        finally:
            lock.release()

    def _open_locked(self, deadline: float) -> duckdb.DuckDBPyConnection:
        # retried while the file is held by a process outside our locking
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, duckdb.IOException) and "lock" in str(e).lower()
            ),
            stop=tenacity.stop_after_delay(max(0.0, deadline - time.monotonic())),
            wait=tenacity.wait_exponential(multiplier=0.01, max=0.5),
            reraise=True,
        )
        try:
            return retrying(self._connect)
        except duckdb.IOException as exc:
            raise _error(exc, "connect") from exc

    # -- SQL --------------------------------------------------------------------------------

    def table_ref(self, table: str) -> str:
        return "`" + table.replace("`", "") + "`"

    def _translate(self, statement: exp.Expr) -> str:
        tree = transform_statement(statement, mozfun.SUPPORTED)
        return with_storage_options(tree, tree.sql(dialect="duckdb"))

    @staticmethod
    def _params_for(statement: exp.Expr, params: Mapping[str, Any] | None) -> dict:
        names = {p.name for p in statement.find_all(exp.Parameter)}
        if not names:
            return {}
        params = params or {}
        missing = sorted(names - set(params))
        if missing:
            raise MetricError(f"query parameters without a value: {', '.join(missing)}")
        return {name: params[name] for name in names}

    def _run(self, sess: _Session, sql: str, params: dict | None, source: str):
        sess.prepare(sql)
        try:
            return sess.con.execute(sql, params or None)
        except duckdb.CatalogException as exc:
            if not sess.prepare_all():  # e.g. a view that calls a macro
                raise _error(exc, source) from exc
        except duckdb.Error as exc:
            raise _error(exc, source) from exc
        try:
            return sess.con.execute(sql, params or None)
        except duckdb.Error as exc:
            raise _error(exc, source) from exc

    def _typed_select(self, sess: _Session, select_sql: str, params: dict, source: str) -> str:
        """Wrap a SELECT so its columns come out as BigQuery's would: INT64 for every integer
        type, FLOAT64 for FLOAT, and an empty array for a NULL one."""
        described = self._run(sess, f"DESCRIBE {select_sql}", params, source).fetchall()
        replace = []
        for row in described:
            column, duck_type = row[0], row[1]
            widened = bigquery_duckdb_type(duck_type)
            quoted = '"' + column.replace('"', '""') + '"'
            if widened.endswith("[]"):
                # BigQuery returns a NULL array as an empty one
                replace.append(
                    f"COALESCE(CAST({quoted} AS {widened}), CAST([] AS {widened})) AS {quoted}"
                )
            elif widened != duck_type:
                replace.append(f"CAST({quoted} AS {widened}) AS {quoted}")
        if not replace:
            return select_sql
        return f"SELECT * REPLACE ({', '.join(replace)}) FROM ({select_sql}) AS _bq_typed"

    def _select(self, sql: str) -> exp.Expr:
        statement = parse_bigquery_one(sql)
        if not isinstance(statement, exp.Query):
            raise MetricError(f"expected a SELECT query, got: {snippet(sql)}")
        return statement

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> pa.Table:
        sql_log.record_sql(sql, params)
        statement = self._select(sql)
        bound = self._params_for(statement, params)
        duck_sql = self._translate(statement)
        started = time.monotonic()
        with self._session() as sess:
            typed = self._typed_select(sess, duck_sql, bound, sql)
            try:
                table = sess.con.sql(typed, params=bound or None).to_arrow_table()
            except duckdb.Error as exc:
                raise _error(exc, sql) from exc
        log.debug(
            "duckdb.query",
            rows=table.num_rows,
            seconds=round(time.monotonic() - started, 3),
            labels=dict(labels or {}),
        )
        return table

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> QueryStats:
        sql_log.record_sql(sql, params)
        return self._execute_statements(parse_bigquery(sql), params, sql)

    def _execute_statements(
        self,
        statements: Sequence[exp.Expr],
        params: Mapping[str, Any] | None,
        source: str,
        transactional: bool = False,
    ) -> QueryStats:
        translated = [(s, self._translate(s), self._params_for(s, params)) for s in statements]
        started = time.monotonic()
        rows: int | None = None
        with self._session() as sess:
            if transactional:
                self._run(sess, "BEGIN TRANSACTION", None, "BEGIN TRANSACTION")
            try:
                for statement, duck_sql, bound in translated:
                    result = self._run(sess, duck_sql, bound, statement.sql("bigquery"))
                    if isinstance(statement, _DML):
                        count = result.fetchone()
                        rows = (rows or 0) + int(count[0]) if count else rows
                if transactional:
                    self._run(sess, "COMMIT", None, "COMMIT")
            except BaseException:
                self._rollback(sess.con)
                raise
        return QueryStats(rows_affected=rows, seconds=time.monotonic() - started)

    @staticmethod
    def _rollback(con: duckdb.DuckDBPyConnection) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction was open
            con.execute("ROLLBACK")

    def transaction(self, statements: Sequence[str]) -> QueryStats:
        sql_log.record_transaction(statements)
        parsed: list[exp.Expr] = []
        for sql in statements:
            parsed.extend(parse_bigquery(sql))
        return self._execute_statements(parsed, None, "; ".join(statements), transactional=True)

    def dry_run(self, sql: str) -> int:
        """Bind the SQL without running it; an upper bound of the bytes it would read
        (8 bytes per value of every column of every table it names)."""
        sql_log.record_sql(sql)
        statements = parse_bigquery(sql)
        tables: set[tuple[str, str]] = set()
        with self._session() as sess:
            for statement in statements:
                ctes = {c.alias_or_name for c in statement.find_all(exp.CTE)}
                for table in statement.find_all(exp.Table):
                    if table.name and table.name not in ctes:
                        tables.add((table.db or "main", table.name))
                duck_sql = self._translate(statement)
                if isinstance(statement, (exp.Query, *_DML)):
                    params = {p.name: None for p in statement.find_all(exp.Parameter)}
                    self._run(sess, f"EXPLAIN {duck_sql}", params, sql)
            total = 0
            for schema, name in tables:
                row = sess.con.execute(
                    "SELECT estimated_size, column_count FROM duckdb_tables() "
                    "WHERE schema_name = ? AND table_name = ?",
                    [schema, name],
                ).fetchone()
                if row:
                    total += int(row[0] or 0) * int(row[1] or 0) * 8
        return total

    # -- tables -----------------------------------------------------------------------------

    def _ensure_schema(self, sess: _Session, table: str) -> None:
        schema, _ = split_table_name(table)
        if schema is not None:
            quoted = '"' + schema.replace('"', '""') + '"'
            self._run(sess, f"CREATE SCHEMA IF NOT EXISTS {quoted}", None, table)

    def create_table_as(
        self,
        table: str,
        sql: str,
        replace: bool = True,
        expiration_days: int | None = None,
        temporary: bool = False,
    ) -> QueryStats:
        sql_log.record_create_table_as(
            self.table_ref(table), sql, replace, expiration_days, temporary
        )
        statement = self._select(sql)
        duck_sql = self._translate(statement)
        target = duckdb_table_sql(table)
        started = time.monotonic()
        # a TEMP table outlives one statement only inside an open session
        temporary = temporary and getattr(self._local, "session", None) is not None
        with self._session() as sess:
            if temporary:
                _, name = split_table_name(table)
                target = "temp.main." + duckdb_table_sql(name)
                sess.temporary.add(name)
            else:
                self._ensure_schema(sess, table)
            typed = self._typed_select(sess, duck_sql, {}, sql)
            verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
            if temporary:
                verb = verb.replace("TABLE", "TEMP TABLE")
            result = self._run(sess, f"{verb} {target} AS {typed}", None, sql)
            count = result.fetchone()
        return QueryStats(
            rows_affected=int(count[0]) if count else None,
            seconds=time.monotonic() - started,
        )

    def load_arrow(self, table: str, data: pa.Table, mode: str = "append") -> None:
        check_load_mode(mode)
        data = normalise_arrow(data)
        target = duckdb_table_sql(table)
        with self._session() as sess:
            self._ensure_schema(sess, table)
            sess.con.register("_jetstream_load", data)
            try:
                if mode == "replace" or not self._exists(sess, table):
                    sql = f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM _jetstream_load"
                else:
                    self._add_new_columns(sess, table, data)
                    sql = f"INSERT INTO {target} BY NAME SELECT * FROM _jetstream_load"
                self._run(sess, sql, None, f"load into {table}")
            finally:
                sess.con.unregister("_jetstream_load")
            if sql_log.enabled():
                sql_log.record_load(table, self.table_columns(table))

    def _add_new_columns(self, sess: _Session, table: str, data: pa.Table) -> None:
        """Appending rows with columns the table lacks adds them (nullable), as a BigQuery
        load job with ALLOW_FIELD_ADDITION does."""
        target = duckdb_table_sql(table)
        have = {r[0] for r in sess.con.execute(f"SELECT * FROM {target} LIMIT 0").description}
        for field in data.schema:
            if field.name not in have:
                kind = sess.con.sql("SELECT * FROM _jetstream_load LIMIT 0").types[
                    data.schema.get_field_index(field.name)
                ]
                name = field.name.replace('"', '""')
                sess.con.execute(f'ALTER TABLE {target} ADD COLUMN "{name}" {kind}')

    _RELATIONS = (
        "SELECT schema_name, table_name AS name, 'TABLE' AS kind FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary UNION ALL "
        "SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
    )

    def _table_type(self, sess: _Session, table: str) -> str | None:
        schema, name = split_table_name(table)
        row = sess.con.execute(
            f"SELECT kind FROM ({self._RELATIONS}) WHERE schema_name = ? AND name = ?",
            [schema or "main", name],
        ).fetchone()
        return None if row is None else str(row[0])

    def _exists(self, sess: _Session, table: str) -> bool:
        return self._table_type(sess, table) is not None

    def table_exists(self, table: str) -> bool:
        with self._session() as sess:
            return self._exists(sess, table)

    def drop_table(self, table: str) -> None:
        with self._session() as sess:
            schema, name = split_table_name(table)
            if schema is None and name in sess.temporary:
                sess.temporary.discard(name)
                target = "temp.main." + duckdb_table_sql(name)
                self._run(sess, f"DROP TABLE IF EXISTS {target}", None, table)
                return
            kind = self._table_type(sess, table)
            if kind is None:
                return
            self._run(sess, f"DROP {kind} IF EXISTS {duckdb_table_sql(table)}", None, table)

    def list_tables(self, prefix: str = "") -> list[str]:
        """Tables and views of the main schema (or of `schema.` when the prefix names one)."""
        schema, _, name_prefix = prefix.rpartition(".")
        with self._session() as sess:
            rows = sess.con.execute(
                f"SELECT name FROM ({self._RELATIONS}) WHERE schema_name = ? "
                "AND starts_with(name, ?) ORDER BY name",
                [schema or "main", name_prefix],
            ).fetchall()
        return [f"{schema}.{r[0]}" if schema else str(r[0]) for r in rows]

    def table_columns(self, table: str) -> dict[str, str]:
        schema, name = split_table_name(table)
        with self._session() as sess:
            database = (
                "'temp'" if schema is None and name in sess.temporary else "current_database()"
            )
            rows = sess.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE "
                f"database_name = {database} AND schema_name = ? AND table_name = ? "
                "ORDER BY column_index",
                [schema or "main", name],
            ).fetchall()
        if not rows:
            raise MetricError(f"table {table} does not exist in {self.path}")
        return {str(column): bigquery_type_name(str(dtype)) for column, dtype in rows}

    def compact(self) -> bool:
        """Rewrite the file with its live data only (COPY FROM DATABASE into `PATH.compact`,
        fsync, rename over PATH) under the file lock, so no byte of a deleted row survives.
        Inside a session its connection is reopened on the new file (TEMP tables are lost).
        False for an in-memory database."""
        if self.memory:
            return False
        new = self.path + ".compact"
        with self._session() as sess:
            for stale in (new, new + ".wal"):
                Path(stale).unlink(missing_ok=True)
            sess.con.execute("CHECKPOINT")
            source = sess.con.execute("SELECT current_database()").fetchone()
            quoted = '"' + str(source[0] if source else "").replace('"', '""') + '"'
            target = "'" + new.replace("'", "''") + "'"
            sess.con.execute(f"ATTACH {target} AS jetstream_compact")
            sess.con.execute(f"COPY FROM DATABASE {quoted} TO jetstream_compact")
            sess.con.execute("DETACH jetstream_compact")
            sess.con.close()
            with open(new, "rb") as f:
                os.fsync(f.fileno())
            os.replace(new, self.path)
            Path(self.path + ".wal").unlink(missing_ok=True)
            directory = os.open(Path(self.path).parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            sess.reopen(self._connect())
        return True

    def close(self) -> None:
        if self._memory_session is not None:
            with self._memory_lock:
                self._memory_session.con.close()
                self._memory_session = None


class _Session:
    """One open connection and the macros and UDFs already created on it."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.created: set[str] = set()
        self.temporary: set[str] = set()  # TEMP tables made by create_table_as

    def reopen(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.created.clear()
        self.temporary.clear()

    def prepare(self, sql: str) -> None:
        for name in mozfun.macros_needed(sql):
            if name not in self.created:
                self.con.execute(mozfun.macro_sql(name))
                self.created.add(name)
        if "farm_fingerprint" not in self.created and "farm_fingerprint" in sql.lower():
            self._create_udfs()

    def _create_udfs(self) -> None:
        self.con.create_function(  # type: ignore[call-overload]
            "farm_fingerprint",
            mozfun.farm_fingerprint,
            [duckdb.sqltype("VARCHAR")],
            duckdb.sqltype("BIGINT"),
            type="arrow",
        )
        self.created.add("farm_fingerprint")

    def prepare_all(self) -> bool:
        """Create every macro and UDF; False if they all existed already."""
        missing = [name for name in mozfun.MACROS if name not in self.created]
        for name in missing:
            self.con.execute(mozfun.macro_sql(name))
            self.created.add(name)
        if "farm_fingerprint" not in self.created:
            self._create_udfs()
            missing.append("farm_fingerprint")
        return bool(missing)
