"""What a preview's statements would scan and cost, and the budget that stops it.

BigQuery: the warehouse's dry run. DuckDB: the bytes of the columns a statement reads,
measured in the file (every value of each referenced column of each table it names:
8 bytes per number/date/time, 1 per BOOL, 2 + UTF-8 length per STRING, as BigQuery bills
an unpartitioned table). Tables that do not exist yet count 0.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from jetstream.errors import JetstreamError, MetricError
from jetstream.logs import get_logger

log = get_logger(__name__)

TIB = 1024**4
DEFAULT_PRICE_PER_TIB = 6.25  # USD, BigQuery on-demand
DEFAULT_MAX_BYTES = 100 * 1024**3
EXPIRATION_DAYS = 7
_FIXED_WIDTH = {
    "INT64": 8,
    "FLOAT64": 8,
    "NUMERIC": 16,
    "BIGNUMERIC": 32,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "TIMESTAMP": 8,
    "BOOL": 1,
    "BOOLEAN": 1,
}


class BudgetExceeded(JetstreamError):
    """Running the next statement would take the preview past --max-bytes."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def cost_usd(n_bytes: int, price_per_tib: float) -> float:
    return n_bytes / TIB * price_per_tib


def format_cost(n_bytes: int, price_per_tib: float) -> str:
    return f"{human_bytes(n_bytes)} (~${cost_usd(n_bytes, price_per_tib):.6f})"


class Budget:
    """Running total of estimated bytes; `charge` refuses past `max_bytes` unless `yes`."""

    def __init__(self, max_bytes: int, yes: bool, price_per_tib: float):
        self.max_bytes = max_bytes
        self.yes = yes
        self.price_per_tib = price_per_tib
        self.total = 0

    def charge(self, what: str, n_bytes: int) -> None:
        after = self.total + n_bytes
        if after > self.max_bytes and not self.yes:
            raise BudgetExceeded(
                f"{what} would scan about {human_bytes(n_bytes)}, taking the preview's "
                f"estimated total to {format_cost(after, self.price_per_tib)}, past "
                f"--max-bytes {human_bytes(self.max_bytes)} ({self.max_bytes} bytes); "
                "raise --max-bytes or pass --yes to run it anyway"
            )
        self.total = after


_CREATE = re.compile(
    r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?:`[^`]+`|[\w.\-]+)\s*",
    re.IGNORECASE,
)


def with_expiration(sql: str, days: int = EXPIRATION_DAYS) -> str:
    """BigQuery CREATE TABLE / VIEW statements with an expiration `days` from now (unless
    they set OPTIONS already); other statements unchanged."""
    head = _CREATE.match(sql)
    if not head or re.search(r"\bOPTIONS\s*\(", sql, re.IGNORECASE):
        return sql
    option = (
        "OPTIONS (expiration_timestamp = "
        f"TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL {int(days)} DAY))"
    )
    at = head.end()
    if sql.startswith("(", at):  # a column list: options follow it
        depth = 0
        for i in range(at, len(sql)):
            if sql[i] == "(":
                depth += 1
            elif sql[i] == ")":
                depth -= 1
                if depth == 0:
                    return sql[: i + 1] + " " + option + sql[i + 1 :]
        return sql
    return sql[:at] + option + " " + sql[at:]


class DuckDBScanEstimator:
    """Bytes of the columns a statement reads, measured in a DuckDB warehouse."""

    def __init__(self, warehouse: Any):
        self.warehouse = warehouse
        self._columns: dict[str, dict[str, str] | None] = {}
        self._bytes: dict[tuple[str, str], int] = {}

    def estimate(self, sql: str) -> int:
        from jetstream.warehouse.transpile import parse_bigquery

        total = 0
        for statement in parse_bigquery(sql):
            ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}
            names = {c.name.lower() for c in statement.find_all(exp.Column)}
            # a projected `*` / `t.*` reads every column; COUNT(*) reads none
            star = any(
                isinstance(s.parent, (exp.Select, exp.Column)) for s in statement.find_all(exp.Star)
            )
            for table in statement.find_all(exp.Table):
                if not table.name or (not table.db and table.name.lower() in ctes):
                    continue
                name = f"{table.db}.{table.name}" if table.db else table.name
                columns = self._table_columns(name)
                if not columns:
                    continue
                used = [c for c in columns if star or c.lower() in names]
                total += sum(self._column_bytes(name, c, columns[c]) for c in used)
        return total

    def _table_columns(self, name: str) -> dict[str, str] | None:
        if name not in self._columns:
            try:
                self._columns[name] = self.warehouse.table_columns(name)
            except MetricError:
                self._columns[name] = None
        return self._columns[name]

    def _column_bytes(self, table: str, column: str, bq_type: str) -> int:
        key = (table, column)
        if key in self._bytes:
            return self._bytes[key]
        from jetstream.warehouse.transpile import duckdb_table_sql

        quoted = '"' + column.replace('"', '""') + '"'
        width = _FIXED_WIDTH.get(bq_type.upper())
        if width is not None:
            expr = f"COUNT(*) * {width}"
        elif bq_type.upper() in ("STRING", "BYTES"):
            expr = f"COALESCE(SUM(2 + strlen(CAST({quoted} AS VARCHAR))), 0)"
        else:  # arrays, structs: the size of their text form, a fair upper bound
            expr = f"COALESCE(SUM(strlen(CAST({quoted} AS VARCHAR))), 0)"
        sql = f"SELECT {expr} FROM {duckdb_table_sql(table)}"
        try:
            with self.warehouse.session() as con:
                row = con.execute(sql).fetchone()
            n = int(row[0] or 0) if row else 0
        except Exception as exc:  # noqa: BLE001 - an estimate must not stop the preview
            log.debug("preview.estimate_failed", table=table, column=column, error=str(exc))
            n = 0
        self._bytes[key] = n
        return n

    def forget(self, table: str) -> None:
        """Drop cached sizes of a table that was just (re)written."""
        self._columns.pop(table, None)
        for key in [k for k in self._bytes if k[0] == table]:
            del self._bytes[key]
