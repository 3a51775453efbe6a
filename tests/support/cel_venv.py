"""A virtualenv with cel-python for the admission-policy tests (tests/support/venvs.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support import venvs

CEL_PYTHON = "cel-python==0.5.0"


def interpreter() -> Path | str:
    """The venv's python, or the reason it cannot be built (a string)."""
    try:
        return venvs.venv_python(CEL_PYTHON.replace("==", "-"), [CEL_PYTHON])
    except venvs.Unavailable as exc:
        return str(exc)
