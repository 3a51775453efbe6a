"""Run a TaskGraph on this machine: each node is a `jetstream task ...` subprocess, at most
`parallelism` at a time, in dependency order.

- exit 75 (transient) and death by a signal (the OOM killer's SIGKILL, a worker that dies)
  are retried with exponential backoff, the same number of times; any other non-zero exit
  fails the node, and only the nodes that depend on it are skipped (export tolerates a
  failed metrics node, see `common.tolerates_failure_of`, and is told which ones failed:
  `jetstream.tasks.incomplete`);
- every attempt is recorded as a row of the warehouse's `runs` table, written between
  tasks (the runner never holds the warehouse open while tasks run);
- progress: a rich bar when stderr is a terminal, else `run progress` log lines with
  done/total, failures and an ETA (see `progress.py`).

Resuming is rerunning: tasks are idempotent (delete + insert), so an interrupted run
started again leaves the same tables as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import attrs

import jetstream
from jetstream.graph import TaskGraph, TaskNode
from jetstream.logs import get_logger
from jetstream.runners.common import (
    EXIT_TRANSIENT,
    NodeResult,
    NodeStatus,
    RunSettings,
    RunSummary,
    check_graph,
    parse_task_report,
    task_args,
    tolerates_failure_of,
)
from jetstream.runners.progress import Progress
from jetstream.runners.progress import for_run as progress_for_run
from jetstream.tasks import incomplete

log = get_logger(__name__)

ERROR_TAIL_CHARS = 4000


class RunRecorder(Protocol):
    """Receives one dict per task attempt (the columns of `RUNS_COLUMNS`)."""

    def record(self, rows: Sequence[dict[str, Any]]) -> None: ...


RUNS_COLUMNS = (
    "run_id",
    "node_id",
    "kind",
    "experiment",
    "attempt",
    "definition_hash",
    "code_version",
    "status",
    "exit_code",
    "started_at",
    "ended_at",
    "seconds",
    "bytes_processed",
    "rows",
    "error",
    "bytes_estimated",  # dry-run estimates of the task's BigQuery jobs
    "bytes_billed",
)


def runs_schema() -> Any:
    """The pyarrow schema of the `runs` table."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            ("run_id", pa.string()),
            ("node_id", pa.string()),
            ("kind", pa.string()),
            ("experiment", pa.string()),
            ("attempt", pa.int64()),
            ("definition_hash", pa.string()),
            ("code_version", pa.string()),
            ("status", pa.string()),
            ("exit_code", pa.int64()),
            ("started_at", ts),
            ("ended_at", ts),
            ("seconds", pa.float64()),
            ("bytes_processed", pa.int64()),
            ("rows", pa.int64()),
            ("error", pa.string()),
            ("bytes_estimated", pa.int64()),
            ("bytes_billed", pa.int64()),
        ]
    )


@attrs.frozen
class WarehouseRunRecorder:
    """Appends attempt rows to the `runs` table of the warehouse at `uri`, opening it only
    for the write (DuckDB allows one writer per file; tasks queue on its lock)."""

    uri: str

    def record(self, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow as pa

        from jetstream.warehouse import open_warehouse  # type: ignore[attr-defined]

        table = pa.Table.from_pylist(list(rows), schema=runs_schema())
        warehouse = open_warehouse(self.uri)
        try:
            warehouse.load_arrow("runs", table, mode="append")
        finally:
            close = getattr(warehouse, "close", None)
            if callable(close):
                close()


@attrs.frozen
class ListRecorder:
    """Keeps the rows in memory (tests, dry runs)."""

    rows: list[dict[str, Any]] = attrs.field(factory=list)

    def record(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(rows)


class LocalRunner:
    """Executes a TaskGraph with a pool of subprocesses.

    `command_prefix` replaces `[sys.executable, "-m", "jetstream.cli"]` (tests use small
    fake commands); `retries` is the number of retries after the first attempt, for exit
    75 only; the wait before retry n is `backoff * 2**(n-1)` seconds. `recorder` receives
    every attempt; by default the warehouse's `runs` table (`record_runs=False` disables).
    """

    name = "local"

    def __init__(
        self,
        settings: RunSettings,
        parallelism: int = 2,
        retries: int = 3,
        backoff: float = 1.0,
        command_prefix: Sequence[str] | None = None,
        progress: bool | None = None,
        recorder: RunRecorder | None = None,
        record_runs: bool = True,
        env: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        reuse_workers: bool | None = None,
    ):
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.settings = settings
        self.parallelism = parallelism
        self.retries = max(0, retries)
        self.backoff = backoff
        self.command_prefix = list(command_prefix or [sys.executable, "-m", "jetstream.cli"])
        # Long-lived workers (one per slot) run the same CLI commands without paying
        # interpreter start-up per task; only for the real CLI, not fake test commands.
        self.reuse_workers = command_prefix is None if reuse_workers is None else reuse_workers
        self._workers = threading.local()
        self._all_workers: list[subprocess.Popen] = []
        self.progress = progress
        if recorder is None and record_runs and settings.warehouse:
            recorder = WarehouseRunRecorder(settings.warehouse)
        self.recorder = recorder if record_runs else None
        self.env = env
        self._sleep = sleep
        self._stop = threading.Event()
        self._run_env: dict[str, str] = {}  # JETSTREAM_RUN_ID/_STARTED of the current run
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._record_lock = threading.Lock()

    # -- what runs ---------------------------------------------------------------------

    def commands(self, graph: TaskGraph) -> list[tuple[str, ...]]:
        """The argv (after the program) of every node, in dependency order."""
        return [tuple(task_args(n, self.settings)) for n in check_graph(graph)]

    def plan(self, graph: TaskGraph) -> str:
        """One `jetstream task ...` line per node, in dependency order."""
        return "".join("jetstream " + " ".join(argv) + "\n" for argv in self.commands(graph))

    def argv(self, node: TaskNode) -> list[str]:
        return [*self.command_prefix, *task_args(node, self.settings)]

    # -- running -----------------------------------------------------------------------

    def run(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> RunSummary:
        """Run every node; `labels` (which tag an Argo Workflow) are not used here."""
        order = check_graph(graph)
        run_id = uuid.uuid4().hex[:12]
        # every task of the run gets its start (the published `analysis_start_time`)
        self._run_env = {
            "JETSTREAM_RUN_ID": run_id,
            "JETSTREAM_RUN_STARTED": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        results: dict[str, NodeResult] = {}
        pending = list(order)
        running: dict[Future[NodeResult], TaskNode] = {}
        self._stop.clear()
        log.info("run started", run_id=run_id, tasks=len(order), parallelism=self.parallelism)
        progress = self._progress(len(order))
        pool = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="task")
        try:
            while pending or running:
                pending = self._dispatch(pending, results, running, pool, run_id, progress)
                if not running:
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    node = running.pop(fut)
                    result = fut.result()
                    results[node.id] = result
                    self._log_result(node, result)
                    if progress is not None:
                        progress.advance(node.id, ok=result.status is NodeStatus.SUCCEEDED)
        except BaseException:
            # interrupted (Ctrl-C) or broken: stop the children now, not when they finish;
            # rerunning the graph later completes it (tasks are idempotent)
            self._abort()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            self.close()
            if progress is not None:
                progress.stop()
        summary = RunSummary(tuple(results[n.id] for n in order), run_id=run_id)
        log.info(
            "run finished",
            run_id=run_id,
            succeeded=len(summary.succeeded),
            failed=len(summary.failed),
            skipped=len(summary.skipped),
        )
        return summary

    def _dispatch(
        self,
        pending: list[TaskNode],
        results: dict[str, NodeResult],
        running: dict[Future[NodeResult], TaskNode],
        pool: ThreadPoolExecutor,
        run_id: str,
        progress: Progress | None,
    ) -> list[TaskNode]:
        """Start every pending node whose dependencies are done; skip the ones that
        cannot run. Returns the nodes still waiting."""
        still: list[TaskNode] = []
        for node in pending:
            deps = [results.get(d) for d in node.depends]
            if any(r is None for r in deps):
                still.append(node)
                continue
            blocking = [
                r
                for r in deps
                if r is not None
                and (
                    r.status is NodeStatus.SKIPPED
                    or (r.status is NodeStatus.FAILED and not tolerates_failure_of(node))
                )
            ]
            if blocking:
                why = ", ".join(f"{r.node_id} {r.status.value}" for r in blocking)
                results[node.id] = NodeResult(node.id, NodeStatus.SKIPPED, error=why)
                log.warning("task skipped", task=node.id, because=why)
                if progress is not None:
                    progress.advance(node.id, skipped=True)
                continue
            failed = [r for r in deps if r is not None and r.status is NodeStatus.FAILED]
            env = incomplete.env_for(failed) if failed else None
            running[pool.submit(self._execute, node, run_id, env)] = node
        return still

    def _execute(
        self, node: TaskNode, run_id: str, env: Mapping[str, str] | None = None
    ) -> NodeResult:
        argv = self.argv(node)
        attempt = 0
        total = 0.0
        while True:
            attempt += 1
            if self._stop.is_set():
                return NodeResult(
                    node.id, NodeStatus.FAILED, attempt - 1, total, None, "interrupted"
                )
            started = dt.datetime.now(dt.UTC)
            t0 = time.monotonic()
            code, out, err = self._spawn(argv, run_id, env)
            seconds = time.monotonic() - t0
            total += seconds
            report = parse_task_report(out)
            if code < 0:  # killed by a signal: the OOM killer, or a worker that died
                err = f"{err.rstrip()}\n{killed_by(code)}".lstrip()
            transient = (code == EXIT_TRANSIENT or code < 0) and attempt <= self.retries
            status = "succeeded" if code == 0 else ("retrying" if transient else "failed")
            tail = err[-ERROR_TAIL_CHARS:] if code != 0 else ""
            self._record(
                {
                    "run_id": run_id,
                    "node_id": node.id,
                    "kind": node.kind.value,
                    "experiment": node.slug,
                    "attempt": attempt,
                    "definition_hash": _str_or_none(report.get("definition_hash")),
                    "code_version": jetstream.__version__,
                    "status": status,
                    "exit_code": code,
                    "started_at": started,
                    "ended_at": started + dt.timedelta(seconds=seconds),
                    "seconds": seconds,
                    "bytes_processed": _int_or_none(report.get("bytes_processed")),
                    "rows": _int_or_none(report.get("rows")),
                    "error": tail or _str_or_none(report.get("error")),
                    "bytes_estimated": _int_or_none(report.get("bytes_estimated")),
                    "bytes_billed": _int_or_none(report.get("bytes_billed")),
                }
            )
            if code == 0:
                return NodeResult(node.id, NodeStatus.SUCCEEDED, attempt, total, 0, "", report)
            if transient and not self._stop.is_set():
                delay = self.backoff * 2 ** (attempt - 1)
                log.info(
                    "task retrying", task=node.id, attempt=attempt, exit_code=code, delay=delay
                )
                self._sleep(delay)
                continue
            return NodeResult(node.id, NodeStatus.FAILED, attempt, total, code, tail, report)

    def _worker(self) -> subprocess.Popen:
        proc = getattr(self._workers, "proc", None)
        if proc is None or proc.poll() is not None:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jetstream.runners.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, **(self.env or {})},
            )
            self._workers.proc = proc
            with self._lock:
                self._all_workers.append(proc)
                self._procs.add(proc)
        return proc

    def _ask_worker(
        self, argv: list[str], run_id: str, env: Mapping[str, str] | None = None
    ) -> tuple[int, str, str]:
        proc = self._worker()
        assert proc.stdin is not None and proc.stdout is not None
        request = {
            "argv": argv[len(self.command_prefix) :],
            "env": {**(env or {}), "JETSTREAM_RUN_ID": run_id, **self._run_env},
        }
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            line = ""
            err = str(exc)
        else:
            err = "worker exited"
        if not line:
            code = proc.wait()
            self._workers.proc = None
            # a negative code (death by a signal) is kept: it is retried like exit 75
            return (code if code else 1), "", f"task worker died ({code}): {err}"
        reply = json.loads(line)
        return int(reply["code"]), reply.get("out", ""), reply.get("err", "")

    def close(self) -> None:
        """Stop the long-lived workers."""
        with self._lock:
            workers, self._all_workers = self._all_workers, []
        for proc in workers:
            if proc.poll() is None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for proc in workers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            with self._lock:
                self._procs.discard(proc)

    def _spawn(
        self, argv: list[str], run_id: str, extra: Mapping[str, str] | None = None
    ) -> tuple[int, str, str]:
        if self.reuse_workers:
            return self._ask_worker(argv, run_id, extra)
        # tasks tag their error rows with the run id
        env = {
            **os.environ,
            **(self.env or {}),
            **(extra or {}),
            "JETSTREAM_RUN_ID": run_id,
            **self._run_env,
        }
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        except OSError as exc:
            return 127, "", f"cannot start {argv[0]!r}: {exc}"
        with self._lock:
            self._procs.add(proc)
        try:
            out, err = proc.communicate()
        finally:
            with self._lock:
                self._procs.discard(proc)
        return proc.returncode, out, err

    def _record(self, row: dict[str, Any]) -> None:
        if self.recorder is None:
            return
        with self._record_lock:
            try:
                self.recorder.record([row])
            except Exception as exc:  # recording must never fail the run
                log.warning("could not record task attempt", task=row["node_id"], error=str(exc))

    def _abort(self) -> None:
        self._stop.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _log_result(self, node: TaskNode, result: NodeResult) -> None:
        if result.status is NodeStatus.SUCCEEDED:
            log.info("task succeeded", task=node.id, seconds=round(result.seconds, 2))
        else:
            last = result.error.strip().splitlines()[-1:] or [""]
            log.error(
                "task failed",
                task=node.id,
                exit_code=result.exit_code,
                attempts=result.attempts,
                error=last[0],
            )

    def _progress(self, total: int) -> Progress | None:
        return progress_for_run(total, self.progress)


def killed_by(code: int) -> str:
    """The line recorded for a task that died by signal `-code`."""
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"task process killed by {name} (exit {code})"


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
