"""A recording fake of argo-server's REST API and of the Kubernetes API for Argo custom
objects, on 127.0.0.1, for submission tests. It checks the bearer token (401), refuses
duplicate names (409) and stale resourceVersions on update (409), answers 404 for unknown
objects, and validates every request body with the callable it is given (400 from
argo-server, 422 from the Kubernetes API), so clients are tested against the contract
rather than against mocks."""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import attrs

# validate(definition, body) -> problems; definition is an Argo schema definition name
Validator = Callable[[str, dict[str, Any]], list[str]]

ARGO_ROUTES = {
    # path kind -> (plural, body key, create-request definition, update-request definition)
    "workflows": ("workflows", "workflow", "WorkflowCreateRequest", None),
    "workflow-templates": (
        "workflowtemplates",
        "template",
        "WorkflowTemplateCreateRequest",
        "WorkflowTemplateUpdateRequest",
    ),
    "cron-workflows": (
        "cronworkflows",
        "cronWorkflow",
        "CreateCronWorkflowRequest",
        "UpdateCronWorkflowRequest",
    ),
}
KINDS = {
    "workflows": "Workflow",
    "workflowtemplates": "WorkflowTemplate",
    "cronworkflows": "CronWorkflow",
}


@attrs.frozen
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any
    query: str = ""


class HttpError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class FakeArgo:
    """Use as a context manager; `url` is the base URL for both APIs."""

    def __init__(self, token: str = "s3cret", validate: Validator | None = None):
        self.token = token
        self.validate = validate
        self.requests: list[Recorded] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        # statuses returned by successive GETs of any workflow (the last one repeats)
        self.workflow_statuses: list[dict[str, Any]] = []
        self._versions = itertools.count(1)
        self._query: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeArgo:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                kube = self.path.startswith("/apis/")
                path, _, query = self.path.partition("?")
                status, answer = fake.handle(
                    self.command, path, self.headers.get("Authorization"), body, query
                )
                if status >= 400:
                    answer = fake.error_body(kube, status, answer)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- helpers for tests ---------------------------------------------------------------

    def stored(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(plural, namespace, name)]

    def bodies(self, method: str, path_prefix: str) -> list[Any]:
        return [
            r.body for r in self.requests if r.method == method and r.path.startswith(path_prefix)
        ]

    # -- request handling ----------------------------------------------------------------

    def error_body(self, kube: bool, status: int, info: Any) -> dict[str, Any]:
        reason, message = info
        if kube:
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": reason,
                "message": message,
                "code": status,
            }
        grpc = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6}.get(status, 2)
        return {"code": grpc, "message": message}

    def handle(
        self, method: str, path: str, auth: str | None, body: Any, query: str = ""
    ) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Recorded(method, path, auth, copy.deepcopy(body), query))
            self._query = parse_qs(query)
            if auth != f"Bearer {self.token}":
                return 401, (
                    "Unauthorized",
                    "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/",
                )
            try:
                if path.startswith("/api/v1/"):
                    return self._argo(method, path, body)
                if path.startswith("/apis/argoproj.io/v1alpha1/"):
                    return self._kube(method, path, body)
                raise HttpError(404, "NotFound", f"no route {method} {path}")
            except HttpError as exc:
                return exc.status, (exc.reason, exc.message)

    def _check(self, definition: str, body: Any, status: int) -> None:
        if self.validate is None:
            return
        problems = self.validate(definition, body)
        if problems:
            raise HttpError(status, "Invalid", "; ".join(problems[:10]))

    def _argo(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        m = re.fullmatch(r"/api/v1/([a-z-]+)/([a-z0-9-]+)(?:/([a-z0-9.-]+))?", path)
        if not m or m.group(1) not in ARGO_ROUTES:
            raise HttpError(404, "NotFound", f"no route {method} {path}")
        route, ns, name = m.groups()
        plural, key, create_def, update_def = ARGO_ROUTES[route]
        if route == "workflows" and name == "submit" and method == "POST":
            self._check("WorkflowSubmitRequest", body, 400)
            return 200, self._submit_from(ns, body)
        if method == "POST" and name is None:
            self._check(create_def, body, 400)
            return 200, self._create(plural, ns, body[key])
        if method == "GET" and name:
            return 200, self._get(plural, ns, name)
        if method == "GET" and name is None:
            return 200, self._list(plural, ns, self._selector("listOptions.labelSelector"))
        if method == "PUT" and name and update_def:
            self._check(update_def, body, 400)
            return 200, self._replace(plural, ns, name, body[key])
        raise HttpError(404, "NotFound", f"no route {method} {path}")

    def _kube(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        m = re.fullmatch(
            r"/apis/argoproj\.io/v1alpha1/namespaces/([a-z0-9-]+)/([a-z]+)(?:/([a-z0-9.-]+))?", path
        )
        if not m or m.group(2) not in KINDS:
            raise HttpError(404, "NotFound", f"no route {method} {path}")
        ns, plural, name = m.groups()
        if method == "POST" and name is None:
            self._check(KINDS[plural], body, 422)
            return 201, self._create(plural, ns, body)
        if method == "GET" and name:
            return 200, self._get(plural, ns, name)
        if method == "GET" and name is None:
            return 200, self._list(plural, ns, self._selector("labelSelector"))
        if method == "PUT" and name:
            self._check(KINDS[plural], body, 422)
            return 200, self._replace(plural, ns, name, body)
        raise HttpError(405, "MethodNotAllowed", f"{method} {path}")

    def _create(self, plural: str, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise HttpError(400, "Invalid", "metadata.name or generateName is required")
            meta["name"] = meta["generateName"] + f"{next(self._versions):05x}"
        key = (plural, ns, meta["name"])
        if key in self.objects:
            raise HttpError(
                409, "AlreadyExists", f'{plural}.argoproj.io "{meta["name"]}" already exists'
            )
        meta["namespace"] = ns
        meta["resourceVersion"] = str(next(self._versions))
        meta["uid"] = f"uid-{meta['resourceVersion']}"
        self.objects[key] = obj
        return obj

    def _selector(self, key: str) -> dict[str, str]:
        """An equality label selector `k=v,k2=v2` (what the clients send) as a dict."""
        text = (self._query.get(key) or [""])[0]
        out = {}
        for term in filter(None, text.split(",")):
            if "=" not in term or "!=" in term:
                raise HttpError(400, "BadRequest", f"unsupported label selector term {term!r}")
            k, v = term.split("=", 1)
            out[k.strip()] = v.lstrip("=").strip()
        return out

    def _list(self, plural: str, ns: str, selector: dict[str, str]) -> dict[str, Any]:
        items = [
            copy.deepcopy(obj)
            for (p, n, _), obj in sorted(self.objects.items())
            if p == plural
            and n == ns
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        return {"metadata": {"resourceVersion": str(next(self._versions))}, "items": items}

    def _get(self, plural: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((plural, ns, name))
        if obj is None:
            raise HttpError(404, "NotFound", f'{plural}.argoproj.io "{name}" not found')
        obj = copy.deepcopy(obj)
        if plural == "workflows" and self.workflow_statuses:
            status = (
                self.workflow_statuses.pop(0)
                if len(self.workflow_statuses) > 1
                else self.workflow_statuses[0]
            )
            obj["status"] = copy.deepcopy(status)
        return obj

    def _replace(self, plural: str, ns: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        current = self.objects.get((plural, ns, name))
        if current is None:
            raise HttpError(404, "NotFound", f'{plural}.argoproj.io "{name}" not found')
        given = obj.get("metadata", {}).get("resourceVersion")
        if given != current["metadata"]["resourceVersion"]:
            raise HttpError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {plural}.argoproj.io "{name}": resourceVersion '
                f"{given!r} is not the latest ({current['metadata']['resourceVersion']!r})",
            )
        obj = copy.deepcopy(obj)
        obj["metadata"]["namespace"] = ns
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[(plural, ns, name)] = obj
        return obj

    def _submit_from(self, ns: str, req: dict[str, Any]) -> dict[str, Any]:
        kind = req.get("resourceKind")
        if kind not in ("WorkflowTemplate", "workflowtemplate"):
            raise HttpError(400, "Invalid", f"unsupported resourceKind {kind!r}")
        name = req.get("resourceName", "")
        template = self._get("workflowtemplates", ns, name)
        params = dict(
            p.split("=", 1) for p in (req.get("submitOptions") or {}).get("parameters") or []
        )
        declared = {
            p["name"]: p for p in template["spec"].get("arguments", {}).get("parameters", [])
        }
        unknown = set(params) - set(declared)
        if unknown:
            raise HttpError(400, "Invalid", f"unknown parameters {sorted(unknown)}")
        missing = [
            n
            for n, p in declared.items()
            if n not in params and "value" not in p and "valueFrom" not in p
        ]
        if missing:
            raise HttpError(400, "Invalid", f"parameters {missing} are required")
        wf = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": f"{name}-"},
            "spec": {
                "workflowTemplateRef": {"name": name},
                "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.items()]},
            },
        }
        return self._create("workflows", ns, wf)


REQUEST_OBJECT_KEYS = {
    "WorkflowCreateRequest": "workflow",
    "WorkflowTemplateCreateRequest": "template",
    "WorkflowTemplateUpdateRequest": "template",
    "CreateCronWorkflowRequest": "cronWorkflow",
    "UpdateCronWorkflowRequest": "cronWorkflow",
}


def schema_validator(schema: dict[str, Any]) -> Validator:
    """Validates request bodies against the strict Argo schema, and the objects they carry
    with the semantic checks as well (what argo-server's lint would refuse)."""
    from jetstream.manifests import schema_errors, semantic_problems

    def validate(definition: str, body: dict[str, Any]) -> list[str]:
        problems = schema_errors(body, definition, schema)
        key = REQUEST_OBJECT_KEYS.get(definition)
        obj = body.get(key) if key else (body if definition in KINDS.values() else None)
        if isinstance(obj, dict):
            problems += semantic_problems(obj)
        return problems

    return validate
