"""The `Runner` protocol and the one factory that picks a runner.

A runner executes a TaskGraph: `LocalRunner` (`jetstream task` processes on this
machine), `ArgoRunner` (one Argo Workflow on Kubernetes) and `InProcessRunner` (the task
bodies called in this process, on a warehouse the caller provides: preview). `jetstream
run`/`rerun`, `jetstream controller`, the webhook and preview all get theirs from
`make_runner`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import attrs

from jetstream.graph import TaskGraph
from jetstream.runners.common import RunSettings

if TYPE_CHECKING:
    from jetstream.runners.inprocess import InProcessSetup

LOCAL = "local"
ARGO = "argo"
IN_PROCESS = "in-process"
RUNNERS = (LOCAL, ARGO, IN_PROCESS)


class RunResult(Protocol):
    """What a run gives back: a summary (`RunSummary`) or a submission (`Submitted`)."""

    @property
    def exit_code(self) -> int: ...

    def describe(self) -> str: ...


class Runner(Protocol):
    name: str

    def plan(self, graph: TaskGraph) -> str:
        """What `run` would do, as text (commands, or the Workflow YAML); runs nothing."""
        ...

    def run(self, graph: TaskGraph, labels: Mapping[str, str] | None = None) -> RunResult:
        """Execute (or submit) the graph. `labels` tag an Argo Workflow; others ignore them."""
        ...


@attrs.frozen
class RunnerOptions:
    """How to run, beside where (`RunSettings`): the CLI's --runner, --parallelism,
    --argo-server, --submit-via, --allow-unpinned-image and --wait."""

    runner: str = LOCAL
    parallelism: int | None = None  # local processes (default 2); Argo: RunSettings
    argo_server: str | None = None
    submit_via: str = "argo-server"
    allow_unpinned_image: bool = False
    wait: bool = False  # Argo: poll until the workflow ends
    progress: bool | None = None  # local: progress bar (None: when stderr is a terminal)
    in_process: InProcessSetup | None = None  # in-process: context factory and hooks
    # Argo, from the settings ConfigMap on every path (None: RunSettings' own value)
    namespace: str | None = None  # None: the pod's namespace, else the settings'
    service_account: str | None = None
    max_concurrent_pods: int | None = None
    trigger: str = ""  # idempotency key of the submission (scheduled time, commit, ...)


def argo_settings(settings: RunSettings, options: RunnerOptions) -> RunSettings:
    """`settings` with the Argo options that were given: namespace (else the pod's
    namespace when running in one), service account, parallelism, max concurrent pods."""
    from jetstream.runners.argo.kube import pod_namespace

    changes: dict[str, object] = {
        "namespace": options.namespace or pod_namespace(settings.namespace)
    }
    if options.service_account:
        changes["service_account"] = options.service_account
    if options.parallelism:
        changes["parallelism"] = options.parallelism
    if options.max_concurrent_pods:
        changes["max_concurrent_pods"] = options.max_concurrent_pods
    return attrs.evolve(settings, **changes)  # type: ignore[arg-type]


def make_runner(settings: RunSettings, options: RunnerOptions) -> Runner:
    """The runner named by `options.runner`: local, argo or in-process."""
    if options.runner == LOCAL:
        from jetstream.runners.local import LocalRunner

        return LocalRunner(
            settings, parallelism=options.parallelism or 2, progress=options.progress
        )
    if options.runner == ARGO:
        from jetstream.extras import require

        require("argo", "--runner argo")
        from jetstream.runners.argo.runner import ArgoRunner

        return ArgoRunner(
            argo_settings(settings, options),
            argo_server=options.argo_server,
            submit_via=options.submit_via,
            allow_unpinned_image=options.allow_unpinned_image,
            wait=options.wait,
            trigger=options.trigger,
        )
    if options.runner == IN_PROCESS:
        from jetstream.runners.inprocess import InProcessRunner

        if options.in_process is None:
            raise ValueError("the in-process runner needs RunnerOptions.in_process")
        return InProcessRunner(settings, options.in_process)
    raise ValueError(f"unknown runner {options.runner!r}: expected one of {', '.join(RUNNERS)}")
