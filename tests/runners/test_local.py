"""LocalRunner with small fake task commands: ordering, parallelism, retries, isolation,
and the `runs` rows it records."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
from pathlib import Path

import pytest

from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.periods import Period
from jetstream.runners.common import NodeStatus, RunSettings, parse_task_report
from jetstream.runners.local import ListRecorder, LocalRunner, runs_schema
from tests.support.paths import REPO

DAY = dt.date(2024, 3, 1)

# A fake `jetstream` CLI: behaviour per node comes from a JSON plan, keyed by
# "<kind>/<experiment>[/<period>]", one entry per attempt (the last one repeats):
# {"exit": int, "barrier": [mine, other], "exclusive": true, "report": {...}}.
FAKE = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    args = sys.argv[1:]
    assert args[0] == "task", args
    kind = args[1]
    flags = dict(zip(args[2::2], args[3::2]))
    key = "/".join(p for p in (kind, flags["--experiment"], flags.get("--period")) if p)
    state = Path(os.environ["FAKE_STATE"])
    plan = json.loads(Path(os.environ["FAKE_PLAN"]).read_text()).get(key, [{}])
    counter = state / (key.replace("/", "_") + ".attempts")
    attempt = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(attempt + 1))
    step = plan[min(attempt, len(plan) - 1)]
    with open(state / "events.log", "a") as log:
        log.write(f"start {key}\\n")
    (state / (key.replace("/", "_") + ".pid")).write_text(str(os.getpid()))
    if step.get("exclusive"):
        lock = state / "running"
        if lock.exists():
            print("another task is running", file=sys.stderr)
            sys.exit(3)
        lock.write_text(key)
        time.sleep(0.2)
        lock.unlink()
    if "barrier" in step:
        mine, other = step["barrier"]
        (state / mine).write_text("")
        deadline = time.monotonic() + 20
        while not (state / other).exists():
            if time.monotonic() > deadline:
                with open(state / "events.log", "a") as log:
                    log.write(f"timeout {key}\\n")
                print("barrier timed out: tasks did not run in parallel", file=sys.stderr)
                sys.exit(4)
            time.sleep(0.02)
    with open(state / "events.log", "a") as log:
        log.write(f"end {key}\\n")
    print("some log line", file=sys.stderr)
    print("Traceback: boom" if step.get("exit", 0) else "done", file=sys.stderr)
    report = {"status": "ok", "bytes_processed": 1000, "rows": 7, "run": os.environ.get("JETSTREAM_RUN_ID")}
    report.update(step.get("report", {}))
    print("progress on stdout")
    print(json.dumps(report))
    sys.exit(step.get("exit", 0))
    """
)


def experiment(slug: str, periods=(Period.DAY, Period.WEEK)) -> list[TaskNode]:
    enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, slug, date=DAY)
    metrics = [TaskNode(TaskKind.METRICS, slug, DAY, p, "main", (), (enr.id,)) for p in periods]
    export = TaskNode(TaskKind.EXPORT, slug, date=DAY, depends=tuple(m.id for m in metrics))
    return [enr, *metrics, export]


SETTINGS = RunSettings(experiments="exps.json", warehouse="duckdb:unused.duckdb", out="out")


@pytest.fixture
def fake(tmp_path: Path):
    script = tmp_path / "fake_jetstream.py"
    script.write_text(FAKE)
    state = tmp_path / "state"
    state.mkdir()
    plan_path = tmp_path / "plan.json"

    def make(plan: dict, **kwargs) -> tuple[LocalRunner, ListRecorder]:
        plan_path.write_text(json.dumps(plan))
        recorder = ListRecorder()
        kwargs.setdefault("parallelism", 2)
        runner = LocalRunner(
            SETTINGS,
            command_prefix=[sys.executable, str(script)],
            recorder=recorder,
            progress=False,
            env={"FAKE_STATE": str(state), "FAKE_PLAN": str(plan_path)},
            **kwargs,
        )
        return runner, recorder

    make.state = state  # type: ignore[attr-defined]
    return make


def events(state: Path) -> list[str]:
    return (state / "events.log").read_text().splitlines()


def test_commands_are_the_task_cli_calls():
    graph = TaskGraph(tuple(experiment("a")))
    runner = LocalRunner(SETTINGS, record_runs=False)
    cmds = runner.commands(graph)
    assert cmds[0] == (
        "task",
        "ensure-enrollments",
        "--experiment",
        "a",
        "--date",
        "2024-03-01",
        "--experiments",
        "exps.json",
        "--warehouse",
        "duckdb:unused.duckdb",
        "--out",
        "out",
    )
    assert cmds[-1][:3] == ("task", "export", "--experiment")
    assert runner.argv(graph.nodes[0])[:3] == [sys.executable, "-m", "jetstream.cli"]


def test_dependencies_finish_before_dependants_start(fake):
    runner, _ = fake({})
    graph = TaskGraph(tuple(experiment("a") + experiment("b")))
    summary = runner.run(graph)
    assert summary.ok and summary.exit_code == 0
    log = events(fake.state)
    for node in graph.nodes:
        key = "/".join(
            p for p in (node.kind.value, node.slug, node.period and node.period.value) if p
        )
        for dep_id in node.depends:
            dep = graph.by_id()[dep_id]
            dkey = "/".join(
                p for p in (dep.kind.value, dep.slug, dep.period and dep.period.value) if p
            )
            assert log.index(f"end {dkey}") < log.index(f"start {key}")


def test_independent_tasks_run_in_parallel(fake):
    # each waits for the other to have started: only possible when they overlap
    plan = {
        "ensure-enrollments/a": [{"barrier": ["a.started", "b.started"]}],
        "ensure-enrollments/b": [{"barrier": ["b.started", "a.started"]}],
    }
    runner, _ = fake(plan, parallelism=2)
    a = TaskNode(TaskKind.ENSURE_ENROLLMENTS, "a", date=DAY)
    b = TaskNode(TaskKind.ENSURE_ENROLLMENTS, "b", date=DAY)
    summary = runner.run(TaskGraph((a, b)))
    assert summary.ok, summary.describe()


def test_parallelism_one_runs_one_task_at_a_time(fake):
    plan = {f"ensure-enrollments/{s}": [{"exclusive": True}] for s in "abcd"}
    runner, _ = fake(plan, parallelism=1)
    nodes = tuple(TaskNode(TaskKind.ENSURE_ENROLLMENTS, s, date=DAY) for s in "abcd")
    summary = runner.run(TaskGraph(nodes))
    assert summary.ok, summary.describe()


def test_transient_exit_is_retried_with_exponential_backoff(fake):
    plan = {"ensure-enrollments/a": [{"exit": 75}, {"exit": 75}, {"exit": 0}]}
    delays: list[float] = []
    runner, recorder = fake(plan, retries=3, backoff=0.5, sleep=delays.append)
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    assert summary.ok, summary.describe()
    enr = summary.by_id()["ensure-enrollments/a"]
    assert enr.attempts == 3
    assert delays == [0.5, 1.0]
    rows = [r for r in recorder.rows if r["node_id"] == "ensure-enrollments/a"]
    assert [r["status"] for r in rows] == ["retrying", "retrying", "succeeded"]
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert [r["exit_code"] for r in rows] == [75, 75, 0]


def test_retries_are_limited(fake):
    runner, recorder = fake(
        {"ensure-enrollments/a": [{"exit": 75}]}, retries=2, sleep=lambda s: None
    )
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    result = summary.by_id()["ensure-enrollments/a"]
    assert result.status is NodeStatus.FAILED and result.attempts == 3 and result.exit_code == 75
    assert [r["status"] for r in recorder.rows] == ["retrying", "retrying", "failed"]
    assert summary.exit_code == 1


@pytest.mark.parametrize("code", [1, 2])
def test_non_transient_exit_is_not_retried(fake, code):
    runner, _ = fake({"ensure-enrollments/a": [{"exit": code}, {"exit": 0}]}, retries=3)
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    result = summary.by_id()["ensure-enrollments/a"]
    assert result.status is NodeStatus.FAILED
    assert result.attempts == 1 and result.exit_code == code
    assert "Traceback: boom" in result.error


def test_a_failure_fails_only_its_dependants(fake):
    runner, _ = fake({"ensure-enrollments/bad": [{"exit": 1}]})
    graph = TaskGraph(tuple(experiment("bad") + experiment("good")))
    summary = runner.run(graph)
    by_id = summary.by_id()
    assert by_id["ensure-enrollments/bad"].status is NodeStatus.FAILED
    for node in experiment("bad")[1:]:
        assert by_id[node.id].status is NodeStatus.SKIPPED, node.id
    assert "ensure-enrollments/bad failed" in by_id["metrics/bad/day/main/2024-03-01"].error
    for node in experiment("good"):
        assert by_id[node.id].status is NodeStatus.SUCCEEDED, node.id
    started = {line.split()[1] for line in events(fake.state) if line.startswith("start")}
    assert not any(k.startswith(("metrics/bad", "export/bad")) for k in started)
    assert "skipped" in summary.describe() and summary.exit_code == 1


def test_export_still_publishes_after_a_failed_metrics_task(fake):
    runner, _ = fake({"metrics/a/day": [{"exit": 1}]})
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    by_id = summary.by_id()
    assert by_id["metrics/a/day/main/2024-03-01"].status is NodeStatus.FAILED
    assert by_id["metrics/a/week/main/2024-03-01"].status is NodeStatus.SUCCEEDED
    assert by_id["export/a"].status is NodeStatus.SUCCEEDED


def test_every_attempt_is_recorded(fake):
    plan = {"export/a": [{"report": {"definition_hash": "abc123", "bytes_processed": 42}}]}
    runner, recorder = fake(plan)
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    assert len(recorder.rows) == 4
    export = next(r for r in recorder.rows if r["node_id"] == "export/a")
    assert export["definition_hash"] == "abc123"
    assert export["bytes_processed"] == 42 and export["rows"] == 7
    assert export["kind"] == "export" and export["experiment"] == "a"
    assert export["code_version"] == __import__("jetstream").__version__
    assert export["started_at"] <= export["ended_at"] and export["seconds"] >= 0
    assert {r["run_id"] for r in recorder.rows} == {summary.run_id}
    # tasks see the run id, to tag their error rows
    assert summary.by_id()["export/a"].report["run"] == summary.run_id
    import pyarrow as pa

    table = pa.Table.from_pylist(recorder.rows, schema=runs_schema())
    assert table.num_rows == 4


def test_runs_land_in_the_warehouse(fake, tmp_path):
    pytest.importorskip("duckdb")
    from jetstream.warehouse import open_warehouse

    uri = f"duckdb:{tmp_path / 'wh.duckdb'}"
    plan = {"ensure-enrollments/a": [{"exit": 75}, {"exit": 0}]}
    runner, _ = fake(plan, sleep=lambda s: None)
    from jetstream.runners.local import WarehouseRunRecorder

    runner.recorder = WarehouseRunRecorder(uri)
    assert runner.run(TaskGraph(tuple(experiment("a")))).ok
    wh = open_warehouse(uri)
    try:
        table = wh.query("SELECT node_id, status, exit_code FROM runs ORDER BY started_at")
    finally:
        wh.close()
    rows = table.to_pylist()
    assert len(rows) == 5
    assert rows[0] == {"node_id": "ensure-enrollments/a", "status": "retrying", "exit_code": 75}


def test_a_recorder_failure_does_not_fail_the_run(fake):
    class Broken:
        def record(self, rows):
            raise RuntimeError("warehouse down")

    runner, _ = fake({})
    runner.recorder = Broken()
    assert runner.run(TaskGraph(tuple(experiment("a")))).ok


def test_a_missing_program_fails_the_node(tmp_path):
    runner = LocalRunner(
        SETTINGS, command_prefix=[str(tmp_path / "no-such-program")], record_runs=False
    )
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    first = summary.by_id()["ensure-enrollments/a"]
    assert first.status is NodeStatus.FAILED and "cannot start" in first.error
    assert len(summary.skipped) == 3


def test_rerunning_repeats_the_same_commands(fake):
    """Resuming is rerunning: the runner keeps no state, so a second run of the same
    graph executes the same (idempotent) commands again."""
    runner, recorder = fake({})
    graph = TaskGraph(tuple(experiment("a")))
    first = runner.run(graph)
    second = runner.run(graph)
    assert first.ok and second.ok and first.run_id != second.run_id
    assert len(recorder.rows) == 8


def test_parse_task_report():
    assert parse_task_report('log\n{"status": "ok", "rows": 3}\n\n') == {"status": "ok", "rows": 3}
    assert parse_task_report('{"a": 1}\nnot json') == {}
    assert parse_task_report("") == {}
    assert parse_task_report("{broken") == {}


def test_graph_with_a_cycle_is_refused():
    a = TaskNode(TaskKind.METRICS, "a", DAY, Period.DAY, "x", (), ("metrics/a/week/x/2024-03-01",))
    b = TaskNode(TaskKind.METRICS, "a", DAY, Period.WEEK, "x", (), (a.id,))
    with pytest.raises(ValueError, match="cycle"):
        LocalRunner(SETTINGS, record_runs=False).run(TaskGraph((a, b)))


DRIVER = textwrap.dedent(
    """
    import signal
    import sys
    from tests.runners.test_local import SETTINGS, TaskGraph, experiment

    # Python leaves SIGINT ignored when it starts ignored (a test run started in the
    # background by a non-interactive shell); Ctrl-C must reach the runner here
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from jetstream.runners.local import LocalRunner

    runner = LocalRunner(
        SETTINGS, command_prefix=[sys.executable, sys.argv[1]], record_runs=False, progress=False
    )
    runner.run(TaskGraph(tuple(experiment("a"))))
    """
)


def test_an_interrupted_run_stops_its_tasks_and_a_rerun_completes(fake, tmp_path):
    """Ctrl-C while a task runs: the runner terminates it at once; running again
    completes the graph (the runner keeps no state)."""
    import os
    import signal
    import subprocess
    import time

    plan = {"ensure-enrollments/a": [{"barrier": ["a.started", "never"]}, {}]}
    runner, _ = fake(plan)  # writes the plan; the driver below uses the same env
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, **runner.env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(driver), runner.command_prefix[1]], env=env, stderr=subprocess.PIPE
    )
    started = fake.state / "a.started"
    for _ in range(400):
        if started.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert started.exists(), proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in err
    assert "end ensure-enrollments/a" not in events(fake.state)
    assert "timeout ensure-enrollments/a" not in events(fake.state)  # killed, not left to wait
    pid = int((fake.state / "ensure-enrollments_a.pid").read_text())
    for _ in range(100):  # the task was terminated, not left waiting on its barrier
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"task process {pid} still alive after the interrupt")
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    assert summary.ok, summary.describe()
