"""Locations the tests read: the repository root, the tests folder and its fixtures.
Test files use these instead of walking up from their own `__file__`, so moving a test
file does not change what it reads."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
