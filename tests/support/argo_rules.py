"""Argo's own rules, read from its validator and controller source (argoproj/argo-workflows
v3.5.14 and v3.6.19, the supported versions), as check functions over manifests (dicts).
No Argo binary or API server runs here, so each rule is encoded from the code that
enforces it; each function returns a list of problems (empty: the object passes).

Sources (file: function):
- workflow/common/configmap.go: GetConfigMapValue — a parameter's
  `valueFrom.configMapKeyRef` is read only from a ConfigMap labelled
  `workflows.argoproj.io/configmap-type: Parameter` ("ConfigMap '%s' needs to have the
  label ... to load parameters"; the controller's ConfigMap informer is also filtered on it).
- workflow/validate/validate.go: ValidateCronWorkflow — 3.5 parses `spec.schedule` only
  (`cron.ParseStandard(cronWf.Spec.Schedule)`, so a CronWorkflow with only `schedules`
  is "cron schedule is malformed: empty spec string"); 3.6 refuses `schedule` together with
  `schedules` and parses every entry of `GetSchedules`; names <= 52 characters.
- workflow/controller/operator.go: processNodeRetries — `backoff.maxDuration` is counted
  from the first attempt's `StartedAt` ("Max duration limit exceeded") and the retried
  pod's execution deadline is cut to it; so it must cover every attempt at its
  `activeDeadlineSeconds` plus the backoff waits (`duration * factor**n`), or be unset.
- workflow/controller/dag.go: evaluateDependsLogic and workflow/common/ancestry.go — in a
  `depends` expression `X.Failed` is `phase == Failed` and `X.Errored` is `phase == Error`
  (a pod evicted or lost); a dependency meant to tolerate failure must name both.
- workflow/packer/packer.go: IsLargeWorkflow — a Workflow whose JSON (`json.Marshal`) is
  over MAX_WORKFLOW_SIZE (default 1024 * 1024 bytes) fails unless its node status can be
  compressed or offloaded; etcd refuses any object over 1.5 MiB. Submitted objects are
  held to `BUDGET` (256 KiB), which leaves the status room to grow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

PARAMETER_LABEL = ("workflows.argoproj.io/configmap-type", "Parameter")
MAX_WORKFLOW_SIZE = 1024 * 1024
ETCD_LIMIT = 1536 * 1024
BUDGET = 256 * 1024
SUPPORTED = ("3.5", "3.6")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def workflow_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec", {})
    return spec.get("workflowSpec", spec) if obj.get("kind") == "CronWorkflow" else spec


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')} {meta.get('name') or meta.get('generateName', '?') + '*'}"


def seconds(duration: Any) -> float:
    """An Argo duration ("90s", "15m", "1h30m", or a bare number of seconds)."""
    text = str(duration).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def _templates(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(workflow_spec(obj).get("templates", []))


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}.{i}")


# -- the rules ---------------------------------------------------------------------------


def configmap_parameters(
    obj: Mapping[str, Any], configmap_labels: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Every parameter read through `valueFrom.configMapKeyRef` names a ConfigMap (given
    as name -> labels, from the chart) carrying the Parameter label."""
    out = []
    for path, value in _walk(obj):
        if not (isinstance(value, Mapping) and "configMapKeyRef" in value):
            continue
        if not path.endswith("valueFrom"):
            continue
        ref = value["configMapKeyRef"]
        labels = configmap_labels.get(ref.get("name"))
        if labels is None:
            out.append(f"{_name(obj)}: {path} reads ConfigMap {ref.get('name')!r}, not installed")
        elif labels.get(PARAMETER_LABEL[0]) != PARAMETER_LABEL[1]:
            out.append(
                f"{_name(obj)}: {path} reads ConfigMap {ref.get('name')!r}, which lacks the "
                f"label {PARAMETER_LABEL[0]}: {PARAMETER_LABEL[1]}"
            )
    return out


def cron_schedule(obj: Mapping[str, Any], version: str) -> list[str]:
    """What ValidateCronWorkflow of Argo `version` ("3.5" or "3.6") accepts."""
    if obj.get("kind") != "CronWorkflow":
        return []
    from croniter import croniter  # type: ignore[import-untyped]

    spec = obj["spec"]
    out = []
    if len(obj["metadata"].get("name", "")) > 52:
        out.append(f"{_name(obj)}: name longer than 52 characters")
    if version == "3.5":
        schedules = [spec.get("schedule", "")]  # 3.5 has no `schedules` field at all
    elif version == "3.6":
        if spec.get("schedule") and spec.get("schedules"):
            out.append(f"{_name(obj)}: both schedule and schedules")
        schedules = spec.get("schedules") or [spec.get("schedule", "")]
    else:
        raise ValueError(f"unsupported Argo version {version}")
    for s in schedules:
        if not s or not croniter.is_valid(str(s)):
            out.append(f"{_name(obj)}: Argo {version}: cron schedule {s!r} is malformed")
    return out


def retry_covers_deadline(obj: Mapping[str, Any]) -> list[str]:
    """`backoff.maxDuration`, when set, covers (limit + 1) attempts at the template's
    activeDeadlineSeconds plus the backoff waits."""
    out = []
    for t in _templates(obj):
        retry = t.get("retryStrategy") or {}
        backoff = retry.get("backoff") or {}
        if "maxDuration" not in backoff:
            continue
        max_duration = seconds(backoff["maxDuration"])
        deadline = t.get("activeDeadlineSeconds")
        if deadline is None:
            out.append(
                f"{_name(obj)}: template {t['name']}: maxDuration {backoff['maxDuration']} "
                "with no activeDeadlineSeconds cuts off a long attempt"
            )
            continue
        limit = int(retry.get("limit", 0))
        base = seconds(backoff.get("duration", "0s"))
        factor = float(backoff.get("factor", 1) or 1)
        waits = sum(base * factor**n for n in range(limit))
        need = (limit + 1) * int(deadline) + waits
        if max_duration < need:
            out.append(
                f"{_name(obj)}: template {t['name']}: maxDuration {backoff['maxDuration']} "
                f"< {need:.0f}s = {limit + 1} attempts x {deadline}s + {waits:.0f}s of backoff: "
                "a transient failure late in the first attempt is never retried"
            )
    return out


_RESULT = re.compile(r"([A-Za-z0-9_.-]+)\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned)\b")


def tolerant_depends_cover_errored(obj: Mapping[str, Any]) -> list[str]:
    """A task that runs after a dependency Failed also runs after it Errored."""
    out = []
    for t in _templates(obj):
        for task in (t.get("dag") or {}).get("tasks", []):
            results: dict[str, set[str]] = {}
            for dep, result in _RESULT.findall(task.get("depends") or ""):
                results.setdefault(dep, set()).add(result)
            for dep, seen in results.items():
                if "Failed" in seen and "Errored" not in seen:
                    out.append(
                        f"{_name(obj)}: task {task['name']} runs after {dep}.Failed but not "
                        f"after {dep}.Errored (an evicted pod)"
                    )
    return out


def size(obj: Mapping[str, Any]) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def within_size(obj: Mapping[str, Any], budget: int = BUDGET) -> list[str]:
    """The object's JSON is within `budget` (and so under Argo's 1 MiB and etcd's 1.5 MiB)."""
    n = size(obj)
    if n > budget:
        return [f"{_name(obj)}: {n:,} bytes, over {budget:,}"]
    return []


def all_rules(
    obj: Mapping[str, Any], configmap_labels: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Every rule, for every supported version."""
    out = configmap_parameters(obj, configmap_labels)
    for version in SUPPORTED:
        out += cron_schedule(obj, version)
    return out + retry_covers_deadline(obj) + tolerant_depends_cover_errored(obj) + within_size(obj)
