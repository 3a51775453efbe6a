"""The runner factory and the in-process runner (preview's) on a real DuckDB warehouse."""

from __future__ import annotations

import datetime as dt

import pytest

from jetstream.commands.loading import load_one
from jetstream.graph import TaskKind, plan_dates
from jetstream.runners.argo import ArgoRunner
from jetstream.runners.base import RUNNERS, RunnerOptions, make_runner
from jetstream.runners.common import RunSettings
from jetstream.runners.inprocess import InProcessRunner, InProcessSetup
from jetstream.runners.local import LocalRunner
from jetstream.tasks.context import TaskContext
from jetstream.tasks.dispatch import TASKS
from jetstream.warehouse import open_warehouse
from tests.support.paths import REPO

DEMO = REPO / "jetstream" / "data" / "demo"
SETTINGS = RunSettings(experiments="e.json", warehouse="duckdb::memory:", out="out")


def test_every_task_kind_has_one_body():
    assert set(TASKS) == {k.value for k in TaskKind}


def test_make_runner_picks_by_name():
    local = make_runner(SETTINGS, RunnerOptions(runner="local", parallelism=3, progress=False))
    assert isinstance(local, LocalRunner) and local.parallelism == 3 and local.name == "local"
    argo = make_runner(
        SETTINGS, RunnerOptions(runner="argo", argo_server="http://127.0.0.1:9", wait=True)
    )
    assert isinstance(argo, ArgoRunner) and argo.wait and argo.name == "argo"
    assert RUNNERS == ("local", "argo", "in-process")
    with pytest.raises(ValueError, match="needs RunnerOptions.in_process"):
        make_runner(SETTINGS, RunnerOptions(runner="in-process"))
    with pytest.raises(ValueError, match="unknown runner 'cloud'"):
        make_runner(SETTINGS, RunnerOptions(runner="cloud"))


def test_in_process_runner_skips_an_experiment_without_enrollments(tmp_path):
    """An empty warehouse: enrollments fail (no telemetry), so metrics and export of that
    experiment are skipped; the failure is reported through on_result, not raised."""
    experiments = str(DEMO / "experiments.json")
    from jetstream.commands.loading import load_experiments

    slug = sorted(load_experiments(experiments))[0]
    spec = load_one(slug, experiments, DEMO)
    start = spec.experiment.start_date
    assert start is not None
    dates = [start + dt.timedelta(days=i) for i in range(10, 12)]
    graph = plan_dates([spec], dates, force=True)
    assert {n.kind for n in graph.nodes} == set(TaskKind)
    wh = open_warehouse("duckdb::memory:")
    heard, steps = [], []

    def step(node):
        import contextlib

        steps.append(node.id)
        return contextlib.nullcontext()

    try:
        runner = make_runner(
            RunSettings(experiments=experiments, warehouse="", out=str(tmp_path / "out")),
            RunnerOptions(
                runner="in-process",
                in_process=InProcessSetup(
                    context=lambda s: TaskContext(wh, spec, "test-run"),
                    step=step,
                    on_result=heard.append,
                ),
            ),
        )
        assert isinstance(runner, InProcessRunner)
        summary = runner.run(graph)
    finally:
        wh.close()
    [failed] = summary.failed
    assert failed.node_id.startswith("ensure-enrollments/")
    assert "does not exist" in failed.error  # the missing telemetry table
    assert len(summary.skipped) == len(graph.nodes) - 1 and not summary.succeeded
    assert summary.exit_code == 1
    assert [r.node_id for r in heard] == [failed.node_id] and steps == [failed.node_id]
    assert runner.plan(graph).splitlines()[0] == failed.node_id
