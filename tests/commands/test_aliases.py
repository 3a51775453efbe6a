"""Jetstream's command and option spellings (`jetstream.commands.aliases`): hidden from
--help, translated to ours, and the calls metric-hub's CI and Jetstream's Argo templates
make run as written."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import synthetic
from jetstream.changes import rerun_skip_requested
from jetstream.cli import cli
from jetstream.commands import aliases
from tests.support.argo_server import FakeArgo, schema_validator
from tests.support.paths import REPO

DEMO_REPO = synthetic.DEMO_DIR
EXPERIMENTS = str(DEMO_REPO / "experiments.json")
PINNED = "ghcr.io/example/jetstream@sha256:" + "0" * 64
TOKEN = "s3cret"

# as written in mozilla/metric-hub .github/workflows (validate-jetstream.yml, rerun-jetstream.yml)
METRIC_HUB_VALIDATE = "jetstream validate_config --config_repos='.' --config_repos=jetstream/"
METRIC_HUB_RERUN = "jetstream rerun --argo --return-status --recreate-enrollments"


def test_aliases_are_hidden_from_help():
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in [*aliases.ALIASES, "experiment_slug", "log_to_bigquery"]:
        assert name not in out
    assert "rerun-skip" in out  # a command of ours too
    rerun_help = CliRunner().invoke(cli, ["rerun", "--help"]).output
    assert "--experiment_slug" not in rerun_help and "--wait" in rerun_help


def test_translation_of_jetstreams_spellings(tmp_path):
    target, calls, notes = aliases.translate(
        "rerun",
        [
            "--argo",
            "--return-status",
            "--recreate-enrollments",
            "--experiment_slug=a",
            "--experiment_slug=b",
            "--project_id=proj",
            "--dataset_id",
            "ds",
            "--bucket=results",
            "--analysis_periods=week",
            "--zone=us-central1-a",
        ],
    )
    assert target == ("rerun",)
    assert calls == [
        [
            "--runner",
            "argo",
            "--wait",
            "--recreate-enrollments",
            "--period",
            "week",
            "--warehouse",
            "bigquery:proj.ds",
            "--out",
            "gs://results",
            "--experiment",
            "a",
            "--experiment",
            "b",
        ]
    ]
    assert notes == ["--zone ignored: the cluster comes from the Argo settings"]
    # per-experiment commands run once per slug; Jetstream's defaults fill a missing half
    target, calls, _ = aliases.translate(
        "export-statistics-to-json",
        ["--experiment_slug=a", "--experiment-slug=b", "--dataset_id=d"],
    )
    assert target == ("export",)
    assert [c[-1] for c in calls] == ["a", "b"]
    assert "bigquery:moz-fx-data-experiments.d" in calls[0]
    target, calls, _ = aliases.translate("ensure-enrollments", ["--experiment_slug=a"])
    assert target == ("task", "ensure-enrollments") and "--date" in calls[0]
    # statistics-only cannot be honoured; false (the Argo template's default) is fine
    aliases.translate("run", ["--date=2026-01-10", "--statistics-only=False"])
    with pytest.raises(Exception, match="statistics-only"):
        aliases.translate("run", ["--date=2026-01-10", "--statistics-only=True"])
    with pytest.raises(Exception, match="needs a value"):
        aliases.translate("run", ["--experiment_slug"])
    # our own spellings pass through unchanged, and need no translation
    assert not aliases.needs_translation("run", ["--experiment", "a", "--date", "2026-01-10"])
    assert aliases.needs_translation("run", ["--experiment_slug=a"])


def test_config_repos_become_one_config_repo(tmp_path, monkeypatch):
    (tmp_path / "jetstream").mkdir()
    monkeypatch.chdir(tmp_path)
    assert aliases.config_repo_of([".", "jetstream/"]) == "."
    assert aliases.config_repo_of(["jetstream"]) == str(tmp_path.resolve())
    assert (
        aliases.config_repo_of(
            ["https://github.com/mozilla/metric-hub/tree/main/jetstream", "https://x/y"]
        )
        == "https://github.com/mozilla/metric-hub@main"
    )


def _jetstream(command: str, cwd: Path, env: dict[str, str], *files: str):
    argv = shlex.split(command)
    assert argv[0] == "jetstream"
    return subprocess.run(
        [sys.executable, "-m", "jetstream.cli", *argv[1:], *files],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_metric_hubs_validate_config_call_runs_as_written(tmp_path):
    repo = tmp_path / "config-repo"
    shutil.copytree(DEMO_REPO, repo)
    env = {"JETSTREAM_EXPERIMENTS": EXPERIMENTS}
    files = [
        "jetstream/demo-sidebar-redesign.toml",
        "jetstream/defaults/demo.toml",
        "jetstream/outcomes/demo/search_monetization.toml",
        "definitions/demo.toml",
    ]
    ok = _jetstream(METRIC_HUB_VALIDATE, repo, env, *files)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # a broken config fails the job, naming the file and key
    bad = repo / "jetstream" / "demo-sidebar-redesign.toml"
    bad.write_text(
        bad.read_text().replace('multiple_comparisons = "holm"', "multiple_comparisons = 3")
    )
    failed = _jetstream(METRIC_HUB_VALIDATE, repo, env, "jetstream/demo-sidebar-redesign.toml")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "multiple_comparisons" in failed.stdout + failed.stderr
    # example configs are skipped; nothing left to validate is success, as in Jetstream
    (repo / "jetstream" / "x.toml.example").write_text("[experiment\n")
    skipped = _jetstream(METRIC_HUB_VALIDATE, repo, env, "jetstream/x.toml.example")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr


@pytest.fixture(scope="module")
def argo_schema(shared_dir):
    from jetstream.manifests import load_schema

    return load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")


@pytest.mark.shared
@pytest.mark.parametrize("phase,code", [("Succeeded", 0), ("Failed", 1)])
def test_metric_hubs_rerun_call_runs_as_written(tmp_path, argo_schema, phase, code):
    """`jetstream rerun --argo --return-status --recreate-enrollments --experiment_slug=X`:
    one workflow submitted to argo-server, waited for, its status the exit code."""
    with FakeArgo(TOKEN, validate=schema_validator(argo_schema)) as server:
        server.workflow_statuses = [{"phase": phase}]
        env = {
            "JETSTREAM_EXPERIMENTS": EXPERIMENTS,
            "JETSTREAM_CONFIG_REPO": str(DEMO_REPO),
            "JETSTREAM_WAREHOUSE": f"duckdb:{tmp_path / 'wh.duckdb'}",
            "JETSTREAM_ARGO_SERVER": server.url,
            "JETSTREAM_IMAGE": PINNED,
            "ARGO_TOKEN": TOKEN,
        }
        slugs = "--experiment_slug=demo-sidebar-redesign --experiment_slug=demo-toolbar-rollout "
        res = _jetstream(METRIC_HUB_RERUN + " " + slugs, tmp_path, env)
        assert res.returncode == code, res.stdout + res.stderr
        posts = [r for r in server.requests if r.method == "POST"]
        assert len(posts) == 1, [r.path for r in server.requests]
        body = json.dumps(posts[0].body)
        assert "demo-sidebar-redesign" in body


def test_rerun_skip_and_commit_tags(tmp_path):
    res = CliRunner().invoke(cli, ["rerun-skip", "--experiment_slug=a", "--experiment_slug=b"])
    assert res.exit_code == 0, res.output
    assert "a, b" in res.output
    for message in (
        "Change defaults [ci rerun-skip]",
        "x\n\n[CI Skip_Rerun]",
        "[ci rerun_skip] y",
        "[ci skip-rerun]",
    ):
        assert rerun_skip_requested(message)
    assert not rerun_skip_requested("rerun skip please")
    assert not rerun_skip_requested(None)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_rerun_config_changed_honours_the_skip_tag(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(DEMO_REPO, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "initial")
    defaults = repo / "jetstream" / "defaults" / "demo.toml"
    defaults.write_text(defaults.read_text() + "\n# touched\n")
    _git(repo, "commit", "-qam", "Tweak defaults [ci rerun-skip]")
    args = [
        "rerun-config-changed",
        "--experiments",
        EXPERIMENTS,
        "--config-repo",
        str(repo),
        "--warehouse",
        f"duckdb:{tmp_path / 'wh.duckdb'}",
        "--out",
        str(tmp_path / "out"),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "Rerun skipped" in res.output
    assert not (tmp_path / "wh.duckdb").exists() and not (tmp_path / "out").exists()
    # without the tag the same change is analysed (a comment changes no definition)
    _git(repo, "commit", "-q", "--amend", "-m", "Tweak defaults")
    res = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "Rerun skipped" not in res.output and "tasks" in res.output
    # Jetstream's options of this command that ours has no counterpart for are dropped
    res = CliRunner().invoke(
        cli, [*args, "--dry-run", "--recreate_enrollments", "--analysis_periods=week"]
    )
    assert res.exit_code == 0, res.output
    assert "--recreate-enrollments (rerun-config-changed here has no such option)" in (
        res.output + (res.stderr if res.stderr_bytes is not None else "")
    )


def test_jetstream_global_options_are_accepted():
    res = CliRunner().invoke(cli, ["--log_to_bigquery", "--debug", "rerun-skip"])
    assert res.exit_code == 0, res.output


# as written in mozilla/jetstream jetstream/workflows/run.yaml (Argo parameters filled in)
ARGO_TEMPLATE_CALLS = [
    "jetstream --log_to_bigquery ensure-enrollments --experiment_slug=my-exp "
    "--dataset_id=mozanalysis --project_id=moz-fx-data-experiments",
    "jetstream --log_to_bigquery run --date=2026-01-10 --experiment_slug=my-exp "
    "--dataset_id=mozanalysis --project_id=moz-fx-data-experiments --bucket=mozanalysis "
    "--analysis_periods=day --analysis_periods=week --analysis_periods=days28 "
    "--analysis_periods=overall --analysis_periods=preenrollment_week "
    "--analysis_periods=preenrollment_days28 --statistics-only=False --discrete-metrics",
    "jetstream export-statistics-to-json --dataset_id=mozanalysis "
    "--project_id=moz-fx-data-experiments --experiment_slug=my-exp --bucket=mozanalysis",
    "jetstream export-metadata-to-json --experiment_slug=my-exp --bucket=mozanalysis",
    "jetstream export-experiment-logs-to-json --experiment_slug=my-exp --bucket=mozanalysis "
    "--log_project_id=p --log_dataset_id=d --log_table_id=logs --project_id=p --date=2026-01-10",
    "jetstream run-argo --date=2026-01-10 --experiment_slug=my-exp --zone=us-central1-a "
    "--cluster_id=jetstream --monitor_status=True --memory-request=8Gi",
    "jetstream rerun-config-changed --argo --return-status --project_id=p --dataset_id=d",
]


def _command_of(call: str) -> str:
    return next(a for a in shlex.split(call)[1:] if not a.startswith("-"))


@pytest.mark.parametrize("call", ARGO_TEMPLATE_CALLS, ids=_command_of)
def test_jetstream_calls_parse_as_our_commands(call, monkeypatch):
    """Each call translates to arguments our command accepts (parsed, not run: the
    warehouse is BigQuery)."""
    import click

    monkeypatch.setenv("JETSTREAM_EXPERIMENTS", EXPERIMENTS)
    argv = shlex.split(call)[1:]
    res = CliRunner().invoke(cli, [*argv[: argv.index(_command_of(call))], "--help"])
    assert res.exit_code == 0, res.output  # Jetstream's global options are accepted
    rest = argv[argv.index(_command_of(call)) :]
    root = click.Context(cli, info_name="jetstream")
    name = rest[0]
    assert aliases.needs_translation(name, rest[1:])
    target, invocations, _notes = aliases.translate(name, rest[1:])
    assert invocations
    cmd = cli.get_command(root, target[0])
    assert cmd is not None
    for args in invocations:
        if isinstance(cmd, click.Group):
            sub = cmd.get_command(root, target[1])
            ctx = sub.make_context(target[1], list(args), parent=root)
        else:
            ctx = cmd.make_context(target[0], list(args), parent=root)
        params = ctx.params
        if "--project_id" in call or "--dataset_id" in call:
            assert params["warehouse"].startswith("bigquery:")
        if "out" in params and "--bucket=mozanalysis" in call:
            assert params["out"] == "gs://mozanalysis"
