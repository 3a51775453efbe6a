"""Argo's rules (tests/support/argo_rules.py, read from argo-workflows v3.5.14 and v3.6.19) applied
to every committed object in charts/jetstream/files/workflows/ and to the Workflows the
runner builds; each rule is also shown to fail on the broken shape it guards against."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
import yaml

from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.periods import Period
from jetstream.runners.argo import build_manifests
from jetstream.runners.argo.templates import CONFIGMAP_PARAMETER_LABEL, SUPPORTED_ARGO_VERSIONS
from jetstream.runners.common import RunSettings
from tests.support import argo_rules as rules
from tests.support.paths import REPO

WORKFLOWS = REPO / "charts" / "jetstream" / "files" / "workflows"
DAY = dt.date(2024, 3, 1)
SETTINGS = RunSettings(
    experiments="https://experimenter.example/api/v8/experiments/",
    warehouse="bigquery:proj.analysis",
    out="gs://bucket/jetstream",
    image="ghcr.io/example/jetstream@sha256:" + "0" * 64,
)


def committed() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(WORKFLOWS.glob("*.yaml"))}


def chart_configmaps() -> dict[str, dict[str, str]]:
    """name -> labels of the ConfigMaps of the chart's default render (k8s/, kept equal to
    a render by tests/test_chart.py)."""
    out = {}
    for path in (REPO / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ConfigMap":
                out[doc["metadata"]["name"]] = doc["metadata"].get("labels", {})
    return out


def graph(dates: list[dt.date]) -> TaskGraph:
    nodes = []
    for slug in ("alpha", "beta"):
        enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, slug, date=dates[-1])
        metrics = [
            TaskNode(TaskKind.METRICS, slug, d, Period.DAY, "main", (), (enr.id,)) for d in dates
        ]
        export = TaskNode(
            TaskKind.EXPORT, slug, date=dates[-1], depends=tuple(m.id for m in metrics)
        )
        nodes += [enr, *metrics, export]
    return TaskGraph(tuple(nodes))


def built() -> list[dict]:
    daily = build_manifests(graph([DAY]), SETTINGS)
    rerun = build_manifests(graph([DAY + dt.timedelta(days=i) for i in range(10)]), SETTINGS)
    return daily + rerun


def test_supported_versions_are_the_ones_the_rules_know():
    assert SUPPORTED_ARGO_VERSIONS == rules.SUPPORTED
    assert CONFIGMAP_PARAMETER_LABEL == rules.PARAMETER_LABEL


def test_every_committed_object_passes_every_rule():
    objs = committed()
    assert len(objs) == 6
    for name, obj in objs.items():
        assert rules.all_rules(obj, chart_configmaps()) == [], name


def test_every_built_workflow_passes_every_rule():
    for obj in built():
        assert rules.all_rules(obj, chart_configmaps()) == []


# -- each rule fails on the broken shape ---------------------------------------------------


def test_configmap_parameter_rule_fails_without_the_label():
    """workflow/common/configmap.go GetConfigMapValue: 'ConfigMap ... needs to have the
    label workflows.argoproj.io/configmap-type: Parameter to load parameters'."""
    unlabelled = {"jetstream-settings": {"app.kubernetes.io/name": "jetstream"}}
    for name, obj in committed().items():
        problems = rules.configmap_parameters(obj, unlabelled)
        assert problems and "lacks the label" in problems[0], name
        assert rules.configmap_parameters(obj, {}) != [], name  # not installed at all
    assert chart_configmaps()["jetstream-settings"][rules.PARAMETER_LABEL[0]] == "Parameter"


def test_cron_rule_fails_on_schedules_for_3_5_and_on_both_for_3_6():
    """workflow/validate/validate.go ValidateCronWorkflow: 3.5 parses spec.schedule only;
    3.6 refuses schedule next to schedules."""
    daily = committed()["jetstream-daily.yaml"]
    assert daily["spec"]["schedule"] == "0 3 * * *" and "schedules" not in daily["spec"]
    broken = copy.deepcopy(daily)
    broken["spec"]["schedules"] = [broken["spec"].pop("schedule")]  # the old rendering
    assert rules.cron_schedule(broken, "3.6") == []
    assert "malformed" in rules.cron_schedule(broken, "3.5")[0]
    both = copy.deepcopy(daily)
    both["spec"]["schedules"] = ["0 3 * * *"]
    assert "both schedule and schedules" in rules.cron_schedule(both, "3.6")[0]
    bad = copy.deepcopy(daily)
    bad["spec"]["schedule"] = "0 3 * *"
    assert rules.cron_schedule(bad, "3.5") and rules.cron_schedule(bad, "3.6")
    long = copy.deepcopy(daily)
    long["metadata"]["name"] = "x" * 53
    assert "52" in rules.cron_schedule(long, "3.6")[0]


def test_retry_rule_fails_when_max_duration_is_shorter_than_the_attempts():
    """workflow/controller/operator.go processNodeRetries: maxDuration counts from the
    first attempt's StartedAt, so 15m (the old templates) or 480s (the old builder) with a
    deadline of an hour or more means a late transient failure is never retried."""
    for obj in [*committed().values(), *built()]:
        assert rules.retry_covers_deadline(obj) == []
    old_template = copy.deepcopy(committed()["jetstream-daily.yaml"])
    [t] = old_template["spec"]["workflowSpec"]["templates"]
    t["retryStrategy"]["backoff"]["maxDuration"] = "15m"
    assert "never retried" in rules.retry_covers_deadline(old_template)[0]
    old_build = copy.deepcopy(built()[0])
    leaf = next(t for t in old_build["spec"]["templates"] if "container" in t)
    leaf["retryStrategy"]["backoff"]["maxDuration"] = "480s"
    assert rules.retry_covers_deadline(old_build)
    del leaf["activeDeadlineSeconds"]
    assert "no activeDeadlineSeconds" in rules.retry_covers_deadline(old_build)[0]
    assert rules.seconds("1h30m") == 5400 and rules.seconds("90") == 90
    with pytest.raises(ValueError):
        rules.seconds("ten minutes")


def test_depends_rule_fails_on_failed_without_errored():
    """workflow/controller/dag.go evaluateDependsLogic: Failed is phase Failed, Errored is
    phase Error; export guarded by `Succeeded || Failed` never runs after an eviction."""
    wf = built()[0]
    exports = [
        task
        for t in wf["spec"]["templates"]
        for task in (t.get("dag") or {}).get("tasks", [])
        if task["name"].startswith("export")
    ]
    assert exports and all(".Errored" in task["depends"] for task in exports)
    broken = copy.deepcopy(wf)
    for t in broken["spec"]["templates"]:
        for task in (t.get("dag") or {}).get("tasks", []):
            if "depends" in task:  # the old expression: (x.Succeeded || x.Failed)
                task["depends"] = re.sub(r" \|\| [a-z0-9-]+\.Errored", "", task["depends"])
    problems = rules.tolerant_depends_cover_errored(broken)
    assert problems and "Errored" in problems[0]
