"""structlog set-up: human-readable in a terminal, JSON in pods (or when asked)."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def wants_json(stream=None) -> bool:
    """JSON when JETSTREAM_LOG_FORMAT=json, or when stderr is not a terminal."""
    fmt = os.environ.get("JETSTREAM_LOG_FORMAT", "").lower()
    if fmt == "json":
        return True
    if fmt in ("console", "human", "text"):
        return False
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure(level: str | None = None) -> None:
    """Configure structlog once per process; safe to call again."""
    level_name = (level or os.environ.get("JETSTREAM_LOG_LEVEL") or "INFO").upper()
    renderer: structlog.typing.Processor
    if wants_json():
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level_name, logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name) if name else structlog.get_logger()


def progress_logger() -> structlog.typing.FilteringBoundLogger:
    """A logger for run progress lines, shown at any JETSTREAM_LOG_LEVEL (like a progress
    bar is): JSON or console lines on stderr, as `configure` renders them."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if wants_json()
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
