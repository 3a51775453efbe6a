"""Test helper: the commands a rendered Argo workflow runs, to compare with what the local
runner runs (`LocalRunner.commands`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PARAM_RE = re.compile(r"\{\{\s*(inputs|workflow)\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")


def workflow_spec(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = manifest.get("spec", {})
    return spec.get("workflowSpec", spec) if manifest.get("kind") == "CronWorkflow" else spec


def _leaf_commands(
    task: Mapping[str, Any], leaf: Mapping[str, Any], wf_params: Mapping[str, str]
) -> list[tuple[str, ...]]:
    """The commands one DAG task runs: one, or one per `withItems` item."""
    out = []
    items = task.get("withItems")
    for item in items if items is not None else [None]:
        inputs = {
            p["name"]: p.get("value", p.get("default", ""))
            for p in leaf.get("inputs", {}).get("parameters", [])
        }
        for p in task.get("arguments", {}).get("parameters", []):
            value = p.get("value", "")
            if item is not None:
                value = value.replace("{{item}}", str(item))
            inputs[p["name"]] = value

        def sub(text: str, inputs: Mapping[str, str] = inputs) -> str:
            return _PARAM_RE.sub(
                lambda m: str((inputs if m.group(1) == "inputs" else wf_params)[m.group(2)]),
                text,
            )

        container = leaf["container"]
        command = [sub(c) for c in container.get("command", [])]
        args = [sub(a) for a in container.get("args", [])]
        out.append(tuple(args) if command == ["jetstream"] else tuple(command + args))
    return out


def _dags(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    spec = workflow_spec(manifest)
    wf_params = {
        p["name"]: p.get("value", "") for p in spec.get("arguments", {}).get("parameters", [])
    }
    return {t["name"]: t for t in spec.get("templates", [])}, wf_params


def commands_of(manifest: Mapping[str, Any]) -> set[tuple[str, ...]]:
    """Every command the workflow's DAG tasks run (loops expanded), with parameters
    substituted; for a `jetstream` container, the argv after the program (what
    `LocalRunner.commands` gives)."""
    return set(waits_of(manifest))


_DEP = re.compile(r"([a-z0-9-]+)\.(?:Succeeded|Failed|Errored)")


def waits_of(manifest: Mapping[str, Any]) -> dict[tuple[str, ...], frozenset[tuple[str, ...]]]:
    """command -> the commands it waits for (through `depends` on sibling DAG tasks, a loop
    counting as all its iterations)."""
    templates, wf_params = _dags(manifest)
    out: dict[tuple[str, ...], frozenset[tuple[str, ...]]] = {}
    for tmpl in templates.values():
        tasks = tmpl.get("dag", {}).get("tasks", [])
        runs: dict[str, list[tuple[str, ...]]] = {}
        for task in tasks:
            leaf = templates.get(task.get("template", ""))
            if leaf is not None and "container" in leaf:
                runs[task["name"]] = _leaf_commands(task, leaf, wf_params)
        for task in tasks:
            if task["name"] not in runs:
                continue
            deps = set(_DEP.findall(task.get("depends") or ""))
            waits = frozenset(c for d in deps for c in runs.get(d, []))
            for command in runs[task["name"]]:
                out[command] = waits
    return out
