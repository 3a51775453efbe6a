"""`python -m jetstream.synthetic.demo`: the whole demo (synthetic telemetry, analysis of the demo
experiments on DuckDB with the local runner, published JSON, HTML report) on a small
population. Runs once for the module; slow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

pytestmark = pytest.mark.slow

CLIENTS = 300
DAYS = 8  # the first week after enrollment: day, week and pre-enrollment windows
TIMEOUT = 900
SLUG_FILE = "demo_sidebar_redesign"


@attrs.frozen
class DemoRun:
    out: Path
    code: int
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoRun:
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    env = {**os.environ, "JETSTREAM_LOG_LEVEL": "WARNING"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jetstream.synthetic.demo",
            "--out",
            str(out),
            "--clients",
            str(CLIENTS),
            "--days",
            str(DAYS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"demo did not finish in {TIMEOUT}s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return DemoRun(out, proc.returncode, stdout, stderr, time.monotonic() - started)


def test_demo_completes_and_points_at_the_report(demo):
    assert demo.code == 0, f"{demo.stdout[-3000:]}\n{demo.stderr[-5000:]}"
    links = re.findall(r"file://(\S+)", demo.stdout)
    assert len(links) == 1, demo.stdout
    report = Path(links[0])
    assert report == (demo.out / "report" / "index.html").resolve()
    html = report.read_text()
    assert "<html" in html.lower() and "demo-sidebar-redesign" in html


def test_demo_publishes_statistics_and_metadata(demo):
    results = demo.out / "results"
    stats = sorted((results / "statistics").glob(f"statistics_{SLUG_FILE}_*.json"))
    names = {p.name for p in stats}
    for period in ("daily", "weekly", "preenrollment_weekly", "preenrollment_days28"):
        assert f"statistics_{SLUG_FILE}_{period}.json" in names, names
    overall = json.loads(
        (results / "statistics" / f"statistics_{SLUG_FILE}_weekly.json").read_text()
    )
    assert {"control", "treatment-a", "treatment-b"} <= {r["branch"] for r in overall}
    assert any(r.get("comparison") == "relative_uplift" for r in overall)
    metadata = json.loads((results / "metadata" / f"metadata_{SLUG_FILE}.json").read_text())
    assert "sidebar_clicks" in metadata["metrics"]


def test_every_demo_task_succeeded(demo):
    import duckdb

    con = duckdb.connect(str(demo.out / "warehouse.duckdb"), read_only=True)
    try:
        failed = con.execute(
            "SELECT node_id, status FROM runs WHERE status <> 'succeeded'"
        ).fetchall()
        by_kind = con.execute(
            "SELECT kind, count(*), round(sum(seconds), 1), round(max(seconds), 1) "
            "FROM runs GROUP BY kind ORDER BY 3 DESC"
        ).fetchall()
    finally:
        con.close()
    assert failed == []
    # where the time goes (shown with -s / in the -ra summary of a failure)
    print(f"\ndemo with {CLIENTS} clients: {demo.seconds:.0f} s wall")
    for kind, n, total, longest in by_kind:
        print(f"  {kind:<20} {n:>4} tasks {total:>7} s  (longest {longest} s)")


def representatives(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per signature (its keys and the JSON type of each value). The statistics
    schema constrains only types and required keys, so validating these is validating
    every row, at a fraction of the time (the daily document has ~50k rows)."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for row in rows:
        signature = tuple(sorted((k, type(v).__name__) for k, v in row.items()))
        seen.setdefault(signature, row)
    return list(seen.values())


@pytest.mark.shared
def test_demo_json_is_valid_against_the_shared_schemas(demo, shared_dir):
    import jsonschema

    def validator(name: str) -> Any:
        doc = json.loads((shared_dir / "schemas" / name).read_text())
        return jsonschema.validators.validator_for(doc)(doc)

    statistics, metadata = validator("Statistics_v1.0.json"), validator("Metadata_v1.0.json")
    # the shortcut above holds only while the schema has no value constraints
    assert not re.search(
        r'"(enum|const|pattern|minimum|maximum|format)"', json.dumps(statistics.schema)
    )
    results = demo.out / "results"
    stats_files = sorted((results / "statistics").glob("*.json"))
    assert stats_files
    for path in stats_files:
        doc = json.loads(path.read_text())
        assert isinstance(doc, list), path.name
        if path.name.endswith(("_days28.json", "_overall.json")):
            continue  # no such window closes in the demo's first DAYS days
        assert doc, path.name
        errors = [e.message for e in statistics.iter_errors(representatives(doc))]
        assert errors == [], f"{path.name}: {errors[:5]}"
    meta_files = sorted((results / "metadata").glob("*.json"))
    assert meta_files
    for path in meta_files:
        errors = [e.message for e in metadata.iter_errors(json.loads(path.read_text()))]
        assert errors == [], f"{path.name}: {errors[:5]}"


def test_experimenter_reads_every_demo_file_and_shows_this_runs_errors(demo):
    """Experimenter's own models accept every published file, and every published error
    row is stamped inside the run (Experimenter hides rows older than the metadata's
    analysis_start_time, which is the run's start, not the export's)."""
    from tests.oracles import nimbus

    results = demo.out / "results"
    report = nimbus.check(results)
    assert nimbus.failures(report) == {}
    assert {p.split("/")[0] for p in report["files"]} >= {"statistics", "metadata", "errors"}
    for slug, (kept, published) in report["errors_shown"].items():
        assert kept == published, f"{slug}: {published - kept} error rows hidden"
    for path in sorted((results / "metadata").glob("*.json")):
        meta = json.loads(path.read_text())
        assert meta["analysis_start_time"], path.name
        stats = sorted(results.glob(f"statistics/statistics_{path.stem[9:]}_*.json"))
        assert stats, path.name
    meta = json.loads((results / "metadata" / f"metadata_{SLUG_FILE}.json").read_text())
    assert "search_monetization" in meta["outcomes"]
