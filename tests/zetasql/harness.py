"""ZetaSQL in its own virtualenv: built on first use in a per-user cache directory, then
`analyze.py` (analysis) and `evaluate.py` (the reference engine) run in it as subprocesses.

The cache (JETSTREAM_ZETASQL_CACHE, default ~/.cache/jetstream-zetasql) holds
`venv-<zetasql version>` and the compiled WASM module keyed by the zetasql and wasmtime
versions: only the first run on a machine pays the compile (1-3 minutes on 2 cores).
A fresh clone (CI) reuses it; nothing is written into the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support import venvs
from tests.support.venvs import Unavailable

__all__ = ["Unavailable", "analyze", "cache_dir", "evaluate", "venv_python"]

ZETASQL_VERSION = "0.1.5"
ANALYZER = Path(__file__).with_name("analyze.py")
EVALUATOR = Path(__file__).with_name("evaluate.py")
ANALYZE_TIMEOUT = 1800  # the first run compiles the module


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "jetstream-zetasql"
    return Path(os.environ.get("JETSTREAM_ZETASQL_CACHE", default))


def venv_python() -> Path:
    """The virtualenv's python; built once per machine (tests/support/venvs.py)."""
    return venvs.venv_python(
        f"venv-{ZETASQL_VERSION}", [f"zetasql=={ZETASQL_VERSION}"], cache=cache_dir()
    )


def _run(script: Path, payload: dict) -> Any:
    """`script` in the virtualenv with `payload` as JSON on stdin; its JSON output."""
    proc = subprocess.run(
        [str(venv_python()), str(script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env={**os.environ, "ZETASQL_MODULE_CACHE": str(cache_dir())},
        timeout=ANALYZE_TIMEOUT,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{script.name} failed:\n{proc.stderr[-5000:]}")
    return json.loads(proc.stdout)


def analyze(runs: dict[str, list[dict]], functions: list[dict]) -> dict[str, list[dict]]:
    """Each run's log entries analysed in order; per run, one result per statement (query
    parameters declared with the types each entry records)."""
    return _run(ANALYZER, {"runs": runs, "functions": functions})


def evaluate(tables: dict[str, dict], queries: list[dict]) -> list[dict]:
    """Queries run on ZetaSQL's reference engine over the given tables (evaluate.py)."""
    return _run(EVALUATOR, {"tables": tables, "queries": queries})
