"""Submitting a built Workflow (through argo-server or the Kubernetes API), waiting for
it, summarising its failed nodes, and installing cluster objects."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from jetstream.errors import TransientError
from jetstream.logs import get_logger
from jetstream.runners.argo.build import EXPERIMENTS_ANNOTATION, TRIGGER_LABEL
from jetstream.runners.argo.clients import ArgoServerClient
from jetstream.runners.argo.errors import SubmitError, UnpinnedImageError

log = get_logger(__name__)

DONE_PHASES = ("Succeeded", "Failed", "Error")


def require_pinned(image: str, allow_unpinned_image: bool = False) -> None:
    if "@sha256:" in image or allow_unpinned_image:
        return
    raise UnpinnedImageError(
        f"image {image!r} is not pinned by digest (expected NAME@sha256:...); pods of one "
        "run could otherwise run different code. Pass the digest, or allow_unpinned_image "
        "(--allow-unpinned-image) for development clusters."
    )


def client_for(
    via: str,
    namespace: str,
    *,
    argo_server: str | None = None,
    token: str | None = None,
    verify_ssl: bool = True,
    kube_api_client: Any = None,
) -> Any:
    """The client of a submission path: `argo-server` (needs `argo_server`, a URL) or
    `kubernetes` (in-cluster config, else the kubeconfig, else `kube_api_client`)."""
    if via == "argo-server":
        if not argo_server:
            raise SubmitError(
                "submitting through argo-server needs --argo-server URL (or JETSTREAM_ARGO_SERVER)"
            )
        return ArgoServerClient(argo_server, namespace, token=token, verify_ssl=verify_ssl)
    if via == "kubernetes":
        from jetstream.runners.argo.kube import KubeClient

        return KubeClient(namespace, api_client=kube_api_client)
    raise SubmitError(f"unknown submission path {via!r}: expected argo-server or kubernetes")


@attrs.frozen
class FailedNode:
    name: str
    phase: str
    message: str
    exit_code: str | None = None


@attrs.frozen
class Submitted:
    name: str
    namespace: str
    phase: str | None = None  # set when waited for
    failed: tuple[FailedNode, ...] = ()

    def describe(self) -> str:
        head = f"workflow {self.namespace}/{self.name}"
        if self.phase is None:
            return f"{head} submitted"
        lines = [f"{head} {self.phase}"]
        for f in self.failed:
            code = f" (exit {f.exit_code})" if f.exit_code else ""
            lines.append(f"  {f.phase}: {f.name}{code}: {f.message}")
        return "\n".join(lines)

    @property
    def exit_code(self) -> int:
        """0 when submitted (not waited for) or succeeded, else 1."""
        return 0 if self.phase in (None, "Succeeded") else 1


def failed_nodes(workflow: Mapping[str, Any]) -> tuple[FailedNode, ...]:
    """Failed leaf work of a finished workflow: failed Retry nodes, and failed pods that
    are not attempts of a Retry node."""
    nodes: Mapping[str, Mapping[str, Any]] = workflow.get("status", {}).get("nodes", {}) or {}
    retry_children = {
        child
        for n in nodes.values()
        if n.get("type") == "Retry"
        for child in n.get("children", []) or []
    }
    out = []
    for node_id, n in nodes.items():
        if n.get("phase") not in ("Failed", "Error"):
            continue
        if n.get("type") == "Retry" or (n.get("type") == "Pod" and node_id not in retry_children):
            exit_code = None
            if n.get("type") == "Retry":
                last = [nodes[c] for c in n.get("children", []) or [] if c in nodes]
                if last:
                    exit_code = _exit_code(last[-1])
            else:
                exit_code = _exit_code(n)
            out.append(
                FailedNode(
                    name=str(n.get("displayName") or n.get("name") or node_id),
                    phase=str(n.get("phase")),
                    message=str(n.get("message") or ""),
                    exit_code=exit_code,
                )
            )
    return tuple(sorted(out, key=lambda f: f.name))


def _exit_code(node: Mapping[str, Any]) -> str | None:
    code = (node.get("outputs") or {}).get("exitCode")
    return str(code) if code is not None else None


def wait_for(
    get: Callable[[str], Mapping[str, Any]],
    name: str,
    namespace: str,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Submitted:
    """Poll `get(name)` until the workflow's phase is final; summarise failed nodes."""
    started = time.monotonic()
    while True:
        wf = get(name)
        phase = (wf.get("status") or {}).get("phase")
        if phase in DONE_PHASES:
            return Submitted(name, namespace, phase, failed_nodes(wf))
        if timeout is not None and time.monotonic() - started > timeout:
            raise TransientError(
                f"workflow {namespace}/{name} still {phase or 'pending'} after {timeout}s"
            )
        sleep(poll_interval)


def submit(
    workflow: Any,
    *,
    via: str = "argo-server",
    argo_server: str | None = None,
    token: str | None = None,
    verify_ssl: bool = True,
    allow_unpinned_image: bool = False,
    wait: bool = False,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    kube_api_client: Any = None,
) -> Submitted:
    """Submit one hera Workflow, through argo-server (`via="argo-server"`, needs
    `argo_server`) or the Kubernetes API (`via="kubernetes"`: in-cluster config, else the
    kubeconfig, else `kube_api_client`). Refuses an image without digest unless
    `allow_unpinned_image`. With `wait`, polls until it ends. No idempotency check: see
    `submit_all`."""
    result = submit_all(
        [workflow],
        via=via,
        argo_server=argo_server,
        token=token,
        verify_ssl=verify_ssl,
        allow_unpinned_image=allow_unpinned_image,
        wait=wait,
        poll_interval=poll_interval,
        timeout=timeout,
        kube_api_client=kube_api_client,
        idempotent=False,
    )
    return result.workflows[0]


@attrs.frozen
class Submission:
    """What one submission of a graph did: the Workflows created (or waited for) and those
    skipped because the same plan and trigger were submitted before."""

    workflows: tuple[Submitted, ...]
    skipped: tuple[str, ...] = ()  # names of the existing workflows of skipped parts

    def describe(self) -> str:
        lines = [w.describe() for w in self.workflows]
        if self.skipped:
            lines.append(
                f"{len(self.skipped)} workflow(s) already submitted for the same plan, "
                f"not submitted again: {', '.join(self.skipped)}"
            )
        return "\n".join(lines) or "nothing submitted"

    @property
    def exit_code(self) -> int:
        return max((w.exit_code for w in self.workflows), default=0)


def selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def experiments_of(metadata: Mapping[str, Any]) -> list[str]:
    """The experiments a built Workflow runs (its `jetstream/experiments` annotation)."""
    raw = (metadata.get("annotations") or {}).get(EXPERIMENTS_ANNOTATION)
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def submitted_experiments(client: Any, trigger: str) -> dict[str, str]:
    """slug -> name of the workflow that runs it, over the namespace's workflows labelled
    with this trigger (`jetstream/trigger`, a label value)."""
    out: dict[str, str] = {}
    for meta in client.list_workflow_metadata(selector({TRIGGER_LABEL: trigger})):
        for slug in experiments_of(meta):
            out.setdefault(slug, str(meta.get("name")))
    return out


def submit_all(
    workflows: Sequence[Any],
    *,
    via: str = "argo-server",
    argo_server: str | None = None,
    token: str | None = None,
    verify_ssl: bool = True,
    allow_unpinned_image: bool = False,
    wait: bool = False,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    kube_api_client: Any = None,
    client: Any = None,
    idempotent: bool = True,
    known: Mapping[str, Mapping[str, str]] | None = None,
) -> Submission:
    """Submit the Workflows of one graph (`build.build_workflows`). With `idempotent`, a
    Workflow with a trigger label (`jetstream/trigger`) whose experiments were all
    submitted before under the same trigger is skipped: a retried controller pod or a
    redelivered push submits nothing twice (`ArgoRunner` also leaves such experiments out
    of the graph before packing). Workflows without a trigger are always submitted
    (names are generated, so two reruns never clash). `known` gives, per trigger, the
    experiments already found submitted (slug -> workflow), saving the lookup."""
    if not workflows:
        return Submission(())
    for wf in workflows:
        require_pinned(workflow_image(wf), allow_unpinned_image)
    namespace = workflows[0].namespace
    if client is None:
        client = client_for(
            via,
            namespace,
            argo_server=argo_server,
            token=token,
            verify_ssl=verify_ssl,
            kube_api_client=kube_api_client,
        )
    created: list[str] = []
    skipped: list[str] = []
    # trigger -> slug -> workflow
    done: dict[str, dict[str, str]] = {t: dict(v) for t, v in (known or {}).items()}
    for wf in workflows:
        trigger = (wf.labels or {}).get(TRIGGER_LABEL)
        slugs = experiments_of({"annotations": wf.annotations or {}})
        if idempotent and trigger and slugs:
            if trigger not in done:
                done[trigger] = submitted_experiments(client, trigger)
            if all(s in done[trigger] for s in slugs):
                existing = done[trigger][slugs[0]]
                log.info("workflow already submitted", workflow=existing, trigger=trigger)
                skipped.append(existing)
                continue
        answer = client.create(wf)
        name = answer.get("metadata", {}).get("name") or wf.name
        log.info("workflow submitted", workflow=name, namespace=namespace, via=via)
        created.append(name)
        if trigger:
            done.setdefault(trigger, {}).update({s: name for s in slugs})
    if not wait:
        return Submission(
            tuple(Submitted(n, namespace) for n in created), tuple(dict.fromkeys(skipped))
        )
    finished = [
        wait_for(client.get_workflow, n, namespace, poll_interval, timeout) for n in created
    ]
    return Submission(tuple(finished), tuple(dict.fromkeys(skipped)))


def workflow_image(workflow: Any) -> str:
    arguments = workflow.arguments
    params = getattr(arguments, "parameters", None) if arguments is not None else None
    if params is None and isinstance(arguments, list):
        params = arguments
    for p in params or []:
        if getattr(p, "name", None) == "image":
            return str(p.value)
    raise SubmitError("the workflow has no 'image' parameter; build it with build_workflows")


def apply_all(objects: Iterable[Any], client: Any) -> list[dict[str, Any]]:
    """Install or update WorkflowTemplates and CronWorkflows (manifest dicts,
    `templates.manifests()`) through a client."""
    return [client.apply(obj) for obj in objects]
