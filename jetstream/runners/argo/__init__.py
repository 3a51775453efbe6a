"""The Argo side of the runners: `build` (the task graph as one hera Workflow), `submit`
(submission, waiting, failed-node summary, installing objects), `clients` (argo-server)
and `kube` (Kubernetes API), `errors` (error mapping), `templates` (the six cluster
objects) and `runner` (`ArgoRunner`). hera and kubernetes are imported only when used."""

from jetstream.runners.argo.build import (
    LABEL_PREFIX,
    RETRY_EXPRESSION,
    build_workflow,
    label_value,
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
    Submitted,
    apply_all,
    client_for,
    failed_nodes,
    submit,
    wait_for,
)

__all__ = [
    "LABEL_PREFIX",
    "RETRY_EXPRESSION",
    "AlreadyExistsError",
    "ArgoRunner",
    "ArgoServerClient",
    "FailedNode",
    "SubmitError",
    "Submitted",
    "UnauthorizedError",
    "UnpinnedImageError",
    "apply_all",
    "build_workflow",
    "client_for",
    "failed_nodes",
    "label_value",
    "submit",
    "wait_for",
    "workflow_name",
]
