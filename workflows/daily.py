"""CronWorkflow `jetstream-daily`: 03:00 UTC, `jetstream controller` for the previous day."""

from jetstream.runners.argo.templates import daily_cron_workflow

w = daily_cron_workflow()
