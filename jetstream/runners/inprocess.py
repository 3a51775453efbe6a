"""`InProcessRunner`: runs a TaskGraph's task bodies in this process (through
`jetstream.tasks.dispatch`), on the task context the caller provides. Preview uses it on
its recording scratch warehouse.

Every node runs, in dependency order, so each unit reports its own error, except that
- a failed ensure-enrollments node skips every other node of its experiment (nothing to
  compute without enrollments), and
- export runs only when no other node of its experiment failed.
Exceptions of the types in `InProcessSetup.reraise` (transient errors, an exceeded
budget) stop the run; any other exception fails that node only."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from jetstream.errors import TransientError
from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.runners.common import NodeResult, NodeStatus, RunSettings, RunSummary, check_graph
from jetstream.tasks.context import TaskContext
from jetstream.tasks.dispatch import TaskRequest, run_task


def _no_step(node: TaskNode) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


@attrs.frozen
class InProcessSetup:
    """`context(slug)` gives the task context of an experiment (called once per slug);
    `step(node)` wraps each node's execution (preview records its SQL per step);
    `on_result` hears each node's result as soon as it is known (also the ones before an
    exception that stops the run)."""

    context: Callable[[str], TaskContext]
    step: Callable[[TaskNode], contextlib.AbstractContextManager[Any]] = _no_step
    reraise: tuple[type[BaseException], ...] = (TransientError,)
    recreate_enrollments: bool = False
    on_result: Callable[[NodeResult], None] | None = None  # told of each node's result


class InProcessRunner:
    name = "in-process"

    def __init__(self, settings: RunSettings, setup: InProcessSetup):
        self.settings = settings
        self.setup = setup

    def plan(self, graph: TaskGraph) -> str:
        return "".join(f"{node.id}\n" for node in check_graph(graph))

    def run(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> RunSummary:
        contexts: dict[str, TaskContext] = {}
        no_enrollments: set[str] = set()
        failed: set[str] = set()
        results: list[NodeResult] = []
        for node in check_graph(graph):
            if node.slug in no_enrollments or (
                node.kind is TaskKind.EXPORT and node.slug in failed
            ):
                results.append(
                    NodeResult(node.id, NodeStatus.SKIPPED, error="an earlier task failed")
                )
                continue
            if node.slug not in contexts:
                contexts[node.slug] = self.setup.context(node.slug)
            result = self._execute(node, contexts[node.slug])
            if result.status is NodeStatus.FAILED:
                failed.add(node.slug)
                if node.kind is TaskKind.ENSURE_ENROLLMENTS:
                    no_enrollments.add(node.slug)
            results.append(result)
            if self.setup.on_result is not None:
                self.setup.on_result(result)
        return RunSummary(tuple(results))

    def _execute(self, node: TaskNode, ctx: TaskContext) -> NodeResult:
        req = TaskRequest.of_node(
            node, out=self.settings.out, recreate_enrollments=self.setup.recreate_enrollments
        )
        started = time.monotonic()
        with self.setup.step(node):
            try:
                report = run_task(ctx, req)
            except self.setup.reraise:
                raise
            except Exception as exc:  # noqa: BLE001 - the node fails, the others go on
                return NodeResult(
                    node.id,
                    NodeStatus.FAILED,
                    attempts=1,
                    seconds=time.monotonic() - started,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return NodeResult(
            node.id,
            NodeStatus.SUCCEEDED,
            attempts=1,
            seconds=time.monotonic() - started,
            report=report,
        )
