"""Submission through the Kubernetes API (for clusters without an exposed argo-server):
Workflows, WorkflowTemplates and CronWorkflows are custom objects of argoproj.io/v1alpha1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetstream.runners.argo.clients import KIND_PLURALS
from jetstream.runners.argo.errors import ErrorMapper, describe_object

GROUP = "argoproj.io"
VERSION = "v1alpha1"
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_namespace(default: str = "jetstream") -> str:
    """The namespace of the pod this runs in (its service-account mount), else `default`."""
    try:
        return NAMESPACE_FILE.read_text().strip() or default
    except OSError:
        return default


def default_api_client() -> Any:
    """In-cluster config when running in a pod, else the user's kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def api_client_for(host: str, token: str | None = None, verify_ssl: bool = True) -> Any:
    """An ApiClient for an explicit API server URL (and bearer token)."""
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = host
    cfg.verify_ssl = verify_ssl
    if token:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


class KubeClient:
    """Creates and reads Argo objects with the `kubernetes` client's CustomObjectsApi."""

    def __init__(self, namespace: str, api_client: Any = None):
        from kubernetes import client

        self.namespace = namespace
        self.api = client.CustomObjectsApi(api_client or default_api_client())
        self.where = f"the Kubernetes API ({self.api.api_client.configuration.host})"

    def _errors(self, what: str) -> ErrorMapper:
        return ErrorMapper(what, self.where, token_hint=False)

    def create(self, obj: Any) -> Any:
        body = obj.to_dict()
        plural = KIND_PLURALS[body["kind"]]
        body.setdefault("metadata", {})["namespace"] = self.namespace
        with self._errors(describe_object(obj, self.namespace)):
            return self.api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, body
            )

    def apply(self, manifest: Any) -> Any:
        """Create, or replace with the current resourceVersion when it exists; `manifest`
        is a dict (`templates.manifests()`) or a hera object."""
        import copy

        from kubernetes.client.exceptions import ApiException

        body = copy.deepcopy(manifest) if isinstance(manifest, dict) else manifest.to_dict()
        plural = KIND_PLURALS[body["kind"]]
        name = body["metadata"]["name"]
        body["metadata"]["namespace"] = self.namespace
        with self._errors(f"{body['kind']} {self.namespace}/{name}"):
            try:
                current: Any = self.api.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                return self.api.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, body
                )
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.api.replace_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, body
            )

    def list_workflow_metadata(self, label_selector: str) -> list[dict[str, Any]]:
        """Metadata of the namespace's workflows matching a label selector (`k=v,k2=v2`)."""
        with self._errors(f"Workflows in {self.namespace} with labels {label_selector}"):
            found: Any = self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "workflows", label_selector=label_selector
            )
        return [dict(w.get("metadata") or {}) for w in found.get("items") or []]

    def get_workflow(self, name: str) -> Any:
        with self._errors(f"Workflow {self.namespace}/{name}"):
            return self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "workflows", name
            )
