"""`ArgoRunner`: the `Runner` that submits a task graph as one Argo Workflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jetstream.graph import TaskGraph
from jetstream.runners.argo.build import build_workflow, workflow_name
from jetstream.runners.argo.submit import Submitted, submit
from jetstream.runners.common import RunSettings


class ArgoRunner:
    """Builds the graph as one Workflow (`build.build_workflow`) and submits it through
    argo-server or the Kubernetes API (`submit.submit`); with `wait`, polls until it ends."""

    name = "argo"

    def __init__(
        self,
        settings: RunSettings,
        *,
        argo_server: str | None = None,
        submit_via: str = "argo-server",
        allow_unpinned_image: bool = False,
        wait: bool = False,
    ):
        self.settings = settings
        self.argo_server = argo_server
        self.submit_via = submit_via
        self.allow_unpinned_image = allow_unpinned_image
        self.wait = wait

    def workflow(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> Any:
        return build_workflow(graph, self.settings, labels=labels)

    def workflow_name(self, graph: TaskGraph) -> str:
        return workflow_name(graph, self.settings)

    def plan(self, graph: TaskGraph) -> str:
        """The Workflow YAML that `run` would submit."""
        return str(self.workflow(graph).to_yaml())

    def run(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> Submitted:
        return submit(
            self.workflow(graph, labels),
            via=self.submit_via,
            argo_server=self.argo_server,
            allow_unpinned_image=self.allow_unpinned_image,
            wait=self.wait,
        )
