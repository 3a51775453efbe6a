"""Storage tables: names and column types. One table family per experiment (slug), plus
the shared `errors` and `runs` tables (their SQL: `jetstream.sql.results`). Pure."""

from __future__ import annotations

import re

METRICS_COLUMNS = (
    ("analysis_id", "STRING"),
    ("branch", "STRING"),
    ("analysis_basis", "STRING"),
    ("period", "STRING"),
    ("window_index", "INT64"),
    ("window_start", "INT64"),
    ("window_end", "INT64"),
    ("data_source", "STRING"),
    ("metric_slug", "STRING"),
    ("metric_value", "FLOAT64"),
    ("definition_hash", "STRING"),
)

STATISTICS_COLUMNS = (
    ("metric", "STRING"),
    ("statistic", "STRING"),
    ("parameter", "STRING"),
    ("branch", "STRING"),
    ("comparison", "STRING"),
    ("comparison_to_branch", "STRING"),
    ("ci_width", "FLOAT64"),
    ("point", "FLOAT64"),
    ("lower", "FLOAT64"),
    ("upper", "FLOAT64"),
    ("p_value", "FLOAT64"),
    ("p_value_adjusted", "FLOAT64"),
    ("segment", "STRING"),
    ("analysis_basis", "STRING"),
    ("period", "STRING"),
    ("window_index", "INT64"),
    ("definition_hash", "STRING"),
)

ERRORS_COLUMNS = (
    ("run", "STRING"),
    ("experiment", "STRING"),
    ("period", "STRING"),
    ("window", "INT64"),
    ("data_source", "STRING"),
    ("metric", "STRING"),
    ("statistic", "STRING"),
    ("level", "STRING"),
    ("exception_type", "STRING"),
    ("message", "STRING"),
    ("timestamp", "TIMESTAMP"),
    ("filename", "STRING"),
    ("func_name", "STRING"),
)
# columns added to ERRORS_COLUMNS after tables were first created (ensured on every export)
ERRORS_ADDED_COLUMNS = (("filename", "STRING"), ("func_name", "STRING"))

SEGMENTS_COLUMNS = (
    ("analysis_id", "STRING"),
    ("period", "STRING"),
    ("window_index", "INT64"),
    ("segment", "STRING"),
    ("in_segment", "BOOL"),
)

PARTIAL_DAYS_COLUMNS = (
    ("data_source", "STRING"),
    ("submission_date", "DATE"),
    ("definition_hash", "STRING"),
)

ERRORS_TABLE = "errors"
RUNS_TABLE = "runs"


def safe(slug: str) -> str:
    """A slug as a table-name fragment: lower-case alphanumerics and underscores."""
    return re.sub(r"[^a-z0-9_]", "_", slug.lower())


def enrollments_table(slug: str) -> str:
    return f"enrollments_{safe(slug)}"


def enrollment_staging_table(slug: str) -> str:
    return f"enrollment_clients_{safe(slug)}"


def exposure_days_table(slug: str) -> str:
    return f"exposure_days_{safe(slug)}"


def segments_table(slug: str) -> str:
    return f"segments_{safe(slug)}"


def segment_days_table(slug: str, segment: str) -> str:
    return f"segment_days_{safe(slug)}_{safe(segment)}"


def partials_table(slug: str, data_source: str) -> str:
    return f"partials_{safe(slug)}_{safe(data_source)}"


def partial_days_table(slug: str) -> str:
    return f"partial_days_{safe(slug)}"


def metrics_table(slug: str) -> str:
    return f"metrics_{safe(slug)}"


def metrics_view(slug: str, period: str) -> str:
    return f"metrics_{safe(slug)}_{period}"


def statistics_table(slug: str) -> str:
    return f"statistics_{safe(slug)}"


def staging_table(slug: str, *parts: str) -> str:
    return "staging_" + "_".join(safe(p) for p in (slug, *parts))
