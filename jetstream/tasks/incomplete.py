"""Tasks that finally failed before export ran, and what export does about them.

Export tolerates a failed metrics task (`runners.common.tolerates_failure_of`): the other
periods are still published. But a metrics task that died part-way (killed by the OOM
killer, out of retries) may have left its period's statistics table half-written, and the
export task, a separate process, cannot see that from the tables. So the runner tells it:
the environment variable FAILED_TASKS_ENV holds a JSON list of the failed dependencies
(`env_for`), and export

- adds one error row per failed task to the published errors document, naming the task,
  the experiment, the period and date, how it failed, and that the period's results may be
  incomplete;
- does not publish the statistics file of that period: the previously published file (a
  complete one, of an earlier date) stays until a run completes the period.

The local runner sets the variable; an Argo export step can set it from its dependencies'
`{{tasks.<name>.status}}` (the `<task id>=<status>` form of `failed_tasks`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jetstream.periods import Period

FAILED_TASKS_ENV = "JETSTREAM_FAILED_TASKS"
EXCEPTION_TYPE = "TaskFailed"
ARGO_FAILED = ("Failed", "Error")
_MAX_ERROR = 300


def env_for(failed: Iterable[Any]) -> dict[str, str]:
    """The environment of an export task whose dependencies `failed` (NodeResults)."""
    items = []
    for r in failed:
        last = (r.error or "").strip().splitlines()[-1:] or [""]
        items.append(
            {
                "task": r.node_id,
                "exit_code": r.exit_code,
                "attempts": r.attempts,
                "error": last[0][:_MAX_ERROR],
            }
        )
    return {FAILED_TASKS_ENV: json.dumps(items)}


def failed_tasks(environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The failed tasks the runner passed (empty when none, or when the value is unusable:
    export must still publish). The value is the JSON list of `env_for`, or (what an Argo
    template can write) whitespace-separated `<task id>=<status>` pairs, e.g.
    `metrics/x/week/events/2026-01-17={{tasks.<name>.status}}`: statuses Failed and Error
    are failures, any other (Succeeded, Skipped, Omitted) is not."""
    text = (os.environ if environ is None else environ).get(FAILED_TASKS_ENV, "").strip()
    if text and not text.startswith("["):
        pairs = (item.rpartition("=") for item in text.split())
        return [
            {"task": task, "exit_code": None, "error": f"Argo status {status}"}
            for task, _, status in pairs
            if task and status in ARGO_FAILED
        ]
    try:
        items = json.loads(text) if text else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("task"), str)]


def task_period(task_id: str, slug: str) -> tuple[Period | None, str | None]:
    """The period and date of a metrics task id (`metrics/<slug>/<period>/<ds>/<date>`)."""
    prefix = f"metrics/{slug}/"
    if not task_id.startswith(prefix):
        return None, None
    parts = task_id[len(prefix) :].split("/")
    try:
        period = Period.parse(parts[0])
    except ValueError:
        return None, None
    date = next((p for p in parts[1:] if _is_date(p)), None)
    return period, date


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def failure_rows(
    failed: Sequence[Mapping[str, Any]], slug: str, run: str
) -> tuple[list[dict[str, Any]], set[Period]]:
    """Error rows (the errors table's columns) for the failed tasks of experiment `slug`,
    and the periods whose statistics must not be published."""
    rows: list[dict[str, Any]] = []
    periods: set[Period] = set()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for item in failed:
        task = item["task"]
        period, date = task_period(task, slug)
        if period is not None:
            periods.add(period)
        code = item.get("exit_code")
        how = "; ".join(
            part for part in (f"exit {code}" if code is not None else "", item.get("error")) if part
        )
        attempts = item.get("attempts")
        what = (
            f"the {period.value} results{f' of {date}' if date else ''} may be incomplete "
            f"and its statistics file was not updated (the last published one stays)"
            if period is not None
            else "the results may be incomplete"
        )
        rows.append(
            {
                "run": run,
                "experiment": slug,
                "period": period.value if period is not None else None,
                "window": None,
                "data_source": None,
                "metric": None,
                "statistic": None,
                "level": "error",
                "exception_type": EXCEPTION_TYPE,
                "message": f"task {task} of experiment {slug} failed"
                f"{f' after {attempts} attempt(s)' if attempts else ''}"
                f"{f' ({how})' if how else ''}: {what}",
                "timestamp": now,
            }
        )
    return rows, periods
