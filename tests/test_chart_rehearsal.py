"""A rehearsal of one scheduled day of an install of the chart, offline.

The chart is rendered by the real Helm engine (helm-python-sdk) with its default values plus
the three things an operator must give: the Experimenter URL (here the demo experiments
served by a real HTTP server on 127.0.0.1), the config repository (a git repository made
from jetstream/data/demo, as `file://...@<commit>`) and the warehouse (a DuckDB file filled
by jetstream.synthetic). The daily CronWorkflow's pod is then "run": its command, its env
(container env + the rendered jetstream-settings ConfigMap through envFrom) and its
emptyDirs (temporary directories at the mount paths' places) exactly as rendered. It
checks out the config repository itself and submits the day's Workflow through the
Kubernetes API (the chart's default), answered by the recording fake in
tests/argo_server.py. The submitted Workflow's pods run exactly the commands the local
runner runs for the same graph (as in test_orchestration_e2e); the local runner executes
them with the task pods' env, and every experiment due that day must be published.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from jetstream import synthetic
from tests.support.argo_server import FakeArgo
from tests.support.paths import REPO
from tests.support.servers import Reply, ScriptedHTTPServer
from tests.support.workflow_commands import commands_of, workflow_spec

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (dev dependency) is missing")

CHART = REPO / "charts" / "jetstream"
NAMESPACE = "analysis"
TOKEN = "rehearsal-token"
SCHEDULED = "2026-01-18T03:00:00Z"  # analyses 2026-01-17: day and week windows
DATE = dt.date(2026, 1, 17)
RUN_TIMEOUT = 600


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def config_repo(tmp_path_factory) -> tuple[Path, str]:
    """A git repository holding the demo configs: (path, commit)."""
    path = tmp_path_factory.mktemp("config") / "metric-hub"
    shutil.copytree(synthetic.DEMO_DIR, path, ignore=shutil.ignore_patterns("experiments.json"))
    git("init", "-q", "-b", "main", cwd=path)
    git("add", ".", cwd=path)
    git("commit", "-q", "-m", "demo configs", cwd=path)
    # a later commit the pinned install must NOT read (it breaks every config)
    commit = git("rev-parse", "HEAD", cwd=path)
    (path / "jetstream" / "demo-sidebar-redesign.toml").write_text("[experiment\n")
    git("commit", "-q", "-am", "broken", cwd=path)
    git("branch", "good", commit, cwd=path)
    git("config", "uploadpack.allowReachableSHA1InWant", "true", cwd=path)
    return path, commit


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    from jetstream.warehouse import open_warehouse

    db = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    wh = open_warehouse(f"duckdb:{db}")
    try:
        synthetic.write(wh, synthetic.generate(clients=300, seed=11))
    finally:
        wh.close()
    return db


def render(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(dict(values), name="jetstream", namespace=NAMESPACE)
    return [d for _, text in sorted(out.items()) for d in yaml.safe_load_all(text) if d]


def by_kind_name(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def pod_env(
    template: Mapping[str, Any], objs: list[dict[str, Any]], scratch: Path
) -> dict[str, str]:
    """What the pod of a container template sees: envFrom ConfigMaps, then env. The
    template's emptyDirs become directories under `scratch`: the container's own env
    values pointing into a mount path are moved there (the settings' values are the
    operator's and stay as they are)."""
    container = template["container"]
    own = {e["name"]: e["value"] for e in container.get("env", [])}
    volumes = {v["name"]: v for v in template.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        assert "emptyDir" in volumes[mount["name"]], mount
        local = scratch / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        for key, value in own.items():
            if value == mount["mountPath"] or value.startswith(mount["mountPath"] + "/"):
                own[key] = str(local) + value[len(mount["mountPath"]) :]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        cm = by_kind_name(objs, "ConfigMap", source["configMapRef"]["name"])
        env.update(cm["data"])
    return {**env, **own}


def substitute(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, text
    return text


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "controller", "user": {"token": TOKEN}}],
                "contexts": [
                    {
                        "name": "fake",
                        "context": {
                            "cluster": "fake",
                            "user": "controller",
                            "namespace": NAMESPACE,
                        },
                    }
                ],
                "current-context": "fake",
            }
        )
    )
    return path


def run_pod(
    argv: list[str], env: Mapping[str, str], home: Path, api_server: str | None = None
) -> subprocess.CompletedProcess:
    """A pod's command with the pod's env only (plus what runs Python here); with
    `api_server`, a kubeconfig for it stands in for the pod's service-account token."""
    base = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "LANG") if k in os.environ}
    if api_server:
        base["KUBECONFIG"] = str(kubeconfig(home / "kubeconfig", api_server))
    assert argv[0] == "jetstream"
    return subprocess.run(
        [sys.executable, "-m", "jetstream.cli", *argv[1:]],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def daily_pod(objs: list[dict[str, Any]]) -> dict[str, Any]:
    cron = by_kind_name(objs, "CronWorkflow", "jetstream-daily")
    spec = workflow_spec(cron)
    (template,) = [t for t in spec["templates"] if t["name"] == spec["entrypoint"]]
    return template


@pytest.mark.slow
def test_default_install_analyses_the_day(config_repo, warehouse, tmp_path):
    from jetstream.commands.loading import load_many
    from jetstream.export import metadata_path, statistics_path
    from jetstream.graph import plan
    from jetstream.runners.common import RunSettings
    from jetstream.runners.local import LocalRunner

    repo, commit = config_repo
    experiments = (synthetic.DEMO_DIR / "experiments.json").read_bytes()
    out = tmp_path / "published"
    with (
        ScriptedHTTPServer(default=Reply(200, experiments)) as experimenter,
        FakeArgo(token=TOKEN) as kube,
    ):
        values = {
            "settings": {
                "experiments": experimenter.url("/api/v6/experiments/"),
                "configRepo": f"file://{repo}@{commit}",
                "warehouse": f"duckdb:{warehouse}",
                "out": str(out),
            }
        }
        objs = render(values)
        template = daily_pod(objs)
        container = template["container"]
        env = pod_env(template, objs, tmp_path / "controller-pod")
        argv = [
            substitute(a, {"workflow.scheduledTime": SCHEDULED})
            for a in [*container["command"], *container["args"]]
        ]
        controller = run_pod(argv, env, tmp_path, api_server=kube.url)
        assert controller.returncode == 0, controller.stderr[-4000:]
        submitted = [o for (plural, ns, _), o in kube.objects.items() if plural == "workflows"]
        assert [r.authorization for r in kube.requests] == [f"Bearer {TOKEN}"] * len(kube.requests)

        # the controller cloned the repository into its emptyDir, pinned to the commit
        cache = Path(env["JETSTREAM_CACHE_DIR"])
        assert any(cache.rglob(commit)), "the config repository was not checked out in the pod"
        (workflow,) = submitted
        assert workflow["metadata"]["namespace"] == NAMESPACE
        params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
        assert params["config-repo"] == f"file://{repo}@{commit}"
        assert params["image"] == env["JETSTREAM_IMAGE"]

        # the graph the controller submitted is the day's graph, computed independently
        specs, failures = load_many(
            str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR
        )
        assert failures == {}
        graph = plan(specs, DATE)
        due = set(graph.experiments)
        assert due, "nothing due on the rehearsal date"
        settings = RunSettings(
            experiments=params["experiments"],
            config_repo=params["config-repo"],
            warehouse=params["warehouse"],
            out=params["out"],
        )
        runner = LocalRunner(settings, record_runs=False, parallelism=2)
        assert commands_of(workflow) == set(runner.commands(graph))

        # the task pods' env, then the local runner runs exactly those commands
        spec = workflow_spec(workflow)
        leaf = next(t for t in spec["templates"] if "container" in t)
        runner.env = pod_env(leaf, objs, tmp_path / "task-pod")
        summary = runner.run(graph)
        assert not summary.failed, summary.describe()
    # every experiment due that day is published: its metadata and the statistics of
    # every period computed that day, with rows
    published = {p.relative_to(out).as_posix() for p in out.rglob("*.json")}
    for slug in due:
        assert metadata_path(slug) in published, (slug, sorted(published))
        periods = {n.period for n in graph.nodes if n.slug == slug and n.period is not None}
        assert periods
        for period in periods:
            path = statistics_path(slug, period)
            assert path in published, (path, sorted(published))
            assert json.loads((out / path).read_text()), f"{path} is empty"


def test_controller_without_a_config_repo_is_a_config_error(tmp_path):
    experiments = str(synthetic.DEMO_DIR / "experiments.json")
    values = {"settings": {"experiments": experiments, "warehouse": "duckdb:/x.duckdb"}}
    objs = render(values)
    env = pod_env(daily_pod(objs), objs, tmp_path)
    assert env["JETSTREAM_CONFIG_REPO"].endswith("metric-hub.git@main"), "chart default"
    env.pop("JETSTREAM_CONFIG_REPO")
    proc = run_pod(["jetstream", "controller", "--scheduled-time", SCHEDULED], env, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "no config repository" in proc.stderr and "JETSTREAM_CONFIG_REPO" in proc.stderr
    assert "Traceback" not in proc.stderr and "NoneType" not in proc.stderr


def test_git_url_config_repo_is_pinned_not_mangled(config_repo, tmp_path):
    """The default JETSTREAM_CONFIG_REPO, configRepoUrl@configBranch: the controller reads
    the branch head and pins its tasks to that commit; the URL reaches them intact (no
    Path(): `file:///...`, `https://...`)."""
    repo, commit = config_repo
    values = {
        "settings": {
            "experiments": str(synthetic.DEMO_DIR / "experiments.json"),
            "configRepoUrl": f"file://{repo}",
            "configBranch": "good",
            "warehouse": "duckdb:/tmp/none.duckdb",
        }
    }
    objs = render(values)
    env = pod_env(daily_pod(objs), objs, tmp_path)
    assert env["JETSTREAM_CONFIG_REPO"] == f"file://{repo}@good"
    argv = ["jetstream", "controller", "--scheduled-time", SCHEDULED, "--dry-run"]
    proc = run_pod(argv, env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (workflow,) = [d for d in yaml.safe_load_all(proc.stdout) if d]
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert params["config-repo"] == f"file://{repo}@{commit}"


def test_unreachable_config_repo_is_one_clear_error(tmp_path):
    """A config repository git cannot read stops the controller once, before planning,
    with git's message (exit 2), not one failure per experiment."""
    values = {
        "settings": {
            "experiments": str(synthetic.DEMO_DIR / "experiments.json"),
            "configRepo": f"file://{tmp_path}/missing@{'a' * 40}",
            "warehouse": "duckdb:/tmp/none.duckdb",
        }
    }
    objs = render(values)
    env = pod_env(daily_pod(objs), objs, tmp_path)
    proc = run_pod(["jetstream", "controller", "--scheduled-time", SCHEDULED], env, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"config repository file://{tmp_path}/missing@" in proc.stderr, proc.stderr
    # git's own words (the hardened runner keeps its last lines)
    assert "repository exists" in proc.stderr or "not appear to be a git" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "experiment skipped" not in proc.stderr
