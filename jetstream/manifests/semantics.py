"""The semantic checks of Argo manifests that the JSON schema cannot express: names and
labels, cron schedules, entrypoints and template references, parameters, DAG dependencies
and cycles. Pure: each check returns a list of problems naming the key path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TEMPLATE_TYPES = (
    "container",
    "script",
    "dag",
    "steps",
    "resource",
    "suspend",
    "data",
    "http",
    "containerSet",
    "plugin",
)
RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
TASK_RESULTS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
CRON_NAME_MAX = 52  # Argo appends an 11-character timestamp suffix to make workflow names
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
PARAM_REF = re.compile(r"\{\{\s*(inputs|workflow)\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")
WORKFLOW_NAME_MAX = 63  # the name becomes a label value on every pod


def semantic_problems(
    obj: Mapping[str, Any], others: Sequence[Mapping[str, Any]] = ()
) -> list[str]:
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    out: list[str] = []
    out += _metadata_problems(kind, meta)
    if kind == "CronWorkflow":
        out += _cron_problems(spec)
        out += [
            f"spec.workflowSpec.{p}"
            for p in _workflow_spec_problems(spec.get("workflowSpec") or {}, kind, others)
        ]
    else:
        out += [f"spec.{p}" for p in _workflow_spec_problems(spec, kind, others)]
    return out


def _metadata_problems(kind: Any, meta: Mapping[str, Any]) -> list[str]:
    out = []
    name = meta.get("name")
    gen = meta.get("generateName")
    if not name and not gen:
        out.append("metadata: needs name or generateName")
    if name:
        limit = CRON_NAME_MAX if kind == "CronWorkflow" else WORKFLOW_NAME_MAX
        if not DNS_LABEL.match(name):
            out.append(f"metadata.name: {name!r} is not a DNS-1123 label (a-z, 0-9, '-')")
        if len(name) > limit:
            out.append(
                f"metadata.name: {name!r} is {len(name)} characters; {kind} names must be <= {limit}"
            )
    if gen and not re.match(r"^[a-z0-9]([-a-z0-9]*)?$", gen):
        out.append(f"metadata.generateName: {gen!r} is not a DNS-1123 prefix")
    for key, value in (meta.get("labels") or {}).items():
        out += [f"metadata.labels.{key}: {p}" for p in _label_problems(key, value)]
    return out


def _label_problems(key: str, value: Any) -> list[str]:
    out = []
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        out.append(f"label prefix {prefix!r} is not a DNS subdomain")
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        out.append(f"label name {name!r} is not valid")
    if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
        out.append(f"label value {value!r} is not valid (<= 63 of A-Z a-z 0-9 - _ .)")
    return out


def _cron_problems(spec: Mapping[str, Any]) -> list[str]:
    # Argo 3.5 reads only `schedule`; 3.6 reads either and refuses both
    # (workflow/validate/validate.go, ValidateCronWorkflow)
    out = []
    if spec.get("schedule") and spec.get("schedules"):
        out.append("spec: cannot have both schedule and schedules (Argo 3.6 refuses it)")
    schedules = [spec["schedule"]] if spec.get("schedule") else list(spec.get("schedules") or [])
    if not schedules:
        out.append("spec.schedule: a cron schedule is required")
    try:
        from croniter import croniter  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        croniter = None
    for i, sched in enumerate(schedules):
        if croniter is not None and not croniter.is_valid(str(sched)):
            out.append(f"spec.schedules.{i}: {sched!r} is not a valid cron expression")
    tz = spec.get("timezone")
    if tz:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            out.append(f"spec.timezone: unknown time zone {tz!r}")
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in CONCURRENCY_POLICIES:
        out.append(
            f"spec.concurrencyPolicy: {policy!r} is not one of {', '.join(CONCURRENCY_POLICIES)}"
        )
    return out


def _workflow_spec_problems(
    spec: Mapping[str, Any], kind: Any, others: Sequence[Mapping[str, Any]]
) -> list[str]:
    out: list[str] = []
    templates = spec.get("templates") or []
    by_name: dict[str, Mapping[str, Any]] = {}
    for i, t in enumerate(templates):
        name = t.get("name", "")
        if name in by_name:
            out.append(f"templates.{i}.name: duplicate template name {name!r}")
        by_name[name] = t
    wf_params = {p.get("name"): p for p in (spec.get("arguments") or {}).get("parameters") or []}
    entry = spec.get("entrypoint")
    if entry is None:
        if kind in ("Workflow", "CronWorkflow") and not spec.get("workflowTemplateRef"):
            out.append("entrypoint: missing")
    elif entry not in by_name:
        out.append(f"entrypoint: {entry!r} names no template")
    elif kind != "WorkflowTemplate" and kind != "ClusterWorkflowTemplate":
        out += [
            f"arguments.parameters: {p}"
            for p in _missing_inputs(by_name[entry], set(_supplied(wf_params)))
        ]
    ext = _external_templates(others)
    for i, t in enumerate(templates):
        out += [
            f"templates.{i}({t.get('name')}).{p}"
            for p in _template_problems(t, by_name, ext, wf_params)
        ]
    for i, t in enumerate(templates):
        text = json.dumps(t)
        for scope, pname in PARAM_REF.findall(text):
            if scope == "workflow" and pname not in wf_params:
                out.append(
                    f"templates.{i}({t.get('name')}): refers to workflow parameter {pname!r}, "
                    "which spec.arguments does not declare"
                )
    return out


def _supplied(params: Mapping[Any, Mapping[str, Any]]) -> Iterable[str]:
    return [str(n) for n in params]


def _missing_inputs(template: Mapping[str, Any], supplied: set[str]) -> list[str]:
    out = []
    for p in (template.get("inputs") or {}).get("parameters") or []:
        has_default = any(k in p for k in ("value", "default", "valueFrom"))
        if not has_default and p.get("name") not in supplied:
            out.append(
                f"required input parameter {p.get('name')!r} of template {template.get('name')!r} is not supplied"
            )
    return out


def _external_templates(
    others: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, Mapping[str, Any]]]:
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for o in others:
        if o.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate"):
            name = (o.get("metadata") or {}).get("name", "")
            out[name] = {t.get("name"): t for t in (o.get("spec") or {}).get("templates") or []}
    return out


def _template_problems(
    t: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    ext: Mapping[str, Mapping[str, Mapping[str, Any]]],
    wf_params: Mapping[Any, Any],
) -> list[str]:
    out: list[str] = []
    name = t.get("name", "")
    if not DNS_LABEL.match(name) or len(name) > 63:
        out.append(f"name: {name!r} is not a DNS-1123 label (<= 63 of a-z, 0-9, '-')")
    types = [k for k in TEMPLATE_TYPES if k in t]
    if len(types) != 1:
        out.append(
            f"{'/'.join(types) or 'type'}: a template has exactly one of "
            f"{', '.join(TEMPLATE_TYPES)}; found {len(types)}"
        )
    leaf = not any(k in t for k in ("dag", "steps"))
    if "activeDeadlineSeconds" in t and not leaf:
        out.append("activeDeadlineSeconds: only valid on leaf templates (not dag or steps)")
    retry = t.get("retryStrategy")
    if retry is not None:
        policy = retry.get("retryPolicy")
        if policy is not None and policy not in RETRY_POLICIES:
            out.append(
                f"retryStrategy.retryPolicy: {policy!r} is not one of {', '.join(RETRY_POLICIES)}"
            )
        if retry.get("expression") == "":
            out.append("retryStrategy.expression: empty")
    patch = t.get("podSpecPatch")
    if patch is not None and "{{" not in patch:
        out += [f"podSpecPatch: {p}" for p in _pod_spec_patch_problems(patch)]
    declared = {p.get("name") for p in (t.get("inputs") or {}).get("parameters") or []}
    for scope, pname in PARAM_REF.findall(json.dumps({k: v for k, v in t.items() if k != "dag"})):
        if scope == "inputs" and pname not in declared:
            out.append(f"inputs.parameters: {pname!r} is used but not declared")
    for key in ("dag", "steps"):
        if key in t:
            out += _invocation_problems(t, key, by_name, ext)
    for key, value in ((t.get("metadata") or {}).get("labels") or {}).items():
        if "{{" not in str(value):
            out += [f"metadata.labels.{key}: {p}" for p in _label_problems(key, value)]
    return out


def _pod_spec_patch_problems(patch: str) -> list[str]:
    import yaml

    try:
        value = yaml.safe_load(patch)
    except yaml.YAMLError as exc:
        return [f"not valid JSON or YAML: {exc}"]
    if not isinstance(value, dict):
        return ["must be a pod spec object"]
    out = []
    for i, c in enumerate(value.get("containers") or []):
        if not isinstance(c, dict) or "name" not in c:
            out.append(f"containers.{i}: each patched container needs its name (main)")
    unknown = set(value) - _POD_SPEC_FIELDS
    if unknown:
        out.append(f"unknown pod spec fields {sorted(unknown)}")
    return out


_POD_SPEC_FIELDS = {
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers",
    "dnsConfig", "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases",
    "hostIPC", "hostNetwork", "hostPID", "hostUsers", "hostname", "imagePullSecrets",
    "initContainers", "nodeName", "nodeSelector", "os", "overhead", "preemptionPolicy",
    "priority", "priorityClassName", "readinessGates", "resourceClaims", "resources",
    "restartPolicy", "runtimeClassName", "schedulerName", "schedulingGates",
    "securityContext", "serviceAccount", "serviceAccountName", "setHostnameAsFQDN",
    "shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds", "tolerations",
    "topologySpreadConstraints", "volumes",
}  # fmt: skip


def _invocation_problems(
    t: Mapping[str, Any],
    key: str,
    by_name: Mapping[str, Mapping[str, Any]],
    ext: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> list[str]:
    out: list[str] = []
    if key == "dag":
        tasks = list((t.get("dag") or {}).get("tasks") or [])
        prefix = "dag.tasks"
    else:
        tasks = [s for group in t.get("steps") or [] for s in group]
        prefix = "steps"
    names = [x.get("name", "") for x in tasks]
    for i, task in enumerate(tasks):
        where = f"{prefix}.{i}({task.get('name')})"
        tname = task.get("name", "")
        if not DNS_LABEL.match(tname) or len(tname) > 63:
            out.append(f"{where}.name: {tname!r} is not a DNS-1123 label")
        if names.count(tname) > 1:
            out.append(f"{where}.name: duplicate task name {tname!r}")
        callee = _callee(task, by_name, ext)
        if isinstance(callee, str):
            out.append(f"{where}: {callee}")
        elif callee is not None:
            supplied = {
                p.get("name") for p in (task.get("arguments") or {}).get("parameters") or []
            }
            out += [f"{where}.arguments: {p}" for p in _missing_inputs(callee, supplied)]
        if key == "dag":
            if "continueOn" in task and ("depends" in task or "dependencies" in task):
                out.append(
                    f"{where}.continueOn: cannot be used with depends/dependencies "
                    "(Argo rejects it); tolerate failures in the depends expression"
                )
            if "depends" in task and "dependencies" in task:
                out.append(f"{where}: use depends or dependencies, not both")
            for dep in _dependency_names(task):
                if dep not in names:
                    out.append(f"{where}.depends: {dep!r} is not a task of this DAG")
                elif dep == tname:
                    out.append(f"{where}.depends: a task cannot depend on itself")
    if key == "dag":
        cycle = _find_cycle({x.get("name", ""): _dependency_names(x) for x in tasks})
        if cycle:
            out.append(f"dag.tasks: dependency cycle {' -> '.join(cycle)}")
    return out


def _callee(
    task: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    ext: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> Mapping[str, Any] | str | None:
    """The template a task calls, an error message, or None when it cannot be checked."""
    if "template" in task and "templateRef" in task:
        return "has both template and templateRef"
    if "template" in task:
        name = task["template"]
        return by_name.get(name) or f"template {name!r} names no template of this workflow"
    ref = task.get("templateRef")
    if ref is not None:
        wt, tn = ref.get("name"), ref.get("template")
        if wt not in ext:
            return f"templateRef names WorkflowTemplate {wt!r}, which is not among the manifests"
        return ext[wt].get(tn) or f"templateRef: WorkflowTemplate {wt!r} has no template {tn!r}"
    if "inline" in task:
        return None
    return "calls no template (template, templateRef or inline)"


_DEP_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z]+)?")


def _dependency_names(task: Mapping[str, Any]) -> list[str]:
    names = list(task.get("dependencies") or [])
    expr = task.get("depends")
    if expr:
        for tok in _DEP_TOKEN.findall(expr):
            base, _, result = tok.partition(".")
            if result and result not in TASK_RESULTS:
                names.append(f"{base}.{result}")  # reported as unknown
            else:
                names.append(base)
    return list(dict.fromkeys(names))


def _find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for d in edges.get(n, ()):
            if d not in edges:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if state.get(d) is None:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return []

    for n in edges:
        if state.get(n) is None:
            found = visit(n)
            if found:
                return found
    return []
