"""Issue #5 "done when", on the real demo platform:

- parity: the Argo workflow rendered for a planned graph runs exactly the commands the
  local runner runs (and is a valid Argo manifest);
- resume: a `jetstream rerun` killed with SIGKILL midway and started again leaves the same
  tables and the same published JSON as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jetstream import synthetic
from jetstream.commands.loading import load_many
from jetstream.graph import TaskGraph, TaskKind, plan, plan_dates
from jetstream.periods import Period
from jetstream.runners import argo
from jetstream.runners.common import RunSettings
from jetstream.runners.local import LocalRunner
from tests.support.workflow_commands import commands_of

SLUG = "demo-sidebar-redesign"
TABLE = SLUG.replace("-", "_")
EXPERIMENTS = str(synthetic.DEMO_DIR / "experiments.json")
CONFIG_REPO = synthetic.DEMO_DIR
SETTINGS = RunSettings(
    experiments=EXPERIMENTS,
    config_repo=str(CONFIG_REPO),
    warehouse="duckdb:/data/warehouse.duckdb",
    out="/data/results",
    image="ghcr.io/mozilla/jetstream-platform@sha256:" + "0" * 64,
)


@pytest.fixture(scope="module")
def specs() -> list[Any]:
    loaded, failures = load_many(EXPERIMENTS, CONFIG_REPO)
    assert failures == {}
    return loaded


# -- 1. parity ---------------------------------------------------------------------------

# date -> periods that must be due for the demo experiment on that date (last enrollment
# date 2026-01-12 = start + enrollment_period, as Jetstream: pre-enrollment the day after;
# 2026-02-08 = E + 27 closes week 3 and the first 28 days too)
DUE = {
    dt.date(2026, 1, 13): {Period.PREENROLLMENT_WEEK, Period.PREENROLLMENT_DAYS28, Period.DAY},
    dt.date(2026, 1, 18): {Period.DAY, Period.WEEK},
    dt.date(2026, 2, 8): {Period.DAY, Period.WEEK, Period.DAYS28, Period.OVERALL},
}


def graphs(specs: list[Any]) -> Iterator[tuple[str, TaskGraph]]:
    for date in DUE:
        yield date.isoformat(), plan(specs, date)
    rerun_dates = [dt.date(2026, 1, 12) + dt.timedelta(days=i) for i in range(8)]
    yield "rerun", plan_dates([s for s in specs if s.slug == SLUG], rerun_dates, force=True)


def test_demo_graphs_have_the_expected_periods(specs):
    for date, periods in DUE.items():
        graph = plan(specs, date)
        due = {n.period for n in graph.nodes if n.slug == SLUG and n.period is not None}
        assert due == periods, date
        kinds = [n.kind for n in graph.nodes if n.slug == SLUG]
        assert kinds.count(TaskKind.ENSURE_ENROLLMENTS) == kinds.count(TaskKind.EXPORT) == 1


def test_argo_workflow_runs_the_local_runners_commands(specs):
    for label, graph in graphs(specs):
        assert graph.nodes, label
        manifest = argo.build_workflow(graph, SETTINGS).to_dict()
        local = LocalRunner(SETTINGS, record_runs=False).commands(graph)
        assert len(set(local)) == len(local) == len(graph.nodes), label
        assert commands_of(manifest) == set(local), label
        # every command carries the run's common arguments, with their values
        for command in local:
            assert command[0] == "task" and command[1] in {k.value for k in TaskKind}
            assert list(command[-len(SETTINGS.common_args()) :]) == SETTINGS.common_args()


def test_argo_dependencies_follow_the_graph(specs):
    graph = plan(specs, dt.date(2026, 1, 13))
    manifest = argo.build_workflow(graph, SETTINGS).to_dict()
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    tasks = {
        task["name"]: task
        for t in templates.values()
        if t["name"] != "main"
        for task in t.get("dag", {}).get("tasks", [])
    }
    by_id = graph.by_id()
    for node in graph.nodes:
        depends = tasks[node.name].get("depends", "")
        named = set(re.findall(r"([a-z0-9-]+)\.(?:Succeeded|Failed)", depends))
        assert named == {by_id[d].name for d in node.depends}, node.id
        # export still runs when a metrics task failed; nothing else does
        assert (".Failed" in depends) == (node.kind is TaskKind.EXPORT), node.id


@pytest.mark.shared
def test_rendered_demo_workflows_are_valid_argo(specs, shared_dir):
    from jetstream.manifests import load_schema, validate_manifest

    schema = load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    for label, graph in graphs(specs):
        manifest = argo.build_workflow(graph, SETTINGS).to_dict()
        assert validate_manifest(manifest, schema) == [], label


# -- 2. kill midway and restart ----------------------------------------------------------

# A short range: day windows from the last enrollment day (2026-01-12), pre-enrollment
# windows (2026-01-13), the first week (2026-01-18). Restricted to three metrics
# (sidebar_clicks has a covariate-adjusted statistic reading the pre-enrollment week) so
# the test stays fast.
START, END = "2026-01-12", "2026-01-18"
METRICS = ("sidebar_opens", "sidebar_clicks", "dau_days")
KILL_AFTER_TASKS = 3
RUN_TIMEOUT = 420


def rerun_command(db: Path, out: Path) -> list[str]:
    argv = [sys.executable, "-m", "jetstream.cli", "rerun", "--experiment", SLUG]
    argv += ["--start-date", START, "--end-date", END]
    for m in METRICS:
        argv += ["--metric", m]
    argv += ["--experiments", EXPERIMENTS, "--config-repo", str(CONFIG_REPO)]
    argv += ["--warehouse", f"duckdb:{db}", "--out", str(out)]
    return argv


def start(argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "JETSTREAM_LOG_LEVEL": "INFO"}
    with log.open("ab") as fh:
        return subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: the workers die with it
        )


def finish(proc: subprocess.Popen, log: Path) -> None:
    try:
        code = proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail(f"run did not finish in {RUN_TIMEOUT}s:\n{log.read_text()[-3000:]}")
    assert code == 0, log.read_text()[-5000:]


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # wait for every member of the group (the task workers) to be gone
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"process group {proc.pid} survived SIGKILL")


def succeeded_tasks(log: Path) -> int:
    return log.read_text(errors="replace").count('"task succeeded"') if log.exists() else 0


@pytest.fixture(scope="module")
def initial_warehouse(tmp_path_factory) -> Path:
    from jetstream.warehouse import open_warehouse

    db = tmp_path_factory.mktemp("warehouse") / "initial.duckdb"
    wh = open_warehouse(f"duckdb:{db}")
    try:
        synthetic.write(wh, synthetic.generate(clients=400, seed=5))
    finally:
        wh.close()
    assert not Path(f"{db}.wal").exists()  # closed cleanly: the file is the whole state
    return db


RESULT_TABLE_PREFIXES = (
    "metrics_",
    "statistics_",
    "enrollments_",
    "enrollment_clients_",
    "segments_",
    "partials_",
    "partial_days_",
    "exposure_days_",
)


def read_tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Sorted contents of the result tables (and views) of the experiment."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for name in sorted(names):
            if name.startswith(RESULT_TABLE_PREFIXES) and TABLE in name:
                out[name] = _sorted_rows(con, f'SELECT * FROM "{name}"')
        out["errors"] = _sorted_rows(con, "SELECT * EXCLUDE (run, timestamp) FROM errors")
        return out
    finally:
        con.close()


def run_rows(db: Path) -> list[int]:
    """Succeeded attempts per run id in the `runs` table, in the order the runs started."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded') FROM runs "
            "GROUP BY run_id ORDER BY min(started_at)"
        ).fetchall()
    finally:
        con.close()
    return [int(r[0]) for r in rows]


def _sorted_rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    table = con.sql(sql).to_arrow_table()
    rows = [tuple(r.values()) for r in table.to_pylist()]
    # non-float columns first: floats may differ in the last bits between the two runs
    return sorted(
        rows,
        key=lambda row: (
            [(v is None, repr(v)) for v in row if not isinstance(v, float)],
            [repr(v) for v in row if isinstance(v, float)],
        ),
    )


# Statistics are computed in numpy from rows whose order the warehouse does not fix, so
# a resumed run (its tables written in other chunks) can differ in the last bits.
REL_TOL = 1e-9


def same_value(a: Any, b: Any) -> bool:
    """Equal, floats within REL_TOL, recursively through JSON lists and objects."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(
            a, b, rel_tol=REL_TOL, abs_tol=1e-12
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def first_difference(a: Any, b: Any) -> Any:
    """The first entries of two JSON lists that differ (for the failure message)."""
    if isinstance(a, list) and isinstance(b, list):
        for x, y in zip(a, b, strict=False):
            if not same_value(x, y):
                return f"{json.dumps(x, sort_keys=True)}\n  vs {json.dumps(y, sort_keys=True)}"
        return f"lengths {len(a)} vs {len(b)}"
    return a, b


def assert_same_rows(name: str, left: list[tuple], right: list[tuple]) -> None:
    assert len(left) == len(right), f"{name}: {len(left)} rows vs {len(right)}"
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        if not all(same_value(x, y) for x, y in zip(a, b, strict=True)):
            pytest.fail(f"{name}: row {i} differs:\n  resumed:       {a}\n  uninterrupted: {b}")


def _row_key(row: dict[str, Any]) -> str:
    """A record's identity: its non-float fields (floats may differ in the last bits)."""
    return json.dumps({k: v for k, v in row.items() if not isinstance(v, float)}, sort_keys=True)


def published(out: Path) -> dict[str, Any]:
    """The JSON documents under `out`, minus what legitimately differs between runs: the
    metadata's analysis_start_time, the run id and timestamp of error entries. Rows whose
    order the export does not fix (sample-ratio-mismatch rows, errors with equal
    timestamps) are put in a canonical order; statistics documents keep the export's
    order."""
    docs: dict[str, Any] = {}
    for path in sorted(out.rglob("*.json")):
        doc = json.loads(path.read_text())
        rel = str(path.relative_to(out))
        if rel.startswith("metadata/"):
            doc.pop("analysis_start_time")
            doc["sample_ratio_mismatch"] = sorted(doc["sample_ratio_mismatch"], key=_row_key)
        if rel.startswith("errors/"):
            doc = sorted(
                ({k: v for k, v in e.items() if k not in ("run", "timestamp")} for e in doc),
                key=_row_key,
            )
        docs[rel] = doc
    return docs


@pytest.mark.slow
def test_killed_rerun_resumes_to_the_same_results(initial_warehouse, tmp_path):
    resumed_db, clean_db = tmp_path / "resumed.duckdb", tmp_path / "clean.duckdb"
    shutil.copyfile(initial_warehouse, resumed_db)
    shutil.copyfile(initial_warehouse, clean_db)
    resumed_out, clean_out = tmp_path / "resumed-out", tmp_path / "clean-out"
    clean_log, first_log, second_log = (tmp_path / f"{n}.log" for n in ("clean", "1", "2"))

    # the uninterrupted run goes on in parallel, on its own copy of the warehouse
    clean = start(rerun_command(clean_db, clean_out), clean_log)
    try:
        first = start(rerun_command(resumed_db, resumed_out), first_log)
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while succeeded_tasks(first_log) < KILL_AFTER_TASKS:
                assert first.poll() is None, first_log.read_text()[-5000:]
                assert time.monotonic() < deadline, "no task finished in time"
                time.sleep(0.05)
        finally:
            kill_group(first)
        assert first.returncode == -signal.SIGKILL  # killed, not finished
        done = succeeded_tasks(first_log)
        assert not (resumed_out / "statistics").exists()  # export had not run
        # the warehouse's lock file stays behind (nobody removed it); it is an flock, so
        # the restart must not be blocked by it
        assert Path(f"{resumed_db}.lock").exists()

        second = start(rerun_command(resumed_db, resumed_out), second_log)
        finish(second, second_log)
        finish(clean, clean_log)
    finally:
        if clean.poll() is None:
            kill_group(clean)

    total = succeeded_tasks(clean_log)
    assert KILL_AFTER_TASKS <= done < total
    assert succeeded_tasks(second_log) == total  # the restart runs the whole graph again
    print(f"killed after {done} of {total} tasks")

    runs = run_rows(resumed_db)  # attempts of the killed run, then of the restart
    assert len(runs) == 2 and done <= runs[0] < total and runs[1] == total, runs

    resumed, uninterrupted = read_tables(resumed_db), read_tables(clean_db)
    assert sorted(resumed) == sorted(uninterrupted)
    for period in ("day", "week", "preenrollment_week", "preenrollment_days28"):
        assert any(r[3] == period for r in uninterrupted[f"metrics_{TABLE}"])
    assert uninterrupted[f"statistics_{TABLE}"], "no statistics computed"
    for name in sorted(uninterrupted):
        assert_same_rows(name, resumed[name], uninterrupted[name])

    docs, clean_docs = published(resumed_out), published(clean_out)
    assert sorted(docs) == sorted(clean_docs)
    assert any(k.startswith("statistics/") for k in docs)
    assert any(k.startswith("metadata/") for k in docs)
    for rel in sorted(clean_docs):
        if not same_value(docs[rel], clean_docs[rel]):
            pytest.fail(f"{rel}: {first_difference(docs[rel], clean_docs[rel])}")
