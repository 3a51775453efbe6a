"""The task graph as Argo Workflows (submission: `submit.py`).

Shape of one Workflow: the entrypoint DAG `main` has one task per experiment, each calling
that experiment's own DAG template (so the Argo UI stays navigable); the experiment DAG
has one task per graph node, or one looped task (`withItems` over dates) for the nodes of
a rerun that differ only by date and have exactly the same dependencies; every task calls
a container template shared by the whole Workflow that runs exactly the command the local
runner runs: `jetstream task <node args> <common args>` (the node's flag values are input
parameters; the image and the common arguments are workflow parameters).

Size: Argo refuses Workflow objects over 1 MiB without its status-offload database, and
etcd any object over 1.5 MiB; a production day is ~1,000 tasks (~1 MB as one Workflow).
`build_workflows` therefore packs whole experiments into Workflows of at most
`RunSettings.max_workflow_bytes` (default 256 KiB, leaving room for the status Argo adds
as pods run), and shares `RunSettings.max_concurrent_pods` among them as their
`parallelism`. Names are generated (`generateName`): resubmitting the same plan is made
idempotent by labels (`plan_labels`, checked in `submit.py`), not by name clashes.

Failure handling: leaf templates retry exit 75 (and pod-level errors) with exponential
backoff whose `maxDuration` covers every attempt's deadline; every DAG has failFast: false
so one failed task never stops the others; failure tolerance is written as `depends`
expressions, never `continueOn` (which Argo rejects next to `depends`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from jetstream.graph import TaskGraph, TaskNode, dns_label
from jetstream.runners.argo import pod_security
from jetstream.runners.common import RunSettings, check_graph, tolerates_failure_of

LABEL_PREFIX = "jetstream"
PLAN_LABEL = f"{LABEL_PREFIX}/plan"
TRIGGER_LABEL = f"{LABEL_PREFIX}/trigger"
EXPERIMENTS_ANNOTATION = f"{LABEL_PREFIX}/experiments"  # JSON list of the slugs it runs
# Error: the pod never ran to an exit code (evicted, node lost); 75: transient; > 128: the
# process died by a signal (128 + N; 137 = SIGKILL, the OOM killer), retried like 75
RETRY_EXPRESSION = (
    'lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 75'
    " || asInt(lastRetry.exitCode) > 128"
)
LOOP_PARAMETER = "date"
COMMON_PARAMETERS = {
    "--experiments": "experiments",
    "--config-repo": "config-repo",
    "--warehouse": "warehouse",
    "--out": "out",
}


class WorkflowTooLargeError(ValueError):
    """One experiment's work alone does not fit in a Workflow of the size limit."""


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
    """The `generateName` prefix of the graph's Workflows: readable (experiment, dates),
    ending in '-' so Argo appends a unique suffix."""
    dates = graph_dates(graph)
    span = dates[0] if len(dates) == 1 else (f"{dates[0]}-{dates[-1]}" if dates else "")
    slugs = graph.experiments
    middle = "-".join(p for p in (slugs[0] if len(slugs) == 1 else "", span) if p)
    # Kubernetes appends 5 characters to generateName; names stay within 63
    return dns_label(f"{prefix}-{middle}" if middle else prefix, limit=57) + "-"


def plan_labels(graph: TaskGraph, settings: RunSettings, trigger: str = "") -> dict[str, str]:
    """Labels naming a Workflow's work: `jetstream/plan` (digest of its nodes and common
    arguments) and, when the submission has a trigger (scheduled time, commit, parent
    workflow), `jetstream/trigger`. Two submissions with equal labels are the same work."""
    labels = {PLAN_LABEL: graph_digest(graph, settings)}
    if trigger:
        labels[TRIGGER_LABEL] = label_value(trigger)
    return labels


# -- shapes and groups -------------------------------------------------------------------


@attrs.frozen
class _Shape:
    """A node's args with flag values replaced by input-parameter names."""

    tokens: tuple[str, ...]  # literal tokens, or "{name}" markers for parameters
    values: tuple[tuple[str, str], ...]  # (parameter name, value) of this node


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


@attrs.frozen
class _Group:
    """Nodes run by one DAG task: one node, or nodes differing only by date (a loop)."""

    shape: _Shape  # of the first node
    nodes: tuple[TaskNode, ...]

    @property
    def looped(self) -> bool:
        return len(self.nodes) > 1


def _loop_key(node: TaskNode) -> tuple[Any, ...]:
    shape = _shape(node.args())
    fixed = tuple((n, v) for n, v in shape.values if n != LOOP_PARAMETER)
    looping = any(n == LOOP_PARAMETER for n, _ in shape.values)
    return (shape.tokens, fixed, node.id if not looping else "")


def group_nodes(nodes: Sequence[TaskNode]) -> list[_Group]:
    """Group an experiment's nodes into loops where that is exact: nodes of one loop
    differ only by date, none depends on another of the loop, and each depends on exactly
    the union of whole groups (so waiting for the looped task, which succeeds only when
    every iteration does, is the same as waiting for each node). Other nodes stay alone."""
    ids = {n.id: n for n in nodes}
    group_of: dict[str, tuple[Any, ...]] = {n.id: _loop_key(n) for n in nodes}
    while True:
        members: dict[tuple[Any, ...], list[str]] = {}
        for node_id, key in group_of.items():
            members.setdefault(key, []).append(node_id)
        broken: set[tuple[Any, ...]] = set()
        for key, node_ids in members.items():
            if len(node_ids) == 1:
                continue
            dep_groups: set[tuple[Any, ...]] | None = None
            for node_id in node_ids:
                deps = {d for d in ids[node_id].depends if d in ids}
                groups = {group_of[d] for d in deps}
                if key in groups or (dep_groups is not None and groups != dep_groups):
                    broken.add(key)
                    break
                dep_groups = groups
                if deps != {m for g in groups for m in members[g]}:
                    broken.add(key)  # depends on part of a loop: split that loop too
                    broken.update(groups)
                    break
        if not broken:
            break
        for node_id, key in list(group_of.items()):
            if key in broken:
                group_of[node_id] = (*key, node_id)
    out: dict[tuple[Any, ...], list[TaskNode]] = {}
    for n in nodes:
        out.setdefault(group_of[n.id], []).append(n)
    return [_Group(_shape(g[0].args()), tuple(g)) for g in out.values()]


# -- manifests as plain dicts ------------------------------------------------------------


def retry_strategy(settings: RunSettings, deadline: int | None) -> dict[str, Any]:
    """Retry exit 75 and pod errors with exponential backoff. Argo counts
    `backoff.maxDuration` from the first attempt's start and also cuts retried pods'
    deadlines to it, so it covers every attempt at its full deadline plus the waits."""
    backoff = settings.backoff_seconds
    waits = sum(backoff * 2**k for k in range(settings.retries))
    attempt = deadline if deadline is not None else 24 * 3600
    return {
        "limit": settings.retries,
        "retryPolicy": "Always",
        "expression": RETRY_EXPRESSION,
        "backoff": {
            "duration": f"{backoff}s",
            "factor": 2,
            "maxDuration": f"{(settings.retries + 1) * attempt + waits}s",
        },
    }


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


def _common_tokens(settings: RunSettings) -> list[str]:
    out: list[str] = []
    for flag, _ in settings.common_items():
        out += [flag, "{{workflow.parameters." + COMMON_PARAMETERS[flag] + "}}"]
    return out


def _leaf(name: str, shape: _Shape, kind: str, settings: RunSettings) -> dict[str, Any]:
    args = ["{{inputs.parameters." + t[1:-1] + "}}" if _is_marker(t) else t for t in shape.tokens]
    deadline = settings.deadlines.get(kind)
    leaf: dict[str, Any] = {
        "name": name,
        "inputs": {"parameters": [{"name": p} for p, _ in shape.values]},
        "metadata": {"labels": {f"{LABEL_PREFIX}/kind": kind}},
        "container": {
            "image": "{{workflow.parameters.image}}",
            "command": ["jetstream"],
            "args": ["task", *args, *_common_tokens(settings)],
            "env": [
                {"name": "JETSTREAM_LOG_FORMAT", "value": "json"},
                {"name": "JETSTREAM_RUN_ID", "value": "{{workflow.name}}"},
                {"name": "JETSTREAM_RUN_STARTED", "value": "{{workflow.creationTimestamp}}"},
                # no local runner records attempts: the task writes its own `runs` row
                {"name": "JETSTREAM_RECORD_RUN", "value": "1"},
                {"name": "JETSTREAM_ATTEMPT", "value": "{{retries}}"},
            ],
            "envFrom": [{"configMapRef": {"name": settings.settings_configmap, "optional": True}}],
        },
        "retryStrategy": retry_strategy(settings, deadline),
    }
    if deadline is not None:
        leaf["activeDeadlineSeconds"] = deadline
    patch = _pod_spec_patch(settings, kind)
    if patch is not None:
        leaf["podSpecPatch"] = patch
    return pod_security.apply(leaf)


class _Leaves:
    """Container templates shared by all experiments of a Workflow, one per arg shape."""

    def __init__(self, settings: RunSettings):
        self.settings = settings
        self.by_tokens: dict[tuple[str, ...], dict[str, Any]] = {}

    def name_for(self, shape: _Shape, kind: str) -> str:
        leaf = self.by_tokens.get(shape.tokens)
        if leaf is None:
            taken = {t["name"] for t in self.by_tokens.values()}
            name, n = kind, 1
            while name in taken or name == "main":
                n += 1
                name = f"{kind}-{n}"
            leaf = _leaf(name, shape, kind, self.settings)
            self.by_tokens[shape.tokens] = leaf
        return str(leaf["name"])


def _depends(group: _Group, task_of: Mapping[str, str]) -> str | None:
    deps = list(dict.fromkeys(task_of[d] for n in group.nodes for d in n.depends if d in task_of))
    if not deps:
        return None
    if tolerates_failure_of(group.nodes[0]):
        # Errored: a pod that never ran to an exit code (evicted, node lost) is not Failed
        return " && ".join(f"({d}.Succeeded || {d}.Failed || {d}.Errored)" for d in deps)
    return " && ".join(f"{d}.Succeeded" for d in deps)


def _experiment_dag(dag_name: str, nodes: Sequence[TaskNode], leaves: _Leaves) -> dict[str, Any]:
    groups = group_nodes(nodes)
    task_of: dict[str, str] = {}
    used: set[str] = set()
    names: list[str] = []
    for g in groups:
        first = g.nodes[0]
        base = first.name
        if g.looped and first.date is not None:  # the id without its date
            base = dns_label(first.id.replace("/" + first.date.isoformat(), "") + "/dates")
        name, n = base, 1
        while name in used:
            n += 1
            name = dns_label(f"{base}-{n}")
        used.add(name)
        names.append(name)
        for node in g.nodes:
            task_of[node.id] = name
    tasks = []
    for g, name in zip(groups, names, strict=True):
        first = g.nodes[0]
        task: dict[str, Any] = {
            "name": name,
            "template": leaves.name_for(g.shape, first.kind.value),
        }
        params = [
            {"name": p, "value": "{{item}}" if g.looped and p == LOOP_PARAMETER else v}
            for p, v in g.shape.values
        ]
        if params:
            task["arguments"] = {"parameters": params}
        if g.looped:
            task["withItems"] = [n.date.isoformat() for n in g.nodes if n.date is not None]
        depends = _depends(g, task_of)
        if depends:
            task["depends"] = depends
        tasks.append(task)
    return {"name": dag_name, "dag": {"failFast": False, "tasks": tasks}}


@attrs.frozen
class _Part:
    """One experiment's share of a Workflow: its DAG template and its task in `main`."""

    slug: str
    nodes: tuple[TaskNode, ...]
    dag: dict[str, Any]
    main_task: dict[str, Any]

    @property
    def size(self) -> int:
        # two commas, and its slug in the experiments annotation (a JSON string in JSON)
        return _size(self.dag) + _size(self.main_task) + 2 + 2 * _size(self.slug) + 2


def _size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def manifest_size(manifest: Mapping[str, Any]) -> int:
    """Bytes of the object as stored (compact JSON), what Argo's and etcd's limits count."""
    return _size(manifest)


def _parts(graph: TaskGraph, leaves: _Leaves) -> list[_Part]:
    order = check_graph(graph)
    if not order:
        raise ValueError("the task graph is empty: nothing to submit")
    used: set[str] = {"main", *(t["name"] for t in leaves.by_tokens.values())}

    def unique(candidate: str) -> str:
        label, n = dns_label(candidate), 1
        while label in used:
            n += 1
            label = dns_label(f"{candidate}-{n}")
        used.add(label)
        return label

    parts = []
    for slug in graph.experiments:
        nodes = tuple(n for n in order if n.slug == slug)
        dag = _experiment_dag(unique(f"exp-{slug}"), nodes, leaves)
        parts.append(_Part(slug, nodes, dag, {"name": unique(slug), "template": dag["name"]}))
    return parts


def _manifest(
    parts: Sequence[_Part],
    leaves: _Leaves,
    settings: RunSettings,
    labels: Mapping[str, str],
    parallelism: int,
    generate_name: str,
) -> dict[str, Any]:
    used = {t["template"] for p in parts for t in p.dag["dag"]["tasks"]}
    templates = [
        {"name": "main", "dag": {"failFast": False, "tasks": [p.main_task for p in parts]}},
        *(p.dag for p in parts),
        *(leaf for leaf in leaves.by_tokens.values() if leaf["name"] in used),
    ]
    parameters = [{"name": "image", "value": settings.image}] + [
        {"name": COMMON_PARAMETERS[flag], "value": value} for flag, value in settings.common_items()
    ]
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "arguments": {"parameters": parameters},
        "parallelism": parallelism,
        "podGC": {"strategy": "OnPodSuccess"},
        "ttlStrategy": {"secondsAfterCompletion": settings.ttl_seconds},
        "templates": templates,
    }
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    if settings.mutex:
        spec["synchronization"] = {"mutexes": [{"name": settings.mutex}]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": generate_name,
            "namespace": settings.namespace,
            "labels": dict(labels),
            "annotations": {
                EXPERIMENTS_ANNOTATION: json.dumps([p.slug for p in parts], separators=(",", ":"))
            },
        },
        "spec": spec,
    }


def _labels(
    graph: TaskGraph, settings: RunSettings, extra: Mapping[str, str] | None
) -> dict[str, str]:
    labels = {f"{LABEL_PREFIX}/app": "jetstream"}
    dates = graph_dates(graph)
    if dates:
        labels[f"{LABEL_PREFIX}/date"] = label_value(
            dates[0] if len(dates) == 1 else f"{dates[0]}_{dates[-1]}"
        )
    if len(graph.experiments) == 1:
        labels[f"{LABEL_PREFIX}/experiment"] = label_value(graph.experiments[0])
    extra = dict(extra or {})
    trigger = extra.pop(TRIGGER_LABEL, "")
    labels.update(extra)
    labels.update(plan_labels(graph, settings, trigger))
    return labels


def _pack(parts: Sequence[_Part], budget: int) -> list[list[_Part]]:
    chunks: list[list[_Part]] = []
    current: list[_Part] = []
    total = 0
    for part in parts:
        if part.size > budget:
            raise WorkflowTooLargeError(
                f"experiment {part.slug!r}: its {len(part.nodes)} tasks need {part.size:,} "
                f"bytes of Workflow, over the {budget:,}-byte room of one Workflow "
                "(RunSettings.max_workflow_bytes); rerun it over fewer dates "
                "(--start-date/--end-date)"
            )
        if current and total + part.size > budget:
            chunks.append(current)
            current, total = [], 0
        current.append(part)
        total += part.size
    if current:
        chunks.append(current)
    return chunks


def build_manifests(
    graph: TaskGraph, settings: RunSettings, labels: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The graph as Workflow manifests (dicts), each at most `settings.max_workflow_bytes`
    (whole experiments packed in graph order), sharing `settings.max_concurrent_pods`.
    A `jetstream/trigger` entry in `labels` becomes part of every plan label."""
    leaves = _Leaves(settings)
    parts = _parts(graph, leaves)
    # the room left for experiments beside the metadata, parameters and shared templates
    shell = _manifest([], leaves, settings, _labels(graph, settings, labels), 1, "x" * 58)
    shell["spec"]["templates"] += list(leaves.by_tokens.values())
    budget = settings.max_workflow_bytes - manifest_size(shell)
    chunks = _pack(parts, budget)
    share = max(1, settings.max_concurrent_pods // len(chunks))
    parallelism = max(1, min(settings.parallelism, share))
    out = []
    for chunk in chunks:
        sub = TaskGraph(tuple(n for p in chunk for n in p.nodes))
        manifest = _manifest(
            chunk,
            leaves,
            settings,
            _labels(sub, settings, labels),
            parallelism,
            workflow_name(sub, settings),
        )
        out.append(manifest)
    return out


def as_hera(manifest: Mapping[str, Any]) -> Any:
    """A hera `Workflow` of a manifest (what the submission clients take)."""
    from hera.workflows import Workflow

    return Workflow.from_dict(dict(manifest))


def build_workflows(
    graph: TaskGraph, settings: RunSettings, labels: Mapping[str, str] | None = None
) -> list[Any]:
    """`build_manifests` as hera Workflows."""
    return [as_hera(m) for m in build_manifests(graph, settings, labels)]


def build_workflow(
    graph: TaskGraph,
    settings: RunSettings,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Any:
    """The whole graph as ONE hera Workflow regardless of size (inspection, small graphs;
    submissions use `build_workflows`). `name` sets a fixed name instead of generateName."""
    leaves = _Leaves(settings)
    parts = _parts(graph, leaves)
    manifest = _manifest(
        parts,
        leaves,
        settings,
        _labels(graph, settings, labels),
        settings.parallelism,
        workflow_name(graph, settings),
    )
    if name:
        manifest["metadata"].pop("generateName")
        manifest["metadata"]["name"] = name
    return as_hera(manifest)
