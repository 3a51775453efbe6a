"""Shared fixtures. Tests that read ../shared are marked `shared` and skip, with a reason,
when it is absent (a user's machine); in CI it is always there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.paths import REPO

# Property-based fuzzing (tests/test_fuzz.py): a small budget by default, so `make test`
# stays fast; HYPOTHESIS_PROFILE=fuzz-long for a thorough run.
settings.register_profile("jetstream", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("fuzz-long", max_examples=3000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "jetstream"))

SHARED = Path(os.environ.get("JETSTREAM_SHARED_DIR", REPO.parent / "shared"))
SHARED_REASON = f"needs the shared test corpus at {SHARED} (present in CI, not on user machines)"


def pytest_collection_modifyitems(config, items):
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason=SHARED_REASON)
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(SHARED_REASON)
    return SHARED


@pytest.fixture(scope="session")
def metric_hub(shared_dir: Path) -> Path:
    return shared_dir / "metric-hub"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
