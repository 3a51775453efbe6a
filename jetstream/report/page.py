"""One self-contained HTML page from published results: the pre-aggregated views
(`aggregate`) and grouped messages (`messages`) embedded as JSON, drawn by the page's own
inline script as a scorecard, a forest plot and windows over time (hand-written SVG; see
docs/report.md for why not a charting library)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jetstream.artifacts import open_store
from jetstream.logs import get_logger
from jetstream.problems import split_count
from jetstream.report.aggregate import (
    branch_order,
    metric_order,
    period_view,
    reference_branch,
)
from jetstream.report.load import (
    PERIOD_ORDER,
    ExperimentResults,
    ReportError,
    load_results,
)
from jetstream.report.messages import group_messages

log = get_logger(__name__)

REPORT_FILE = "index.html"
ASSETS = "report_assets"
_DATA_TOKEN = "__JETSTREAM_REPORT_DATA__"
_CSS_TOKEN = "/*__JETSTREAM_REPORT_CSS__*/"
_JS_TOKEN = "/*__JETSTREAM_REPORT_JS__*/"
_TITLE_TOKEN = "__JETSTREAM_REPORT_TITLE__"
_TOKENS = (_CSS_TOKEN, _JS_TOKEN, _DATA_TOKEN, _TITLE_TOKEN)


def experiment_view(e: ExperimentResults) -> dict[str, Any]:
    """Everything the page needs of one experiment."""
    all_rows = [r for rows in e.statistics.values() for r in rows]
    reference = reference_branch(e.metadata, all_rows)
    published = {
        str(r.get("metric"))
        for r in all_rows
        if r.get("comparison") and r.get("parameter") in (None, "")
    }
    metrics, order_note = metric_order(e.metadata, published)
    branches = branch_order(reference, all_rows)
    levels: dict[str, int] = {}
    for entry in e.errors:
        level = str(entry.get("log_level") or "ERROR").upper()
        # a folded row (jetstream.problems) counts as the occurrences it stands for
        levels[level] = levels.get(level, 0) + split_count(str(entry.get("message") or ""))[1]
    return {
        "slug": e.file_slug,
        "name": e.name,
        "reference": reference,
        "branches": branches,
        "metrics": metrics,
        "metric_order": order_note,
        "periods": {
            suffix: period_view(rows, reference, branches) for suffix, rows in e.statistics.items()
        },
        "messages": group_messages(e.errors),
        "message_levels": levels,
    }


def report_data(
    experiments: Sequence[ExperimentResults], *, source: str = "", title: str | None = None
) -> dict[str, Any]:
    """The JSON object the page script reads."""
    return {
        "title": title or _title(experiments),
        "source": source,
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "period_order": PERIOD_ORDER,
        "experiments": [experiment_view(e) for e in experiments],
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
    template = _asset("report.html")
    for token in _TOKENS:
        if token not in template:
            raise ReportError(f"report template is missing {token}")
    # Substitute in one pass so that nothing inserted is searched for tokens again.
    parts = re.split("(" + "|".join(re.escape(t) for t in _TOKENS) + ")", template)
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
    """Render the report for the results published at `statistics_location` (a directory
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
