"""Manifest validation: the strict Argo schema and the semantic checks. Each check is
shown to catch a manifest broken in exactly that way."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable

import pytest

from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.manifests import load_schema, patch_schema, validate_all, validate_manifest
from jetstream.periods import Period
from jetstream.runners.argo import build_workflow
from jetstream.runners.argo.templates import cluster_objects
from jetstream.runners.common import RunSettings

pytestmark = pytest.mark.shared

DAY = dt.date(2024, 3, 1)


@pytest.fixture(scope="module")
def schema(shared_dir):
    return load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")


@pytest.fixture(scope="module")
def workflow() -> dict:
    enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, "exp", date=DAY)
    m = TaskNode(TaskKind.METRICS, "exp", DAY, Period.DAY, "main", (), (enr.id,))
    x = TaskNode(TaskKind.EXPORT, "exp", date=DAY, depends=(m.id,))
    settings = RunSettings("e.json", "duckdb:x.duckdb", "out")
    return build_workflow(TaskGraph((enr, m, x)), settings).to_dict()


@pytest.fixture(scope="module")
def cron() -> dict:
    return next(o.to_dict() for o in cluster_objects() if o.name == "jetstream-daily")


def leaf(wf: dict) -> dict:
    return next(t for t in wf["spec"]["templates"] if "container" in t)


def exp_dag(wf: dict) -> dict:
    return next(t for t in wf["spec"]["templates"] if t["name"] == "exp-exp")


def test_valid_manifests_have_no_problems(schema, workflow, cron):
    assert validate_manifest(workflow, schema) == []
    assert validate_all([o.to_dict() for o in cluster_objects()], schema) == []


def test_patched_schema(shared_dir):
    raw = json.loads((shared_dir / "schemas" / "argo-workflows.schema.json").read_text())
    patched = patch_schema(raw)
    assert patched["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": ["integer", "string"]
    }
    wf = patched["definitions"]["io.argoproj.workflow.v1alpha1.Workflow"]
    assert wf["additionalProperties"] is False
    assert (
        "additionalProperties" not in raw["definitions"]["io.argoproj.workflow.v1alpha1.Workflow"]
    )


def _break(mutate: Callable[[dict], None], base: dict) -> dict:
    obj = copy.deepcopy(base)
    mutate(obj)
    return obj


def set_in(path: list, value) -> Callable[[dict], None]:
    def mutate(obj: dict) -> None:
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


WORKFLOW_CASES = {
    "unknown key (strict schema)": (
        lambda wf: leaf(wf)["container"].__setitem__("imagePullPolicyy", "Always"),
        "Additional properties are not allowed",
    ),
    "wrong type": (lambda wf: wf["spec"].__setitem__("parallelism", "eight"), "parallelism"),
    "entrypoint": (lambda wf: wf["spec"].__setitem__("entrypoint", "nope"), "names no template"),
    "template reference": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][0].__setitem__("template", "missing"),
        "'missing' names no template",
    ),
    "depends on a non-sibling": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][1].__setitem__("depends", "ghost.Succeeded"),
        "'ghost' is not a task of this DAG",
    ),
    "depends on an unknown result": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][1].__setitem__(
            "depends", "ensure-enrollments-exp.Finished"
        ),
        "Finished",
    ),
    "cycle": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][0].__setitem__("depends", "export-exp"),
        "dependency cycle",
    ),
    "required input not supplied": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][0]["arguments"]["parameters"].pop(),
        "required input parameter 'date'",
    ),
    "two template types": (
        lambda wf: leaf(wf).__setitem__("script", {"image": "x", "source": "print(1)"}),
        "exactly one of",
    ),
    "activeDeadlineSeconds on a DAG": (
        lambda wf: exp_dag(wf).__setitem__("activeDeadlineSeconds", 60),
        "only valid on leaf templates",
    ),
    "retryPolicy": (
        lambda wf: leaf(wf)["retryStrategy"].__setitem__("retryPolicy", "OnExitCode"),
        "'OnExitCode' is not one of",
    ),
    "podSpecPatch": (
        lambda wf: leaf(wf).__setitem__("podSpecPatch", '{"containers": [{"resources": {}}]}'),
        "needs its name",
    ),
    "podSpecPatch syntax": (lambda wf: leaf(wf).__setitem__("podSpecPatch", "{: ["), "not valid"),
    "DNS-1123 workflow name": (
        lambda wf: wf["metadata"].__setitem__("name", "Jetstream_Daily"),
        "not a DNS-1123 label",
    ),
    "workflow name length": (
        lambda wf: wf["metadata"].__setitem__("name", "a" * 64),
        "names must be <= 63",
    ),
    "DNS-1123 task name": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][2].__setitem__("name", "Export_Exp"),
        "'Export_Exp' is not a DNS-1123 label",
    ),
    "continueOn with depends": (
        lambda wf: exp_dag(wf)["dag"]["tasks"][1].__setitem__("continueOn", {"failed": True}),
        "continueOn: cannot be used with depends",
    ),
    "undeclared workflow parameter": (
        lambda wf: leaf(wf)["container"]["args"].append("{{workflow.parameters.nope}}"),
        "workflow parameter 'nope'",
    ),
    "undeclared input parameter": (
        lambda wf: leaf(wf)["container"]["args"].append("{{inputs.parameters.nope}}"),
        "'nope' is used but not declared",
    ),
    "label value": (
        lambda wf: wf["metadata"]["labels"].__setitem__("jetstream/date", "not a label!"),
        "label value",
    ),
    "templateRef to an unknown WorkflowTemplate": (
        lambda wf: (
            exp_dag(wf)["dag"]["tasks"][0].update(
                {"templateRef": {"name": "nowhere", "template": "x"}}
            )
            or exp_dag(wf)["dag"]["tasks"][0].pop("template")
        ),
        "WorkflowTemplate 'nowhere'",
    ),
}


@pytest.mark.parametrize("case", list(WORKFLOW_CASES), ids=list(WORKFLOW_CASES))
def test_each_check_catches_its_breakage(schema, workflow, case):
    mutate, expected = WORKFLOW_CASES[case]
    problems = validate_manifest(_break(mutate, workflow), schema)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("Workflow ") for p in problems)


def test_integer_or_string_limits_are_both_valid(schema, workflow):
    for limit in (3, "3"):
        wf = _break(lambda w, v=limit: leaf(w)["retryStrategy"].__setitem__("limit", v), workflow)
        assert validate_manifest(wf, schema) == []


CRON_CASES = {
    "name length": (set_in(["metadata", "name"], "j" * 53), "names must be <= 52"),
    "schedule syntax": (set_in(["spec", "schedules"], ["0 3 * *"]), "not a valid cron"),
    "timezone": (set_in(["spec", "timezone"], "Mars/Olympus"), "unknown time zone"),
    "concurrencyPolicy": (set_in(["spec", "concurrencyPolicy"], "Never"), "'Never' is not one of"),
    "schedule and schedules": (set_in(["spec", "schedule"], "0 3 * * *"), "cannot have both"),
    "workflowSpec entrypoint": (
        set_in(["spec", "workflowSpec", "entrypoint"], "main"),
        "spec.workflowSpec.entrypoint",
    ),
}


@pytest.mark.parametrize("case", list(CRON_CASES), ids=list(CRON_CASES))
def test_cron_checks(schema, cron, case):
    mutate, expected = CRON_CASES[case]
    problems = validate_manifest(_break(mutate, cron), schema)
    assert any(expected in p for p in problems), problems


def test_template_ref_resolves_against_installed_templates(schema, workflow):
    rerun = next(o.to_dict() for o in cluster_objects() if o.name == "jetstream-rerun")

    def use_ref(wf: dict, template: str) -> None:
        task = exp_dag(wf)["dag"]["tasks"][0]
        task.pop("template")
        task.pop("arguments")
        task["templateRef"] = {"name": "jetstream-rerun", "template": template}

    ok = _break(lambda wf: use_ref(wf, "rerun"), workflow)
    assert validate_manifest(ok, schema, others=[rerun]) == []
    bad = _break(lambda wf: use_ref(wf, "nope"), workflow)
    assert any("has no template 'nope'" in p for p in validate_manifest(bad, schema, [rerun]))


def test_missing_entrypoint_arguments(schema, cron):
    """A Workflow whose entrypoint needs an input that spec.arguments does not supply."""
    wf = copy.deepcopy(cron)
    wf["kind"] = "Workflow"
    wf["spec"] = wf["spec"]["workflowSpec"]
    wf["spec"]["templates"][0]["inputs"] = {"parameters": [{"name": "day"}]}
    wf["spec"]["templates"][0]["container"]["args"].append("{{inputs.parameters.day}}")
    problems = validate_manifest(wf, schema)
    assert any("required input parameter 'day'" in p for p in problems), problems


def test_plain_kubernetes_manifests_use_kubernetes_validate():
    pytest.importorskip("kubernetes_validate")
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "jetstream-settings"},
        "data": {"JETSTREAM_WAREHOUSE": "bigquery:p.d"},
    }
    assert validate_manifest(cm) == []
    cm["dataa"] = {}
    assert validate_manifest(cm) != []


def test_argo_objects_need_an_explicit_schema(workflow):
    # No default location: validating an Argo kind without a schema is a clear error.
    with pytest.raises(ValueError, match="needs the Argo JSON schema"):
        validate_manifest(workflow)
    with pytest.raises(FileNotFoundError, match="Argo JSON schema not found at /nonexistent"):
        load_schema("/nonexistent/argo-workflows.schema.json")


def test_validate_command_requires_the_schema():
    from click.testing import CliRunner

    from jetstream.cli import cli

    result = CliRunner().invoke(cli, ["workflows", "validate"], env={"JETSTREAM_ARGO_SCHEMA": None})
    assert result.exit_code == 2
    assert "the Argo JSON schema is required" in result.output
