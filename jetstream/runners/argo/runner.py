"""`ArgoRunner`: the `Runner` that submits a task graph as Argo Workflows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from jetstream.graph import TaskGraph
from jetstream.logs import get_logger
from jetstream.runners.argo.build import (
    TRIGGER_LABEL,
    build_manifests,
    build_workflows,
    label_value,
)
from jetstream.runners.argo.submit import (
    Submission,
    client_for,
    require_pinned,
    submit_all,
    submitted_experiments,
)
from jetstream.runners.common import RunSettings

log = get_logger(__name__)


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
        """Submit the graph. With a trigger, experiments already submitted under it (a
        retried controller, a redelivered push) are left out before packing, so a plan
        that changed in between never runs an experiment twice."""
        require_pinned(self.settings.image, self.allow_unpinned_image)  # before any request
        all_labels = self._labels(labels)
        trigger = label_value(all_labels.get(TRIGGER_LABEL, ""))
        client = client_for(self.submit_via, self.settings.namespace, argo_server=self.argo_server)
        skipped: dict[str, str] = {}
        done: dict[str, str] = {}
        if trigger:
            done = submitted_experiments(client, trigger)
            skipped = {s: done[s] for s in graph.experiments if s in done}
            graph = TaskGraph(tuple(n for n in graph.nodes if n.slug not in skipped))
        workflows = build_workflows(graph, self.settings, all_labels) if graph.nodes else []
        result = submit_all(
            workflows,
            client=client,
            allow_unpinned_image=self.allow_unpinned_image,
            wait=self.wait,
            known={trigger: done} if trigger else None,
        )
        if skipped:
            log.info("experiments already submitted", trigger=trigger, count=len(skipped))
        names = tuple(dict.fromkeys([*skipped.values(), *result.skipped]))
        return Submission(result.workflows, names)
