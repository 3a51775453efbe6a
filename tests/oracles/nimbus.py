"""The Experimenter oracle: a virtualenv with Experimenter's own result models
(`mozilla_nimbus_schemas.jetstream`, PyPI `mozilla-nimbus-schemas`, pinned), built once
under ~/.cache/jetstream-oracles/ with the system `python3 -m venv`, and a function that
checks a results directory with them in a subprocess (the models need pydantic 2, which
the project's own environment does not have to match)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "mozilla-nimbus-schemas==3006.0.0"
CHECK_SCRIPT = Path(__file__).with_name("nimbus_check.py")


def cache_dir() -> Path:
    base = os.environ.get("JETSTREAM_ORACLE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "jetstream-oracles"


def python() -> Path:
    """The oracle venv's interpreter, built on first use; skips the test (with the reason)
    when it cannot be built here (no python3, no venv module, no package index)."""
    venv = cache_dir() / ("nimbus-" + PACKAGE.split("==")[1])
    exe = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.is_file() and exe.is_file():
        return exe
    system = shutil.which("python3") or sys.executable
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [system, "-m", "venv", "--clear", str(venv)],
        [str(exe), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PACKAGE],
    ]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot build the Experimenter oracle venv ({' '.join(cmd)}): {exc}")
        if proc.returncode != 0:
            pytest.skip(
                f"cannot build the Experimenter oracle venv: {' '.join(cmd)} exited "
                f"{proc.returncode}: {(proc.stderr or proc.stdout)[-800:]}"
            )
    marker.write_text(PACKAGE + "\n")
    return exe


def check(results_dir: Path) -> dict:
    """Experimenter's verdict on every published file under `results_dir`."""
    proc = subprocess.run(
        [str(python()), str(CHECK_SCRIPT), str(results_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def failures(report: dict) -> dict[str, str]:
    return {path: verdict for path, verdict in report["files"].items() if verdict != "ok"}
