"""A production day inside Argo's limits: about 150 experiments shaped like the public
firefox_desktop ones (benchmarks/production_day.py over ../shared/metric-hub), for the
daily run and for a definitions-wide rerun. Every submitted object is within 256 KiB and
passes Argo's rules; the split Workflows run exactly the graph's commands with exactly its
dependencies; re-running the controller for the same scheduled time submits nothing
twice (fake argo-server); concurrency is bounded by the settings."""

from __future__ import annotations

from typing import Any

import pytest

from jetstream.runners.argo import ArgoRunner, build_manifests, build_workflow
from jetstream.runners.common import RunSettings, task_args
from jetstream.runners.local import LocalRunner
from tests.runners.test_argo_rules import chart_configmaps
from tests.support import argo_rules as rules
from tests.support.argo_server import FakeArgo
from tests.support.workflow_commands import waits_of

pytestmark = pytest.mark.shared

TOKEN = "s3cret"
SETTINGS = RunSettings(
    experiments="https://experimenter.services.mozilla.com/api/v8/experiments/",
    warehouse="bigquery:moz-fx-data-experiments.mozanalysis",
    out="gs://mozanalysis/jetstream",
    config_repo="https://github.com/mozilla/metric-hub@main",
    image="ghcr.io/mozilla/jetstream-platform@sha256:" + "0" * 64,
    namespace="analysis",
)


@pytest.fixture(scope="module")
def day(metric_hub) -> dict[str, Any]:
    from benchmarks import production_day

    specs = production_day.specs(metric_hub)
    graphs = {
        "daily": production_day.daily_graph(specs),
        "rerun": production_day.rerun_graph(specs),
    }
    return {
        "specs": specs,
        "graphs": graphs,
        "manifests": {k: build_manifests(g, SETTINGS) for k, g in graphs.items()},
    }


def test_fixture_is_a_production_day(day):
    assert len(day["specs"]) == 150
    daily = day["graphs"]["daily"]
    assert len(daily.experiments) > 100 and len(daily.nodes) > 800  # ~1,000 pods a day
    assert len(day["graphs"]["rerun"].nodes) > 10 * len(daily.nodes)


@pytest.mark.parametrize("kind", ["daily", "rerun"])
def test_every_object_is_within_256_kib_and_passes_argo_rules(day, kind):
    manifests = day["manifests"][kind]
    assert len(manifests) > 1
    for m in manifests:
        assert rules.size(m) <= 256 * 1024
        assert rules.all_rules(m, chart_configmaps()) == []
        assert "generateName" in m["metadata"] and "name" not in m["metadata"]


def test_one_workflow_of_the_day_was_over_argo_limits(day):
    """The old shape, the whole graph as one Workflow: the daily one is over the 256 KiB
    budget, the definitions-wide rerun over Argo's 1 MiB and etcd's 1.5 MiB."""
    daily = build_workflow(day["graphs"]["daily"], SETTINGS).to_dict()
    assert rules.within_size(daily)
    rerun = build_workflow(day["graphs"]["rerun"], SETTINGS).to_dict()
    assert rules.size(rerun) > rules.ETCD_LIMIT > rules.MAX_WORKFLOW_SIZE
    assert rules.within_size(rerun, rules.MAX_WORKFLOW_SIZE)


@pytest.mark.parametrize("kind", ["daily", "rerun"])
def test_split_workflows_run_exactly_the_graph(day, kind):
    """Parity across the split and the date loops: the union of the Workflows runs each
    command of the local runner once, each waiting for exactly its dependencies."""
    graph = day["graphs"][kind]
    local = LocalRunner(SETTINGS, record_runs=False)
    command = {n.id: tuple(task_args(n, local.settings)) for n in graph.nodes}
    expected = {command[n.id]: frozenset(command[d] for d in n.depends) for n in graph.nodes}
    got: dict[tuple[str, ...], frozenset[tuple[str, ...]]] = {}
    for m in day["manifests"][kind]:
        waits = waits_of(m)
        assert not set(waits) & set(got), "a command in two workflows"
        got.update(waits)
    assert got == expected


def test_concurrency_is_bounded_by_the_settings(day):
    for manifests in day["manifests"].values():
        total = sum(m["spec"]["parallelism"] for m in manifests)
        assert total <= SETTINGS.max_concurrent_pods or all(
            m["spec"]["parallelism"] == 1 for m in manifests
        )
        assert all(1 <= m["spec"]["parallelism"] <= SETTINGS.parallelism for m in manifests)


def test_rerunning_the_controller_for_the_same_time_submits_nothing_twice(day, monkeypatch):
    graph = day["graphs"]["daily"]
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    with FakeArgo(TOKEN) as server:

        def runner(trigger: str) -> ArgoRunner:
            return ArgoRunner(
                SETTINGS,
                argo_server=server.url,
                trigger=trigger,
                allow_unpinned_image=False,
            )

        first = runner("scheduled-2026-08-21T03:00:00Z").run(graph)
        created = len(first.workflows)
        assert created == len(day["manifests"]["daily"]) and not first.skipped
        again = runner("scheduled-2026-08-21T03:00:00Z").run(graph)
        assert again.workflows == () and len(again.skipped) == created
        assert "already submitted" in again.describe()
        stored = [k for k in server.objects if k[0] == "workflows"]
        assert len(stored) == created
        lists = [r for r in server.requests if r.method == "GET"]
        assert all("listOptions.labelSelector=jetstream" in r.query for r in lists)
        # the next day's firing is new work
        nxt = runner("scheduled-2026-08-22T03:00:00Z").run(graph)
        assert len(nxt.workflows) == created
