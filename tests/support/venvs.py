"""Virtualenvs for the independent implementations the tests check against (ZetaSQL,
Experimenter's models, mozanalysis, cel-python), built once per machine under a cache
directory (default ~/.cache/jetstream-oracles, JETSTREAM_ORACLES_CACHE): system
`python3 -m venv`, pinned requirements, built under a file lock into a `.building`
directory renamed when complete, so parallel test workers build it once and a failed
build leaves nothing behind. The one builder of every such virtualenv."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BUILD_TIMEOUT = 900


class Unavailable(Exception):
    """The virtualenv could not be built (no network, no package index, no python3)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "jetstream-oracles"
    return Path(os.environ.get("JETSTREAM_ORACLES_CACHE", default))


def venv_python(name: str, requirements: Sequence[str], cache: Path | None = None) -> Path:
    """The python of the virtualenv `name` (e.g. `mozanalysis-2026.10.1`) with the pinned
    `requirements`, under `cache` (default `cache_dir()`); builds it on first use."""
    cache = cache or cache_dir()
    venv = cache / name
    python = venv / "bin" / "python"
    if python.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():
            return python
        system_python = shutil.which("python3") or sys.executable
        if system_python is None:
            raise Unavailable(f"cannot build the {name} virtualenv: no python3 on PATH")
        building = cache / f"{name}.building"
        shutil.rmtree(building, ignore_errors=True)
        steps = [
            [system_python, "-m", "venv", str(building)],
            [str(building / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
        ]
        for step in steps:
            try:
                proc = subprocess.run(step, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(building, ignore_errors=True)
                raise Unavailable(f"cannot build the {name} virtualenv: {exc}") from exc
            if proc.returncode != 0:
                shutil.rmtree(building, ignore_errors=True)
                errors = "\n".join(
                    line
                    for line in (proc.stderr or proc.stdout).splitlines()
                    if not line.startswith("WARNING: Location")
                )
                raise Unavailable(
                    f"cannot build the {name} virtualenv ({' '.join(step[-2:])}): "
                    f"{errors.strip()[-800:]}"
                )
        building.rename(venv)  # venv scripts hold absolute paths: use bin/python only
    return python
