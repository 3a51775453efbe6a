"""The task graph as ONE Argo Workflow, built with hera, and its submission.

Shape: the entrypoint DAG `main` has one task per experiment, each calling that
experiment's own DAG template (so the Argo UI stays navigable); the experiment DAG has one
task per graph node, calling a container template that runs exactly the command the local
runner runs: `jetstream task <node args> <common args>`. Container templates are shared by
the nodes of an experiment that have the same argument shape, the varying values being
input parameters; the image and the common arguments are workflow parameters.

Failure handling: leaf templates retry exit 75 (and pod-level errors) with exponential
backoff; every DAG has failFast: false so one failed task never stops the others; failure
tolerance is written as `depends` expressions, never `continueOn` (which Argo rejects next
to `depends`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from jetstream.errors import JetstreamError, TransientError
from jetstream.graph import TaskGraph, dns_label
from jetstream.logs import get_logger
from jetstream.runners.common import (
    RunSettings,
    check_graph,
    dependency_expression,
)

log = get_logger(__name__)

LABEL_PREFIX = "jetstream"
RETRY_EXPRESSION = 'lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 75'
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
COMMON_PARAMETERS = {
    "--experiments": "experiments",
    "--config-repo": "config-repo",
    "--warehouse": "warehouse",
    "--out": "out",
}
DONE_PHASES = ("Succeeded", "Failed", "Error")


# -- errors ------------------------------------------------------------------------------


class SubmitError(JetstreamError):
    """The workflow could not be submitted."""


class UnauthorizedError(SubmitError):
    """401/403: the token is missing, wrong or lacks the rights."""


class AlreadyExistsError(SubmitError):
    """409: an object with this name exists already."""


class UnpinnedImageError(JetstreamError):
    """The image is not pinned by digest."""

    exit_code = 2


# -- names and labels --------------------------------------------------------------------


def label_value(text: str) -> str:
    """A Kubernetes label value: <= 63 chars of [A-Za-z0-9_.-], alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(value) > 63:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        value = value[:54].rstrip("-_.") + "-" + digest
    return value


def graph_digest(graph: TaskGraph, settings: RunSettings) -> str:
    text = "\n".join(sorted(n.id for n in graph.nodes)) + "\n" + " ".join(settings.common_args())
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def graph_dates(graph: TaskGraph) -> list[str]:
    return sorted({n.date.isoformat() for n in graph.nodes if n.date is not None})


def workflow_name(graph: TaskGraph, settings: RunSettings, prefix: str = "jetstream") -> str:
    """Deterministic: the same graph and settings give the same name, so a second
    submission of the same work is refused (409) instead of running twice."""
    dates = graph_dates(graph)
    span = dates[0] if len(dates) == 1 else (f"{dates[0]}-{dates[-1]}" if dates else "")
    slugs = graph.experiments
    middle = "-".join(p for p in (slugs[0] if len(slugs) == 1 else "", span) if p)
    tail = graph_digest(graph, settings)
    head = dns_label(f"{prefix}-{middle}" if middle else prefix, limit=63 - len(tail) - 1)
    return f"{head}-{tail}"


# -- building ----------------------------------------------------------------------------


@attrs.frozen
class _Shape:
    """A node's args with flag values replaced by input-parameter names."""

    tokens: tuple[str, ...]  # literal tokens, or "{name}" markers for parameters
    values: tuple[tuple[str, str], ...]  # (parameter name, value) of this node

    @property
    def key(self) -> tuple[str, ...]:
        return self.tokens


def _shape(args: list[str]) -> _Shape:
    tokens: list[str] = []
    values: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        has_value = tok.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--")
        if has_value:
            base = tok[2:]
            n = counts.get(base, 0)
            counts[base] = n + 1
            name = base if n == 0 else f"{base}-{n}"
            tokens += [tok, "{" + name + "}"]
            values.append((name, args[i + 1]))
            i += 2
        else:
            tokens.append(tok)
            i += 1
    # repeated flags: name the first one base-0 when there is more than one
    renamed: dict[str, str] = {b: f"{b}-0" for b, c in counts.items() if c > 1}
    tokens = [
        "{" + renamed[t[1:-1]] + "}" if _is_marker(t) and t[1:-1] in renamed else t for t in tokens
    ]
    values = [(renamed.get(n, n), v) for n, v in values]
    return _Shape(tuple(tokens), tuple(values))


def _is_marker(tok: str) -> bool:
    return tok.startswith("{") and tok.endswith("}")


def _pod_spec_patch(settings: RunSettings, kind: str) -> str | None:
    res = settings.resources.get(kind)
    if res is None:
        return None
    patch = {
        "containers": [
            {
                "name": "main",
                "resources": {
                    "requests": {"cpu": res.cpu, "memory": res.memory},
                    "limits": {"memory": res.memory},
                },
            }
        ]
    }
    return json.dumps(patch, sort_keys=True)


def retry_strategy(settings: RunSettings) -> Any:
    from hera.workflows import RetryStrategy
    from hera.workflows.models import Backoff

    return RetryStrategy(
        limit=settings.retries,
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=Backoff(
            duration=f"{settings.backoff_seconds}s",
            factor=2,  # type: ignore[arg-type]
            max_duration=f"{max(settings.backoff_seconds * 2**settings.retries, 60) * 2}s",
        ),
    )


def build_workflow(
    graph: TaskGraph,
    settings: RunSettings,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Any:
    """The graph as one hera `Workflow` (not submitted). See the module docstring."""
    from hera.workflows import DAG, ConfigMapEnvFrom, Container, Env, Parameter, Task, Workflow
    from hera.workflows.models import PodGC, TTLStrategy

    order = check_graph(graph)
    if not order:
        raise ValueError("the task graph is empty: nothing to submit")
    common = [
        (flag, "{{workflow.parameters." + COMMON_PARAMETERS[flag] + "}}")
        for flag, _ in settings.common_items()
    ]
    common_tokens = [tok for pair in common for tok in pair]
    templates: list[Any] = []
    main_tasks: list[Any] = []
    used_names: set[str] = {"main"}

    def unique(candidate: str) -> str:
        label = dns_label(candidate)
        n = 1
        while label in used_names:
            n += 1
            label = dns_label(f"{candidate}-{n}")
        used_names.add(label)
        return label

    for slug in graph.experiments:
        nodes = [n for n in order if n.slug == slug]
        names = {n.id: n.name for n in nodes}
        leafs: dict[tuple[str, ...], Any] = {}
        dag_tasks: list[Any] = []
        for node in nodes:
            shape = _shape(node.args())
            if shape.key not in leafs:
                kind = node.kind.value
                args = [
                    "{{inputs.parameters." + t[1:-1] + "}}" if _is_marker(t) else t
                    for t in shape.tokens
                ]
                leafs[shape.key] = Container(
                    name=unique(f"{slug}-{kind}"),
                    image="{{workflow.parameters.image}}",
                    command=["jetstream"],
                    args=["task", *args, *common_tokens],
                    inputs=[Parameter(name=p) for p, _ in shape.values],
                    env=[
                        Env(name="JETSTREAM_LOG_FORMAT", value="json"),
                        Env(name="JETSTREAM_RUN_ID", value="{{workflow.name}}"),
                    ],
                    env_from=[ConfigMapEnvFrom(name=settings.settings_configmap, optional=True)],
                    active_deadline_seconds=settings.deadlines.get(kind),
                    pod_spec_patch=_pod_spec_patch(settings, kind),
                    retry_strategy=retry_strategy(settings),
                    labels={
                        f"{LABEL_PREFIX}/experiment": label_value(slug),
                        f"{LABEL_PREFIX}/kind": kind,
                    },
                )
                templates.append(leafs[shape.key])
            dag_tasks.append(
                Task(
                    name=node.name,
                    template=leafs[shape.key],
                    arguments=[Parameter(name=p, value=v) for p, v in shape.values],
                    depends=dependency_expression(node, names),
                )
            )
        exp_dag = DAG(name=unique(f"exp-{slug}"), fail_fast=False, tasks=dag_tasks)
        templates.append(exp_dag)
        main_tasks.append(Task(name=dns_label(slug), template=exp_dag))
    templates.insert(0, DAG(name="main", fail_fast=False, tasks=main_tasks))

    dates = graph_dates(graph)
    wf_labels = {f"{LABEL_PREFIX}/app": "jetstream"}
    if dates:
        wf_labels[f"{LABEL_PREFIX}/date"] = label_value(
            dates[0] if len(dates) == 1 else f"{dates[0]}_{dates[-1]}"
        )
    if len(graph.experiments) == 1:
        wf_labels[f"{LABEL_PREFIX}/experiment"] = label_value(graph.experiments[0])
    wf_labels.update(labels or {})
    parameters = [Parameter(name="image", value=settings.image)] + [
        Parameter(name=COMMON_PARAMETERS[flag], value=value)
        for flag, value in settings.common_items()
    ]
    return Workflow(
        name=name or workflow_name(graph, settings),
        namespace=settings.namespace,
        labels=wf_labels,
        entrypoint="main",
        arguments=parameters,
        parallelism=settings.parallelism,
        service_account_name=settings.service_account or None,
        pod_gc=PodGC(strategy="OnPodSuccess"),
        ttl_strategy=TTLStrategy(seconds_after_completion=settings.ttl_seconds),
        templates=templates,
    )


# -- reading a rendered workflow ---------------------------------------------------------

_PARAM_RE = re.compile(r"\{\{\s*(inputs|workflow)\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")


def workflow_spec(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = manifest.get("spec", {})
    return spec.get("workflowSpec", spec) if manifest.get("kind") == "CronWorkflow" else spec


def commands_of(manifest: Mapping[str, Any]) -> set[tuple[str, ...]]:
    """Every command the workflow's DAG tasks run, with parameters substituted; for a
    `jetstream` container, the argv after the program (what `LocalRunner.commands` gives)."""
    spec = workflow_spec(manifest)
    wf_params = {
        p["name"]: p.get("value", "") for p in spec.get("arguments", {}).get("parameters", [])
    }
    templates = {t["name"]: t for t in spec.get("templates", [])}
    out: set[tuple[str, ...]] = set()
    for tmpl in templates.values():
        for task in tmpl.get("dag", {}).get("tasks", []):
            leaf = templates.get(task.get("template", ""))
            if leaf is None or "container" not in leaf:
                continue
            inputs = {
                p["name"]: p.get("value", p.get("default", ""))
                for p in leaf.get("inputs", {}).get("parameters", [])
            }
            inputs.update(
                {
                    p["name"]: p.get("value", "")
                    for p in task.get("arguments", {}).get("parameters", [])
                }
            )

            def sub(text: str, inputs: Mapping[str, str] = inputs) -> str:
                return _PARAM_RE.sub(
                    lambda m: str((inputs if m.group(1) == "inputs" else wf_params)[m.group(2)]),
                    text,
                )

            container = leaf["container"]
            command = [sub(c) for c in container.get("command", [])]
            args = [sub(a) for a in container.get("args", [])]
            out.add(tuple(args) if command == ["jetstream"] else tuple(command + args))
    return out


# -- submitting --------------------------------------------------------------------------


def require_pinned(image: str, allow_unpinned_image: bool = False) -> None:
    if "@sha256:" in image or allow_unpinned_image:
        return
    raise UnpinnedImageError(
        f"image {image!r} is not pinned by digest (expected NAME@sha256:...); pods of one "
        "run could otherwise run different code. Pass the digest, or allow_unpinned_image "
        "(--allow-unpinned-image) for development clusters."
    )


def resolve_token(token: str | None = None) -> str | None:
    """Explicit token, else $ARGO_TOKEN, else the pod's service-account token, else None."""
    if token:
        return token
    env = os.environ.get("ARGO_TOKEN")
    if env:
        return env
    if SERVICE_ACCOUNT_TOKEN.is_file():
        return SERVICE_ACCOUNT_TOKEN.read_text().strip() or None
    return None


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


KIND_PLURALS = {
    "Workflow": "workflows",
    "WorkflowTemplate": "workflowtemplates",
    "CronWorkflow": "cronworkflows",
}


class ArgoServerClient:
    """Talks to argo-server through hera's WorkflowsService, mapping its errors."""

    def __init__(
        self,
        host: str,
        namespace: str,
        token: str | None = None,
        verify_ssl: bool = True,
    ):
        from hera.workflows import WorkflowsService

        if not host.startswith(("http://", "https://")):
            raise SubmitError(f"--argo-server must be an http(s) URL, got {host!r}")
        self.host = host
        self.namespace = namespace
        self.service = WorkflowsService(
            host=host, token=resolve_token(token), namespace=namespace, verify_ssl=verify_ssl
        )

    def create(self, obj: Any) -> dict[str, Any]:
        """Create a hera Workflow (or install a WorkflowTemplate/CronWorkflow by create)."""
        from hera.workflows import CronWorkflow, WorkflowTemplate
        from hera.workflows.models import (
            CreateCronWorkflowRequest,
            WorkflowCreateRequest,
            WorkflowTemplateCreateRequest,
        )

        what = _describe(obj, self.namespace)
        model: Any
        built: Any = obj.build()
        with self._errors(what):
            if isinstance(obj, CronWorkflow):
                model = self.service.create_cron_workflow(
                    CreateCronWorkflowRequest(cron_workflow=built), namespace=self.namespace
                )
            elif isinstance(obj, WorkflowTemplate):
                model = self.service.create_workflow_template(
                    WorkflowTemplateCreateRequest(template=built), namespace=self.namespace
                )
            else:
                model = self.service.create_workflow(
                    WorkflowCreateRequest(workflow=built), namespace=self.namespace
                )
        return _model_dict(model)

    def apply(self, obj: Any) -> dict[str, Any]:
        """Create or update (GET for resourceVersion, then PUT) a WorkflowTemplate or
        CronWorkflow."""
        obj.workflows_service = self.service
        obj.namespace = self.namespace
        with self._errors(_describe(obj, self.namespace)):
            return _model_dict(obj.update())

    def get_workflow(self, name: str) -> dict[str, Any]:
        with self._errors(f"workflow {self.namespace}/{name}"):
            return _model_dict(self.service.get_workflow(name, namespace=self.namespace))

    def submit_from_template(self, template: str, parameters: Mapping[str, str]) -> dict[str, Any]:
        """`argo submit --from workflowtemplate/NAME -p k=v ...`"""
        from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest

        req = WorkflowSubmitRequest(
            namespace=self.namespace,
            resource_kind="WorkflowTemplate",
            resource_name=template,
            submit_options=SubmitOpts(parameters=[f"{k}={v}" for k, v in parameters.items()]),
        )
        with self._errors(f"workflow from template {self.namespace}/{template}"):
            return _model_dict(self.service.submit_workflow(req, namespace=self.namespace))

    def _errors(self, what: str) -> _ErrorMapper:
        return _ErrorMapper(what, f"argo-server {self.host}", token_hint=True)


class _ErrorMapper:
    """Turns hera, requests and kubernetes errors into readable JetstreamErrors."""

    def __init__(self, what: str, where: str, token_hint: bool):
        self.what = what
        self.where = where
        self.token_hint = token_hint

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, JetstreamError):
            return None
        status = _status_of(exc)
        detail = _detail_of(exc)
        if status in (401, 403):
            hint = (
                " Set ARGO_TOKEN (argo auth token) or run in a pod whose service account "
                "may create workflows."
                if self.token_hint
                else " Check the kubeconfig or the pod's service account and its RBAC."
            )
            raise UnauthorizedError(
                f"{self.where} refused to create {self.what}: "
                f"{'unauthorized (401)' if status == 401 else 'forbidden (403)'}.{hint} {detail}".strip()
            ) from exc
        if status == 409:
            raise AlreadyExistsError(
                f"{self.what} already exists on {self.where} (409). It was submitted before; "
                f"delete it or wait for its TTL to submit the same work again. {detail}".strip()
            ) from exc
        if status is not None and status >= 500 or _is_connection_error(exc):
            raise TransientError(
                f"{self.where} unavailable while creating {self.what}: {exc}"
            ) from exc
        if status is not None:
            raise SubmitError(f"{self.where} rejected {self.what} ({status}): {detail}") from exc
        return None


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None


def _detail_of(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return str(body)
    return str(exc)


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import requests
        import urllib3
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, requests.ConnectionError | urllib3.exceptions.HTTPError | OSError)


def _describe(obj: Any, namespace: str) -> str:
    kind = type(obj).__name__
    name = getattr(obj, "name", None) or f"{getattr(obj, 'generate_name', '') or ''}*"
    return f"{kind} {namespace}/{name}"


def _model_dict(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.loads(model.json(by_alias=True, exclude_none=True))


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
    """Submit a hera Workflow built by `build_workflow`, through argo-server
    (`via="argo-server"`, needs `argo_server`) or the Kubernetes API (`via="kubernetes"`:
    in-cluster config, else the kubeconfig, else `kube_api_client`). Refuses an image
    without digest unless `allow_unpinned_image`. With `wait`, polls until it ends."""
    image = _workflow_image(workflow)
    require_pinned(image, allow_unpinned_image)
    namespace = workflow.namespace
    if via == "argo-server":
        if not argo_server:
            raise SubmitError("submitting through argo-server needs --argo-server URL")
        client: Any = ArgoServerClient(argo_server, namespace, token=token, verify_ssl=verify_ssl)
    elif via == "kubernetes":
        from jetstream.runners.kube import KubeClient

        client = KubeClient(namespace, api_client=kube_api_client)
    else:
        raise SubmitError(f"unknown submission path {via!r}: expected argo-server or kubernetes")
    created = client.create(workflow)
    name = created.get("metadata", {}).get("name") or workflow.name
    log.info("workflow submitted", workflow=name, namespace=namespace, via=via)
    if not wait:
        return Submitted(name, namespace)
    return wait_for(client.get_workflow, name, namespace, poll_interval, timeout)


def _workflow_image(workflow: Any) -> str:
    for p in workflow.arguments or []:
        if getattr(p, "name", None) == "image":
            return str(p.value)
    raise SubmitError("the workflow has no 'image' parameter; build it with build_workflow")


def apply_all(objects: Iterable[Any], client: Any) -> list[dict[str, Any]]:
    """Install or update WorkflowTemplates and CronWorkflows through a client."""
    return [client.apply(obj) for obj in objects]
