"""`ArgoRunner`: the `Runner` that submits a task graph as Argo Workflows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from jetstream.graph import TaskGraph
from jetstream.runners.argo.build import TRIGGER_LABEL, build_manifests, build_workflows
from jetstream.runners.argo.submit import Submission, submit_all
from jetstream.runners.common import RunSettings


class ArgoRunner:
    """Builds the graph as Workflows of bounded size (`build.build_workflows`) and submits
    them through argo-server or the Kubernetes API (`submit.submit_all`); with `wait`,
    polls until they end. `trigger` (a scheduled time, a commit, the parent workflow's
    name) makes a resubmission of the same plan a no-op; without one every run submits."""

    name = "argo"

    def __init__(
        self,
        settings: RunSettings,
        *,
        argo_server: str | None = None,
        submit_via: str = "argo-server",
        allow_unpinned_image: bool = False,
        wait: bool = False,
        trigger: str = "",
    ):
        self.settings = settings
        self.argo_server = argo_server
        self.submit_via = submit_via
        self.allow_unpinned_image = allow_unpinned_image
        self.wait = wait
        self.trigger = trigger

    def _labels(self, labels: Mapping[str, str] | None) -> dict[str, str]:
        out = dict(labels or {})
        if self.trigger and TRIGGER_LABEL not in out:
            out[TRIGGER_LABEL] = self.trigger
        return out

    def workflows(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> list[Any]:
        return build_workflows(graph, self.settings, self._labels(labels))

    def plan(self, graph: TaskGraph) -> str:
        """The Workflow manifests that `run` would submit, as YAML documents."""
        manifests = build_manifests(graph, self.settings, self._labels(None))
        return "---\n".join(yaml.safe_dump(m, sort_keys=False) for m in manifests)

    def run(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> Submission:
        return submit_all(
            self.workflows(graph, labels),
            via=self.submit_via,
            argo_server=self.argo_server,
            allow_unpinned_image=self.allow_unpinned_image,
            wait=self.wait,
        )
