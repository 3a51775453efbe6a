"""The checked-in workflows (golden test against their hera source), their validity, the
`jetstream workflows` commands and the `jetstream controller` entry point."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import yaml
from click.testing import CliRunner

from jetstream.cli import cli
from jetstream.commands.controller import analysis_date
from jetstream.runners.argo import ArgoServerClient, apply_all
from jetstream.runners.argo.templates import cluster_objects, manifests, render_all
from tests.support.argo_server import FakeArgo, schema_validator
from tests.support.paths import REPO
from tests.support.workflow_commands import commands_of

WORKFLOWS = REPO / "charts" / "jetstream" / "files" / "workflows"
DEMO = REPO / "jetstream" / "data" / "demo"
PINNED = "ghcr.io/example/jetstream@sha256:" + "1" * 64
TOKEN = "s3cret"


def rendered() -> dict[str, dict]:
    return {name: yaml.safe_load(text) for name, text in render_all().items()}


def test_committed_yaml_matches_the_hera_source():
    """Golden test: fails when the chart's workflow YAML drifts from the hera definitions."""
    from workflows.render import render_all as render_every_workflow

    expected = render_every_workflow()
    for name, text in expected.items():
        path = WORKFLOWS / name
        assert path.is_file(), f"{path} missing: run `make render`"
        assert path.read_text() == text, f"{path} is stale: run `make render`"
    committed = {p.name for p in WORKFLOWS.glob("*.yaml")}
    assert committed == set(expected), (
        "stray or missing YAML under charts/jetstream/files/workflows/"
    )


def test_render_module_check_and_write(tmp_path):
    from workflows import render

    assert render.main(["--check"]) == 0
    assert render.main(["--check", "--out", str(tmp_path)]) == 1
    assert render.main(["--out", str(tmp_path)]) == 0
    assert render.stale(tmp_path) == []
    (tmp_path / "jetstream-daily.yaml").write_text("# edited\n")
    assert render.stale(tmp_path) == ["jetstream-daily.yaml"]


def test_workflow_modules_define_the_rendered_objects():
    from jetstream.runners.argo.templates import manifest, to_yaml
    from workflows import daily, preview, rerun

    names = {m.w.name for m in (daily, rerun, preview)}
    assert names == {o.name for o in cluster_objects()}
    assert to_yaml(manifest(daily.w)) in render_all()["jetstream-daily.yaml"]


def test_daily_cron_workflow():
    cron = rendered()["jetstream-daily.yaml"]
    spec = cron["spec"]
    assert cron["kind"] == "CronWorkflow" and len(cron["metadata"]["name"]) <= 52
    # Argo 3.5 reads only `schedule`; 3.6 reads it too and refuses it next to `schedules`
    assert spec["schedule"] == "0 3 * * *" and "schedules" not in spec
    assert spec["timezone"] == "UTC" and spec["concurrencyPolicy"] == "Forbid"
    [template] = spec["workflowSpec"]["templates"]
    c = template["container"]
    assert c["command"] == ["jetstream"]
    assert c["args"] == ["controller", "--scheduled-time", "{{workflow.scheduledTime}}"]
    assert c["envFrom"] == [{"configMapRef": {"name": "jetstream-settings"}}]
    [image] = spec["workflowSpec"]["arguments"]["parameters"]
    assert image["valueFrom"]["configMapKeyRef"] == {
        "name": "jetstream-settings",
        "key": "JETSTREAM_IMAGE",
    }
    assert c["image"] == "{{workflow.parameters.image}}"


def test_templates_take_install_settings_from_the_configmap():
    for name, obj in rendered().items():
        text = yaml.safe_dump(obj)
        for word in ("bigquery:", "gs://", "experimenter", "duckdb:"):
            assert word not in text, f"{name} hard-codes {word!r}"


def test_rerun_and_preview_templates():
    docs = rendered()
    rerun = docs["jetstream-rerun.yaml"]["spec"]
    params = {p["name"]: p for p in rerun["arguments"]["parameters"]}
    assert "value" not in params["experiment"]  # required at submission
    for optional in ("metric", "period", "start-date", "end-date"):
        assert params[optional]["value"] == ""
    [t] = rerun["templates"]
    assert t["container"]["args"] == [
        "rerun",
        "--experiment",
        "{{workflow.parameters.experiment}}",
        "--runner",
        "argo",
    ]
    env = {e["name"]: e["value"] for e in t["container"]["env"]}
    assert env["JETSTREAM_METRIC"] == "{{workflow.parameters.metric}}"
    assert env["JETSTREAM_START_DATE"] == "{{workflow.parameters.start-date}}"
    preview = docs["jetstream-preview.yaml"]["spec"]
    assert preview["templates"][0]["container"]["args"][0] == "preview"
    assert commands_of(docs["jetstream-preview.yaml"]) == set()  # no DAG tasks


@pytest.mark.shared
def test_rendered_manifests_validate(shared_dir):
    from jetstream.manifests import load_schema, validate_all

    schema = load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    assert validate_all(list(rendered().values()), schema) == []
    result = CliRunner().invoke(
        cli,
        ["workflows", "validate", *map(str, sorted(WORKFLOWS.glob("*.yaml")))],
        env={"JETSTREAM_ARGO_SCHEMA": str(shared_dir / "schemas" / "argo-workflows.schema.json")},
    )
    assert result.exit_code == 0, result.output


@pytest.mark.shared
def test_install_then_update_then_submit_from_template(shared_dir):
    """`jetstream workflows apply` semantics against the fake argo-server: create, then
    GET + PUT with resourceVersion; then `argo submit --from workflowtemplate/...`."""
    from jetstream.manifests import load_schema

    schema = load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    with FakeArgo(TOKEN, validate=schema_validator(schema)) as server:
        client = ArgoServerClient(server.url, "analysis", token=TOKEN)
        objects = manifests()[:3]  # rerun, preview, daily
        apply_all(objects, client)
        posts = [(r.method, r.path) for r in server.requests if r.method == "POST"]
        assert posts == [
            ("POST", "/api/v1/workflow-templates/analysis"),
            ("POST", "/api/v1/workflow-templates/analysis"),
            ("POST", "/api/v1/cron-workflows/analysis"),
        ]
        version = server.stored("cronworkflows", "analysis", "jetstream-daily")["metadata"][
            "resourceVersion"
        ]
        assert (
            server.stored("cronworkflows", "analysis", "jetstream-daily")["spec"]["schedule"]
            == "0 3 * * *"
        )
        server.requests.clear()
        apply_all(objects, client)
        methods = [(r.method, r.path) for r in server.requests]
        assert ("GET", "/api/v1/cron-workflows/analysis/jetstream-daily") in methods
        put = next(
            r
            for r in server.requests
            if r.path.endswith("/cron-workflows/analysis/jetstream-daily") and r.method == "PUT"
        )
        assert put.body["cronWorkflow"]["metadata"]["resourceVersion"] == version
        assert all(r.authorization == f"Bearer {TOKEN}" for r in server.requests)

        created = client.submit_from_template(
            "jetstream-rerun", {"experiment": "my-exp", "period": "week"}
        )
        assert created["spec"]["workflowTemplateRef"] == {"name": "jetstream-rerun"}
        assert created["metadata"]["name"].startswith("jetstream-rerun-")
        submit_req = server.requests[-1]
        assert submit_req.path == "/api/v1/workflows/analysis/submit"
        assert submit_req.body["submitOptions"]["parameters"] == [
            "experiment=my-exp",
            "period=week",
        ]


def test_apply_command_installs_all_six_objects(monkeypatch):
    """`jetstream workflows apply` installs the analysis objects and the three monitoring
    CronWorkflows; a second apply updates them in place."""
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    with FakeArgo(TOKEN) as server:
        args = ["workflows", "apply", "--argo-server", server.url, "--namespace", "analysis"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        kinds = {"WorkflowTemplate": "workflowtemplates", "CronWorkflow": "cronworkflows"}
        for obj in manifests():
            name = obj["metadata"]["name"]
            stored = server.stored(kinds[obj["kind"]], "analysis", name)
            assert stored["spec"] == obj["spec"]  # as rendered: `schedule` for Argo 3.5
            assert f"{obj['kind']} analysis/{name} applied" in result.output
        assert len(server.objects) == 6
        again = CliRunner().invoke(cli, args)
        assert again.exit_code == 0, again.output
        assert len(server.objects) == 6
        assert sum(r.method == "PUT" for r in server.requests) == 6


def test_apply_command_names_the_missing_argo_server(monkeypatch):
    monkeypatch.delenv("JETSTREAM_ARGO_SERVER", raising=False)
    result = CliRunner().invoke(cli, ["workflows", "apply"])
    assert result.exit_code != 0
    assert "--argo-server URL (or JETSTREAM_ARGO_SERVER)" in str(result.exception or result.output)


def test_workflows_render_command(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["workflows", "render", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name, text in render_all().items():
        assert (tmp_path / name).read_text() == text
    result = runner.invoke(cli, ["workflows", "render"])
    assert result.exit_code == 0
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(result.output)] == [
        o["metadata"]["name"] for o in manifests()
    ]


# -- controller --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduled", "day"),
    [
        ("2024-03-02T03:00:00Z", "2024-03-01"),
        ("2024-03-02T03:00:00+00:00", "2024-03-01"),
        ("2024-03-02T01:00:00+05:00", "2024-02-29"),  # 20:00 UTC the day before
        ("2024-03-02T00:00:00", "2024-03-01"),
        ("2024-03-02", "2024-03-01"),
    ],
)
def test_analysis_date_is_the_previous_utc_day(scheduled, day):
    assert analysis_date(scheduled) == dt.date.fromisoformat(day)


def test_analysis_date_rejects_garbage():
    import click

    with pytest.raises(click.BadParameter, match="ISO 8601"):
        analysis_date("yesterday")


def _controller(args: list[str], env: dict[str, str] | None = None):
    base = [
        "controller",
        "--scheduled-time",
        "2026-01-20T03:00:00Z",
        "--experiments",
        str(DEMO / "experiments.json"),
        "--config-repo",
        str(DEMO),
    ]
    return CliRunner().invoke(cli, base + args, env=env or {})


def test_controller_dry_run_local_prints_the_day_s_commands():
    result = _controller(["--runner", "local", "--dry-run", "--warehouse", "duckdb:x.duckdb"])
    assert result.exit_code == 0, result.output
    lines = [x for x in result.output.splitlines() if x.startswith("jetstream task")]
    assert lines and all("--date 2026-01-19" in x for x in lines)
    assert lines[0].startswith("jetstream task ensure-enrollments")


def test_controller_submits_once_and_skips_a_resubmission(monkeypatch):
    monkeypatch.delenv("ARGO_TOKEN", raising=False)
    with FakeArgo(TOKEN) as server:
        env = {
            "JETSTREAM_ARGO_SERVER": server.url,
            "ARGO_TOKEN": TOKEN,
            "JETSTREAM_IMAGE": PINNED,
            "JETSTREAM_NAMESPACE": "analysis",
            "JETSTREAM_WAREHOUSE": "bigquery:p.d",
        }
        result = _controller([], env)
        assert result.exit_code == 0, result.output
        lookup, req = server.requests
        assert lookup.method == "GET" and "scheduled-2026-01-20T03-00-00Z" in lookup.query
        assert req.path == "/api/v1/workflows/analysis"
        wf = req.body["workflow"]
        params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
        assert params["image"] == PINNED and params["warehouse"] == "bigquery:p.d"
        assert all("--date" in c and "2026-01-19" in c for c in commands_of(wf))
        assert wf["metadata"]["labels"]["jetstream/trigger"] == "scheduled-2026-01-20T03-00-00Z"
        again = _controller([], env)  # a retried controller pod: found by its labels
        assert again.exit_code == 0, again.output
        assert "already submitted" in again.output
        assert len(server.objects) == 1
        later = _controller(["--scheduled-time", "2026-01-21T03:00:00Z"], env)
        assert later.exit_code == 0, later.output
        assert len(server.objects) == 2


def test_controller_refuses_an_unpinned_image():
    from jetstream.runners.argo import UnpinnedImageError

    result = _controller(["--image", "jetstream:latest", "--argo-server", "http://127.0.0.1:9"])
    assert isinstance(result.exception, UnpinnedImageError)


def test_controller_skips_an_experiment_whose_config_fails(tmp_path):
    repo = tmp_path / "config"
    shutil.copytree(DEMO, repo)
    (repo / "jetstream" / "demo-sidebar-redesign.toml").write_text("[experiment\nbroken")
    result = CliRunner().invoke(
        cli,
        [
            "controller",
            "--scheduled-time",
            "2026-01-20T03:00:00Z",
            "--experiments",
            str(DEMO / "experiments.json"),
            "--config-repo",
            str(repo),
            "--runner",
            "local",
            "--dry-run",
        ],
    )
    assert result.exit_code == 1, result.output  # skipped, the others planned: exit 1
    assert "demo-sidebar-redesign --date" not in result.output
    assert "config failed" in result.output and "demo-sidebar-redesign" in result.output
    assert "skipped: demo-sidebar-redesign:" in result.output
