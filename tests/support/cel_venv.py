"""A virtualenv with cel-python for the admission-policy tests, built once per machine
under ~/.cache (keyed by the version), like the other reference tools' venvs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CEL_PYTHON = "cel-python==0.5.0"


def interpreter() -> Path | str:
    """The venv's python, or the reason it cannot be built (a string)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = base / "jetstream-tests" / CEL_PYTHON.replace("==", "-")
    python = root / "bin" / "python"
    if (root / ".complete").exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", CEL_PYTHON],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        return f"cannot build a venv with {CEL_PYTHON}: {exc} {detail.decode()[-500:]}"
    (root / ".complete").touch()
    return python
