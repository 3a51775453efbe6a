"""The published JSON documents, in the established shape that results UIs read:

- `statistics/statistics_<slug>_<suffix>.json`: one array per analysis period (suffix =
  `Period.file_suffix`: daily, weekly, days28, overall, ...), valid against
  Statistics_v1.0.json;
- `metadata/metadata_<slug>.json`: metrics, outcomes, external config, analysis start time
  (Metadata_v1.0.json), plus our sample-ratio-mismatch results under `sample_ratio_mismatch`
  (the schema's top-level object does not forbid additional properties);
- `errors/errors_<slug>.json`: every error and warning, one row per kind and period with its
  count (`jetstream.problems`), errors and experiment-wide warnings first, each with the
  keys Experimenter's `AnalysisErrors` model requires (`filename`, `func_name`, `log_level`,
  `message`, `timestamp`).

Every field has one JSON type in every file: `window_index` is a string ("1") in the
statistics and in the errors documents.

`<slug>` in file names is the experiment slug with `-` and `.` replaced by `_`, as in the
warehouse table names (the established file names derive from them).

Builders are pure; `publish` is the only function that writes (through an ArtifactStore).
Input rows are plain mappings shaped like the warehouse tables.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jetstream import problems
from jetstream.artifacts import ArtifactStore
from jetstream.logs import get_logger
from jetstream.periods import Period

log = get_logger(__name__)

# The version of the statistics result shape that downstream readers (Experimenter) expect.
STATISTICS_SCHEMA_VERSION = 4
SRM_KEY = "sample_ratio_mismatch"
DEFAULT_SEGMENT = "all"
DEFAULT_ANALYSIS_BASIS = "enrollments"

# Statistics table column -> published key, in the established order.
_STAT_KEYS = (
    "metric",
    "statistic",
    "parameter",
    "branch",
    "comparison",
    "comparison_to_branch",
    "ci_width",
    "point",
    "lower",
    "upper",
    "p_value",
    "p_value_adjusted",
    "segment",
    "analysis_basis",
    "window_index",
)
_REQUIRED_STAT_KEYS = ("metric", "statistic", "point")
# Where Jetstream's metadata points for an experiment's config file (`external_config.url`)
# when the config repository has no http(s) URL of its own.
METRIC_HUB_URL = "https://github.com/mozilla/metric-hub"
ERROR_SOURCE = "jetstream"  # `source` of every published error (Experimenter's LogSource)
UNKNOWN_LOCATION = "<unknown>"  # filename / func_name of rows recorded before they existed
# Errors table column -> published key. `level` is published as `log_level` (the established
# name) and `window` as `window_index`.
_ERROR_KEYS = {
    "experiment": "experiment",
    "run": "run",
    "period": "analysis_period",
    "window": "window_index",
    "data_source": "data_source",
    "metric": "metric",
    "statistic": "statistic",
    "segment": "segment",
    "analysis_basis": "analysis_basis",
    "level": "log_level",
    "exception_type": "exception_type",
    "message": "message",
    "filename": "filename",
    "func_name": "func_name",
    "timestamp": "timestamp",
}
_THIS_FILE = __name__.replace(".", "/") + ".py"


def file_slug(slug: str) -> str:
    """The experiment slug as it appears in table and published file names."""
    return slug.replace("-", "_").replace(".", "_")


def statistics_path(slug: str, period: Period | str) -> str:
    p = period if isinstance(period, Period) else Period.parse(period)
    return f"statistics/statistics_{file_slug(slug)}_{p.file_suffix}.json"


def metadata_path(slug: str) -> str:
    return f"metadata/metadata_{file_slug(slug)}.json"


def errors_path(slug: str) -> str:
    return f"errors/errors_{file_slug(slug)}.json"


def statistics_documents(
    rows: Iterable[Mapping[str, Any]],
    periods: Iterable[Period | str] = (),
    *,
    slug: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Statistics rows -> {file path: JSON array}, one file per period.

    Every period in `periods` gets a file even when it has no rows (readers then see an
    empty array rather than last run's stale file); periods that appear in rows get one too.
    `slug` defaults to each row's `experiment` key; rows without either are an error.
    Rows that are not publishable statistics (error rows, rows without a finite point) are
    left out; `unpublishable_statistics` reports them so that `publish` lists them as
    warnings in the errors document.
    """
    docs, _skipped = _statistics(rows, periods, slug)
    return docs


def unpublishable_statistics(
    rows: Iterable[Mapping[str, Any]], *, slug: str | None = None
) -> list[dict[str, Any]]:
    """Warnings (errors-table shaped) for rows `statistics_documents` leaves out."""
    _docs, skipped = _statistics(rows, (), slug)
    return skipped


def _statistics(
    rows: Iterable[Mapping[str, Any]], periods: Iterable[Period | str], slug: str | None
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    docs: dict[str, list[dict[str, Any]]] = {}
    if slug is not None:
        for p in periods:
            docs.setdefault(statistics_path(slug, p), [])
    elif periods:
        raise ValueError("statistics_documents: `periods` needs `slug` to name the files")
    # unpublishable rows, grouped: one warning per metric, statistic, window and problem
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for i, row in enumerate(rows):
        row_slug = slug or row.get("experiment")
        if not row_slug:
            raise ValueError(f"statistics row {i}: no experiment slug (pass slug=...)")
        period_value = row.get("period")
        if period_value is None:
            raise ValueError(f"statistics row {i} ({row.get('metric')!r}): no period")
        period = period_value if isinstance(period_value, Period) else Period.parse(period_value)
        problem = _unpublishable(row)
        if problem:
            key = (str(row_slug), period, row.get("window_index"), row.get("metric"))
            groups.setdefault((*key, row.get("statistic"), problem), []).append(row)
            continue
        docs.setdefault(statistics_path(str(row_slug), period), []).append(_statistic(row))
    for doc in docs.values():
        doc.sort(key=_statistic_sort_key)
    skipped = [_skip_warning(key[0], key[1], group, key[5]) for key, group in groups.items()]
    return docs, skipped


def _unpublishable(row: Mapping[str, Any]) -> str | None:
    if row.get("level") is not None or row.get("exception_type") is not None:
        return "an error row, not a statistic"
    for key in _REQUIRED_STAT_KEYS:
        if row.get(key) is None:
            return f"no {key}"
    if _number(row.get("point")) is None:
        return f"point is not a finite number ({row.get('point')!r})"
    return None


def _skip_warning(
    slug: str, period: Period, group: Sequence[Mapping[str, Any]], problem: str
) -> dict[str, Any]:
    """One warning for the unpublishable rows of a metric, statistic and window that share
    a problem (a statistic undefined for every comparison gives one warning, not one per
    branch, parameter and segment), naming the first row's coordinates."""
    row = group[0]
    what = ", ".join(
        f"{k}={row.get(k)!r}"
        for k in ("branch", "comparison", "parameter", "segment", "analysis_basis")
        if row.get(k) is not None
    )
    head = (
        "statistic row not published"
        if len(group) == 1
        else f"{len(group)} statistic rows not published"
    )
    return {
        "experiment": slug,
        "period": period.value,
        "window": row.get("window_index"),
        "metric": row.get("metric"),
        "statistic": row.get("statistic"),
        "level": "WARNING",
        "exception_type": "UnpublishableStatistic",
        "message": f"{head}: {problem} ({'first: ' if len(group) > 1 else ''}{what})",
        "filename": _THIS_FILE,
        "func_name": "statistics_documents",
        "timestamp": None,
    }


def _statistic(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _STAT_KEYS:
        value = row.get(key)
        if key in ("ci_width", "point", "lower", "upper", "p_value", "p_value_adjusted"):
            value = _number(value)
        elif key == "parameter":
            value = _parameter(value)
        elif key == "window_index":
            value = None if value is None else str(value)
        elif key == "segment":
            value = value or DEFAULT_SEGMENT
        elif key == "analysis_basis":
            value = _plain(value) or DEFAULT_ANALYSIS_BASIS
        elif value is not None:
            value = _plain(value)
        if value is not None:
            out[key] = value
    out.setdefault("window_index", "1")
    return out


def _statistic_sort_key(d: Mapping[str, Any]) -> tuple[Any, ...]:
    def s(key: str) -> str:
        value = d.get(key)
        return "" if value is None else str(value)

    window = s("window_index")
    return (
        int(window) if window.isdigit() else 0,
        window,
        s("analysis_basis"),
        s("segment"),
        s("metric"),
        s("statistic"),
        s("branch"),
        s("comparison"),
        s("comparison_to_branch"),
        _parameter_sort(d.get("parameter")),
    )


def _parameter_sort(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (0, 0.0, "")
    try:
        return (1, float(value), "")
    except (TypeError, ValueError):
        return (2, 0.0, str(value))


def _parameter(value: Any) -> str | None:
    """Parameters are published as strings, numbers rounded to 6 decimals ("0.1")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(round(value, 6)) if math.isfinite(value) else None
    return str(value)


def _number(value: Any) -> float | None:
    """Finite float or None: NaN and infinities become null (then the key is left out)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _plain(value: Any) -> Any:
    """A JSON-ready value: enums to their value, dates to ISO strings, NaN to None."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    return value


def metric_metadata(metric: Any) -> dict[str, Any]:
    """MetricMetadata from a `config.model.Metric` or a mapping with the same fields."""
    get = metric.get if isinstance(metric, Mapping) else lambda k, d=None: getattr(metric, k, d)
    name = get("name") or get("slug")
    bases = get("analysis_bases") or (DEFAULT_ANALYSIS_BASIS, "exposures")
    bigger = get("bigger_is_better")
    return {
        "friendly_name": get("friendly_name") or name or "",
        "description": get("description") or "",
        "bigger_is_better": True if bigger is None else bool(bigger),
        "analysis_bases": [str(_plain(b)) for b in bases],
    }


def spec_summary(
    spec: Any,
    *,
    outcomes: Mapping[str, Mapping[str, Any]] | None = None,
    external_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `spec_summary` mapping for `metadata_document` from a `config.model.AnalysisSpec`:
    every summarised metric (all periods). `outcomes` is {slug: {friendly_name, description,
    metrics, default_metrics[, commit_hash]}} as the resolver knows them."""
    metrics: dict[str, Any] = {}
    for summaries in spec.metrics.values():
        for summary in summaries:
            metrics.setdefault(summary.metric.name, summary.metric)
    return {
        "slug": spec.slug,
        "metrics": metrics,
        "outcomes": dict(outcomes or {}),
        "external_config": dict(external_config) if external_config else None,
    }


def outcome_summary(slug: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """An outcome file's entry for `spec_summary(outcomes=...)`, as Jetstream publishes it:
    its friendly name and description, the metrics it defines (file order) and its
    `default_metrics`."""
    metrics = doc.get("metrics")
    defaults = doc.get("default_metrics")
    return {
        "slug": slug,
        "friendly_name": str(doc.get("friendly_name") or slug),
        "description": str(doc.get("description") or ""),
        "metrics": [str(m) for m in metrics] if isinstance(metrics, Mapping) else [],
        "default_metrics": [str(m) for m in defaults] if isinstance(defaults, list) else [],
    }


def config_file_url(slug: str, repo_url: str | None = None) -> str:
    """The web address of an experiment's config file: `<repo>/blob/main/jetstream/<slug>.toml`
    on the config repository's http(s) URL (a trailing `.git` and `@REF` dropped), else on
    metric-hub's, as Jetstream publishes it."""
    base = METRIC_HUB_URL
    if repo_url and repo_url.startswith(("https://", "http://")):
        head, sep, ref = repo_url.rpartition("@")
        url = head if sep and "/" not in ref else repo_url
        base = url.removesuffix("/").removesuffix(".git")
    return f"{base}/blob/main/jetstream/{slug}.toml"


# [experiment] key -> (ExperimentSettings attribute, Experimenter record attribute)
_OVERRIDABLE = {
    "reference_branch": ("reference_branch", "reference_branch"),
    "start_date": ("start_date", "start_date"),
    "end_date": ("end_date", "end_date"),
    "enrollment_period": ("enrollment_period", "proposed_enrollment"),
}


def external_config_overrides(
    settings: Any, record: Any, config_experiment: Mapping[str, Any] | None, *, url: str
) -> dict[str, Any] | None:
    """`external_config` as Jetstream fills it: None unless the experiment's config file
    (`config_experiment`: its `[experiment]` table, None without a file) overrides a value
    of the Experimenter `record` (reference branch, dates, enrollment period); then each
    overridden value (None where the record's stands), `skip`, and the file's URL.
    `settings` is the resolved `ExperimentSettings`."""
    if config_experiment is None:
        return None
    out: dict[str, Any] = {}
    for key, (ours, theirs) in _OVERRIDABLE.items():
        value = getattr(settings, ours, None)
        recorded = getattr(record, theirs, None) if record is not None else None
        set_here = config_experiment.get(key) is not None
        out[key] = value if set_here and value is not None and value != recorded else None
    if all(v is None for v in out.values()):
        return None
    return {**out, "skip": bool(settings.skip), "url": url}


def metadata_document(
    spec_summary: Mapping[str, Any],
    srm_rows: Sequence[Mapping[str, Any]] = (),
    *,
    analysis_start_time: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """The metadata document. `spec_summary` keys: `metrics` ({slug: Metric or mapping}),
    `outcomes` ({slug: mapping}), optional `external_config` ({url, reference_branch,
    start_date, end_date, enrollment_period, skip} or None) and `analysis_start_time`.
    `srm_rows` (any JSON-able mappings) are published under `sample_ratio_mismatch`."""
    metrics = {
        str(name): metric_metadata(m) for name, m in (spec_summary.get("metrics") or {}).items()
    }
    outcomes = {}
    for slug, o in (spec_summary.get("outcomes") or {}).items():
        outcome = {
            "slug": str(o.get("slug") or slug),
            "friendly_name": o.get("friendly_name") or str(slug),
            "description": o.get("description") or "",
            "metrics": [str(m) for m in o.get("metrics") or ()],
            "default_metrics": [str(m) for m in o.get("default_metrics") or ()],
        }
        if o.get("commit_hash"):
            outcome["commit_hash"] = str(o["commit_hash"])
        outcomes[str(slug)] = outcome
    external = spec_summary.get("external_config")
    start = analysis_start_time or spec_summary.get("analysis_start_time")
    if isinstance(start, dt.datetime):
        start = _plain(start)
    return {
        "schema_version": STATISTICS_SCHEMA_VERSION,
        "analysis_start_time": start,
        "external_config": _external_config(external) if external else None,
        "metrics": metrics,
        "outcomes": outcomes,
        SRM_KEY: [_plain(dict(r)) for r in srm_rows],
    }


def _external_config(ext: Mapping[str, Any]) -> dict[str, Any]:
    if not ext.get("url"):
        raise ValueError("metadata: external_config needs a `url` (the config file's URL)")
    out: dict[str, Any] = {"url": str(ext["url"])}
    for key in ("reference_branch", "start_date", "end_date", "enrollment_period", "skip"):
        out[key] = _plain(ext.get(key))
    return out


def errors_document(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every error and warning, oldest first, with the established key names (`log_level`),
    all keys present (null where unknown), levels upper-case."""
    out = []
    for e in errors:
        doc: dict[str, Any] = {}
        for column, key in _ERROR_KEYS.items():
            value = e.get(column, e.get(key))
            if column == "level" and value is not None:
                value = str(_plain(value)).upper()
            elif column == "period" and value is not None:
                value = (value if isinstance(value, Period) else Period.parse(str(value))).value
            elif column == "window" and value is not None:
                value = str(value)
            elif column in ("filename", "func_name") and not value:
                value = UNKNOWN_LOCATION
            doc[key] = _plain(value)
        doc["source"] = ERROR_SOURCE
        out.append(doc)
    out.sort(key=lambda d: (d["timestamp"] is None, str(d["timestamp"] or "")))
    return problems.aggregate(out)  # one row per kind; errors, experiment-wide first


def publish(
    store: ArtifactStore,
    slug: str,
    statistics_rows: Iterable[Mapping[str, Any]],
    error_rows: Iterable[Mapping[str, Any]],
    metadata: Mapping[str, Any] | None,
    *,
    periods: Iterable[Period | str] = (),
) -> list[str]:
    """Write the statistics files, then the errors file, then the metadata file (last, so a
    reader that sees new metadata sees the new statistics). Returns the paths written.
    Statistics rows that cannot be published appear as warnings in the errors file."""
    stat_rows = list(statistics_rows)
    docs, skipped = _statistics(stat_rows, periods, slug)
    now = dt.datetime.now(dt.UTC).isoformat()
    skipped = [{**w, "timestamp": now} for w in skipped]
    written = []
    for path, doc in sorted(docs.items()):
        store.write_json(path, doc)
        written.append(path)
    errors = errors_document([*error_rows, *skipped])
    store.write_json(errors_path(slug), errors)
    written.append(errors_path(slug))
    if metadata is not None:
        store.write_json(metadata_path(slug), _plain(dict(metadata)))
        written.append(metadata_path(slug))
    log.info(
        "published",
        experiment=slug,
        files=len(written),
        statistics=sum(len(d) for d in docs.values()),
        errors=len(errors),
        skipped_statistics=len(skipped),
    )
    return written
