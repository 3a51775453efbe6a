"""A warehouse proxy that runs the engine's statements in a scratch location, estimates
each one's bytes before it runs (see `cost.Budget`), and writes it to a numbered `.sql`
file named after its step, with a header naming the config file, the metric slugs and the
config keys behind it.

The engine never knows: `TaskContext(RecordingWarehouse(...), spec, run_id)`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from jetstream.preview.cost import Budget, DuckDBScanEstimator, format_cost, with_expiration
from jetstream.preview.scratch import Scratch


@attrs.frozen
class Step:
    """What the statements being run belong to."""

    name: str
    metrics: tuple[str, ...] = ()
    config_keys: tuple[str, ...] = ()


@attrs.frozen
class RecordedStatement:
    index: int
    step: str
    action: str
    sql: str
    estimated_bytes: int
    path: Path | None


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:limit] or "step"


def statement_action(sql: str) -> str:
    """`select`, `insert`, `delete`, `create_table`, `create_view`, `drop`, ..."""
    text = re.sub(r"--[^\n]*\n|/\*.*?\*/", " ", sql, flags=re.S).strip().upper()
    words = re.findall(r"[A-Z_]+", text)[:5]
    if not words:
        return "statement"
    if words[0] == "CREATE":
        for kind in ("TABLE", "VIEW", "SCHEMA", "FUNCTION"):
            if kind in words:
                return f"create_{kind.lower()}"
    if words[0] == "WITH":
        return "select"
    if words[0] == "BEGIN":
        return "transaction"
    return words[0].lower()


_TARGET = re.compile(
    r"^\s*(?:BEGIN TRANSACTION;\s*)?(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?|INSERT\s+INTO\s+|DELETE\s+FROM\s+)(`[^`]+`|[\w.\-]+)",
    re.IGNORECASE,
)


def statement_target(sql: str) -> str | None:
    """The table a CREATE / INSERT / DELETE writes (last name part), if any."""
    m = _TARGET.match(sql)
    if not m:
        return None
    return m.group(1).strip("`").split(".")[-1]


class SqlRecorder:
    """Numbers statements, writes them (when `out_dir` is set) and tells `echo` about each
    one with its estimate."""

    def __init__(
        self,
        out_dir: Path | None,
        config_label: str,
        experiment: str,
        budget: Budget,
        echo: Callable[[str], None] = lambda _: None,
    ):
        self.out_dir = out_dir
        self.config_label = config_label
        self.experiment = experiment
        self.budget = budget
        self.echo = echo
        self.statements: list[RecordedStatement] = []
        # consecutive statements estimated at 0 bytes, announced as one line
        self._free: list[tuple[str, str]] = []  # (label, statement kind)
        self._step = Step("setup")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def step(
        self, name: str, metrics: Sequence[str] = (), config_keys: Sequence[str] = ()
    ) -> Iterator[Step]:
        previous = self._step
        self._step = Step(name, tuple(metrics), tuple(config_keys))
        try:
            yield self._step
        finally:
            self._step = previous

    def record(self, sql: str, estimated_bytes: int) -> RecordedStatement:
        """Charge the budget (raises BudgetExceeded), then write and announce."""
        index = len(self.statements) + 1
        action = statement_action(sql)
        target = statement_target(sql)
        if target:
            action = f"{action}_{target}"
        step = self._step
        label = f"[{index:03d}] {step.name} ({action})"
        self.budget.charge(label, estimated_bytes)
        path = None
        if self.out_dir is not None:
            path = self.out_dir / f"{index:03d}_{_slug(step.name)}_{action}.sql"
            path.write_text(
                self._header(index, step, action, estimated_bytes) + sql.rstrip() + ";\n"
            )
        recorded = RecordedStatement(index, step.name, action, sql, estimated_bytes, path)
        self.statements.append(recorded)
        if estimated_bytes == 0:
            self._free.append((label, statement_action(sql)))
            return recorded
        self.flush()
        self.echo(f"  {label}: {format_cost(estimated_bytes, self.budget.price_per_tib)}")
        return recorded

    def flush(self) -> None:
        """Announce the pending 0-byte statements: one line, or one line for several
        ("[004]-[019] 16 statements at 0 B (drop, create_view, ...)")."""
        free, self._free = self._free, []
        if len(free) == 1:
            self.echo(f"  {free[0][0]}: {format_cost(0, self.budget.price_per_tib)}")
        elif free:
            first, last = free[0][0].split(" ", 1)[0], free[-1][0].split(" ", 1)[0]
            actions = dict.fromkeys(kind for _, kind in free)
            self.echo(f"  {first}-{last} {len(free)} statements at 0 B ({', '.join(actions)})")

    def _header(self, index: int, step: Step, action: str, n_bytes: int) -> str:
        lines = [
            f"jetstream preview: statement {index}, step {step.name} ({action})",
            f"experiment: {self.experiment}",
            f"config file: {self.config_label}",
            f"metrics: {', '.join(step.metrics) if step.metrics else '-'}",
            f"config keys: {', '.join(step.config_keys) if step.config_keys else '-'}",
            f"estimated bytes: {n_bytes} "
            f"({format_cost(n_bytes, self.budget.price_per_tib)} at "
            f"${self.budget.price_per_tib:g}/TiB)",
        ]
        return "".join(f"-- {line}\n" for line in lines)


class RecordingWarehouse:
    """The Warehouse protocol over `inner`, with the engine's tables mapped into `scratch`,
    and every statement estimated, checked against the budget and recorded first."""

    def __init__(self, inner: Any, scratch: Scratch, recorder: SqlRecorder):
        self.inner = inner
        self.scratch = scratch
        self.recorder = recorder
        self.name = inner.name
        self._estimator = DuckDBScanEstimator(inner) if inner.name == "duckdb" else None

    def __repr__(self) -> str:
        return f"RecordingWarehouse({self.inner!r}, {self.scratch.location!r})"

    # -- names ------------------------------------------------------------------------
    def _t(self, table: str) -> str:
        return self.scratch.table(table)

    def table_ref(self, table: str) -> str:
        return str(self.inner.table_ref(self._t(table)))

    # -- estimates and recording ------------------------------------------------------
    def estimate(self, sql: str) -> int:
        if self._estimator is not None:
            return self._estimator.estimate(sql)
        try:
            return int(self.inner.dry_run(sql))
        except Exception:  # noqa: BLE001 - refers to a table made by an earlier statement
            return 0

    def _before(self, sql: str, estimate_sql: str | None = None) -> str:
        if self.name == "bigquery":
            sql = with_expiration(sql, self.scratch.expiration_days or 7)
        self.recorder.record(sql, self.estimate(estimate_sql or sql))
        return sql

    def _written(self, table: str) -> None:
        if self._estimator is not None:
            self._estimator.forget(self._t(table))

    # -- the protocol -----------------------------------------------------------------
    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Any:
        self._before(sql)
        return self.inner.query(sql, params=params, labels=labels)

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Any:
        sql = self._before(sql)
        return self.inner.execute(sql, params=params, labels=labels)

    def dry_run(self, sql: str) -> int:
        return int(self.inner.dry_run(sql))

    def transaction(self, statements: Sequence[str]) -> Any:
        statements = [s for s in statements if s]
        shown = "BEGIN TRANSACTION;\n" + ";\n".join(statements) + ";\nCOMMIT TRANSACTION"
        self.recorder.record(shown, sum(self.estimate(s) for s in statements))
        return self.inner.transaction(statements)

    def create_table_as(
        self,
        table: str,
        sql: str,
        replace: bool = True,
        expiration_days: int | None = None,
        temporary: bool = False,  # previews keep every table in their scratch dataset
    ) -> Any:
        target = self._t(table)
        verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        days = self.scratch.expiration_days if expiration_days is None else expiration_days
        shown = f"{verb} {self.inner.table_ref(target)}"
        if days and self.name == "bigquery":
            shown = with_expiration(shown + " AS\n" + sql, days)
        else:
            shown += " AS\n" + sql
        self.recorder.record(shown, self.estimate(sql))
        stats = self.inner.create_table_as(target, sql, replace=replace, expiration_days=days)
        self._written(table)
        return stats

    def load_arrow(self, table: str, data: Any, mode: str = "append") -> None:
        self.inner.load_arrow(self._t(table), data, mode=mode)
        self._written(table)

    def table_exists(self, table: str) -> bool:
        return bool(self.inner.table_exists(self._t(table)))

    def drop_table(self, table: str) -> None:
        self.inner.drop_table(self._t(table))
        self._written(table)

    def list_tables(self, prefix: str = "") -> list[str]:
        return list(
            self.inner.list_tables(self._t(prefix) if prefix else self.scratch.location + ".")
        )

    def table_columns(self, table: str) -> dict[str, str]:
        return dict(self.inner.table_columns(self._t(table)))

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        opener = getattr(self.inner, "session", None)
        if opener is None:
            yield None
            return
        with opener() as con:
            yield con

    def close(self) -> None:
        self.inner.close()
