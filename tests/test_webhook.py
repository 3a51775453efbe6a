"""The config-repository webhook, over real HTTP: uvicorn on 127.0.0.1 (port 0) in a
thread, a bare git repository served over file://, GitHub-shaped push deliveries signed
with HMAC-SHA256 - and forged, replayed, oversized and malformed ones. Pushes are queued
and processed by the webhook's worker; `settled` waits for a delivery's outcome."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from jetstream.graph import TaskGraph, TaskKind
from jetstream.periods import Period
from jetstream.webhook import MAX_BODY, Webhook, WebhookConfig, signature
from jetstream.webhook_store import DONE, FAILED, Push
from tests.support.paths import REPO
from tests.test_changes import AS_OF, FIXTURE, ConfigGitRepo

SECRET = b"test-shared-key"


class Recorder:
    def __init__(self) -> None:
        self.graphs: list[TaskGraph] = []
        self.calls: list[dict[str, Any]] = []
        self.cleanups: list[list] = []

    def submit(self, graph: TaskGraph, *, config_repo: Path, commit: str) -> dict[str, Any]:
        assert (config_repo / "definitions" / "tiny.toml").is_file()
        self.graphs.append(graph)
        self.calls.append({"config_repo": config_repo, "commit": commit})
        return {"runner": "recorded", "tasks": len(graph.nodes)}

    def cleanup(self, plans) -> None:
        self.cleanups.append([p for p in plans if not p.is_empty])


class Server:
    """uvicorn serving an app on a socket bound to 127.0.0.1:0, in a thread."""

    def __init__(self, app: Any):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Origin:
    """A bare repository (the config repo on 'GitHub') and a work clone that pushes."""

    def __init__(self, tmp: Path):
        self.bare = tmp / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.work = ConfigGitRepo(tmp / "work")
        self.work.git("remote", "add", "origin", str(self.bare))
        self.work.git("push", "-q", "origin", "main")

    @property
    def url(self) -> str:
        return self.bare.resolve().as_uri()

    def change(self, rel: str, old: str | None, new: str, push: bool = True) -> tuple[str, str]:
        before = self.work.head
        if old is None:
            path = self.work.path / rel
            self.work.write(rel, (path.read_text() if path.exists() else "") + new)
        else:
            self.work.replace(rel, old, new)
        after = self.work.commit()
        if push:
            self.work.git("push", "-q", "origin", "main")
        return before, after


def payload(before: str, after: str, ref: str = "refs/heads/main") -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "before": before,
            "after": after,
            "repository": {"full_name": "mozilla/metric-hub"},
            "commits": [{"id": after, "added": [], "modified": ["x.toml"], "removed": []}],
        }
    ).encode()


def headers(
    body: bytes, delivery: str | None = None, event: str = "push", secret: bytes = SECRET
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature(secret, body),
        "Content-Type": "application/json",
    }


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin(tmp_path)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_webhook(tmp_path: Path, origin: Origin, recorder: Recorder, **kw: Any) -> Webhook:
    config = WebhookConfig(
        secret=SECRET,
        repo_url=kw.pop("repo_url", origin.url),
        experiments=str(FIXTURE / "experiments.json"),
        cache_dir=tmp_path / "cache",
        branch="main",
        **kw,
    )
    return Webhook(config, recorder.submit, cleanup=recorder.cleanup, as_of=lambda: AS_OF)


@pytest.fixture
def client(tmp_path, origin, recorder):
    webhook = make_webhook(tmp_path, origin, recorder)
    with (
        Server(webhook.app) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        http.webhook = webhook  # type: ignore[attr-defined]
        yield http


def settled(webhook: Webhook, delivery: str, timeout: float = 60) -> Push:
    """The delivery's push once the worker has finished with it."""
    deadline = time.monotonic() + timeout
    while True:
        push = webhook.store.find(delivery)
        if push is not None and push.state in (DONE, FAILED):
            return push
        assert time.monotonic() < deadline, f"delivery {delivery} not processed: {push}"
        time.sleep(0.05)


def post_settled(http: httpx.Client, body: bytes, **kw: Any) -> dict[str, Any]:
    """Deliver, expect 202 queued, and return the answer recorded once processed."""
    delivery = kw.pop("delivery", None) or str(uuid.uuid4())
    r = post(http, body, delivery=delivery, **kw)
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    push = settled(http.webhook, delivery)  # type: ignore[attr-defined]
    assert push.state == DONE, push
    assert push.answer is not None
    return push.answer


def post(http: httpx.Client, body: bytes, **kw: Any) -> httpx.Response:
    return http.post("/webhook", content=body, headers=headers(body, **kw))


# -- the done-when cases -----------------------------------------------------------------


def test_push_changing_one_metric_of_one_experiment(client, origin, recorder):
    before, after = origin.change(
        "jetstream/exp-a.toml", 'weekly = ["days_of_use"]', 'weekly = ["days_of_use", "searches"]'
    )
    doc = post_settled(client, payload(before, after))
    assert doc["status"] == "scheduled" and doc["after"] == after
    assert [e["experiment"] for e in doc["experiments"]] == ["exp-a"]
    assert doc["experiments"][0]["recompute"] == {"week": ["searches"]}
    assert len(recorder.graphs) == 1
    graph = recorder.graphs[0]
    metrics = [n for n in graph.nodes if n.kind is TaskKind.METRICS]
    assert {(n.slug, n.period, n.metrics) for n in metrics} == {
        ("exp-a", Period.WEEK, ("searches",))
    }
    assert doc["tasks"] == [n.id for n in graph.nodes]
    assert recorder.calls[0]["commit"] == after
    assert doc["submitted"] == {"runner": "recorded", "tasks": len(graph.nodes)}


def test_push_changing_a_shared_outcome(client, origin, recorder):
    before, after = origin.change(
        "jetstream/outcomes/tiny/engagement.toml",
        "[metrics.clicks.statistics.bootstrap_mean]",
        "[metrics.clicks.statistics.bootstrap_mean]\ndrop_highest = 0.01",
    )
    post_settled(client, payload(before, after))
    (graph,) = recorder.graphs
    metrics = [n for n in graph.nodes if n.kind is TaskKind.METRICS]
    assert {n.slug for n in metrics} == {"exp-a", "exp-b"}  # both use `engagement`
    assert {n.metrics for n in metrics} == {("clicks",)}


def test_push_changing_nothing_analysed(client, origin, recorder):
    before, after = origin.change("README.md", None, "More notes.\n")
    doc = post_settled(client, payload(before, after))
    assert doc["status"] == "nothing-to-do"
    assert doc["experiments"] == [] and doc["tasks"] == []
    assert recorder.graphs == []


# -- authentication, limits, malformed input ---------------------------------------------


def test_forged_or_missing_signature_is_401(client, origin, recorder):
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    body = payload(before, after)
    forged = headers(body, secret=b"not-the-key")
    assert client.post("/webhook", content=body, headers=forged).status_code == 401
    tampered = headers(body)
    r = client.post("/webhook", content=body.replace(b"main", b"mainx"), headers=tampered)
    assert r.status_code == 401
    unsigned = {k: v for k, v in headers(body).items() if k != "X-Hub-Signature-256"}
    r = client.post("/webhook", content=body, headers=unsigned)
    assert r.status_code == 401 and "missing" in r.json()["error"]
    bad_format = {**headers(body), "X-Hub-Signature-256": "sha1=abc"}
    assert client.post("/webhook", content=body, headers=bad_format).status_code == 401
    assert recorder.graphs == []
    # the genuine delivery still goes through afterwards
    post_settled(client, body)


def test_replays_are_deduplicated(client, origin, recorder):
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    body = payload(before, after)
    delivery = str(uuid.uuid4())
    first = post_settled(client, body, delivery=delivery)
    again = post(client, body, delivery=delivery)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["previous"]["tasks"] == first["tasks"]
    # the same push under a new delivery id (the id header is not signed) is a replay too
    other = post(client, body)
    assert other.status_code == 200 and other.json()["status"] == "duplicate"
    assert len(recorder.graphs) == 1


def test_deduplication_survives_a_restart(tmp_path, origin, recorder):
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    body = payload(before, after)
    delivery = str(uuid.uuid4())
    for expected in (202, 200):
        webhook = make_webhook(tmp_path, origin, recorder)
        with Server(webhook.app) as server:
            r = httpx.post(
                server.url + "/webhook",
                content=body,
                headers=headers(body, delivery=delivery),
                timeout=60,
            )
            assert r.status_code == expected, r.text
            settled(webhook, delivery)
    assert len(recorder.graphs) == 1


def test_oversized_bodies_are_413(client, origin, recorder):
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    padding = b" " * (MAX_BODY + 10)
    body = payload(before, after)[:-1] + padding + b"}"
    r = post(client, body)  # Content-Length says too big
    assert r.status_code == 413

    def chunks():
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = client.post("/webhook", content=chunks(), headers=headers(body))  # chunked, no length
    assert r.status_code == 413
    assert recorder.graphs == []


def test_malformed_json_is_400(client):
    body = b'{"ref": "refs/heads/main", "before": '
    r = post(client, body)
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    body = json.dumps({"ref": "refs/heads/main", "before": "x", "after": "y"}).encode()
    r = post(client, body)
    assert r.status_code == 400 and "commit id" in r.json()["error"]


def test_other_branches_events_and_ping(client, origin, recorder):
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    r = post(client, payload(before, after, ref="refs/heads/feature"))
    assert r.status_code == 202 and r.json()["status"] == "ignored"
    r = post(client, payload(before, after), event="issues")
    assert r.status_code == 202 and r.json()["status"] == "ignored"
    r = post(client, b'{"zen": "hi"}', event="ping")
    assert r.status_code == 200 and r.json()["status"] == "pong"
    r = post(client, payload("0" * 40, after))
    assert r.status_code == 202 and "branch created" in r.json()["reason"]
    assert recorder.graphs == []


def test_unknown_commit_is_422_and_redelivery_works(client, origin, recorder):
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)", push=False)
    body = payload(before, after)
    delivery = str(uuid.uuid4())
    r = post(client, body, delivery=delivery)
    assert r.status_code == 422 and after in r.json()["error"]
    origin.work.git("push", "-q", "origin", "main")
    post_settled(client, body, delivery=delivery)  # GitHub's redelivery keeps the id
    assert len(recorder.graphs) == 1


def test_unreachable_repository_is_503(tmp_path, origin, recorder):
    webhook = make_webhook(tmp_path, origin, recorder, repo_url=(tmp_path / "missing.git").as_uri())
    before, after = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    body = payload(before, after)
    with Server(webhook.app) as server:
        r = httpx.post(server.url + "/webhook", content=body, headers=headers(body), timeout=60)
    assert r.status_code == 503 and "cannot fetch" in r.json()["error"]


def test_probes(client, tmp_path):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text


def test_empty_secret_is_refused(tmp_path):
    with pytest.raises(ValueError, match="secret"):
        WebhookConfig(secret=b"", repo_url="file:///x", experiments="x", cache_dir=tmp_path)


def test_serve_command_requires_a_secret(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from jetstream.cli import cli

    monkeypatch.delenv("JETSTREAM_WEBHOOK_SECRET", raising=False)
    result = CliRunner().invoke(
        cli, ["webhook", "serve", "--repo-url", "file:///x", "--experiments", "x.json"]
    )
    assert result.exit_code == 2 and "JETSTREAM_WEBHOOK_SECRET" in result.output


# -- ordering, crashes, branches, connection limits (hardening) --------------------------


@pytest.mark.parametrize("revert_first", [True, False], ids=["revert-first", "push-first"])
def test_push_and_revert_delivered_at_once_end_at_the_revert(
    client, origin, recorder, revert_first
):
    rel, old, new = "jetstream/exp-a.toml", 'weekly = ["days_of_use"]', 'weekly = ["searches"]'
    initial = (origin.work.path / rel).read_text()
    first, pushed = origin.change(rel, old, new)
    _, reverted = origin.change(rel, new, old)
    push_body, revert_body = payload(first, pushed), payload(pushed, reverted)
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    deliveries = [(push_body, ids[0]), (revert_body, ids[1])]
    if revert_first:
        deliveries.reverse()
    answered: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda b=b, d=d: answered.append(post(client, b, delivery=d)))
        for b, d in deliveries
    ]
    for t in threads:  # both at once (the first a little ahead)
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join(60)
    assert [r.status_code for r in answered] == [202, 202], [r.text for r in answered]
    assert all(r.json()["status"] == "queued" for r in answered)
    answers = [settled(client.webhook, d).answer for d in ids]
    assert all(a and a["status"] != "failed" for a in answers), answers
    # what the warehouse reflects: the last submitted commit's configs (the initial ones
    # when nothing was submitted) - the revert's, whatever the order of the deliveries
    final = (recorder.calls[-1]["config_repo"] / rel).read_text() if recorder.calls else initial
    assert final == initial and 'weekly = ["searches"]' not in final
    assert not recorder.calls or recorder.calls[-1]["commit"] == reverted
    assert client.webhook.store.applied("refs/heads/main") in (None, reverted)


def test_pushes_waiting_together_are_coalesced_to_the_latest(tmp_path, origin, recorder):
    webhook = make_webhook(tmp_path, origin, recorder)  # worker not started yet
    a0, a1 = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    _, a2 = origin.change(
        "jetstream/exp-a.toml", 'weekly = ["days_of_use"]', 'weekly = ["days_of_use", "searches"]'
    )
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    for delivery, before, after in ((ids[0], a1, a2), (ids[1], a0, a1)):  # out of order
        webhook.store.enqueue(delivery, "refs/heads/main", before, after)
    webhook.start()
    try:
        deadline = time.monotonic() + 60
        while webhook.store.pending():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        webhook.stop()
    assert [c["commit"] for c in recorder.calls] == [a2]  # one rerun, a0 -> a2
    for delivery in ids:
        answer = webhook.store.find(delivery).answer
        assert (answer["before"], answer["after"], answer["status"]) == (a0, a2, "scheduled")
    assert webhook.store.applied("refs/heads/main") == a2


def test_commit_not_on_the_pushed_branch_is_refused(client, origin, recorder):
    origin.work.git("checkout", "-q", "-b", "side")
    before, side = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)", push=False)
    origin.work.git("push", "-q", "origin", "side")
    origin.work.git("checkout", "-q", "main")
    r = post(client, payload(before, side))  # claims to be a push to main
    assert r.status_code == 422, r.text
    assert "not on branch main" in r.json()["error"]
    time.sleep(0.5)
    assert recorder.graphs == [] and client.webhook.store.pending() == 0


CHILD = """
import json, socket, sys, time
import uvicorn
from jetstream.webhook import Webhook, WebhookConfig
from tests.test_changes import AS_OF
cfg = json.loads(sys.argv[1])

def submit(graph, *, config_repo, commit):
    with open(cfg["started"], "a") as f:
        f.write(commit + "\\n")
    time.sleep(3600)  # a long rerun, killed with the process

config = WebhookConfig(secret=cfg["secret"].encode(), repo_url=cfg["repo"],
    experiments=cfg["experiments"], cache_dir=cfg["cache"], lease=cfg["lease"], poll=0.1)
webhook = Webhook(config, submit, as_of=lambda: AS_OF)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(webhook.app, log_level="warning")).run(sockets=[sock])
"""


def test_a_crashed_webhooks_pushes_are_taken_over_after_the_lease(tmp_path, origin, recorder):
    import os
    import signal
    import sys

    root = REPO
    lease = 2.0
    p0, p1 = origin.change("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 1)")
    _, p2 = origin.change(
        "jetstream/exp-a.toml", 'weekly = ["days_of_use"]', 'weekly = ["days_of_use", "searches"]'
    )
    started = tmp_path / "started.txt"
    cfg = {
        "secret": SECRET.decode(),
        "repo": origin.url,
        "experiments": str(FIXTURE / "experiments.json"),
        "cache": str(tmp_path / "cache"),
        "lease": lease,
        "started": str(started),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(cfg)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    d1, d2 = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        assert child.stdout is not None
        url = f"http://127.0.0.1:{int(child.stdout.readline())}/webhook"
        body1, body2 = payload(p0, p1), payload(p1, p2)
        r = httpx.post(url, content=body1, headers=headers(body1, delivery=d1), timeout=60)
        assert r.status_code == 202 and r.json()["status"] == "queued", r.text
        deadline = time.monotonic() + 60
        while not (started.exists() and started.read_text().strip()):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        # answered 202 and queued while the first rerun runs; then the process dies
        r = httpx.post(url, content=body2, headers=headers(body2, delivery=d2), timeout=60)
        assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    killed = time.monotonic()
    assert started.read_text().split() == [p1]

    webhook = make_webhook(tmp_path, origin, recorder, lease=lease, poll=0.1)
    with Server(webhook.app) as server:
        # a redelivery meanwhile is a duplicate of a push still pending, not lost
        r = httpx.post(server.url + "/webhook", content=body1, headers=headers(body1, delivery=d1))
        assert r.status_code == 202 and r.json()["state"] in ("processing", "queued"), r.text
        first, second = settled(webhook, d1), settled(webhook, d2)
    taken_over = time.monotonic() - killed
    assert first.state == second.state == DONE, (first, second)
    assert [c["commit"] for c in recorder.calls] == [p2]  # both pushes, coalesced
    assert taken_over < lease + 20
    assert webhook.store.applied("refs/heads/main") == p2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _closed_within(sock: socket.socket, seconds: float, drip: bool) -> float | None:
    """Seconds until the server closed `sock` (dripping a header byte every 0.2 s when
    `drip`), or None if it was still open after `seconds`."""
    import select

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if drip:
            try:
                sock.sendall(b"a")
            except OSError:
                return time.monotonic() - start
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - start
            except OSError:
                return time.monotonic() - start
    return None


def test_serve_closes_slow_and_idle_connections_and_caps_them(tmp_path, origin, monkeypatch):
    import os
    import sys

    root = REPO
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(root), "JETSTREAM_WEBHOOK_SECRET": "k"}
    server = subprocess.Popen(
        [sys.executable, "-c", "from jetstream.cli import cli; cli()", "webhook", "serve"]
        + ["--port", str(port), "--repo-url", origin.url]
        + ["--experiments", str(FIXTURE / "experiments.json")]
        + ["--cache-dir", str(tmp_path / "cache"), "--runner", "local"]
        + ["--header-timeout", "1.5", "--max-connections", "4"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        # slow-loris: headers dripped a byte at a time are cut off at the deadline
        loris = socket.create_connection(("127.0.0.1", port))
        loris.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        took = _closed_within(loris, 10, drip=True)
        assert took is not None and took < 4, took
        # an idle connection that never sends a byte is closed too
        idle = socket.create_connection(("127.0.0.1", port))
        took = _closed_within(idle, 10, drip=False)
        assert took is not None and took < 4, took
        # beyond the cap, requests get 503 while idle connections hold the slots
        holders = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        with httpx.Client(timeout=5) as http:
            assert http.get(url + "/healthz").status_code == 503
        for h in holders:
            assert _closed_within(h, 10, drip=False) is not None
        with httpx.Client(timeout=5) as http:
            assert http.get(url + "/healthz").status_code == 200
        # a body that does not arrive in time is refused
        slow_body = socket.create_connection(("127.0.0.1", port))
        slow_body.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        slow_body.settimeout(10)
        assert slow_body.recv(4096).startswith(b"HTTP/1.1 408")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_argo_reruns_hold_the_repository_mutex(tmp_path, monkeypatch, shared_dir):
    from jetstream.graph import TaskNode
    from jetstream.manifests import load_schema
    from jetstream.runners.base import ARGO, RunnerOptions
    from jetstream.webhook import repo_mutex, runner_submitter
    from tests.support.argo_server import FakeArgo, schema_validator

    schema = load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    monkeypatch.setenv("ARGO_TOKEN", "t0ken")
    day = AS_OF
    enr = TaskNode(TaskKind.ENSURE_ENROLLMENTS, "exp-a", date=day)
    graph = TaskGraph((enr, TaskNode(TaskKind.EXPORT, "exp-a", date=day, depends=(enr.id,))))
    repo = "https://github.com/mozilla/metric-hub"
    with FakeArgo("t0ken", validate=schema_validator(schema)) as argo:
        submit = runner_submitter(
            "experiments.json",
            "bigquery:p.d",
            "gs://b/o",
            RunnerOptions(runner=ARGO, argo_server=argo.url),
            image="ghcr.io/x/jetstream@sha256:" + "0" * 64,
            namespace="analysis",
            pod_config_repo=repo,
            repo_url=repo,
        )
        submit(graph, config_repo=tmp_path, commit="a" * 40)
        submit(graph, config_repo=tmp_path, commit="b" * 40)
        bodies = [r.body["workflow"] for r in argo.requests if r.method == "POST"]
    assert len(bodies) == 2
    for wf in bodies:
        assert wf["spec"]["synchronization"] == {"mutexes": [{"name": repo_mutex(repo)}]}
    assert repo_mutex(repo) != repo_mutex(repo + "-other")
