"""Runners execute a TaskGraph: `LocalRunner` (process pool on this machine), `ArgoRunner`
(`argo/`: one Workflow on Kubernetes) and `InProcessRunner` (task bodies in this process,
for preview). All satisfy the `Runner` protocol and come from `base.make_runner`. The
local and Argo runners run each node as the same CLI call,
`jetstream task <node args> <common args>`."""

from jetstream.runners.common import NodeResult, RunSettings, RunSummary, task_args

__all__ = ["NodeResult", "RunSettings", "RunSummary", "task_args"]
