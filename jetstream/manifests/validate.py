"""Validation of whole manifests: Argo objects against the strict schema and the
semantic checks; plain Kubernetes objects with kubernetes-validate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jetstream.manifests.schema import schema_errors
from jetstream.manifests.semantics import semantic_problems

ARGO_GROUP = "argoproj.io/"
ARGO_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")


def validate_manifest(
    obj: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    others: Sequence[Mapping[str, Any]] = (),
    kube_version: str = "1.33.0",
) -> list[str]:
    """Every problem of one manifest: schema, then semantics. `others` are manifests
    installed alongside (WorkflowTemplates that templateRefs may name). `schema` (from
    `load_schema`) is required for Argo kinds; plain Kubernetes objects do not use it."""
    kind = str(obj.get("kind", ""))
    name = _name(obj)
    where = f"{kind or 'object'} {name}"
    if not str(obj.get("apiVersion", "")).startswith(ARGO_GROUP):
        return [f"{where}: {p}" for p in _kubernetes_problems(obj, kube_version)]
    if kind not in ARGO_KINDS:
        return [
            f"{where}: kind: unsupported Argo kind {kind!r}; expected one of {', '.join(ARGO_KINDS)}"
        ]
    if schema is None:
        raise ValueError(
            f"{where}: validating an Argo {kind} needs the Argo JSON schema; "
            "pass load_schema(path to argo-workflows.schema.json)"
        )
    problems = schema_errors(obj, kind, schema)
    problems += semantic_problems(obj, others)
    return [f"{where}: {p}" for p in problems]


def validate_all(
    objs: Sequence[Mapping[str, Any]], schema: Mapping[str, Any] | None = None
) -> list[str]:
    out: list[str] = []
    for obj in objs:
        out += validate_manifest(obj, schema, others=objs)
    return out


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("name") or (meta.get("generateName", "") + "*") or "?")


def _kubernetes_problems(obj: Mapping[str, Any], version: str) -> list[str]:
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - dev dependency
        return ["kubernetes-validate is not installed; cannot check this manifest"]
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(top)"
        return [f"{path}: {exc.message}"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return [f"kind: {exc}"]
    return []
