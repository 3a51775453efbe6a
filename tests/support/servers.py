"""Small real HTTP servers on 127.0.0.1 for tests, started and stopped by fixtures.

`ScriptedHTTPServer` answers each request with the next scripted `Reply` (then repeats the
default), records every request, and can stall a reply to exercise client timeouts.

    with ScriptedHTTPServer() as server:
        server.script(Reply(503), Reply(200, b"[]"))
        httpx.get(server.url("/api/v8/experiments/"))

Fixtures: `http_server` (function scope) yields a started server and stops it afterwards;
`gcs_emulator` gives each test an empty gcp-storage-emulator (in memory, one server per
session: `gcs_emulator_server`), sets STORAGE_EMULATOR_HOST for the test, and yields its
base URL. Import both fixtures into a test module to use them.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest


@attrs.frozen
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = attrs.field(factory=dict)
    delay: float = 0.0  # seconds to stall before answering (the stall ends on server stop)
    content_type: str = "application/json"
    drip: float = 0.0  # seconds between body bytes (one byte at a time; ends on server stop)
    content_length: int | None = None  # declared length (default len(body)); -1: none, close


@attrs.frozen
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedHTTPServer:
    def __init__(self, default: Reply | None = None):
        self.default = default or Reply(404, b'{"detail": "not scripted"}')
        self.requests: list[RecordedRequest] = []
        self._script: list[Reply] = []
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        """Answer the next requests (any path) with these replies, in order."""
        with self._lock:
            self._script.extend(replies)

    def route(self, path: str, *replies: Reply) -> None:
        """Answer requests for `path` with these replies in order; the last one repeats."""
        with self._lock:
            self._routes[path] = list(replies)

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            if self._script:
                return self._script.pop(0)
            replies = self._routes.get(path.split("?", 1)[0])
            if replies:
                return replies.pop(0) if len(replies) > 1 else replies[0]
            return self.default

    # --- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ScriptedHTTPServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append(
                        RecordedRequest(self.command, self.path, dict(self.headers), body)
                    )
                reply = server._next_reply(self.path)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    length = (
                        len(reply.body) if reply.content_length is None else reply.content_length
                    )
                    if length >= 0:
                        self.send_header("Content-Length", str(length))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if self.command == "HEAD":
                        return
                    if not reply.drip:
                        self.wfile.write(reply.body)
                        return
                    for i in range(len(reply.body)):
                        self.wfile.write(reply.body[i : i + 1])
                        self.wfile.flush()
                        if server._stopping.wait(reply.drip):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedHTTPServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@pytest.fixture
def http_server() -> Iterator[ScriptedHTTPServer]:
    with ScriptedHTTPServer() as server:
        yield server


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_emulator_server() -> Iterator[Any]:
    """One gcp-storage-emulator (in memory) on 127.0.0.1 per test session; stopped after."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_emulator(gcs_emulator_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real GCS JSON/upload API on 127.0.0.1, emptied for each test; sets
    STORAGE_EMULATOR_HOST for the test and yields its base URL."""
    port = gcs_emulator_server._api._httpd.server_address[1]
    host = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    gcs_emulator_server.wipe()
    yield host
    gcs_emulator_server.wipe()


def gcs_client(project: str = "test-project") -> Any:
    """A real google-cloud-storage Client for the emulator (call inside `gcs_emulator`)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=project, credentials=AnonymousCredentials())
