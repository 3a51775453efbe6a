"""The three live-monitoring CronWorkflows (UTC, concurrencyPolicy Forbid, Argo 4
`schedules`), each running `jetstream monitor run --job JOB --at {{workflow.scheduledTime}}`
so a retried run does exactly the same work:

- `jetstream-monitor-five-minute` (`*/5 * * * *`): recents, derived tables, JSON, health;
- `jetstream-monitor-hourly` (`30 * * * *`): the last complete hour, 30 minutes late;
- `jetstream-monitor-daily` (`0 3 * * *`): the previous UTC day, final.

Warehouse, bucket and experiments come from the `jetstream-settings` ConfigMap, as for
every other workflow. `python -m workflows.monitoring` writes the YAML next to this file;
`--check` exits 1 when a committed file differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jetstream.monitoring.schedule import CRON, Job
from jetstream.runners.templates import (
    APP_LABELS,
    _common_spec,
    _container,
    _image_parameter,
)

HERE = Path(__file__).resolve().parent
HEADER = "# Rendered from workflows/monitoring.py by `make render`; do not edit.\n"

# job -> (template deadline s, starting deadline s, description)
_JOBS: dict[Job, tuple[int, int, str]] = {
    Job.FIVE_MINUTE: (
        240, 120,
        "Live monitoring every 5 minutes: recents tables, derived tables, "
        "monitoring/<slug>_<dataset>.json and health checks.",
    ),
    Job.HOURLY: (
        1800, 1200,
        "Live monitoring: materialize the last complete hour (30 minutes after it ends) into "
        "the hourly tables.",
    ),
    Job.DAILY: (
        3600, 6 * 3600,
        "Live monitoring: finalize the previous UTC day into the daily tables.",
    ),
}  # fmt: skip


def cron_workflow(job: Job) -> Any:
    from hera.workflows import CronWorkflow

    deadline, starting, description = _JOBS[job]
    container = _container(
        "monitor",
        ["monitor", "run", "--job", job.value, "--at", "{{workflow.scheduledTime}}"],
        deadline=deadline,
    )
    return CronWorkflow(
        name=f"jetstream-monitor-{job.value}",
        labels=APP_LABELS,
        annotations={"workflows.argoproj.io/description": description},
        schedules=[CRON[job]],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=starting,
        successful_jobs_history_limit=1,
        failed_jobs_history_limit=3,
        entrypoint="monitor",
        arguments=[_image_parameter()],
        templates=[container],
        **_common_spec(),
    )


def monitoring_cron_workflows() -> list[Any]:
    """The three CronWorkflows: five-minute, hourly, daily."""
    return [cron_workflow(job) for job in (Job.FIVE_MINUTE, Job.HOURLY, Job.DAILY)]


def render() -> dict[str, str]:
    """file name -> YAML text."""
    return {f"{w.name}.yaml": HEADER + w.to_yaml() for w in monitoring_cron_workflows()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflows.monitoring", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 on any")
    args = parser.parse_args(argv)
    drift = 0
    for name, text in render().items():
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                print(f"{path}: differs from workflows/monitoring.py; run `make render`")
                drift += 1
        else:
            path.write_text(text)
            print(path)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
