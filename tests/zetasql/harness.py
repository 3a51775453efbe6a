"""ZetaSQL in its own virtualenv: built on first use in a per-user cache directory, then
`analyze.py` (analysis) and `evaluate.py` (the reference engine) run in it as subprocesses.

The cache (JETSTREAM_ZETASQL_CACHE, default ~/.cache/jetstream-zetasql) holds
`venv-<zetasql version>` and the compiled WASM module keyed by the zetasql and wasmtime
versions: only the first run on a machine pays the compile (1-3 minutes on 2 cores).
A fresh clone (CI) reuses it; nothing is written into the repository.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ZETASQL_VERSION = "0.1.5"
ANALYZER = Path(__file__).with_name("analyze.py")
EVALUATOR = Path(__file__).with_name("evaluate.py")
ANALYZE_TIMEOUT = 1800  # the first run compiles the module


class Unavailable(Exception):
    """The virtualenv could not be built (no network, no package index)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "jetstream-zetasql"
    return Path(os.environ.get("JETSTREAM_ZETASQL_CACHE", default))


def venv_python() -> Path:
    """The virtualenv's python; builds the virtualenv once (under a lock, so parallel
    test workers build it once)."""
    cache = cache_dir()
    venv = cache / f"venv-{ZETASQL_VERSION}"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():
            return python
        building = cache / f"venv-{ZETASQL_VERSION}.building"
        shutil.rmtree(building, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(building)],
            [str(building / "bin" / "python"), "-m", "pip", "install", "-q",
             f"zetasql=={ZETASQL_VERSION}"],
        ]  # fmt: skip
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                shutil.rmtree(building, ignore_errors=True)
                raise Unavailable(
                    f"cannot build the zetasql virtualenv ({' '.join(step[-3:])}): "
                    f"{(proc.stderr or proc.stdout).strip()[-800:]}"
                )
        building.rename(venv)  # venv scripts hold absolute paths: use bin/python only
    return python


def analyze(runs: dict[str, list[dict]], functions: list[dict]) -> dict[str, list[dict]]:
    """Each run's log entries analysed in order; per run, one result per statement (query
    parameters declared with the types each entry records)."""
    python = venv_python()
    proc = subprocess.run(
        [str(python), str(ANALYZER)],
        input=json.dumps({"runs": runs, "functions": functions}),
        capture_output=True,
        text=True,
        env={**os.environ, "ZETASQL_MODULE_CACHE": str(cache_dir())},
        timeout=ANALYZE_TIMEOUT,
    )
    if proc.returncode != 0:
        raise AssertionError(f"analyze.py failed:\n{proc.stderr[-5000:]}")
    return json.loads(proc.stdout)


def evaluate(tables: dict[str, dict], queries: list[dict]) -> list[dict]:
    """Queries run on ZetaSQL's reference engine over the given tables (evaluate.py)."""
    python = venv_python()
    proc = subprocess.run(
        [str(python), str(EVALUATOR)],
        input=json.dumps({"tables": tables, "queries": queries}),
        capture_output=True,
        text=True,
        env={**os.environ, "ZETASQL_MODULE_CACHE": str(cache_dir())},
        timeout=ANALYZE_TIMEOUT,
    )
    if proc.returncode != 0:
        raise AssertionError(f"evaluate.py failed:\n{proc.stderr[-5000:]}")
    return json.loads(proc.stdout)
