"""The strict Argo JSON schema and validation against it.

The schema is not shipped with jetstream (it is large): callers pass its path, e.g. the
`argo-workflows.schema.json` published with Argo Workflows. Patches (see the shared
TESTING notes): IntOrString accepts integers too (the published schema says string only),
and every object definition with `properties` gets `additionalProperties: false`, so a
misspelt key is an error instead of being ignored. The published schema is Argo 4's; the
supported versions are 3.5 and 3.6, whose CronWorkflowSpec has the string `schedule`
(3.5 reads nothing else), so `schedule` is added back and `schedules` is not required
(the semantic checks require exactly one of them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFINITION_PREFIX = "io.argoproj.workflow.v1alpha1."


def patch_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The strict schema: IntOrString fixed, additionalProperties false on objects."""
    out = copy.deepcopy(dict(schema))
    defs = out["definitions"]
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"type": ["integer", "string"]}
    cron = defs.get(DEFINITION_PREFIX + "CronWorkflowSpec")
    if cron is not None:
        cron["properties"].setdefault(
            "schedule", {"type": "string", "description": "Argo <= 3.6: the cron schedule"}
        )
        cron["required"] = [r for r in cron.get("required", []) if r != "schedules"]
    for definition in defs.values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return out


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Argo JSON schema not found at {path} (argo-workflows.schema.json of Argo "
            "Workflows; pass its path)"
        ) from None
    return patch_schema(raw)


def load_schema(path: str | Path) -> dict[str, Any]:
    """The patched schema read from `path` (cached per path)."""
    return _load(str(path))


@lru_cache(maxsize=32)
def _validator(schema_id: int, definition: str) -> Any:
    import jsonschema

    schema = _SCHEMAS[schema_id]
    root = {
        "$schema": schema.get("$schema", "https://json-schema.org/draft/2020-12/schema"),
        "$ref": f"#/definitions/{definition}",
        "definitions": schema["definitions"],
    }
    cls = jsonschema.validators.validator_for(root)
    return cls(root)


_SCHEMAS: dict[int, dict[str, Any]] = {}


def schema_errors(obj: Mapping[str, Any], definition: str, schema: Mapping[str, Any]) -> list[str]:
    """Schema problems of `obj` against one definition (`Workflow`, `WorkflowCreateRequest`,
    ... or a full definition name) of `schema` (from `load_schema`)."""
    key = id(schema)
    _SCHEMAS[key] = schema  # type: ignore[assignment]  # kept alive: ids stay unique
    full = definition if "." in definition else DEFINITION_PREFIX + definition
    validator = _validator(key, full)
    out = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in err.absolute_path) or "(top)"
        out.append(f"{path}: {_short(err.message)}")
    return out


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
