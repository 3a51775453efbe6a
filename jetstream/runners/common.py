"""What both runners share: run settings, the exact CLI arguments of a node, the
dependency policy between nodes, the parse of a task's last stdout line, and run results."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping

import attrs

from jetstream.graph import TaskGraph, TaskKind, TaskNode

EXIT_TRANSIENT = 75
EXIT_CONFIG = 2

DEFAULT_IMAGE = "ghcr.io/mozilla/jetstream-platform:latest"


@attrs.frozen
class Resources:
    """Requests (and memory limit) of one task pod."""

    cpu: str = "500m"
    memory: str = "2Gi"


DEFAULT_RESOURCES: Mapping[str, Resources] = {
    TaskKind.ENSURE_ENROLLMENTS.value: Resources("500m", "1Gi"),
    TaskKind.METRICS.value: Resources("1", "4Gi"),
    TaskKind.EXPORT.value: Resources("250m", "1Gi"),
}
DEFAULT_DEADLINES: Mapping[str, int] = {
    TaskKind.ENSURE_ENROLLMENTS.value: 2 * 3600,
    TaskKind.METRICS.value: 6 * 3600,
    TaskKind.EXPORT.value: 3600,
}


def _frozen_map(value: Mapping) -> Mapping:
    return dict(value)


@attrs.frozen
class RunSettings:
    """Where a run reads and writes, and how it is scheduled.

    `experiments`, `config_repo`, `warehouse` and `out` become the common arguments of
    every task; the rest shapes the Argo Workflow (image, namespace, parallelism, ...).
    Empty strings are left out of the command line (the task then uses its own default).
    """

    experiments: str
    warehouse: str
    out: str
    config_repo: str = ""
    image: str = DEFAULT_IMAGE
    namespace: str = "jetstream"
    service_account: str = "jetstream"
    parallelism: int = 8
    retries: int = 3
    backoff_seconds: int = 30
    resources: Mapping[str, Resources] = attrs.field(
        factory=lambda: dict(DEFAULT_RESOURCES), converter=_frozen_map, hash=False
    )
    deadlines: Mapping[str, int] = attrs.field(
        factory=lambda: dict(DEFAULT_DEADLINES), converter=_frozen_map, hash=False
    )
    settings_configmap: str = "jetstream-settings"
    ttl_seconds: int = 7 * 24 * 3600
    # Argo: pods running at once across all the Workflows of one submission (each Workflow
    # gets an equal share as its `parallelism`, at most `parallelism`), and the largest
    # Workflow object submitted (the graph is split by experiment to stay under it).
    max_concurrent_pods: int = 32
    max_workflow_bytes: int = 256 * 1024
    # Argo: a mutex every submitted Workflow holds (the webhook's reruns of one config
    # repository run one at a time); "" for none. `mutexes` needs Argo >= 3.6.
    mutex: str = ""

    def common_args(self) -> list[str]:
        """`--experiments SRC --config-repo DIR --warehouse URI --out LOCATION`."""
        out: list[str] = []
        for flag, value in self.common_items():
            out += [flag, value]
        return out

    def common_items(self) -> list[tuple[str, str]]:
        pairs = [
            ("--experiments", self.experiments),
            ("--config-repo", self.config_repo),
            ("--warehouse", self.warehouse),
            ("--out", self.out),
        ]
        return [(flag, value) for flag, value in pairs if value]


def task_args(node: TaskNode, settings: RunSettings) -> list[str]:
    """The full argv after the program name: `task <node args> <common args>`."""
    return ["task", *node.args(), *settings.common_args()]


def tolerates_failure_of(node: TaskNode) -> bool:
    """Whether `node` still runs when a dependency *failed* (not when it was skipped).

    Export publishes whatever exists, errors included, so a failed metrics node does not
    keep the others' results and the error rows from being published. Everything else
    needs its dependencies to have succeeded. Both runners apply this one rule.
    """
    return node.kind is TaskKind.EXPORT


def dependency_expression(node: TaskNode, names: Mapping[str, str]) -> str | None:
    """The Argo `depends` expression of a node; `names` maps node id -> task name."""
    if not node.depends:
        return None
    deps = [names[d] for d in node.depends]
    if tolerates_failure_of(node):
        # Errored: a pod that never ran to an exit code (evicted, node lost) is not Failed
        return " && ".join(f"({d}.Succeeded || {d}.Failed || {d}.Errored)" for d in deps)
    return " && ".join(f"{d}.Succeeded" for d in deps)


def check_graph(graph: TaskGraph) -> list[TaskNode]:
    """Topological order; also refuses two nodes with the same id or task name."""
    seen_ids: set[str] = set()
    seen_names: dict[str, str] = {}
    for n in graph.nodes:
        if n.id in seen_ids:
            raise ValueError(f"task graph has two nodes with id {n.id!r}")
        seen_ids.add(n.id)
        if n.name in seen_names:
            raise ValueError(
                f"nodes {seen_names[n.name]!r} and {n.id!r} share the task name {n.name!r}"
            )
        seen_names[n.name] = n.id
    return graph.topological()


def parse_task_report(stdout: str) -> dict:
    """The JSON object a task prints as its last stdout line, or {} when there is none."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
        return {}
    return {}


class NodeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped-upstream-failed"


@attrs.frozen
class NodeResult:
    node_id: str
    status: NodeStatus
    attempts: int = 0
    seconds: float = 0.0
    exit_code: int | None = None
    error: str = ""  # tail of stderr, or why it was skipped
    report: Mapping[str, object] = attrs.field(factory=dict, converter=_frozen_map, hash=False)


@attrs.frozen
class RunSummary:
    results: tuple[NodeResult, ...]
    run_id: str = ""

    def by_id(self) -> dict[str, NodeResult]:
        return {r.node_id: r for r in self.results}

    def with_status(self, status: NodeStatus) -> list[NodeResult]:
        return [r for r in self.results if r.status is status]

    @property
    def succeeded(self) -> list[NodeResult]:
        return self.with_status(NodeStatus.SUCCEEDED)

    @property
    def failed(self) -> list[NodeResult]:
        return self.with_status(NodeStatus.FAILED)

    @property
    def skipped(self) -> list[NodeResult]:
        return self.with_status(NodeStatus.SKIPPED)

    @property
    def ok(self) -> bool:
        return all(r.status is NodeStatus.SUCCEEDED for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def describe(self) -> str:
        lines = [
            f"{len(self.succeeded)} succeeded, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped of {len(self.results)} tasks"
        ]
        for r in self.failed:
            tail = r.error.strip().splitlines()[-1:] or [""]
            lines.append(
                f"  failed: {r.node_id} (exit {r.exit_code}, {r.attempts} attempts) {tail[0]}"
            )
        for r in self.skipped:
            lines.append(f"  skipped: {r.node_id}: {r.error}")
        return "\n".join(lines)
