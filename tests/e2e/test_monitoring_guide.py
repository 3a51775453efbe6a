"""docs/monitoring.md's "Running it" recipe, run as written (all but the long-running
`serve`): the five-minute job finds the live experiment and writes its documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.guide_runner import ROOT, follow

GUIDE = ROOT / "docs" / "monitoring.md"


@pytest.mark.slow
def test_monitoring_recipe_shows_live_experiments(tmp_path: Path):
    done = follow(GUIDE.read_text(), tmp_path, skip=("monitor serve",))
    runs = [r.stdout for r in done if re.search(r"^(daily|hourly|five-minute) at ", r.stdout, re.M)]
    assert len(runs) == 3, [r.stdout for r in done]
    for out in runs:
        live = int(re.search(r"(\d+) live experiment\(s\)", out).group(1))
        assert live >= 1, out
    index = json.loads((tmp_path / "out" / "monitoring" / "index.json").read_text())
    assert "demo-sidebar-redesign" in json.dumps(index)
    assert (tmp_path / "out" / "monitoring" / "index.html").is_file()
