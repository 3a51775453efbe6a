"""The config-repository webhook: a GitHub `push` to the configured branch reruns exactly
what the change touched, one rerun at a time, ending at the latest pushed commit.

An ASGI app (starlette), served by `jetstream webhook serve` (`webhook_server`):

- `POST /webhook` (also `/`): GitHub delivery headers `X-Hub-Signature-256`,
  `X-GitHub-Event`, `X-GitHub-Delivery`; JSON body (`ref`, `before`, `after`, ...).
  413 for bodies over `max_body` (1 MiB; Content-Length and the streamed size are both
  checked), 408 for a body not received within `body_timeout`, 401 for a missing or wrong
  HMAC-SHA256 signature (checked with `hmac.compare_digest` before the body is parsed),
  400 for malformed JSON or a missing delivery id, 202 doing nothing for other events and
  other branches. A push seen before (same delivery id, or the same `before..after` under
  another id) is a duplicate: 200 with the earlier answer once processed, 202 while it
  waits. Otherwise the config repository is fetched (a bare mirror, `git` subprocess);
  503 when that fails, 422 when a commit is not in the repository or `after` is not on the
  pushed branch (`git merge-base --is-ancestor`). The push is then queued in the durable
  store (`webhook_store`) and answered 202 `queued`.
- `GET /healthz`: the process answers. `GET /readyz`: the store is readable and the cache
  directory writable.

One worker thread per webhook processes the queue (`DeliveryStore.take`: one holder at a
time across processes, under a renewed lease; a crashed holder's pushes are taken over once
its lease has run out, and a restarted webhook resumes the queue). It takes every waiting
push at once and coalesces them: the target is the pushed commit that descends from all the
others (else the last received); the base is the commit last applied (else the earliest
`before`). A target the applied commit already contains is `superseded`: nothing runs, so a
delivery arriving late cannot roll the results back. Otherwise the changed experiments are
worked out by `jetstream.changes`, stale rows cleaned up and the graph submitted through the
injected `submit`, which must not return before a local rerun has finished.

`submit(graph, *, config_repo, commit)` is called with the TaskGraph, the checkout of the
new commit and its id; it returns something JSON-able (or with `describe()`).
`runner_submitter` runs it with the runner `jetstream.runners.base.make_runner` picks
(LocalRunner, in the worker thread; or ArgoRunner: one Workflow holding the repository's
Argo mutex, so the workflows of one repository run one after the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from jetstream import nesting
from jetstream.changes import NULL_COMMIT, ChangeAnalysis, RerunPlan, analyse_change, yesterday
from jetstream.errors import JetstreamError, TransientError
from jetstream.gitrepo import ConfigRepoCache, GitError
from jetstream.graph import TaskGraph
from jetstream.logs import get_logger
from jetstream.webhook_store import DONE, FAILED, DeliveryStore, Push

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
    lease: float = 120.0  # seconds a crashed worker's pushes stay held
    body_timeout: float = 10.0  # seconds to receive a whole body
    poll: float = 1.0  # seconds between looks at the queue when not woken
    max_attempts: int = 5  # transient failures of one push before it is marked failed

    def __attrs_post_init__(self) -> None:
        if not self.secret:
            raise ValueError("the webhook secret is empty; refusing to accept unsigned pushes")
        if self.lease <= 0:
            raise ValueError(f"the lease must be positive, got {self.lease}")

    @property
    def deliveries(self) -> Path:
        return Path(self.store_path) if self.store_path else self.cache_dir / "deliveries.sqlite"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"


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


def _duplicate(push: Push, base: Mapping[str, Any]) -> Any:
    finished = push.state in (DONE, FAILED)
    return _json(
        200 if finished else 202,
        {**base, "status": "duplicate", "state": push.state, "previous": push.answer},
    )


class Webhook:
    """The app's state, handlers and queue worker; `.app` is the ASGI application (its
    lifespan starts and stops the worker; `start`/`stop` do it by hand)."""

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
        self.store = DeliveryStore(config.deliveries, lease=config.lease)
        self.cache = ConfigRepoCache(config.repo_url, config.cache_dir / "repo")
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._git = threading.Lock()  # one git mirror
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/webhook", self.receive, methods=["POST"]),
                Route("/", self.receive, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()

    def start(self) -> None:
        """Start the queue worker (it resumes whatever the store holds)."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="webhook-worker", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop after the push it is processing (which stays queued or
        held, and is resumed by the next start)."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)

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
        before, after = push["before"], push["after"]
        base = {"delivery": delivery, "ref": push["ref"], "before": before, "after": after}
        if push["ref"] != self.config.ref:
            reason = f"push to {push['ref']}, not {self.config.ref}"
            return _json(202, {**base, "status": "ignored", "reason": reason})
        if after == NULL_COMMIT:
            return _json(202, {**base, "status": "ignored", "reason": "branch deleted"})
        if before == NULL_COMMIT:
            reason = "branch created: no earlier commit to compare with"
            return _json(202, {**base, "status": "ignored", "reason": reason})
        known = self.store.find(delivery, before, after)
        if known is not None and known.state != FAILED:
            log.info("duplicate delivery", delivery=delivery, state=known.state)
            return _duplicate(known, base)
        try:
            await run_in_threadpool(self._verify, before, after)
        except _Rejected as rej:
            return _json(rej.status, {**base, **rej.body})
        queued = self.store.enqueue(delivery, push["ref"], before, after)
        if not queued.new:
            return _duplicate(queued.push, base)
        self._wake.set()
        log.info("push queued", delivery=delivery, after=after, id=queued.push.id)
        return _json(202, {**base, "status": "queued", "id": queued.push.id})

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
        try:
            async with asyncio.timeout(self.config.body_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > limit:
                        raise _Rejected(413, f"body exceeds {limit} bytes")
        except TimeoutError:
            raise _Rejected(408, f"body not received within {self.config.body_timeout} s") from None
        return bytes(body)

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.cache.is_ancestor(ancestor, descendant)

    def _fetch(self, commits: Sequence[str]) -> None:
        """Fetch the repository; 503 when that fails, 422 for a commit it does not hold."""
        try:
            self.cache.update()
        except (GitError, TransientError) as exc:
            raise _Rejected(503, f"cannot fetch the config repository: {exc}") from None
        for commit in commits:
            if not self.cache.has_commit(commit):
                raise _Rejected(422, f"commit {commit} is not in {self.config.repo_url}")

    def _verify(self, before: str, after: str) -> None:
        with self._git:
            self._fetch([before, after])
            if not self._is_ancestor(after, self.config.ref):
                raise _Rejected(
                    422,
                    f"commit {after} is not on branch {self.config.branch} "
                    f"of {self.config.repo_url}",
                )

    # -- the queue worker ------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.store.take(self.owner)
            except Exception:  # the store is unreadable for now: try again later
                log.exception("webhook queue unreadable", store=str(self.config.deliveries))
                batch = []
            if not batch:
                self._wake.wait(min(self.config.poll, self.config.lease / 4))
                self._wake.clear()
                continue
            self._handle(batch)

    def _handle(self, batch: list[Push]) -> None:
        ids = [p.id for p in batch]
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.config.lease / 3):
                if not self.store.renew(self.owner, ids):
                    log.warning("webhook lease lost", pushes=ids)

        renewer = threading.Thread(target=renew, name="webhook-lease", daemon=True)
        renewer.start()
        deliveries = [p.delivery for p in batch]
        try:
            answer, applied = self._process(batch)
        except _Rejected as rej:
            attempts = max(p.attempts for p in batch)
            if rej.status == 503 and attempts < self.config.max_attempts:
                log.warning("push deferred", deliveries=deliveries, error=rej.body["error"])
                self.store.retry(ids, delay=min(2.0**attempts, 300.0))
            else:
                log.error("push failed", deliveries=deliveries, error=rej.body["error"])
                self.store.finish(ids, {**rej.body, "status": "failed"}, failed=True)
        except Exception as exc:
            log.exception("push processing failed", deliveries=deliveries)
            error = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            self.store.finish(ids, error, failed=True)
        else:
            self.store.finish(ids, answer, applied=applied)
        finally:
            done.set()
            renewer.join()

    def _latest(self, batch: Sequence[Push]) -> str:
        """The pushed commit every other one leads to, else the last received."""
        commits = list(dict.fromkeys(p.after for p in batch))
        for candidate in reversed(commits):
            if all(c == candidate or self._is_ancestor(c, candidate) for c in commits):
                return candidate
        return commits[-1]

    def _process(self, batch: Sequence[Push]) -> tuple[dict[str, Any], tuple[str, str] | None]:
        ref = self.config.ref
        summary = {
            "deliveries": [p.delivery for p in batch],
            "ref": ref,
        }
        with self._git:
            self._fetch([c for p in batch for c in (p.before, p.after)])
            target = self._latest(batch)
            applied = self.store.applied(ref)
            if applied is not None and not self.cache.has_commit(applied):
                applied = None
            if applied is not None and self._is_ancestor(target, applied):
                log.info("push superseded", target=target, applied=applied)
                return {
                    **summary,
                    "status": "superseded",
                    "after": target,
                    "applied": applied,
                }, None
            afters = {p.after for p in batch}
            first = next((p.before for p in batch if p.before not in afters), batch[0].before)
            before = applied or first
            try:
                before_dir = self.cache.checkout(before)
                after_dir = self.cache.checkout(target)
                changed = self.cache.changed_paths(before, target)
            except (GitError, TransientError) as exc:
                raise _Rejected(503, f"cannot read the config repository: {exc}") from None
        try:
            experiments = self.load_experiments(self.config.experiments)
        except JetstreamError as exc:
            raise _Rejected(503, f"cannot load experiments: {exc}") from None
        analysis = analyse_change(experiments, before_dir, after_dir, self.as_of(), changed=changed)
        if self.cleanup is not None:
            self.cleanup(analysis.plans)
        submitted = self._submit(analysis, after_dir, target)
        answer = {
            **summary,
            "before": before,
            "after": target,
            "status": "scheduled" if analysis.graph.nodes else "nothing-to-do",
            **analysis.to_json(),
            "submitted": submitted,
        }
        log.info(
            "push handled",
            deliveries=summary["deliveries"],
            before=before,
            after=target,
            experiments=[p["experiment"] for p in answer["experiments"]],
            tasks=len(analysis.graph.nodes),
        )
        return answer, (ref, target)

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


def repo_mutex(repo_url: str) -> str:
    """The Argo mutex name that serialises the reruns of one config repository."""
    return "jetstream-config-" + hashlib.sha256(repo_url.encode()).hexdigest()[:16]


def runner_submitter(
    experiments: str,
    warehouse: str,
    out: str,
    options: RunnerOptions,
    *,
    image: str | None = None,
    namespace: str = "jetstream",
    pod_config_repo: str = "",
    repo_url: str = "",
) -> Submit:
    """Run each graph with the runner `make_runner` picks from `options`.

    Local: tasks read the webhook's own checkout of the pushed commit, and the graph runs in
    the calling (worker) thread: `submit` returns when the rerun has finished, so reruns
    never overlap. Argo: one Workflow (the same builder as `jetstream run --runner argo`)
    labelled with the commit and holding the mutex `repo_mutex(repo_url)`, so Argo runs the
    workflows of one repository one at a time, in the order they were submitted; pods cannot
    see the webhook's checkout, so they read the config repository from their own settings
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
        if options.runner == LOCAL:
            summary = runner.run(graph)
            log.info("local rerun finished", commit=commit, summary=summary.describe())
            return {"runner": "local", "commit": commit, "summary": summary.describe()}
        # reruns of one repository hold its mutex; the commit is the trigger, so a
        # redelivered push submits nothing twice
        settings = attrs.evolve(
            settings_for(config_repo, commit),
            mutex=repo_mutex(repo_url or str(pod_config_repo)),
        )
        runner = make_runner(settings, options)
        labels = {"jetstream/config-commit": commit[:40], "jetstream/trigger": commit[:40]}
        return str(runner.run(graph, labels=labels).describe())

    return submit


def warehouse_cleanup(warehouse: str) -> Cleanup:
    """Delete stale rows and drop recreated tables before the graph runs."""

    def cleanup(plans: Sequence[RerunPlan]) -> list[str]:
        from jetstream.rerun_cleanup import apply_cleanup

        return apply_cleanup(warehouse, plans)

    return cleanup
