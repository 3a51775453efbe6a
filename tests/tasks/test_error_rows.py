"""Error rows carry what Experimenter's `AnalysisError` requires: where the problem arose
(`filename`, `func_name`), the experiment, and a timestamp inside the run."""

from __future__ import annotations

import datetime as dt
import json

from jetstream import export
from jetstream.tasks.context import ErrorCollector, run_started, source_location


def _fails() -> None:
    json.loads("{not json")  # raises inside the standard library


def test_location_of_an_exception_is_the_innermost_frame_of_the_package():
    try:
        _fails()
    except ValueError as exc:
        filename, func = source_location(exc)
    # no frame of the package: the innermost frame, a library file by its base name
    assert (filename, func) == ("decoder.py", "raw_decode")
    try:
        export.statistics_path("my-exp", "fortnightly")  # export.py -> periods.py raises
    except ValueError as exc:
        filename, func = source_location(exc)
    assert (filename, func) == ("jetstream/periods.py", "parse")


def test_rows_name_the_caller_and_stamp_inside_the_run(monkeypatch):
    monkeypatch.setenv("JETSTREAM_RUN_STARTED", "2026-01-05T10:00:00Z")
    started = run_started()
    assert started == dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    errors = ErrorCollector("run-1", "my-exp", "week", 0, "clients_daily")
    errors.add("few clients", level="warning", metric="m")
    row = errors.rows[0]
    assert (row["filename"], row["func_name"]) == (
        "tests/tasks/test_error_rows.py",
        "test_rows_name_the_caller_and_stamp_inside_the_run",
    )
    assert row["timestamp"] >= started
    doc = export.errors_document(errors.rows)[0]
    assert doc["experiment"] == "my-exp" and doc["window_index"] == "0"
    assert doc["source"] == "jetstream" and doc["log_level"] == "WARNING"


def test_run_start_falls_back_to_now(monkeypatch):
    monkeypatch.setenv("JETSTREAM_RUN_STARTED", "not a time")
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert run_started() >= before
    monkeypatch.delenv("JETSTREAM_RUN_STARTED")
    assert run_started() >= before
