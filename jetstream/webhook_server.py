"""Serving the webhook with uvicorn under connection limits: a deadline for a request's
headers (uvicorn has none: a client may open a connection and send nothing, or drip a
header byte at a time, for ever), the keep-alive idle timeout, and a cap on concurrent
connections (503 beyond it). The body's deadline is the app's (`WebhookConfig.body_timeout`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@attrs.frozen
class ServerLimits:
    header_timeout: float = 10.0  # seconds from connection (or idle) to complete headers
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    max_connections: int = 64  # concurrent connections and requests; 503 beyond
    max_header_bytes: int = 64 * 1024  # incomplete request head (h11's limit)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request headers are not all
    received within `header_timeout` seconds of the connection, or of the first byte of a
    later request on a kept-alive connection."""

    header_timeout = 10.0
    header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self.header_timer is None:
            self.header_timer = self.loop.call_later(self.header_timeout, self._headers_late)
        elif not waiting:
            self._cancel_header_timer()

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection: request headers not received in time")
            self.transport.close()


def protocol_class(limits: ServerLimits) -> type[H11Protocol]:
    return type(
        "WebhookH11Protocol", (HeaderDeadlineProtocol,), {"header_timeout": limits.header_timeout}
    )


def uvicorn_config(app: Any, host: str, port: int, limits: ServerLimits, **kwargs: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits),
        timeout_keep_alive=int(max(1, limits.keep_alive)),
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        proxy_headers=False,
        server_header=False,
        **kwargs,
    )


def serve(app: Any, host: str, port: int, limits: ServerLimits) -> None:
    import uvicorn

    uvicorn.Server(
        uvicorn_config(app, host, port, limits, log_level="info", access_log=False)
    ).run()
