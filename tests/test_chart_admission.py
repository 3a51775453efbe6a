"""The webhook's ValidatingAdmissionPolicy, evaluated: the chart is rendered by the real Helm
engine, and its CEL runs in cel-python (an independent CEL implementation, in its own venv
under ~/.cache; skipped with the reason when that venv cannot be built) on admission
requests carrying a Workflow exactly as `jetstream` builds it for the webhook (accepted)
and on variants an attacker holding the webhook's token could send (each refused with the
policy's message). Requests from other accounts are not matched."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cel_venv import interpreter
from tests.support.paths import REPO, TESTS

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (dev dependency) is missing")

CHART = REPO / "charts" / "jetstream"
NAMESPACE = "analysis"
WEBHOOK = f"system:serviceaccount:{NAMESPACE}:jetstream-webhook"


@pytest.fixture(scope="module")
def cel_python() -> Path:
    python = interpreter()
    if isinstance(python, str):
        pytest.skip(python)
    return python


@pytest.fixture(scope="module")
def chart() -> dict[str, Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        out = loaded.render({}, name="jetstream", namespace=NAMESPACE)
    objs = [d for text in out.values() for d in yaml.safe_load_all(text) if d]
    (policy,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicy"]
    (settings,) = [o for o in objs if o["kind"] == "ConfigMap"]
    return {"policy": policy["spec"], "image": settings["data"]["JETSTREAM_IMAGE"]}


@pytest.fixture(scope="module")
def webhook_workflow(chart) -> dict[str, Any]:
    """The Workflow the webhook submits (runners.argo.build_workflow via the argo runner),
    for the demo experiment, with the chart's image and the analysis service account."""
    from jetstream import synthetic
    from jetstream.commands.loading import load_many
    from jetstream.graph import plan
    from jetstream.runners import argo
    from jetstream.runners.common import RunSettings

    specs, _ = load_many(str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR)
    settings = RunSettings(
        experiments="https://experimenter.example/api/v8/experiments/",
        warehouse="bigquery:project-1.results",
        out="gs://bucket",
        config_repo="https://github.com/mozilla/metric-hub.git@" + "a" * 40,
        image=chart["image"],
        namespace=NAMESPACE,
    )
    graph = plan(specs, dt.date(2026, 1, 13))
    return argo.build_workflow(
        graph, settings, labels={"jetstream/config-commit": "a" * 40}
    ).to_dict()


def leaf(wf: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in wf["spec"]["templates"] if "container" in t)


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "controller-account": (
        lambda w: w["spec"].__setitem__("serviceAccountName", "jetstream-controller"),
        "analysis service account",
    ),
    "other-image": (
        lambda w: next(
            p for p in w["spec"]["arguments"]["parameters"] if p["name"] == "image"
        ).__setitem__("value", "evil.example/miner@sha256:" + "1" * 64),
        "chart's image",
    ),
    "literal-image": (
        lambda w: leaf(w)["container"].__setitem__("image", "alpine"),
        "jetstream task",
    ),
    "shell": (
        lambda w: leaf(w)["container"].__setitem__("command", ["sh", "-c", "env"]),
        "jetstream task",
    ),
    "privileged": (
        lambda w: leaf(w)["container"]["securityContext"].__setitem__("privileged", True),
        "non-root",
    ),
    "root": (
        lambda w: leaf(w)["securityContext"].__setitem__("runAsNonRoot", False),
        "non-root",
    ),
    "capability": (
        lambda w: leaf(w)["container"]["securityContext"]["capabilities"].__setitem__(
            "add", ["SYS_ADMIN"]
        ),
        "non-root",
    ),
    "host-path": (
        lambda w: leaf(w)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        "emptyDir",
    ),
    "patch-security": (
        lambda w: leaf(w).__setitem__(
            "podSpecPatch",
            '{"containers": [{"name": "main", "resources": {}, '
            '"securityContext": {"privileged": true}}]}',
        ),
        "resources only",
    ),
    "workflow-patch": (
        lambda w: w["spec"].__setitem__("podSpecPatch", '{"hostNetwork": true}'),
        "podSpecPatch",
    ),
    "script": (
        lambda w: w["spec"]["templates"].append(
            {"name": "s", "script": {"image": "alpine", "source": "id"}}
        ),
        "only DAG and container templates",
    ),
    "sidecar": (
        lambda w: leaf(w).__setitem__("sidecars", [{"name": "s", "image": "alpine"}]),
        "only DAG and container templates",
    ),
    "template-ref": (
        lambda w: w["spec"]["templates"][0]["dag"]["tasks"][0].__setitem__(
            "templateRef", {"name": "jetstream-rerun", "template": "rerun"}
        ),
        "same workflow",
    ),
    "workflow-template-ref": (
        lambda w: w["spec"].__setitem__("workflowTemplateRef", {"name": "jetstream-rerun"}),
        "workflowTemplateRef",
    ),
    "executor-account": (
        lambda w: w["spec"].__setitem__("executor", {"serviceAccountName": "default"}),
        "executor",
    ),
}


def review(python: Path, policy: dict[str, Any], cases: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [str(python), str(TESTS / "support" / "cel_evaluate.py")],
        input=json.dumps({"policy": policy, "cases": cases}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_policy_admits_the_webhooks_workflows_and_refuses_the_rest(
    cel_python, chart, webhook_workflow
):
    cases: dict[str, Any] = {
        "as-built": {"user": WEBHOOK, "object": webhook_workflow},
        "other-account": {
            "user": f"system:serviceaccount:{NAMESPACE}:jetstream-controller",
            "object": {**webhook_workflow, "spec": {"templates": []}},
        },
    }
    for name, (mutate, _) in MUTATIONS.items():
        wf = copy.deepcopy(webhook_workflow)
        mutate(wf)
        cases[name] = {"user": WEBHOOK, "object": wf}
    results = review(cel_python, chart["policy"], cases)
    assert results["as-built"] == [], results["as-built"]
    assert results["other-account"] == "not matched"
    for name, (_, message) in MUTATIONS.items():
        failed = results[name]
        assert failed and any(message in m for m in failed), (name, failed)
