"""Exception types shared across the package, and the CLI exit codes they map to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # validation findings, failed tasks
EXIT_USAGE = 2  # usage or config error: not retried
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: transient warehouse or network error, retried


class JetstreamError(Exception):
    """Base class for errors with a user-facing message."""

    exit_code = EXIT_FINDINGS


class ConfigError(JetstreamError):
    """A config is invalid. `problems` holds `FILE: key.path: message` strings."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class ExperimentSourceError(JetstreamError):
    """The experiments source (file or Experimenter API) gave no usable answer."""

    exit_code = EXIT_USAGE


class TransientError(JetstreamError):
    """A retryable failure: warehouse busy, network down, concurrent update."""

    exit_code = EXIT_TRANSIENT


class MetricError(JetstreamError):
    """A metric's SQL or data failed: recorded as an error row, the run goes on."""
