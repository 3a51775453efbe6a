"""Tasks that die by a signal (the OOM killer's SIGKILL): retried like exit 75 by the local
runner, in a subprocess and in a long-lived worker; a task that finally fails is named in
the published errors document and its period's statistics file is not replaced; the
workers of a runner that is killed stop within seconds. Real processes, real signals."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import synthetic
from jetstream.cli import cli
from jetstream.export import errors_path, statistics_path
from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.periods import Period
from jetstream.runners.common import NodeStatus, RunSettings
from jetstream.runners.local import ListRecorder, LocalRunner
from jetstream.tasks import incomplete
from tests.support import e2e_support as e2e
from tests.support.paths import REPO
from tests.support.servers import Reply, http_server  # noqa: F401 - fixture

DAY = dt.date(2024, 3, 1)

# A fake `jetstream` CLI: `kill` attempts die by SIGKILL mid-task (a real signal), the
# others succeed; export writes the failed tasks the runner passed it.
FAKE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path

    args = sys.argv[1:]
    kind = args[1]
    flags = dict(zip(args[2::2], args[3::2]))
    key = "/".join(p for p in (kind, flags["--experiment"], flags.get("--period")) if p)
    state = Path(os.environ["FAKE_STATE"])
    counter = state / (key.replace("/", "_") + ".attempts")
    attempt = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(attempt + 1))
    kills = json.loads(os.environ["FAKE_KILLS"]).get(key, 0)
    if kind == "export":
        (state / "failed.json").write_text(os.environ.get("JETSTREAM_FAILED_TASKS", "[]"))
    print("working", file=sys.stderr, flush=True)
    if attempt < kills:
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)
    print(json.dumps({"status": "ok"}))
    """
)


def experiment(slug: str) -> list[TaskNode]:
    enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, slug, date=DAY)
    metrics = [
        TaskNode(TaskKind.METRICS, slug, DAY, p, "main", (), (enr.id,))
        for p in (Period.DAY, Period.WEEK)
    ]
    export = TaskNode(TaskKind.EXPORT, slug, date=DAY, depends=tuple(m.id for m in metrics))
    return [enr, *metrics, export]


def fake_runner(tmp_path: Path, kills: dict[str, int], retries: int = 2):
    script = tmp_path / "fake_jetstream.py"
    script.write_text(FAKE)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    recorder = ListRecorder()
    runner = LocalRunner(
        RunSettings(experiments="e.json", warehouse="duckdb:unused.duckdb", out="out"),
        command_prefix=[sys.executable, str(script)],
        recorder=recorder,
        progress=False,
        retries=retries,
        sleep=lambda s: None,
        env={"FAKE_STATE": str(state), "FAKE_KILLS": json.dumps(kills)},
    )
    return runner, recorder, state


def test_a_task_killed_by_sigkill_is_retried(tmp_path):
    runner, recorder, _ = fake_runner(tmp_path, {"metrics/a/day": 1})
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    assert summary.ok, summary.describe()
    node = "metrics/a/day/main/2024-03-01"
    assert summary.by_id()[node].attempts == 2
    rows = [r for r in recorder.rows if r["node_id"] == node]
    assert [(r["status"], r["exit_code"]) for r in rows] == [
        ("retrying", -signal.SIGKILL),
        ("succeeded", 0),
    ]
    assert "killed by SIGKILL" in rows[0]["error"]


def test_a_task_killed_every_time_fails_after_the_retries_and_export_is_told(tmp_path):
    runner, recorder, state = fake_runner(tmp_path, {"metrics/a/day": 99}, retries=2)
    summary = runner.run(TaskGraph(tuple(experiment("a"))))
    by_id = summary.by_id()
    node = "metrics/a/day/main/2024-03-01"
    assert by_id[node].status is NodeStatus.FAILED
    assert by_id[node].attempts == 3 and by_id[node].exit_code == -signal.SIGKILL
    assert by_id["export/a"].status is NodeStatus.SUCCEEDED
    assert summary.exit_code == 1
    [failed] = json.loads((state / "failed.json").read_text())
    assert failed["task"] == node and failed["exit_code"] == -signal.SIGKILL
    assert failed["attempts"] == 3 and "SIGKILL" in failed["error"]


def test_export_without_failures_is_told_nothing(tmp_path):
    runner, _, state = fake_runner(tmp_path, {})
    assert runner.run(TaskGraph(tuple(experiment("a")))).ok
    assert json.loads((state / "failed.json").read_text()) == []


def _demo_settings(tmp_path: Path, experiments: str) -> RunSettings:
    return RunSettings(
        experiments=experiments,
        warehouse=e2e.url(tmp_path / "w.duckdb"),
        out=str(tmp_path / "out"),
        config_repo=str(synthetic.DEMO_DIR),
    )


DEMO = "demo-sidebar-redesign"


@pytest.mark.slow
def test_a_worker_killed_mid_task_is_replaced_and_the_task_retried(tmp_path, http_server):  # noqa: F811
    """The real worker, running a real export task, killed by SIGKILL while the task waits
    for the experiments source; the retry runs in a new worker and publishes."""
    body = (synthetic.DEMO_DIR / "experiments.json").read_bytes()
    http_server.script(Reply(200, body, delay=60), Reply(200, body))
    runner = LocalRunner(
        _demo_settings(tmp_path, http_server.url("/experiments")),
        parallelism=1,
        progress=False,
        record_runs=False,
        retries=2,
        sleep=lambda s: None,
        reuse_workers=True,
    )
    graph = TaskGraph((TaskNode(TaskKind.EXPORT, DEMO, date=dt.date(2026, 1, 17)),))
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(summary=runner.run(graph)))
    thread.start()
    deadline = time.monotonic() + 60
    while not http_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert http_server.requests, "the task never asked for the experiments"
    [worker] = runner._all_workers
    os.kill(worker.pid, signal.SIGKILL)
    thread.join(timeout=120)
    summary = box["summary"]
    result = summary.by_id()[f"export/{DEMO}"]
    assert result.status is NodeStatus.SUCCEEDED, result.error
    assert result.attempts == 2
    assert (tmp_path / "out" / errors_path(DEMO)).is_file()


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has stopped


RUNNER = textwrap.dedent(
    """
    import sys
    from jetstream.runners.common import RunSettings
    from jetstream.runners.local import LocalRunner

    url, config = sys.argv[1], sys.argv[2]
    settings = RunSettings(experiments=url, warehouse="duckdb:unused.duckdb", out="out")
    runner = LocalRunner(settings, record_runs=False, progress=False)
    print(runner._worker().pid, flush=True)
    prefix = runner.command_prefix
    runner._ask_worker([*prefix, "validate-config", config, "--experiments", url], "r1")
    """
)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_of_a_killed_runner_stop_within_seconds(tmp_path, http_server):  # noqa: F811
    http_server.script(Reply(200, b"[]", delay=60))  # the task waits a minute
    config = synthetic.DEMO_DIR / "jetstream" / f"{DEMO}.toml"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, http_server.url("/experiments"), str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert runner.stdout is not None
        worker = int(runner.stdout.readline())
        deadline = time.monotonic() + 60
        while not http_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http_server.requests and not _gone(worker), "the worker is not mid-task"
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        killed = time.monotonic()
        while not _gone(worker) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        assert _gone(worker), "the worker outlived its runner"
        assert time.monotonic() - killed < 5
    finally:
        if runner.poll() is None:
            runner.kill()


def test_failure_rows_name_the_task_and_the_period():
    failed = [
        {"task": f"metrics/{DEMO}/week/events/2026-01-17", "exit_code": -9, "attempts": 4},
        {"task": f"metrics/{DEMO}/overall/events/2026-01-17", "exit_code": 1, "attempts": 1},
    ]
    rows, periods = incomplete.failure_rows(failed, DEMO, "r1")
    assert periods == {Period.WEEK, Period.OVERALL}
    assert [r["period"] for r in rows] == ["week", "overall"]
    assert all(r["level"] == "error" and r["experiment"] == DEMO for r in rows)
    assert f"task metrics/{DEMO}/week/events/2026-01-17 of experiment {DEMO}" in rows[0]["message"]
    assert "after 4 attempt(s) (exit -9)" in rows[0]["message"]
    assert "may be incomplete" in rows[0]["message"]
    assert incomplete.failed_tasks({incomplete.FAILED_TASKS_ENV: "not json"}) == []


def test_export_names_a_failed_task_and_keeps_the_last_complete_file(tmp_path):
    out = tmp_path / "out"
    week = out / statistics_path(DEMO, Period.WEEK)
    week.parent.mkdir(parents=True)
    week.write_text('[{"kept": "the last complete publication"}]')
    failed = f"metrics/{DEMO}/week/feature_events/2026-01-17"
    env = {
        incomplete.FAILED_TASKS_ENV: json.dumps(
            [{"task": failed, "exit_code": -9, "attempts": 4, "error": "killed by SIGKILL"}]
        )
    }
    res = CliRunner().invoke(
        cli,
        [
            "task",
            "export",
            "--experiment",
            DEMO,
            "--date",
            "2026-01-17",
            "--experiments",
            str(synthetic.DEMO_DIR / "experiments.json"),
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--warehouse",
            e2e.url(tmp_path / "w.duckdb"),
            "--out",
            str(out),
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    errors = json.loads((out / errors_path(DEMO)).read_text())
    [row] = [e for e in errors if failed in e["message"]]
    assert row["log_level"] == "ERROR" and row["experiment"] == DEMO
    assert "may be incomplete" in row["message"]
    assert json.loads(week.read_text()) == [{"kept": "the last complete publication"}]
    assert (out / statistics_path(DEMO, Period.OVERALL)).is_file()  # other periods published


def test_argo_can_pass_dependency_statuses():
    week = f"metrics/{DEMO}/week/events/2026-01-17"
    day = f"metrics/{DEMO}/day/events/2026-01-17"
    value = f"{week}=Failed {day}=Succeeded metrics/{DEMO}/overall/events/2026-01-17=Omitted"
    failed = incomplete.failed_tasks({incomplete.FAILED_TASKS_ENV: value})
    assert [f["task"] for f in failed] == [week]
    rows, periods = incomplete.failure_rows(failed, DEMO, "r1")
    assert periods == {Period.WEEK}
    assert "(Argo status Failed)" in rows[0]["message"]


@pytest.mark.slow
def test_a_run_whose_metrics_task_finally_fails_names_it_in_the_published_errors(tmp_path):
    """The real CLI in the real workers: a metrics task fails (its experiment has no
    enrollments yet), export still runs and publishes an errors document naming it."""
    date = dt.date(2026, 1, 18)  # week 0 is due: enrollment ends 01-12 (E + 6)
    metrics = TaskNode(TaskKind.METRICS, DEMO, date, Period.WEEK, "feature_events")
    export = TaskNode(TaskKind.EXPORT, DEMO, date=date, depends=(metrics.id,))
    runner = LocalRunner(
        _demo_settings(tmp_path, str(synthetic.DEMO_DIR / "experiments.json")),
        parallelism=1,
        progress=False,
        record_runs=False,
        retries=0,
    )
    summary = runner.run(TaskGraph((metrics, export)))
    by_id = summary.by_id()
    assert by_id[metrics.id].status is NodeStatus.FAILED, by_id[metrics.id]
    assert by_id[export.id].status is NodeStatus.SUCCEEDED, by_id[export.id].error
    errors = json.loads((tmp_path / "out" / errors_path(DEMO)).read_text())
    [row] = [e for e in errors if e["exception_type"] == incomplete.EXCEPTION_TYPE]
    assert f"task {metrics.id} of experiment {DEMO} failed" in row["message"]
    assert "week results of 2026-01-18 may be incomplete" in row["message"]
    assert not (tmp_path / "out" / statistics_path(DEMO, Period.WEEK)).exists()
