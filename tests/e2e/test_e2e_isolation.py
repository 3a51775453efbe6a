"""One hostile or broken Experimenter record, end to end through `jetstream run` and the
local runner on the synthetic demo warehouse: the record is refused with a clear error (an
error row, a log line, exit 1) and every other experiment is still analysed and published.

The hostile record is the demo experiment under the slug of the hardening issue, whose
telemetry is tagged with that slug too; pasted into the demo's `unenroll` metric
(`event_string_value = '{experiment_slug}'`) it would count every enrollment as an
unenrollment (98.4 % for control instead of 1.6 %)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from jetstream import synthetic
from jetstream.cli import cli
from jetstream.export import statistics_path
from tests.support import e2e_support as e2e

pytestmark = pytest.mark.slow

PAYLOAD = "demo-sidebar-redesign' OR event_method = 'enroll' OR 'a'='b"
DATE = "2026-01-18"  # E + 6 of demo-sidebar-redesign (enrollment through 01-12, as Jetstream): week 0 is due


def _experiments(tmp_path: Path, *extra: dict) -> str:
    records = json.loads((synthetic.DEMO_DIR / "experiments.json").read_text())
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps([*extra, *records]))
    return str(path)


def _hostile_record() -> dict:
    records = json.loads((synthetic.DEMO_DIR / "experiments.json").read_text())
    demo = next(r for r in records if r["slug"] == e2e.DEMO_SLUG)
    return {**demo, "slug": PAYLOAD, "id": PAYLOAD}


@pytest.fixture
def tagged_warehouse(tmp_path: Path) -> Path:
    """The synthetic demo warehouse plus a copy of the demo's enrollment events tagged with
    the hostile slug (what a client enrolled in such an experiment would send)."""
    path = tmp_path / "warehouse.duckdb"
    e2e.write_synthetic(path)
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "INSERT INTO telemetry.events SELECT * REPLACE (? AS event_string_value) "
            "FROM telemetry.events WHERE event_string_value = ?",
            [PAYLOAD, e2e.DEMO_SLUG],
        )
    finally:
        con.close()
    return path


def _run(experiments: str, warehouse: Path, out: Path, *extra: str):
    args = [
        "run",
        "--date",
        DATE,
        "--experiments",
        experiments,
        "--config-repo",
        str(e2e.DEMO_REPO),
        "--warehouse",
        e2e.url(warehouse),
        "--out",
        str(out),
        "--parallelism",
        "2",
        *extra,
    ]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_hostile_slug_is_refused_and_the_others_are_published(
    tagged_warehouse: Path, tmp_path: Path
) -> None:
    experiments = _experiments(tmp_path, _hostile_record())
    out = tmp_path / "out"
    res = _run(experiments, tagged_warehouse, out)
    output = res.output + (res.stderr if res.stderr_bytes else "")
    assert res.exit_code == 1, output
    assert "is not an Experimenter slug" in output
    assert "No results published" not in output

    # the hostile record made no table and no file; its refusal is an error row
    tables = e2e.tables(tagged_warehouse)
    assert not [t for t in tables if "or_event_method" in t], tables
    rows = e2e.query(
        tagged_warehouse, "SELECT * FROM errors WHERE exception_type = ?", ["ExperimentSkipped"]
    )
    assert len(rows) == 1
    assert rows[0]["experiment"] == f"{experiments}[0]"
    assert "is not an Experimenter slug" in rows[0]["message"]
    assert PAYLOAD in rows[0]["message"]  # stored as an escaped literal, verbatim
    published = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert not [p for p in published if "or_event" in p], published

    # the genuine demo experiment was analysed and published, with its true unenroll rate
    week = json.loads((out / statistics_path(e2e.DEMO_SLUG, "week")).read_text())
    control = [
        r
        for r in week
        if r["metric"] == "unenroll"
        and r["statistic"] == "binomial"
        and r["branch"] == "control"
        and r.get("comparison") in (None, "")
        and r["analysis_basis"] == "enrollments"
        and r.get("segment", "all") == "all"
    ]
    assert control, "no unenroll rate for control"
    assert all(r["point"] < 0.2 for r in control), control


def test_path_traversal_slug_reads_nothing_outside_the_repo(tmp_path: Path) -> None:
    from jetstream.commands.loading import load_many

    repo = tmp_path / "x" / "repo"
    (repo / "jetstream").mkdir(parents=True)
    for item in e2e.DEMO_REPO.rglob("*.toml"):
        dest = repo / item.relative_to(e2e.DEMO_REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(item.read_bytes())
    secret = "SECRET-CONTENT-OUTSIDE"
    (tmp_path / "x" / "outside.toml").write_text(f'[experiment]\n{secret} = "1"\n')
    hostile = {**_hostile_record(), "slug": "../../x/outside", "id": "outside"}
    specs, failures = load_many(_experiments(tmp_path, hostile), repo)
    assert e2e.DEMO_SLUG in [s.slug for s in specs]
    [(label, message)] = failures.items()
    assert label.endswith("[0]")
    assert "contains '..'" in message
    assert secret not in message
