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
