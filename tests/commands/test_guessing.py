"""Commands that guess right: validate-config takes the platform from the experiment or the
config repo, prints a preview command that runs as printed, and commands that read
telemetry refuse a DuckDB warehouse that does not exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream.cli import cli
from jetstream.synthetic import DEMO_DIR
from tests.support.paths import REPO

CONFIG = DEMO_DIR / "jetstream" / "demo-sidebar-redesign.toml"
EXPERIMENTS = DEMO_DIR / "experiments.json"


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_without_flags_uses_the_repo_the_file_sits_in_and_its_only_platform():
    result = _invoke("validate-config", str(CONFIG))
    assert result.exit_code == 0, result.output
    assert "undefined" not in result.output
    assert "1 valid, 0 invalid" in result.output
    assert "platform demo (the config repo's only platform)" in result.output
    [preview] = [
        line for line in result.output.splitlines() if line.startswith("jetstream preview")
    ]
    assert "--platform demo" in preview and f"--config-repo {DEMO_DIR}" in preview


def test_validate_takes_the_platform_from_the_experiments_source(tmp_path: Path):
    # A copy of the config outside any repo layout, with the demo repo given explicitly:
    # the experiment record says appName=demo, so no note and no firefox_desktop errors.
    config = tmp_path / CONFIG.name
    config.write_text(CONFIG.read_text())
    result = _invoke(
        "validate-config",
        "--config-repo",
        str(DEMO_DIR),
        "--experiments",
        str(EXPERIMENTS),
        str(config),
    )
    assert result.exit_code == 0, result.output
    assert "firefox_desktop" not in result.output
    assert f"--experiments {EXPERIMENTS}" in result.output and "--platform demo" in result.output


def test_validate_with_several_platforms_says_which_it_assumed_first(tmp_path: Path):
    repo = tmp_path / "hub"
    (repo / "jetstream" / "defaults").mkdir(parents=True)
    (repo / "definitions").mkdir()
    for app in ("demo", "other"):
        (repo / "jetstream" / "defaults" / f"{app}.toml").write_text(
            (DEMO_DIR / "jetstream" / "defaults" / "demo.toml").read_text()
        )
        (repo / "definitions" / f"{app}.toml").write_text(
            (DEMO_DIR / "definitions" / "demo.toml").read_text()
        )
    config = repo / "jetstream" / "x.toml"
    config.write_text("[experiment]\n")
    result = _invoke("validate-config", str(config))
    first = result.output.splitlines()[1]
    assert "assuming platform firefox_desktop" in first and "demo, other" in first


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    result = _invoke(
        "synthetic", "--warehouse", f"duckdb:{path}", "--clients", "10000", "--days", "10"
    )
    assert result.exit_code == 0, result.output
    return f"duckdb:{path}"


@pytest.mark.slow
def test_printed_preview_command_runs_as_printed(tmp_path: Path, demo_warehouse: str):
    result = _invoke(
        "validate-config",
        "--experiments",
        str(EXPERIMENTS),
        "--warehouse",
        demo_warehouse,
        str(CONFIG),
    )
    assert result.exit_code == 0, result.output
    [command] = [
        line for line in result.output.splitlines() if line.startswith("jetstream preview ")
    ]
    # `jetstream` on PATH: this interpreter's CLI, with this tree importable.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "jetstream"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m jetstream.cli "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    # 0, or 1 when a statistic failed on the 1% sample (docs/preview.md); never a usage error.
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "Error:" not in done.stderr and "Traceback" not in done.stderr
    assert "experiment: demo-sidebar-redesign (in Experimenter)" in done.stdout
    daily = tmp_path / "jetstream-preview/results/statistics"
    assert json.loads((daily / "statistics_demo_sidebar_redesign_daily.json").read_text())
    assert (tmp_path / "jetstream-preview" / "report" / "index.html").is_file()
    assert not (tmp_path / "jetstream.duckdb").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["preview", "--slug", "demo-sidebar-redesign"],
        ["monitor", "run", "--job", "daily", "--experiments", str(EXPERIMENTS)],
        ["shred", "--client-ids", "IDS"],
    ],
)
def test_read_only_commands_refuse_a_missing_duckdb_warehouse(tmp_path: Path, args, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("c1\n")
    args = [str(ids) if a == "IDS" else a for a in args]
    missing = tmp_path / "nope.duckdb"
    result = CliRunner().invoke(cli, [*args, "--warehouse", f"duckdb:{missing}"])
    assert result.exit_code == 2, result.output
    assert f"{missing} does not exist" in result.output
    assert "Traceback" not in result.output
    assert not missing.exists() and list(tmp_path.iterdir()) == [ids]


def test_preview_default_warehouse_is_not_created(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JETSTREAM_WAREHOUSE", raising=False)
    result = CliRunner().invoke(cli, ["preview", "--slug", "x"])
    assert result.exit_code == 2
    assert "jetstream.duckdb does not exist" in result.output
    assert not (tmp_path / "jetstream.duckdb").exists()
