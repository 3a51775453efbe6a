"""One experiment that cannot be loaded, resolved or planned is skipped with an error (row,
log line, exit 1); every other experiment goes on. Also: an unusable `--out` is a clear
error with the documented exit code, before anything claims to have published."""

from __future__ import annotations

import datetime as dt
import errno
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import artifacts, synthetic
from jetstream.cli import cli
from jetstream.commands.loading import load_many, plan_each, record_skipped
from jetstream.errors import EXIT_TRANSIENT, EXIT_USAGE, TransientError
from jetstream.export import errors_path
from tests.support import e2e_support as e2e
from tests.support.paths import REPO

DEMO = "demo-sidebar-redesign"
DATE = dt.date(2026, 1, 17)


def demo_records() -> list[dict]:
    return json.loads((synthetic.DEMO_DIR / "experiments.json").read_text())


def demo_record(**change) -> dict:
    return {**next(r for r in demo_records() if r["slug"] == DEMO), **change}


BROKEN = {
    "huge-enrollment": demo_record(slug="huge-enrollment", proposedEnrollment=1e9),
    "huge-int": demo_record(slug="huge-int", proposedEnrollment=10**30),
    "no-branches": demo_record(slug="no-branches", branches=[]),
    "no-reference": demo_record(slug="no-reference", referenceBranch=None),
    "bad-reference": demo_record(slug="bad-reference", referenceBranch="nope"),
    "upper-case": demo_record(slug="Demo_Sidebar_Redesign"),
}


def write_experiments(tmp_path: Path, records: list[dict]) -> str:
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps(records))
    return str(path)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_record_is_skipped_and_the_demo_still_plans(tmp_path, name):
    source = write_experiments(tmp_path, [BROKEN[name], *demo_records()])
    specs, failures = load_many(source, synthetic.DEMO_DIR)
    assert DEMO in [s.slug for s in specs]
    assert len(failures) == 1, failures
    [(label, message)] = failures.items()
    assert label in (BROKEN[name]["slug"], f"{source}[0]")
    graph = plan_each(specs, DATE, failures=failures)
    assert DEMO in graph.experiments
    assert len(failures) == 1


def test_colliding_slugs_are_both_skipped_and_the_rest_runs(tmp_path):
    twin = demo_record(slug="demo_sidebar_redesign")
    other = demo_record(slug="demo-sidebar-copy")
    source = write_experiments(tmp_path, [twin, other, *demo_records()])
    specs, failures = load_many(source, synthetic.DEMO_DIR)
    assert set(failures) == {"demo_sidebar_redesign", DEMO}
    assert all("collides" in m for m in failures.values())
    assert "demo-sidebar-copy" in [s.slug for s in specs]


def test_a_config_that_fails_is_skipped(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(synthetic.DEMO_DIR, repo)
    (repo / "jetstream" / "demo-sidebar-copy.toml").write_text("[metrics\nbroken")
    source = write_experiments(tmp_path, [demo_record(slug="demo-sidebar-copy"), *demo_records()])
    specs, failures = load_many(source, repo)
    assert list(failures) == ["demo-sidebar-copy"]
    assert DEMO in [s.slug for s in specs]


def test_a_spec_that_cannot_be_planned_is_skipped(monkeypatch):
    from jetstream import graph

    specs, _ = load_many(str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR)
    real = graph.plan_dates

    def plan_dates(specs, *args, **kwargs):
        if any(s.slug == DEMO for s in specs) and len(specs) == 1:
            raise OverflowError("date value out of range")
        return real(specs, *args, **kwargs)

    monkeypatch.setattr(graph, "plan_dates", plan_dates)
    failures: dict[str, str] = {}
    plan_each(specs, DATE, failures=failures)
    assert list(failures) == [DEMO]
    assert "cannot be planned: OverflowError" in failures[DEMO]


def test_a_transient_error_is_not_swallowed(tmp_path, monkeypatch):
    import jetstream.config

    def load_spec(*args, **kwargs):
        raise TransientError("warehouse busy")

    monkeypatch.setattr(jetstream.config, "load_spec", load_spec)
    with pytest.raises(TransientError):
        load_many(str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR)


def test_record_skipped_writes_error_rows_and_the_errors_file(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    out = tmp_path / "out"
    failures = {"no-branches": "experiment 'no-branches': has no branches", "src[3]": "bad slug"}
    record_skipped(failures, e2e.url(warehouse), str(out))
    record_skipped(failures, e2e.url(warehouse), str(out))  # a rerun replaces, not adds
    rows = e2e.query(warehouse, "SELECT experiment, level, exception_type, message FROM errors")
    assert sorted(r["experiment"] for r in rows) == ["no-branches", "src[3]"]
    assert {r["exception_type"] for r in rows} == {"ExperimentSkipped"}
    doc = json.loads((out / errors_path("no-branches")).read_text())
    assert [(d["log_level"], d["message"]) for d in doc] == [("ERROR", failures["no-branches"])]
    assert [p.name for p in (out / "errors").iterdir()] == ["errors_no_branches.json"]


def test_controller_skips_broken_records_plans_the_rest_and_exits_1(tmp_path):
    source = write_experiments(tmp_path, [*BROKEN.values(), *demo_records()])
    res = CliRunner().invoke(
        cli,
        [
            "controller",
            "--scheduled-time",
            "2026-01-18T03:00:00Z",
            "--experiments",
            source,
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--runner",
            "local",
            "--dry-run",
        ],
    )
    assert res.exit_code == 1, res.output
    # the demo experiment is planned as usual ...
    assert f"jetstream task ensure-enrollments --experiment {DEMO} --date 2026-01-17" in res.output
    assert f"jetstream task export --experiment {DEMO}" in res.output
    # ... and each broken record is named with its problem
    for slug in ("huge-enrollment", "huge-int", "no-branches", "no-reference", "bad-reference"):
        assert f"skipped: {slug}: " in res.output, slug
    assert "'Demo_Sidebar_Redesign' may only contain" in res.output
    assert "Traceback" not in res.output


def test_controller_records_skipped_experiments_and_exits_1(tmp_path):
    """Not a dry run: a skipped experiment becomes an error row and an errors file."""
    source = write_experiments(tmp_path, [BROKEN["no-branches"], *demo_records()])
    warehouse = tmp_path / "w.duckdb"
    res = CliRunner().invoke(
        cli,
        [
            "controller",
            "--scheduled-time",
            "2026-03-20T03:00:00Z",  # every demo experiment has ended long enough: no tasks
            "--experiments",
            source,
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--runner",
            "local",
            "--warehouse",
            e2e.url(warehouse),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert res.exit_code == 1, res.output
    rows = e2e.query(warehouse, "SELECT experiment FROM errors")
    assert [r["experiment"] for r in rows] == ["no-branches"]
    assert (tmp_path / "out" / errors_path("no-branches")).is_file()


def test_validate_config_reports_every_broken_record(tmp_path):
    records = [*BROKEN.values(), demo_record(slug="demo_sidebar_redesign"), *demo_records()]
    source = write_experiments(tmp_path, records)
    config = synthetic.DEMO_DIR / "jetstream" / f"{DEMO}.toml"
    res = CliRunner().invoke(
        cli,
        [
            "validate-config",
            str(config),
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--experiments",
            source,
        ],
    )
    assert res.exit_code == 1, res.output
    out = res.output
    assert "proposedEnrollment' must be at most 3650, got 1000000000.0" in out
    assert "1000000000000000000000000000000" in out
    assert "'no-branches': has no branches" in out
    assert "'no-reference': has no reference branch" in out
    assert "reference branch 'nope' is not one of its branches" in out
    assert "'Demo_Sidebar_Redesign' may only contain" in out
    assert "collides" in out
    assert "experiment record(s) cannot be analysed" in out


def test_validate_config_with_clean_records_still_exits_0():
    config = synthetic.DEMO_DIR / "jetstream" / f"{DEMO}.toml"
    res = CliRunner().invoke(
        cli,
        [
            "validate-config",
            str(config),
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--experiments",
            str(synthetic.DEMO_DIR / "experiments.json"),
        ],
    )
    assert res.exit_code == 0, res.output


# -- the output directory --------------------------------------------------------------


def test_out_that_is_a_file_is_a_usage_error(tmp_path):
    target = tmp_path / "results"
    target.write_text("not a directory")
    with pytest.raises(artifacts.OutputLocationError, match="not a directory") as info:
        artifacts.check_writable(str(target))
    assert info.value.exit_code == EXIT_USAGE
    with pytest.raises(artifacts.OutputLocationError, match="Not a directory"):
        artifacts.check_writable(str(target / "below"))


def test_out_that_cannot_be_created_is_a_usage_error():
    # /sys refuses new directories even to root (chmod does not stop root)
    with pytest.raises(artifacts.OutputLocationError) as info:
        artifacts.check_writable("/sys/jetstream-results-test")
    assert info.value.exit_code == EXIT_USAGE


def test_a_full_disk_is_transient_and_a_permission_problem_is_not():
    full = artifacts.os_error("out", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, TransientError) and full.exit_code == EXIT_TRANSIENT
    assert "No space left on device" in str(full)
    denied = artifacts.os_error("out", PermissionError(errno.EACCES, "Permission denied"))
    assert denied.exit_code == EXIT_USAGE


def test_a_writable_out_is_created_and_left_clean(tmp_path):
    artifacts.check_writable(str(tmp_path / "new" / "out"))
    assert list((tmp_path / "new" / "out").iterdir()) == []


def test_store_write_into_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "statistics").write_text("a file where a directory should be")
    store = artifacts.LocalArtifactStore(tmp_path)
    with pytest.raises(artifacts.OutputLocationError, match="cannot write"):
        store.write_json("statistics/x.json", {})


def test_run_with_an_unusable_out_exits_2_and_claims_nothing(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "results"
    out.write_text("a file")
    root = str(REPO)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "jetstream.cli",
            "run",
            "--date",
            DATE.isoformat(),
            "--experiments",
            str(synthetic.DEMO_DIR / "experiments.json"),
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--warehouse",
            e2e.url(tmp_path / "w.duckdb"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": root, "JETSTREAM_LOG_FORMAT": "console"},
        timeout=300,
    )
    text = res.stdout + res.stderr
    assert res.returncode == EXIT_USAGE, text
    assert "exists and is not a directory" in text
    assert "published" not in text.lower()
    assert "Traceback" not in text


def test_the_publish_line_never_claims_a_publish_that_did_not_happen():
    from jetstream.commands.run import published_line
    from jetstream.runners.common import NodeResult, NodeStatus, RunSummary

    ok, failed = NodeStatus.SUCCEEDED, NodeStatus.FAILED
    summary = RunSummary(
        (NodeResult("export/a", ok), NodeResult("metrics/b/week", ok), NodeResult("export/b", ok))
    )
    assert published_line(summary, "out") == "Results published to out"
    partly = RunSummary((NodeResult("export/a", ok), NodeResult("export/b", failed, exit_code=2)))
    assert published_line(partly, "out") == (
        "Results of 1 of 2 experiment(s) published to out; tasks failed"
    )
    nothing = RunSummary((NodeResult("export/a", failed, exit_code=75),))
    assert published_line(nothing, "out") == "No results published to out: tasks failed"
