"""The config-repository webhook: a GitHub `push` to the configured branch reruns exactly
what the change touched.

An ASGI app (starlette), served by `jetstream webhook serve` with uvicorn:

- `POST /webhook` (also `/`): GitHub delivery headers `X-Hub-Signature-256`,
  `X-GitHub-Event`, `X-GitHub-Delivery`; JSON body (`ref`, `before`, `after`, ...).
  413 for bodies over `max_body` (1 MiB; Content-Length and the streamed size are both
  checked), 401 for a missing or wrong HMAC-SHA256 signature (checked with
  `hmac.compare_digest` before the body is parsed), 400 for malformed JSON or a missing
  delivery id, 202 doing nothing for other events and other branches, 200 for a delivery
  (or the same push under another delivery id) seen before: deliveries are deduplicated
  in a sqlite file that survives restarts. Otherwise the config repository is fetched into
  a cache (a bare mirror, `git` subprocess), both commits are exported, the changed
  experiments are worked out by `jetstream.changes`, stale rows are cleaned up and the
  graph is submitted through the injected `submit`; 202 with JSON of what was scheduled.
  503 when git or the experiments source fails (the claim is released: a redelivery is
  processed again).
- `GET /healthz`: the process answers. `GET /readyz`: the delivery store is readable and
  the cache directory writable.

`submit(graph, *, config_repo, commit)` is called with the TaskGraph, the checkout of the
new commit and its id; it returns something JSON-able (or with `describe()`).
`runner_submitter` runs it with the runner `jetstream.runners.base.make_runner` picks
(LocalRunner in a background thread, or ArgoRunner: one Argo Workflow).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from jetstream import nesting
from jetstream.changes import (
    NULL_COMMIT,
    ChangeAnalysis,
    ConfigRepoCache,
    GitError,
    RerunPlan,
    analyse_change,
    yesterday,
)
from jetstream.errors import JetstreamError, TransientError
from jetstream.graph import TaskGraph
from jetstream.logs import get_logger
from jetstream.webhook_store import DeliveryStore

if TYPE_CHECKING:
    from jetstream.runners.base import RunnerOptions

log = get_logger(__name__)

MAX_BODY = 1 << 20  # 1 MiB
SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
COMMIT = r"[0-9a-f]{40}|[0-9a-f]{64}"

Submit = Callable[..., Any]
Cleanup = Callable[[Sequence[RerunPlan]], Any]


@attrs.frozen
class WebhookConfig:
    secret: bytes = attrs.field(repr=False)
    repo_url: str
    experiments: str
    cache_dir: Path = attrs.field(converter=Path)
    branch: str = "main"
    max_body: int = MAX_BODY
    store_path: Path | None = None  # default: <cache_dir>/deliveries.sqlite

    def __attrs_post_init__(self) -> None:
        if not self.secret:
            raise ValueError("the webhook secret is empty; refusing to accept unsigned pushes")

    @property
    def deliveries(self) -> Path:
        return Path(self.store_path) if self.store_path else self.cache_dir / "deliveries.sqlite"


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


class _Rejected(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


def _json(status: int, body: Mapping[str, Any]) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(dict(body), status_code=status)


class Webhook:
    """The app's state and handlers; `.app` is the ASGI application."""

    def __init__(
        self,
        config: WebhookConfig,
        submit: Submit,
        cleanup: Cleanup | None = None,
        load_experiments: Callable[[str], Mapping[str, Any]] | None = None,
        as_of: Callable[[], dt.date] = yesterday,
    ):
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.config = config
        self.submit = submit
        self.cleanup = cleanup
        self.as_of = as_of
        if load_experiments is None:
            from jetstream.experiments import load_experiments as load

            load_experiments = load
        self.load_experiments = load_experiments
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        self.store = DeliveryStore(config.deliveries)
        self.cache = ConfigRepoCache(config.repo_url, config.cache_dir / "repo")
        self._work = threading.Lock()  # one push at a time: one git mirror, ordered reruns
        self.app = Starlette(
            routes=[
                Route("/webhook", self.receive, methods=["POST"]),
                Route("/", self.receive, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
            ]
        )

    # -- probes ----------------------------------------------------------------------

    async def healthz(self, request: Any) -> Any:
        return _json(200, {"status": "ok"})

    async def readyz(self, request: Any) -> Any:
        problems = []
        try:
            self.store.ping()
        except Exception as exc:  # any failure means not ready
            problems.append(f"delivery store {self.config.deliveries}: {exc}")
        if not os.access(self.config.cache_dir, os.W_OK):
            problems.append(f"cache directory {self.config.cache_dir} is not writable")
        if problems:
            return _json(503, {"status": "not ready", "problems": problems})
        return _json(200, {"status": "ready"})

    # -- deliveries ------------------------------------------------------------------

    async def receive(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        try:
            body = await self._read_body(request)
            if not signature_ok(self.config.secret, body, request.headers.get(SIGNATURE_HEADER)):
                missing = not request.headers.get(SIGNATURE_HEADER)
                log.warning("webhook signature rejected", missing=missing)
                raise _Rejected(
                    401,
                    f"missing {SIGNATURE_HEADER} header"
                    if missing
                    else f"{SIGNATURE_HEADER} does not match the body",
                )
            event = request.headers.get(EVENT_HEADER, "")
            delivery = request.headers.get(DELIVERY_HEADER, "").strip()
            payload = _parse(body)
        except _Rejected as rej:
            return _json(rej.status, rej.body)
        if event == "ping":
            return _json(200, {"status": "pong", "delivery": delivery})
        if event != "push":
            return _json(202, {"status": "ignored", "reason": f"event {event!r} is not handled"})
        if not delivery:
            return _json(400, {"error": f"missing {DELIVERY_HEADER} header"})
        try:
            push = _push(payload)
        except _Rejected as rej:
            return _json(rej.status, rej.body)
        base = {
            "delivery": delivery,
            "ref": push["ref"],
            "before": push["before"],
            "after": push["after"],
        }
        wanted = f"refs/heads/{self.config.branch}"
        if push["ref"] != wanted:
            return _json(
                202, {**base, "status": "ignored", "reason": f"push to {push['ref']}, not {wanted}"}
            )
        if push["after"] == NULL_COMMIT:
            return _json(202, {**base, "status": "ignored", "reason": "branch deleted"})
        if push["before"] == NULL_COMMIT:
            return _json(
                202,
                {
                    **base,
                    "status": "ignored",
                    "reason": "branch created: no earlier commit to compare with",
                },
            )
        keys = (f"delivery:{delivery}", f"push:{push['before']}..{push['after']}")
        claim = self.store.claim(*keys)
        if not claim.new:
            status = 200 if claim.state == "done" else 202
            log.info("duplicate delivery", delivery=delivery, state=claim.state)
            return _json(
                status,
                {**base, "status": "duplicate", "state": claim.state, "previous": claim.answer},
            )
        try:
            answer = await run_in_threadpool(self._process, push, base)
        except _Rejected as rej:
            self.store.release(keys)
            return _json(rej.status, {**base, **rej.body})
        except Exception as exc:
            self.store.release(keys)
            log.exception("webhook processing failed", delivery=delivery)
            return _json(500, {**base, "error": f"{type(exc).__name__}: {exc}"})
        self.store.complete(keys, answer)
        return _json(202, answer)

    async def _read_body(self, request: Any) -> bytes:
        limit = self.config.max_body
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise _Rejected(400, "Content-Length is not a number") from None
            if declared > limit:
                raise _Rejected(413, f"body of {declared} bytes exceeds {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _Rejected(413, f"body exceeds {limit} bytes")
        return bytes(body)

    def _process(self, push: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
        before, after = push["before"], push["after"]
        with self._work:
            try:
                self.cache.update()
            except (GitError, TransientError) as exc:
                raise _Rejected(503, f"cannot fetch the config repository: {exc}") from None
            for commit in (before, after):
                if not self.cache.has_commit(commit):
                    raise _Rejected(422, f"commit {commit} is not in {self.config.repo_url}")
            try:
                before_dir = self.cache.checkout(before)
                after_dir = self.cache.checkout(after)
                changed = self.cache.changed_paths(before, after)
            except (GitError, TransientError) as exc:
                raise _Rejected(503, f"cannot read the config repository: {exc}") from None
            try:
                experiments = self.load_experiments(self.config.experiments)
            except JetstreamError as exc:
                raise _Rejected(503, f"cannot load experiments: {exc}") from None
            analysis = analyse_change(
                experiments, before_dir, after_dir, self.as_of(), changed=changed
            )
            if self.cleanup is not None:
                self.cleanup(analysis.plans)
            submitted = self._submit(analysis, after_dir, after)
        answer = {
            **base,
            "status": "scheduled" if analysis.graph.nodes else "nothing-to-do",
            **analysis.to_json(),
            "submitted": submitted,
        }
        log.info(
            "push handled",
            delivery=base["delivery"],
            after=after,
            experiments=[p["experiment"] for p in answer["experiments"]],
            tasks=len(analysis.graph.nodes),
        )
        return answer

    def _submit(self, analysis: ChangeAnalysis, checkout: Path, commit: str) -> Any:
        if not analysis.graph.nodes:
            return None
        result = self.submit(analysis.graph, config_repo=checkout, commit=commit)
        if hasattr(result, "describe"):
            return result.describe()
        try:
            json.dumps(result)
        except TypeError:
            return str(result)
        return result


def _parse(body: bytes) -> Any:
    try:
        return nesting.loads_json(body, "body")
    except nesting.NestingError as exc:
        raise _Rejected(400, str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Rejected(
            400, f"malformed JSON body ({exc}); configure the webhook with application/json"
        ) from None


def _push(payload: Any) -> dict[str, Any]:
    import re

    if not isinstance(payload, dict):
        raise _Rejected(400, "push payload is not a JSON object")
    out: dict[str, Any] = {}
    for key in ("ref", "before", "after"):
        value = payload.get(key)
        if not isinstance(value, str) or not value:
            raise _Rejected(400, f"push payload: {key!r} is missing or not a string")
        out[key] = value
    for key in ("before", "after"):
        if not re.fullmatch(COMMIT, out[key]):
            raise _Rejected(400, f"push payload: {key!r} is not a commit id: {out[key]!r}")
    return out


def create_app(config: WebhookConfig, submit: Submit, **kwargs: Any) -> Any:
    """The ASGI app (see `Webhook` for the keyword arguments)."""
    return Webhook(config, submit, **kwargs).app


# -- production wiring -------------------------------------------------------------------


def runner_submitter(
    experiments: str,
    warehouse: str,
    out: str,
    options: RunnerOptions,
    *,
    image: str | None = None,
    namespace: str = "jetstream",
    pod_config_repo: str = "",
) -> Submit:
    """Run each graph with the runner `make_runner` picks from `options`.

    Local: tasks read the webhook's own checkout of the pushed commit, and the graph runs in
    a background thread (the delivery is answered at once). Argo: one Workflow (the same
    builder as `jetstream run --runner argo`) labelled with the commit; pods cannot see the
    webhook's checkout, so they read the config repository from their own settings
    (`pod_config_repo`, else the ConfigMap's JETSTREAM_CONFIG_REPO), a git URL pinned to the
    pushed commit so every pod reads exactly those configs."""
    from jetstream.runners.base import LOCAL, make_runner
    from jetstream.runners.common import RunSettings

    def settings_for(config_repo: Path, commit: str) -> RunSettings:
        if options.runner == LOCAL:
            return RunSettings(
                experiments=experiments,
                warehouse=warehouse,
                out=out,
                config_repo=str(config_repo),
                parallelism=2 if options.parallelism is None else options.parallelism,
            )
        from jetstream.config_checkout import is_git_url, split_ref

        pinned = pod_config_repo
        if pod_config_repo and is_git_url(pod_config_repo):
            pinned = f"{split_ref(pod_config_repo)[0]}@{commit}"
        settings = RunSettings(
            experiments=experiments,
            warehouse=warehouse,
            out=out,
            config_repo=pinned,
            namespace=namespace,
        )
        return attrs.evolve(settings, image=image) if image else settings

    def submit(graph: TaskGraph, *, config_repo: Path, commit: str) -> Any:
        runner = make_runner(settings_for(config_repo, commit), options)
        if options.runner != LOCAL:
            result = runner.run(graph, labels={"jetstream/config-commit": commit[:40]})
            return str(result.describe())

        def work() -> None:
            summary = runner.run(graph)
            log.info("local rerun finished", commit=commit, summary=summary.describe())

        threading.Thread(target=work, name=f"rerun-{commit[:8]}", daemon=True).start()
        return {"runner": "local", "commit": commit, "tasks": len(graph.nodes)}

    return submit


def warehouse_cleanup(warehouse: str) -> Cleanup:
    """Delete stale rows and drop recreated tables before the graph runs."""

    def cleanup(plans: Sequence[RerunPlan]) -> list[str]:
        from jetstream.rerun_cleanup import apply_cleanup

        return apply_cleanup(warehouse, plans)

    return cleanup
