"""The task graph as ONE Argo Workflow, built with hera (submission: `submit.py`).

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
import re
from collections.abc import Mapping
from typing import Any

import attrs

from jetstream.graph import TaskGraph, dns_label
from jetstream.runners.common import (
    RunSettings,
    check_graph,
    dependency_expression,
)

LABEL_PREFIX = "jetstream"
RETRY_EXPRESSION = 'lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 75'
COMMON_PARAMETERS = {
    "--experiments": "experiments",
    "--config-repo": "config-repo",
    "--warehouse": "warehouse",
    "--out": "out",
}


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
                        Env(name="JETSTREAM_RUN_STARTED", value="{{workflow.creationTimestamp}}"),
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
