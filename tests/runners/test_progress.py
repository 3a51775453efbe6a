"""Run progress: a rich bar that stays legible at 80 columns, and periodic structured log
lines (done/total, failures, ETA) when there is no terminal."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap

from rich.console import Console

from jetstream.runners.progress import BarProgress, LogProgress, eta_seconds

LONG = "metrics:demo-sidebar-redesign:2026-01-12:week:clients_daily_and_search_and_events"


def test_bar_keeps_counts_whole_at_80_columns():
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    bar = BarProgress(1234, console=console)
    for i in range(12):
        bar.advance(LONG, ok=i != 3)
    bar.stop()
    last = buf.getvalue().split("\r")[-1]
    line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", last).rstrip("\n")
    assert len(line) <= 80, line
    assert "12/1234" in line and "1 failed" in line and "eta" in line, line
    assert "…" in line and "1…" not in line.split("failed")[0], line  # only the name shrinks


class _Lines:
    def __init__(self):
        self.events: list[dict] = []

    def info(self, event: str, **kw):
        self.events.append({"event": event, **kw})


def test_log_lines_every_tenth_with_failures_and_eta():
    now = [0.0]
    lines = _Lines()
    p = LogProgress(100, every_seconds=1e9, every_fraction=0.1, logger=lines, clock=lambda: now[0])
    for i in range(100):
        now[0] += 2.0
        p.advance(f"t{i}", ok=i != 5, skipped=i == 7)
    p.stop()
    assert [e["done"] for e in lines.events] == list(range(10, 101, 10))
    first = lines.events[0]
    assert first["total"] == 100 and first["failed"] == 1 and first["skipped"] == 1
    assert first["eta_seconds"] == 180 and first["percent"] == 10.0
    assert lines.events[-1]["eta_seconds"] == 0


def test_log_lines_every_n_seconds_even_when_slow():
    now = [0.0]
    lines = _Lines()
    p = LogProgress(1000, every_seconds=30, logger=lines, clock=lambda: now[0])
    for i in range(5):
        now[0] += 31
        p.advance(f"t{i}")
    assert len(lines.events) == 5
    p.stop()
    assert len(lines.events) == 5  # the last count was already logged


def test_eta_is_unknown_before_the_first_task():
    assert eta_seconds(0, 10, 5.0) is None
    assert eta_seconds(5, 10, 5.0) == 5.0


def test_redirected_run_logs_json_progress_at_warning_level(tmp_path):
    """A local run with stderr to a file (not a terminal) and the demo's WARNING log level
    still writes `run progress` lines."""
    script = textwrap.dedent(
        """
        from jetstream import logs
        from jetstream.runners.progress import for_run
        logs.configure("WARNING")
        p = for_run(4, None)
        for i in range(4):
            p.advance(f"task{i}", ok=i != 2)
        p.stop()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "JETSTREAM_LOG_FORMAT": ""},
        check=True,
    )
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert events and all(e["event"] == "run progress" for e in events)
    assert events[-1]["done"] == 4 and events[-1]["total"] == 4 and events[-1]["failed"] == 1
    assert "eta_seconds" in events[-1]
