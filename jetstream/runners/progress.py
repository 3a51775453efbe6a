"""Progress of a local run: a rich bar in a terminal, periodic structured log lines
(`run progress`: done, total, failed, skipped, percent, eta_seconds) when output goes to a
file or a CI log.

`for_run(total, show)` picks one: show=None means "a bar when stderr is a terminal, log lines
otherwise"; show=True forces the bar, show=False shows nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

LOG_EVERY_SECONDS = 30.0
LOG_EVERY_FRACTION = 0.10


class Progress(Protocol):
    def advance(self, task_id: str, ok: bool = True, skipped: bool = False) -> None: ...

    def stop(self) -> None: ...


def for_run(total: int, show: bool | None) -> Progress | None:
    if not total or show is False:
        return None
    if show or sys.stderr.isatty():
        return BarProgress(total)
    return LogProgress(total)


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the average pace so far; None before the first task is done."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed / done * (total - done))


class LogProgress:
    """A `run progress` log line every `every_seconds` or every `every_fraction` of the
    tasks (whichever comes first), and one when the run ends."""

    def __init__(
        self,
        total: int,
        *,
        every_seconds: float = LOG_EVERY_SECONDS,
        every_fraction: float = LOG_EVERY_FRACTION,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        from jetstream.logs import progress_logger

        self.total = total
        self.done = self.failed = self.skipped = 0
        self._every_seconds = every_seconds
        self._step = max(1, int(total * every_fraction))
        self._clock = clock
        self._started = clock()
        self._last_time = self._started
        self._last_done = 0
        self._log = logger or progress_logger()

    def advance(self, task_id: str, ok: bool = True, skipped: bool = False) -> None:
        self.done += 1
        if skipped:
            self.skipped += 1
        elif not ok:
            self.failed += 1
        now = self._clock()
        if (
            self.done == self.total
            or self.done - self._last_done >= self._step
            or now - self._last_time >= self._every_seconds
        ):
            self._emit(now, task_id)

    def _emit(self, now: float, task_id: str) -> None:
        elapsed = now - self._started
        eta = eta_seconds(self.done, self.total, elapsed)
        self._log.info(
            "run progress",
            done=self.done,
            total=self.total,
            percent=round(100 * self.done / self.total, 1),
            failed=self.failed,
            skipped=self.skipped,
            elapsed_seconds=round(elapsed, 1),
            eta_seconds=None if eta is None else round(eta),
            last=task_id,
        )
        self._last_time, self._last_done = now, self.done

    def stop(self) -> None:
        if self.done and self.done != self._last_done:
            self._emit(self._clock(), "")


class BarProgress:
    """A rich bar whose counts stay whole at 80 columns: `12/100` and the failure count have
    fixed widths, only the task name shrinks (with an ellipsis)."""

    def __init__(self, total: int, console: Any = None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress
        from rich.table import Column

        width = len(str(total))
        self.failed = 0
        self._progress = RichProgress(
            TextColumn(
                f"{{task.completed:>{width}.0f}}/{{task.total:.0f}}",
                table_column=Column(no_wrap=True, min_width=2 * width + 1),
            ),
            BarColumn(bar_width=20),
            TextColumn(
                "{task.fields[failed]} failed",
                table_column=Column(no_wrap=True, min_width=8 + width),
            ),
            TimeElapsedColumn(table_column=Column(no_wrap=True, min_width=7)),
            TextColumn("eta", table_column=Column(no_wrap=True, min_width=3)),
            TimeRemainingColumn(table_column=Column(no_wrap=True, min_width=7)),
            TextColumn(
                "{task.description}",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=1),
            ),
            console=console or Console(stderr=True),
            transient=False,
            expand=True,
        )
        self._task = self._progress.add_task("", total=total, failed=0)
        self._progress.start()

    def advance(self, task_id: str, ok: bool = True, skipped: bool = False) -> None:
        if not ok and not skipped:
            self.failed += 1
        self._progress.update(self._task, advance=1, description=task_id, failed=self.failed)

    def stop(self) -> None:
        self._progress.stop()
