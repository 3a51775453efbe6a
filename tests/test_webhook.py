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
