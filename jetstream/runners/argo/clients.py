"""The argo-server client (hera's WorkflowsService) and the bearer-token lookup. The
Kubernetes API path is `kube.py`; both map errors with `errors.ErrorMapper`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jetstream.runners.argo.errors import ErrorMapper, SubmitError, describe_object

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def resolve_token(token: str | None = None) -> str | None:
    """Explicit token, else $ARGO_TOKEN, else the pod's service-account token, else None."""
    if token:
        return token
    env = os.environ.get("ARGO_TOKEN")
    if env:
        return env
    if SERVICE_ACCOUNT_TOKEN.is_file():
        return SERVICE_ACCOUNT_TOKEN.read_text().strip() or None
    return None


KIND_PLURALS = {
    "Workflow": "workflows",
    "WorkflowTemplate": "workflowtemplates",
    "CronWorkflow": "cronworkflows",
}


class ArgoServerClient:
    """Talks to argo-server through hera's WorkflowsService, mapping its errors."""

    def __init__(
        self,
        host: str,
        namespace: str,
        token: str | None = None,
        verify_ssl: bool = True,
    ):
        from hera.workflows import WorkflowsService

        if not host.startswith(("http://", "https://")):
            raise SubmitError(f"--argo-server must be an http(s) URL, got {host!r}")
        self.host = host
        self.namespace = namespace
        self.token = resolve_token(token)
        self.verify_ssl = verify_ssl
        self.service = WorkflowsService(
            host=host, token=resolve_token(token), namespace=namespace, verify_ssl=verify_ssl
        )

    def create(self, obj: Any) -> dict[str, Any]:
        """Create a hera Workflow (or install a WorkflowTemplate/CronWorkflow by create)."""
        from hera.workflows import CronWorkflow, WorkflowTemplate
        from hera.workflows.models import (
            CreateCronWorkflowRequest,
            WorkflowCreateRequest,
            WorkflowTemplateCreateRequest,
        )

        what = describe_object(obj, self.namespace)
        model: Any
        built: Any = obj.build()
        with self._errors(what):
            if isinstance(obj, CronWorkflow):
                model = self.service.create_cron_workflow(
                    CreateCronWorkflowRequest(cron_workflow=built), namespace=self.namespace
                )
            elif isinstance(obj, WorkflowTemplate):
                model = self.service.create_workflow_template(
                    WorkflowTemplateCreateRequest(template=built), namespace=self.namespace
                )
            else:
                model = self.service.create_workflow(
                    WorkflowCreateRequest(workflow=built), namespace=self.namespace
                )
        return model_dict(model)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update (GET for resourceVersion, then PUT) a WorkflowTemplate or
        CronWorkflow given as a manifest dict (`templates.manifests()`). Sent as JSON as
        is, not through hera's models: those know only Argo 4's CronWorkflow fields."""
        import requests

        body = json.loads(json.dumps(manifest))
        kind = body["kind"]
        route, key = APPLY_ROUTES[kind]
        name = body["metadata"]["name"]
        body["metadata"]["namespace"] = self.namespace
        base = f"{self.host.rstrip('/')}/api/v1/{route}/{self.namespace}"
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = (
                self.token if self.token.startswith("Bearer ") else f"Bearer {self.token}"
            )
        with self._errors(f"{kind} {self.namespace}/{name}"), requests.Session() as http:
            http.verify = self.verify_ssl
            current = http.get(f"{base}/{name}", headers=headers, timeout=30)
            if current.status_code == 404:
                answer = http.post(base, json={key: body}, headers=headers, timeout=30)
            else:
                _raise_for(current)
                version = current.json()["metadata"]["resourceVersion"]
                body["metadata"]["resourceVersion"] = version
                answer = http.put(f"{base}/{name}", json={key: body}, headers=headers, timeout=30)
            _raise_for(answer)
            return dict(answer.json())

    def list_workflow_metadata(self, label_selector: str) -> list[dict[str, Any]]:
        """Metadata of the namespace's workflows matching a label selector (`k=v,k2=v2`)."""
        with self._errors(f"workflows in {self.namespace} with labels {label_selector}"):
            found = self.service.list_workflows(
                namespace=self.namespace, label_selector=label_selector
            )
        return [model_dict(w.metadata) for w in found.items or []]

    def get_workflow(self, name: str) -> dict[str, Any]:
        with self._errors(f"workflow {self.namespace}/{name}"):
            return model_dict(self.service.get_workflow(name, namespace=self.namespace))

    def submit_from_template(self, template: str, parameters: Mapping[str, str]) -> dict[str, Any]:
        """`argo submit --from workflowtemplate/NAME -p k=v ...`"""
        from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest

        req = WorkflowSubmitRequest(
            namespace=self.namespace,
            resource_kind="WorkflowTemplate",
            resource_name=template,
            submit_options=SubmitOpts(parameters=[f"{k}={v}" for k, v in parameters.items()]),
        )
        with self._errors(f"workflow from template {self.namespace}/{template}"):
            return model_dict(self.service.submit_workflow(req, namespace=self.namespace))

    def _errors(self, what: str) -> ErrorMapper:
        return ErrorMapper(what, f"argo-server {self.host}", token_hint=True)


APPLY_ROUTES = {
    "WorkflowTemplate": ("workflow-templates", "template"),
    "CronWorkflow": ("cron-workflows", "cronWorkflow"),
}


class HttpStatusError(Exception):
    """An argo-server answer >= 400 (mapped by `errors.ErrorMapper`)."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def _raise_for(response: Any) -> None:
    if response.status_code >= 400:
        raise HttpStatusError(response.status_code, response.text)


def model_dict(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.loads(model.json(by_alias=True, exclude_none=True))
