"""The base install (`pip install .`, no extras) runs the embedded engine end to end, and
the features that need an extra say which one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from jetstream.errors import EXIT_USAGE
from jetstream.extras import EXTRAS, MissingExtraError, require
from tests.support.paths import REPO

ROOT = REPO
OFFLINE_MARKERS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "Network is unreachable",
)


def test_require_names_the_extra_and_the_pip_command():
    with pytest.raises(MissingExtraError) as info:
        require("argo", "--runner argo", ("jetstream_no_such_module",))
    message = str(info.value)
    assert "--runner argo needs the 'argo' extra" in message
    assert "pip install 'jetstream-platform[argo]'" in message
    assert info.value.exit_code == EXIT_USAGE


def test_every_extra_is_declared_in_pyproject():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(EXTRAS) <= set(extras)
    assert "jetstream-platform[all]" in extras["dev"]
    assert all(f"{name}" in extras["all"][0] for name in EXTRAS)


@pytest.mark.slow
def test_fresh_venv_base_install_runs_the_demo_analysis(tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # a copy of what the Dockerfile copies, so the build leaves nothing in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "jetstream", src / "jetstream", ignore=shutil.ignore_patterns("__pycache__")
    )
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", str(src)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1500,
    )
    if install.returncode != 0:
        if any(m in install.stderr for m in OFFLINE_MARKERS):
            pytest.skip(f"pip cannot reach the package index: {install.stderr[-300:]}")
        pytest.fail(install.stdout + install.stderr)

    # no extra's modules came with the base install
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m.split('.')[0])])"
    present = subprocess.run(
        [str(py), "-c", probe, "hera", "kubernetes", "starlette", "uvicorn", "google"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert present.stdout.strip() == "[]", present.stdout

    demo = subprocess.run(
        [
            str(py),
            "-m",
            "jetstream.synthetic.demo",
            "--out",
            "demo",
            "--clients",
            "500",
            "--days",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=1500,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    stats = tmp_path / "demo" / "results" / "statistics"
    daily = json.loads((stats / "statistics_demo_sidebar_redesign_daily.json").read_text())
    assert daily and {"metric", "branch", "point"} <= set(daily[0])
    assert (tmp_path / "demo" / "report" / "index.html").is_file()
    # the redirected run logged its progress
    assert '"event": "run progress"' in demo.stderr

    jetstream = str(env_dir / "bin" / "jetstream")
    for args, extra in [
        (["workflows", "render"], "argo"),
        (["preview", "--slug", "x", "--warehouse", "bigquery:proj.ds"], "bigquery"),
        (["report", "--statistics", "gs://bucket/results", "--out", "r"], "gcs"),
        (["monitor", "serve", "--demo"], "webhook"),
    ]:
        done = subprocess.run(
            [jetstream, *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
        assert f"pip install 'jetstream-platform[{extra}]'" in done.stderr
        assert "Traceback" not in done.stderr
