"""Live experiment monitoring: 5-minute enrollment and search aggregates from the live event
stream, three cost-aware jobs (five-minute, hourly, daily) with precedence daily > hourly >
recents, derived tables, JSON export, health checks (sequential SRM, silent enrollment) and
a self-contained page. See docs/monitoring.md."""

from jetstream.monitoring.jobs import JobResult, Monitor, MonitoringSettings, export_path
from jetstream.monitoring.schedule import CRON, Job

__all__ = ["CRON", "Job", "JobResult", "Monitor", "MonitoringSettings", "export_path"]
