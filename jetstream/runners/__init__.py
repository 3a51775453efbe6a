"""Runners execute a TaskGraph: `LocalRunner` (process pool on this machine) and the Argo
runner (one Workflow on Kubernetes). Both run each node as the same CLI call,
`jetstream task <node args> <common args>`."""

from jetstream.runners.common import NodeResult, RunSettings, RunSummary, task_args

__all__ = ["NodeResult", "RunSettings", "RunSummary", "task_args"]
