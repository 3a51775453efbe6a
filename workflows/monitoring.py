"""CronWorkflows `jetstream-monitor-five-minute`, `-hourly` and `-daily`: `jetstream monitor
run --job JOB --at {{workflow.scheduledTime}}` (definitions in
`jetstream.runners.argo.templates`)."""

from __future__ import annotations

from jetstream.runners.argo.templates import monitoring_cron_workflows, render_all

__all__ = ["monitoring_cron_workflows", "render", "ws"]

ws = monitoring_cron_workflows()


def render() -> dict[str, str]:
    """file name -> YAML text of the three monitoring CronWorkflows."""
    names = {f"{w.name}.yaml" for w in ws}
    return {name: text for name, text in render_all().items() if name in names}
