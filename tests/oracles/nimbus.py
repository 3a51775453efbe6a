"""The Experimenter oracle: a virtualenv with Experimenter's own result models
(`mozilla_nimbus_schemas.jetstream`, PyPI `mozilla-nimbus-schemas`, pinned), built once
under ~/.cache/jetstream-oracles/ with the system `python3 -m venv`, and a function that
checks a results directory with them in a subprocess (the models need pydantic 2, which
the project's own environment does not have to match)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import venvs

PACKAGE = "mozilla-nimbus-schemas==3006.0.0"
CHECK_SCRIPT = Path(__file__).with_name("nimbus_check.py")


def python() -> Path:
    """The oracle venv's interpreter, built on first use (tests/support/venvs.py); skips the
    test (with the reason) when it cannot be built here."""
    try:
        return venvs.venv_python("nimbus-" + PACKAGE.split("==")[1], [PACKAGE])
    except venvs.Unavailable as exc:
        pytest.skip(f"Experimenter oracle: {exc}")


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
