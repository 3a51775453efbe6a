"""Validation of Argo (and plain Kubernetes) manifests: the Argo JSON schema, made strict,
plus the semantic checks the schema cannot express. A development and test tool: it
returns a list of problems, each naming the object, the key path and what is wrong.

Modules: `schema` (the patched Argo JSON schema, loaded from a path the caller gives),
`semantics` (the checks the schema cannot express), `validate` (whole manifests).
"""

from __future__ import annotations

from jetstream.manifests.schema import load_schema, patch_schema, schema_errors
from jetstream.manifests.semantics import semantic_problems
from jetstream.manifests.validate import validate_all, validate_manifest

__all__ = [
    "load_schema",
    "patch_schema",
    "schema_errors",
    "semantic_problems",
    "validate_all",
    "validate_manifest",
]
