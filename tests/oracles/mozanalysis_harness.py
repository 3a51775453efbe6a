"""mozanalysis (with mozilla-metric-config-parser) as a per-client oracle: the SQL that
Jetstream would run for an experiment, written by the reference libraries in their own
virtualenv (tests/oracles/mozanalysis_sql.py), returned for the test to run on the
synthetic warehouse."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support import venvs as venv

MOZANALYSIS = "2026.10.1"
METRIC_CONFIG_PARSER = "2026.10.2"
REQUIREMENTS = (
    f"mozanalysis=={MOZANALYSIS}",
    f"mozilla-metric-config-parser=={METRIC_CONFIG_PARSER}",
)
SCRIPT = Path(__file__).with_name("mozanalysis_sql.py")
ENROLLMENTS_PLACEHOLDER = "oracle_enrollments"


def python() -> Path:
    return venv.venv_python(f"mozanalysis-{MOZANALYSIS}", REQUIREMENTS)


def generate_sql(
    experiments: Path | str,
    config_repo: Path | str,
    slug: str,
    analyses: Sequence[tuple[str, int]],
) -> list[dict[str, Any]]:
    """For each (period, window index) that the experiment has: the enrollments query and,
    per analysis basis, the metrics query (reading the table ENROLLMENTS_PLACEHOLDER)."""
    request = {
        "experiments": str(experiments),
        "config_repo": str(config_repo),
        "slug": slug,
        "analyses": [{"period": p, "window_index": i} for p, i in analyses],
        "enrollments_table": ENROLLMENTS_PLACEHOLDER,
    }
    proc = subprocess.run(
        [str(python()), "-I", str(SCRIPT)],  # -I: the script folder is not on sys.path
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{SCRIPT.name} failed:\n{proc.stderr[-5000:]}")
    return json.loads(proc.stdout)["analyses"]
