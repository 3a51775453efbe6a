"""The graph as one Argo Workflow (hera), and its submission to a recording fake
argo-server and a fake Kubernetes API."""

from __future__ import annotations

import datetime as dt
import json

import attrs
import pyarrow as pa
import pytest
import yaml

from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.periods import Period
from jetstream.runners.argo import (
    RETRY_EXPRESSION,
    AlreadyExistsError,
    ArgoRunner,
    ArgoServerClient,
    SubmitError,
    UnauthorizedError,
    UnpinnedImageError,
    build_workflow,
    failed_nodes,
    label_value,
    submit,
    submit_all,
    workflow_name,
)
from jetstream.runners.common import RunSettings
from jetstream.runners.local import LocalRunner
from tests.support.argo_server import FakeArgo, schema_validator
from tests.support.workflow_commands import commands_of

DAY = dt.date(2024, 3, 1)
PINNED = "ghcr.io/example/jetstream@sha256:" + "0" * 64
TOKEN = "s3cret"


def experiment(slug: str) -> list[TaskNode]:
    enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, slug, date=DAY)
    pre = TaskNode(TaskKind.METRICS, slug, DAY, Period.PREENROLLMENT_WEEK, "main", (), (enr.id,))
    day = TaskNode(TaskKind.METRICS, slug, DAY, Period.DAY, "main", (), (enr.id, pre.id))
    events = TaskNode(
        TaskKind.METRICS, slug, DAY, Period.WEEK, "events", ("ad_clicks", "searches"), (enr.id,)
    )
    derived = TaskNode(TaskKind.METRICS, slug, DAY, Period.WEEK, "derived", (), (events.id,))
    export = TaskNode(
        TaskKind.EXPORT, slug, date=DAY, depends=(pre.id, day.id, events.id, derived.id)
    )
    return [enr, pre, day, events, derived, export]


GRAPH = TaskGraph(
    tuple(experiment("bug-1234-pref-long-slug_with_underscores") + experiment("tiny"))
)
SETTINGS = RunSettings(
    experiments="https://experimenter.example/api/v8/experiments/",
    warehouse="bigquery:proj.analysis",
    out="gs://bucket/jetstream",
    config_repo="/config",
    image=PINNED,
    namespace="analysis",
    parallelism=5,
)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return build_workflow(GRAPH, SETTINGS).to_dict()


def templates(manifest: dict) -> dict[str, dict]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


def test_one_sub_dag_per_experiment(manifest):
    spec = manifest["spec"]
    assert spec["entrypoint"] == "main"
    by_name = templates(manifest)
    main = by_name["main"]["dag"]
    assert main["failFast"] is False
    assert [t["name"] for t in main["tasks"]] == [
        "bug-1234-pref-long-slug-with-underscores",
        "tiny",
    ]
    assert all("depends" not in t for t in main["tasks"])
    for task in main["tasks"]:
        sub = by_name[task["template"]]["dag"]
        assert sub["failFast"] is False
        assert len(sub["tasks"]) == 6


def test_leaf_templates(manifest):
    leaves = [t for t in manifest["spec"]["templates"] if "container" in t]
    assert leaves
    for t in leaves:
        c = t["container"]
        assert c["image"] == "{{workflow.parameters.image}}"
        assert c["command"] == ["jetstream"] and c["args"][0] == "task"
        assert t["activeDeadlineSeconds"] > 0
        patch = json.loads(t["podSpecPatch"])
        assert patch["containers"][0]["name"] == "main"
        assert patch["containers"][0]["resources"]["requests"]["memory"]
        retry = t["retryStrategy"]
        assert retry["expression"] == RETRY_EXPRESSION
        assert "75" in retry["expression"]
        assert retry["retryPolicy"] == "Always"  # exit 75 makes the node Failed, not Error
        assert retry["limit"] == SETTINGS.retries
        assert retry["backoff"]["duration"] == "30s" and retry["backoff"]["factor"] == 2
        # maxDuration counts from the first attempt: it covers every attempt and the waits
        waits = 30 + 60 + 120
        need = (SETTINGS.retries + 1) * t["activeDeadlineSeconds"] + waits
        assert retry["backoff"]["maxDuration"] == f"{need}s"
        assert t["metadata"]["labels"]["jetstream/kind"] in {k.value for k in TaskKind}
    # leaf templates are shared by the experiments: one per argument shape
    assert len(leaves) == len({tuple(t["container"]["args"]) for t in leaves}) == 4
    for t in manifest["spec"]["templates"]:
        if "dag" in t:
            assert "activeDeadlineSeconds" not in t and "retryStrategy" not in t


def test_depends_expressions_not_continue_on(manifest):
    tiny = templates(manifest)["exp-tiny"]["dag"]["tasks"]
    by_name = {t["name"]: t for t in tiny}
    assert all("continueOn" not in t for t in tiny)
    assert "depends" not in by_name["ensure-enrollments-tiny"]
    assert all("withItems" not in t for t in tiny)  # one date: no loops
    day = by_name["metrics-tiny-day-main-2024-03-01"]["depends"]
    assert day == (
        "ensure-enrollments-tiny.Succeeded && metrics-tiny-preenrollment-week-main-2024-03-01.Succeeded"
    )
    export = by_name["export-tiny"]["depends"]
    assert (
        "(metrics-tiny-day-main-2024-03-01.Succeeded || metrics-tiny-day-main-2024-03-01.Failed"
        " || metrics-tiny-day-main-2024-03-01.Errored)" in export
    )
    assert export.count("&&") == 3


def test_workflow_level_settings(manifest):
    spec = manifest["spec"]
    assert spec["parallelism"] == 5
    assert spec["serviceAccountName"] == "jetstream"
    assert spec["podGC"]["strategy"] == "OnPodSuccess"
    assert spec["ttlStrategy"]["secondsAfterCompletion"] == SETTINGS.ttl_seconds
    params = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
    assert params == {
        "image": PINNED,
        "experiments": SETTINGS.experiments,
        "config-repo": "/config",
        "warehouse": "bigquery:proj.analysis",
        "out": "gs://bucket/jetstream",
    }
    meta = manifest["metadata"]
    assert meta["namespace"] == "analysis"
    assert meta["labels"]["jetstream/date"] == "2024-03-01"
    assert "jetstream/experiment" not in meta["labels"]  # two experiments
    assert len(meta["labels"]["jetstream/plan"]) == 8 and "jetstream/trigger" not in meta["labels"]
    assert "name" not in meta and meta["generateName"] == "jetstream-2024-03-01-"


def test_commands_match_the_local_runner():
    """Parity: the pods run exactly the commands LocalRunner would run."""
    wf = build_workflow(GRAPH, SETTINGS).to_dict()
    local = LocalRunner(SETTINGS, record_runs=False).commands(GRAPH)
    assert commands_of(wf) == set(local)
    assert len(local) == len(GRAPH.nodes)
    # also after a YAML round trip, as committed or submitted
    assert commands_of(yaml.safe_load(build_workflow(GRAPH, SETTINGS).to_yaml())) == set(local)


def test_commands_without_optional_settings():
    settings = RunSettings(experiments="e.json", warehouse="duckdb:x.duckdb", out="")
    wf = build_workflow(GRAPH, settings).to_dict()
    assert commands_of(wf) == set(LocalRunner(settings, record_runs=False).commands(GRAPH))
    names = {p["name"] for p in wf["spec"]["arguments"]["parameters"]}
    assert names == {"image", "experiments", "warehouse"}


def test_generated_names_and_plan_labels():
    one = TaskGraph(tuple(experiment("tiny")))
    assert workflow_name(one, SETTINGS) == "jetstream-tiny-2024-03-01-"
    labels = build_workflow(one, SETTINGS).to_dict()["metadata"]["labels"]
    again = build_workflow(one, SETTINGS).to_dict()["metadata"]["labels"]
    assert labels == again  # the same plan: the same labels
    other = build_workflow(GRAPH, SETTINGS).to_dict()["metadata"]["labels"]
    assert labels["jetstream/plan"] != other["jetstream/plan"]
    triggered = build_workflow(
        one, SETTINGS, labels={"jetstream/trigger": "scheduled-2024-03-02T03:00:00Z"}
    )
    assert triggered.to_dict()["metadata"]["labels"]["jetstream/trigger"] == (
        "scheduled-2024-03-02T03-00-00Z"
    )
    wf = build_workflow(one, SETTINGS).to_dict()
    assert wf["metadata"]["labels"]["jetstream/experiment"] == "tiny"
    rerun = TaskGraph(
        tuple(
            TaskNode(TaskKind.METRICS, "x" * 80, DAY + dt.timedelta(days=i), Period.DAY, "main")
            for i in range(3)
        )
    )
    wf = build_workflow(rerun, SETTINGS).to_dict()
    assert wf["metadata"]["labels"]["jetstream/date"] == "2024-03-01_2024-03-03"
    assert len(wf["metadata"]["generateName"]) <= 58
    assert len(wf["metadata"]["labels"]["jetstream/experiment"]) <= 63


def test_label_value():
    assert label_value("bug-1_a.b") == "bug-1_a.b"
    assert label_value("-weird slug!-") == "weird-slug"
    long = label_value("a" * 100)
    assert len(long) <= 63 and long[-1].isalnum()


def test_empty_graph_is_refused():
    with pytest.raises(ValueError, match="empty"):
        build_workflow(TaskGraph(()), SETTINGS)


@pytest.mark.shared
def test_workflow_validates_against_the_strict_schema(shared_dir, manifest):
    from jetstream.manifests import load_schema, validate_manifest

    schema = load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    assert validate_manifest(manifest, schema) == []


# -- submission --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(shared_dir):
    from jetstream.manifests import load_schema

    return load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")


@pytest.mark.shared
def test_submit_through_argo_server(schema):
    with FakeArgo(TOKEN, validate=schema_validator(schema)) as server:
        wf = build_workflow(GRAPH, SETTINGS)
        result = submit(wf, argo_server=server.url, token=TOKEN)
        assert result.name.startswith(wf.generate_name)
        assert result.namespace == "analysis" and result.phase is None
        [req] = server.requests
        assert (req.method, req.path) == ("POST", "/api/v1/workflows/analysis")
        assert req.authorization == f"Bearer {TOKEN}"
        assert set(req.body) == {"workflow"}
        assert commands_of(req.body["workflow"]) == set(
            LocalRunner(SETTINGS, record_runs=False).commands(GRAPH)
        )
        stored = server.stored("workflows", "analysis", result.name)
        assert stored["spec"]["parallelism"] == 5


def test_token_from_environment(monkeypatch):
    monkeypatch.setenv("ARGO_TOKEN", f"Bearer {TOKEN}")
    with FakeArgo(TOKEN) as server:
        submit(build_workflow(GRAPH, SETTINGS), argo_server=server.url)
        assert server.requests[0].authorization == f"Bearer {TOKEN}"


def test_wrong_token_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ARGO_TOKEN", raising=False)
    with FakeArgo(TOKEN) as server:
        with pytest.raises(UnauthorizedError, match=r"unauthorized \(401\).*ARGO_TOKEN"):
            submit(build_workflow(GRAPH, SETTINGS), argo_server=server.url, token="wrong")
        assert server.objects == {}


def test_duplicate_name_is_a_clear_error():
    with FakeArgo(TOKEN) as server:
        wf = build_workflow(GRAPH, SETTINGS, name="fixed-name")
        submit(wf, argo_server=server.url, token=TOKEN)
        with pytest.raises(AlreadyExistsError, match=r"already exists.*409") as info:
            submit(
                build_workflow(GRAPH, SETTINGS, name="fixed-name"),
                argo_server=server.url,
                token=TOKEN,
            )
        assert "fixed-name" in str(info.value)
        assert info.value.exit_code == 1


def test_the_same_rerun_twice_submits_twice_and_a_trigger_makes_it_once(monkeypatch):
    """Generated names: two reruns of the same work never clash (the old deterministic
    names gave 409 for 7 days). With a trigger (scheduled time, commit, parent workflow)
    a resubmission finds the earlier one by its labels and submits nothing."""
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    with FakeArgo(TOKEN) as server:
        plain = ArgoRunner(SETTINGS, argo_server=server.url)
        first, second = plain.run(GRAPH), plain.run(GRAPH)
        assert first.workflows[0].name != second.workflows[0].name
        assert [r.method for r in server.requests] == ["POST", "POST"]  # no lookup
        triggered = ArgoRunner(SETTINGS, argo_server=server.url, trigger="rerun-abc12")
        once = triggered.run(GRAPH)
        assert len(once.workflows) == 1 and once.skipped == ()
        twice = triggered.run(GRAPH)
        assert twice.workflows == () and twice.skipped == (once.workflows[0].name,)
        assert twice.exit_code == 0
        selector = server.requests[-1].query
        assert selector == "listOptions.labelSelector=jetstream%2Ftrigger%3Drerun-abc12"
        # the plan changed in between (an experiment more): only the new one is submitted
        more = TaskGraph((*GRAPH.nodes, *experiment("fresh")))
        third = triggered.run(more)
        [wf] = third.workflows
        stored = server.stored("workflows", "analysis", wf.name)
        assert stored["metadata"]["annotations"]["jetstream/experiments"] == '["fresh"]'
        assert third.skipped == (once.workflows[0].name,)
        assert triggered.run(TaskGraph(tuple(experiment("tiny")))).workflows == ()


def test_namespace_service_account_and_parallelism_come_from_the_options(monkeypatch):
    """Every submission path builds its runner with make_runner: the Argo options (from
    JETSTREAM_* env vars of the settings ConfigMap) reach the Workflow."""
    from jetstream.runners.base import RunnerOptions, make_runner

    options = RunnerOptions(
        runner="argo",
        namespace="prod",
        service_account="analysis-sa",
        parallelism=3,
        max_concurrent_pods=12,
        trigger="t-1",
    )
    runner = make_runner(attrs.evolve(SETTINGS, namespace="jetstream"), options)
    [wf] = runner.workflows(GRAPH)
    spec = wf.to_dict()["spec"]
    assert wf.namespace == "prod" and spec["serviceAccountName"] == "analysis-sa"
    assert spec["parallelism"] == 3
    assert wf.labels["jetstream/trigger"] == "t-1"
    small = make_runner(SETTINGS, attrs.evolve(options, max_concurrent_pods=2))
    assert small.workflows(GRAPH)[0].to_dict()["spec"]["parallelism"] == 2


def test_rerun_command_submits_to_the_configured_namespace(monkeypatch, tmp_path):
    """`jetstream rerun --runner argo` in the rerun template's pod: namespace, service
    account, parallelism and trigger from the settings ConfigMap's env vars."""
    from click.testing import CliRunner

    from jetstream import synthetic
    from jetstream.cli import cli

    demo = synthetic.DEMO_DIR
    env = {
        "ARGO_TOKEN": TOKEN,
        "JETSTREAM_NAMESPACE": "prod",
        "JETSTREAM_SERVICE_ACCOUNT": "analysis-sa",
        "JETSTREAM_PARALLELISM": "6",
        "JETSTREAM_TRIGGER": "jetstream-rerun-x7k2p",
        "JETSTREAM_IMAGE": PINNED,
    }
    with FakeArgo(TOKEN) as server:
        args = [
            "rerun",
            "--experiment",
            "demo-sidebar-redesign",
            "--experiments",
            str(demo / "experiments.json"),
            "--config-repo",
            str(demo),
            "--start-date",
            "2026-01-11",
            "--end-date",
            "2026-01-13",
            "--runner",
            "argo",
            "--argo-server",
            server.url,
        ]
        for _ in range(2):
            result = CliRunner().invoke(cli, args, env=env)
            assert result.exit_code == 0, result.output
        created = [k for k in server.objects if k[0] == "workflows"]
        assert len(created) == 1 and created[0][1] == "prod"  # the retried pod: skipped
        stored = server.objects[created[0]]
        assert stored["spec"]["serviceAccountName"] == "analysis-sa"
        assert stored["spec"]["parallelism"] == 6
        assert "already submitted" in result.output


def test_unpinned_image_is_refused_before_any_request():
    wf = build_workflow(GRAPH, attrs.evolve(SETTINGS, image="ghcr.io/example/jetstream:latest"))
    with FakeArgo(TOKEN) as server:
        with pytest.raises(UnpinnedImageError, match="sha256"):
            submit(wf, argo_server=server.url, token=TOKEN)
        assert server.requests == []
        submit(wf, argo_server=server.url, token=TOKEN, allow_unpinned_image=True)
        assert len(server.requests) == 1


def test_submission_needs_a_server_url():
    with pytest.raises(SubmitError, match="--argo-server"):
        submit(build_workflow(GRAPH, SETTINGS))
    with pytest.raises(SubmitError, match="http"):
        ArgoServerClient("argo.example:2746", "ns")


def test_unreachable_server_is_transient():
    from jetstream.errors import TransientError

    with FakeArgo(TOKEN) as server:
        url = server.url
    with pytest.raises(TransientError):
        submit(build_workflow(GRAPH, SETTINGS), argo_server=url, token=TOKEN)


FAILED_STATUS = {
    "phase": "Failed",
    "nodes": {
        "wf-1": {"id": "wf-1", "name": "wf", "displayName": "wf", "type": "DAG", "phase": "Failed"},
        "wf-2": {
            "id": "wf-2",
            "name": "wf.tiny.metrics-tiny-day",
            "displayName": "metrics-tiny-day",
            "type": "Retry",
            "phase": "Failed",
            "message": "No more retries left",
            "children": ["wf-3", "wf-4"],
        },
        "wf-3": {
            "id": "wf-3",
            "name": "wf.wf-3",
            "displayName": "metrics-tiny-day(0)",
            "type": "Pod",
            "phase": "Failed",
            "outputs": {"exitCode": "75"},
        },
        "wf-4": {
            "id": "wf-4",
            "name": "wf.wf-4",
            "displayName": "metrics-tiny-day(1)",
            "type": "Pod",
            "phase": "Failed",
            "message": "Error (exit code 1)",
            "outputs": {"exitCode": "1"},
        },
        "wf-5": {
            "id": "wf-5",
            "name": "wf.wf-5",
            "displayName": "export-other",
            "type": "Pod",
            "phase": "Error",
            "message": "pod deleted",
        },
        "wf-6": {
            "id": "wf-6",
            "name": "wf.wf-6",
            "displayName": "ok",
            "type": "Pod",
            "phase": "Succeeded",
        },
    },
}


def test_wait_summarises_failed_nodes():
    with FakeArgo(TOKEN) as server:
        server.workflow_statuses = [{"phase": "Running"}, {"phase": "Running"}, FAILED_STATUS]
        wf = build_workflow(GRAPH, SETTINGS)
        result = submit(wf, argo_server=server.url, token=TOKEN, wait=True, poll_interval=0)
        assert result.phase == "Failed"
        assert [(f.name, f.exit_code) for f in result.failed] == [
            ("export-other", None),
            ("metrics-tiny-day", "1"),
        ]
        assert "metrics-tiny-day (exit 1)" in result.describe()
        gets = [r for r in server.requests if r.method == "GET"]
        assert len(gets) == 3 and gets[0].path == f"/api/v1/workflows/analysis/{result.name}"


def test_failed_nodes_of_a_successful_workflow():
    assert failed_nodes({"status": {"phase": "Succeeded", "nodes": {}}}) == ()


# -- the Kubernetes API path ---------------------------------------------------------------


@pytest.mark.shared
def test_submit_through_the_kubernetes_api(schema):
    from jetstream.runners.argo.kube import api_client_for

    with FakeArgo(TOKEN, validate=schema_validator(schema)) as server:
        wf = build_workflow(GRAPH, SETTINGS)
        client = api_client_for(server.url, token=TOKEN)
        result = submit(wf, via="kubernetes", kube_api_client=client)
        assert result.name.startswith(wf.generate_name)
        [req] = server.requests
        assert req.method == "POST"
        assert req.path == "/apis/argoproj.io/v1alpha1/namespaces/analysis/workflows"
        assert req.authorization == f"Bearer {TOKEN}"
        assert req.body["kind"] == "Workflow"
        assert req.body["metadata"]["generateName"] == wf.generate_name
        fixed = build_workflow(GRAPH, SETTINGS, name="fixed")
        submit(fixed, via="kubernetes", kube_api_client=client)
        with pytest.raises(AlreadyExistsError, match="409"):
            submit(fixed, via="kubernetes", kube_api_client=client)
        # idempotent resubmission through the Kubernetes API: list by labels, skip
        labels = {"jetstream/trigger": "scheduled-2024-03-02"}
        again = [build_workflow(GRAPH, SETTINGS, labels=labels) for _ in range(2)]
        done = submit_all(again, via="kubernetes", kube_api_client=client)
        assert len(done.workflows) == 1 and len(done.skipped) == 1
        lists = [r for r in server.requests if r.method == "GET"]
        assert lists[-1].query.startswith("labelSelector=jetstream")


def test_kubernetes_api_errors():
    from jetstream.runners.argo.kube import api_client_for

    with FakeArgo(TOKEN) as server:
        wf = build_workflow(GRAPH, SETTINGS)
        bad = api_client_for(server.url, token="nope")
        with pytest.raises(UnauthorizedError, match="401"):
            submit(wf, via="kubernetes", kube_api_client=bad)
        good = api_client_for(server.url, token=TOKEN)
        server.workflow_statuses = [{"phase": "Succeeded"}]
        result = submit(wf, via="kubernetes", kube_api_client=good, wait=True, poll_interval=0)
        assert result.phase == "Succeeded" and result.failed == ()


@pytest.mark.shared
def test_invalid_body_is_rejected_by_the_validating_server(schema):
    """The fake is a real check: a broken workflow is refused with the schema's message."""
    from jetstream.runners.argo.kube import api_client_for

    wf = build_workflow(GRAPH, SETTINGS)
    wf.templates[0].active_deadline_seconds = 10  # on the main DAG: not a leaf
    with FakeArgo(TOKEN, validate=schema_validator(schema)) as server:
        with pytest.raises(SubmitError, match="activeDeadlineSeconds"):
            submit(wf, argo_server=server.url, token=TOKEN)
        with pytest.raises(SubmitError, match="422"):
            submit(wf, via="kubernetes", kube_api_client=api_client_for(server.url, token=TOKEN))


# -- runs rows under Argo ------------------------------------------------------------------


def test_task_records_its_own_runs_row_under_argo(tmp_path, monkeypatch):
    """Argo pods have no local runner to record attempts: with JETSTREAM_RECORD_RUN (set on
    every leaf template) the task appends its `runs` row itself, attempt from Argo's
    {{retries}}; an older `runs` table gains the cost columns on append."""
    import duckdb
    from click.testing import CliRunner

    from jetstream import synthetic
    from jetstream.cli import cli
    from jetstream.warehouse import open_warehouse

    leaf = next(
        t
        for t in build_workflow(GRAPH, SETTINGS).to_dict()["spec"]["templates"]
        if "container" in t
    )
    env = {e["name"]: e["value"] for e in leaf["container"]["env"]}
    assert env["JETSTREAM_RECORD_RUN"] == "1" and env["JETSTREAM_ATTEMPT"] == "{{retries}}"

    uri = f"duckdb:{tmp_path / 'wh.duckdb'}"
    wh = open_warehouse(uri)
    old = pa.table({"run_id": ["earlier"], "node_id": ["export/x"], "attempt": [1]})
    wh.load_arrow("runs", old, mode="replace")
    wh.close()
    demo = synthetic.DEMO_DIR
    result = CliRunner().invoke(
        cli,
        ["task", "export", "--experiment", "not-an-experiment", "--experiments",
         str(demo / "experiments.json"), "--config-repo", str(demo), "--warehouse", uri],
        env={"JETSTREAM_RECORD_RUN": "1", "JETSTREAM_ATTEMPT": "2", "JETSTREAM_RUN_ID": "wf-abc"},
    )  # fmt: skip
    assert result.exit_code != 0
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT run_id, node_id, attempt, status, exit_code, bytes_estimated, bytes_billed, error "
        "FROM runs ORDER BY run_id DESC"
    ).fetchall()
    con.close()
    assert rows[1][0] == "earlier" and rows[1][5] is None
    run_id, node_id, attempt, status, code, estimated, billed, error = rows[0]
    assert (run_id, node_id, attempt, status) == ("wf-abc", "export/not-an-experiment", 3, "failed")
    assert code == 2 and "not-an-experiment" in error
    assert estimated is None and billed is None  # DuckDB bills nothing


def _retried(expression: str, status: str, exit_code: int) -> bool:
    """Argo's retry expression (expr-lang) for one failed attempt, evaluated for the three
    operators it uses: `||`, `==`, `>` over `lastRetry.status` and `asInt(lastRetry.exitCode)`."""
    python = (
        expression.replace("||", " or ")
        .replace("asInt(lastRetry.exitCode)", str(exit_code))
        .replace("lastRetry.status", repr(status))
    )
    return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 - our own constant


@pytest.mark.parametrize(
    ("status", "exit_code", "retried"),
    [
        ("Failed", 75, True),  # transient
        ("Failed", 137, True),  # SIGKILL: the OOM killer
        ("Failed", 143, True),  # SIGTERM
        ("Error", 0, True),  # evicted: never ran to an exit code
        ("Failed", 1, False),  # a real failure
        ("Failed", 2, False),  # a config error
    ],
)
def test_retry_expression_retries_transient_errors_and_signal_deaths(status, exit_code, retried):
    assert _retried(RETRY_EXPRESSION, status, exit_code) is retried
