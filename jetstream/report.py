"""The results dashboard: ONE self-contained HTML file rendered from published JSON.

Reads what `jetstream.export.publish` wrote (`statistics/statistics_<slug>_<suffix>.json`,
`metadata/metadata_<slug>.json`, `errors/errors_<slug>.json`) from a local directory or
`gs://` location, embeds it as JSON in the page, and lets a small inline script draw it:
per metric and statistic, line charts with confidence bands over the analysis windows for
every branch and for each comparison (difference, relative uplift); filters for
experiment, analysis period, analysis basis, segment, metric and statistic; a table of the
rows; the sample-ratio-mismatch flags; and every error and warning.

The page needs no network: JavaScript and CSS are inline, charts are SVG drawn by the
page's own script, and a Content-Security-Policy forbids any fetch.

    render_report("results/", Path("report/"))              # every experiment found
    render_report("gs://bucket/prefix", Path("r"), slug="my-exp")
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from jetstream.artifacts import ArtifactStore, open_store
from jetstream.errors import JetstreamError
from jetstream.export import file_slug
from jetstream.logs import get_logger
from jetstream.periods import Period

log = get_logger(__name__)

REPORT_FILE = "index.html"
ASSETS = "report_assets"
_DATA_TOKEN = "__JETSTREAM_REPORT_DATA__"
_CSS_TOKEN = "/*__JETSTREAM_REPORT_CSS__*/"
_JS_TOKEN = "/*__JETSTREAM_REPORT_JS__*/"
_TITLE_TOKEN = "__JETSTREAM_REPORT_TITLE__"
# Period order in the page: the established file suffixes, most useful first.
_PERIOD_ORDER = [p.file_suffix for p in Period]
_STATISTICS_FILE = re.compile(r"^statistics/statistics_(?P<rest>.+)\.json$")


class ReportError(JetstreamError):
    """The published results cannot be read or rendered."""


@attrs.frozen
class ExperimentResults:
    """The published documents of one experiment. `file_slug` is the slug as it appears in
    the file names (`-` and `.` replaced by `_`); `statistics` maps a period's file suffix
    (daily, weekly, ...) to its rows."""

    file_slug: str
    statistics: Mapping[str, Sequence[Mapping[str, Any]]]
    metadata: Mapping[str, Any] | None
    errors: Sequence[Mapping[str, Any]]

    @property
    def name(self) -> str:
        """The experiment slug as written (file names lose `-` and `.`); the errors document
        names it, otherwise the file slug stands in."""
        for e in self.errors:
            slug = e.get("experiment")
            if isinstance(slug, str) and slug and file_slug(slug) == self.file_slug:
                return slug
        return self.file_slug


def parse_statistics_path(path: str) -> tuple[str, str] | None:
    """`statistics/statistics_<file slug>_<suffix>.json` -> (file slug, suffix), or None.
    Suffixes may contain `_` (preenrollment_weekly), so the longest known one wins."""
    m = _STATISTICS_FILE.match(path)
    if not m:
        return None
    rest = m.group("rest")
    for suffix in sorted(_PERIOD_ORDER, key=len, reverse=True):
        if rest.endswith("_" + suffix) and len(rest) > len(suffix) + 1:
            return rest[: -len(suffix) - 1], suffix
    return None


def _read_json(store: ArtifactStore, path: str) -> Any:
    try:
        data = store.read_bytes(path)
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ReportError(f"{store.url(path)}: not valid JSON: {exc}") from exc


def load_results(store: ArtifactStore, slug: str | None = None) -> list[ExperimentResults]:
    """Every experiment with statistics files in `store` (or only `slug`), sorted by slug.
    Missing metadata or errors documents are tolerated (None / empty)."""
    wanted = file_slug(slug) if slug else None
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in store.list("statistics/"):
        parsed = parse_statistics_path(path)
        if parsed is None:
            log.debug("report.skip_file", path=path)
            continue
        fslug, suffix = parsed
        if wanted is not None and fslug != wanted:
            continue
        rows = _read_json(store, path)
        if not isinstance(rows, list):
            raise ReportError(f"{store.url(path)}: expected a JSON array of statistics rows")
        found.setdefault(fslug, {})[suffix] = rows
    if not found:
        what = f"for experiment {slug!r} " if slug else ""
        raise ReportError(
            f"no statistics files {what}under {store.url('statistics')} "
            "(expected statistics/statistics_<slug>_<period>.json)"
        )
    out = []
    for fslug in sorted(found):
        metadata = _read_json(store, f"metadata/metadata_{fslug}.json")
        errors = _read_json(store, f"errors/errors_{fslug}.json") or []
        if not isinstance(errors, list):
            raise ReportError(f"errors/errors_{fslug}.json: expected a JSON array")
        suffixes = sorted(found[fslug], key=_PERIOD_ORDER.index)
        periods = {suffix: found[fslug][suffix] for suffix in suffixes}
        out.append(ExperimentResults(fslug, periods, metadata, errors))
    return out


def report_data(
    experiments: Sequence[ExperimentResults], *, source: str = "", title: str | None = None
) -> dict[str, Any]:
    """The JSON object the page script reads."""
    return {
        "title": title or _title(experiments),
        "source": source,
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "period_order": _PERIOD_ORDER,
        "experiments": [
            {
                "slug": e.file_slug,
                "name": e.name,
                "statistics": {k: list(v) for k, v in e.statistics.items()},
                "metadata": dict(e.metadata) if e.metadata else None,
                "errors": list(e.errors),
            }
            for e in experiments
        ],
    }


def _title(experiments: Sequence[ExperimentResults]) -> str:
    if len(experiments) == 1:
        return f"Results: {experiments[0].name}"
    return f"Results: {len(experiments)} experiments"


def _asset(name: str) -> str:
    return (resources.files("jetstream") / ASSETS / name).read_text(encoding="utf-8")


def embed_json(obj: Any) -> str:
    """JSON safe inside a <script> element: no `</`, `<!--` or U+2028/9 survive raw."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_html(data: Mapping[str, Any]) -> str:
    """The complete page for `report_data(...)`."""
    import html

    template = _asset("report.html")
    for token in (_CSS_TOKEN, _JS_TOKEN, _DATA_TOKEN, _TITLE_TOKEN):
        if token not in template:
            raise ReportError(f"report template is missing {token}")
    # Substitute in one pass so that nothing inserted is searched for tokens again.
    parts = re.split(
        "("
        + "|".join(re.escape(t) for t in (_CSS_TOKEN, _JS_TOKEN, _DATA_TOKEN, _TITLE_TOKEN))
        + ")",
        template,
    )
    values = {
        _CSS_TOKEN: _asset("report.css"),
        _JS_TOKEN: _asset("report.js"),
        _DATA_TOKEN: embed_json(data),
        _TITLE_TOKEN: html.escape(str(data.get("title") or "Results")),
    }
    return "".join(values.get(p, p) for p in parts)


def render_report(
    statistics_location: str, out_dir: Path, slug: str | None = None, *, title: str | None = None
) -> Path:
    """Render the dashboard for the results published at `statistics_location` (a directory
    or gs://bucket[/prefix]) into `out_dir/index.html`; returns that path."""
    store = open_store(statistics_location)
    experiments = load_results(store, slug)
    data = report_data(experiments, source=statistics_location, title=title)
    page = render_html(data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / REPORT_FILE
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    log.info(
        "report.rendered",
        path=str(target),
        experiments=len(experiments),
        rows=sum(len(r) for e in experiments for r in e.statistics.values()),
        bytes=len(page.encode()),
    )
    return target
