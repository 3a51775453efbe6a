"""Optional dependencies: the base install runs the embedded engine (DuckDB, statistics,
validation, report, local runner); BigQuery, GCS, Argo and the web servers come with pip
extras. `require` turns a missing one into an error that names the extra to install."""

from __future__ import annotations

import importlib

from jetstream.errors import EXIT_USAGE, JetstreamError

# extra -> the modules it brings (import names)
EXTRAS: dict[str, tuple[str, ...]] = {
    "bigquery": ("google.cloud.bigquery",),
    "gcs": ("google.cloud.storage",),
    "argo": ("hera", "kubernetes"),
    "webhook": ("starlette", "uvicorn"),
}


class MissingExtraError(JetstreamError):
    """A feature needs a pip extra that is not installed."""

    exit_code = EXIT_USAGE


def require(extra: str, feature: str, modules: tuple[str, ...] | None = None) -> None:
    """Import the extra's modules (or `modules`); raise MissingExtraError naming the extra
    and the pip command when one is missing."""
    for name in modules or EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtraError(
                f"{feature} needs the '{extra}' extra ({name} is not installed): "
                f"pip install 'jetstream-platform[{extra}]'"
            ) from exc
