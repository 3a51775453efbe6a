"""Errors of Argo submission, and the mapping of hera, requests and kubernetes client
errors (HTTP status, connection failures) onto them. Shared by both clients."""

from __future__ import annotations

import json
from typing import Any

from jetstream.errors import JetstreamError, TransientError


class SubmitError(JetstreamError):
    """The workflow could not be submitted."""


class UnauthorizedError(SubmitError):
    """401/403: the token is missing, wrong or lacks the rights."""


class AlreadyExistsError(SubmitError):
    """409: an object with this name exists already."""


class UnpinnedImageError(JetstreamError):
    """The image is not pinned by digest."""

    exit_code = 2


class ErrorMapper:
    """Turns hera, requests and kubernetes errors into readable JetstreamErrors."""

    def __init__(self, what: str, where: str, token_hint: bool):
        self.what = what
        self.where = where
        self.token_hint = token_hint

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, JetstreamError):
            return None
        status = _status_of(exc)
        detail = _detail_of(exc)
        if status in (401, 403):
            hint = (
                " Set ARGO_TOKEN (argo auth token) or run in a pod whose service account "
                "may create workflows."
                if self.token_hint
                else " Check the kubeconfig or the pod's service account and its RBAC."
            )
            raise UnauthorizedError(
                f"{self.where} refused to create {self.what}: "
                f"{'unauthorized (401)' if status == 401 else 'forbidden (403)'}.{hint} {detail}".strip()
            ) from exc
        if status == 409:
            raise AlreadyExistsError(
                f"{self.what} already exists on {self.where} (409). It was submitted before; "
                f"delete it or wait for its TTL to submit the same work again. {detail}".strip()
            ) from exc
        if status is not None and status >= 500 or _is_connection_error(exc):
            raise TransientError(
                f"{self.where} unavailable while creating {self.what}: {exc}"
            ) from exc
        if status is not None:
            raise SubmitError(f"{self.where} rejected {self.what} ({status}): {detail}") from exc
        return None


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None


def _detail_of(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return str(body)
    return str(exc)


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import requests
        import urllib3
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, requests.ConnectionError | urllib3.exceptions.HTTPError | OSError)


def describe_object(obj: Any, namespace: str) -> str:
    kind = type(obj).__name__
    name = getattr(obj, "name", None) or f"{getattr(obj, 'generate_name', '') or ''}*"
    return f"{kind} {namespace}/{name}"
