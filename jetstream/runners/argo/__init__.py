"""The Argo side of the runners: `build` (the task graph as Workflows of bounded size),
`submit` (idempotent submission, waiting, failed-node summary, installing objects), `clients` (argo-server)
and `kube` (Kubernetes API), `errors` (error mapping), `templates` (the six cluster
objects) and `runner` (`ArgoRunner`). hera and kubernetes are imported only when used."""

from jetstream.runners.argo.build import (
    LABEL_PREFIX,
    PLAN_LABEL,
    RETRY_EXPRESSION,
    TRIGGER_LABEL,
    WorkflowTooLargeError,
    build_manifests,
    build_workflow,
    build_workflows,
    label_value,
    manifest_size,
    workflow_name,
)
from jetstream.runners.argo.clients import ArgoServerClient
from jetstream.runners.argo.errors import (
    AlreadyExistsError,
    SubmitError,
    UnauthorizedError,
    UnpinnedImageError,
)
from jetstream.runners.argo.runner import ArgoRunner
from jetstream.runners.argo.submit import (
    FailedNode,
    Submission,
    Submitted,
    apply_all,
    client_for,
    failed_nodes,
    submit,
    submit_all,
    wait_for,
)

__all__ = [
    "LABEL_PREFIX",
    "PLAN_LABEL",
    "RETRY_EXPRESSION",
    "TRIGGER_LABEL",
    "AlreadyExistsError",
    "ArgoRunner",
    "ArgoServerClient",
    "FailedNode",
    "Submission",
    "SubmitError",
    "Submitted",
    "UnauthorizedError",
    "UnpinnedImageError",
    "WorkflowTooLargeError",
    "apply_all",
    "build_manifests",
    "build_workflow",
    "build_workflows",
    "client_for",
    "failed_nodes",
    "label_value",
    "manifest_size",
    "submit",
    "submit_all",
    "wait_for",
    "workflow_name",
]
