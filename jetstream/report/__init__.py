"""The results report: ONE self-contained HTML file rendered from published JSON.

`load` reads what `jetstream.export.publish` wrote (locally or from gs://), `aggregate`
reduces the rows to what the views draw, `messages` groups errors and warnings by kind, and
`page` embeds both in the template under jetstream/report_assets/. The page needs no
network: script and style are inline and a Content-Security-Policy forbids any fetch.

    render_report("results/", Path("report/"))              # every experiment found
    render_report("gs://bucket/prefix", Path("r"), slug="my-exp")
"""

from jetstream.report.load import (
    PERIOD_ORDER,
    ExperimentResults,
    ReportError,
    load_results,
    parse_statistics_path,
)
from jetstream.report.page import (
    REPORT_FILE,
    embed_json,
    experiment_view,
    render_html,
    render_report,
    report_data,
)

__all__ = [
    "PERIOD_ORDER",
    "REPORT_FILE",
    "ExperimentResults",
    "ReportError",
    "embed_json",
    "experiment_view",
    "load_results",
    "parse_statistics_path",
    "render_html",
    "render_report",
    "report_data",
]
