"""The results dashboard: reading published JSON, rendering one self-contained page, and
the page itself in headless Chromium (filters change what is drawn, no console errors, no
network)."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jetstream.artifacts import GCSArtifactStore, LocalArtifactStore
from jetstream.export import metadata_document, publish
from jetstream.report import (
    ReportError,
    embed_json,
    load_results,
    parse_statistics_path,
    render_report,
)
from tests import servers
from tests.browser import browser_page
from tests.servers import gcs_client

gcs_emulator = servers.gcs_emulator  # fixtures
gcs_emulator_server = servers.gcs_emulator_server

SLUG = "report-demo.v2"
OTHER = "other-exp"
HOSTILE_METRIC = "</script><script>window.__pwned=1</script>"
BRANCHES = ("control", "treatment-a", "treatment-b")
EFFECTS = {"control": 0.0, "treatment-a": 0.05, "treatment-b": -0.03}


def synthetic_statistics(seed: int = 1) -> list[dict[str, Any]]:
    """Rows shaped like the statistics table, deliberately uneven so that every filter
    changes what is drawn: exposures only for active_hours and retained, segment new_users
    only for active_hours, a second statistic (median) only for active_hours."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    plan = [
        ("active_hours", "mean", 3.0, ("enrollments", "exposures"), ("all", "new_users")),
        ("active_hours", "median", 2.0, ("enrollments",), ("all",)),
        ("search_count", "mean", 5.0, ("enrollments",), ("all",)),
        ("retained", "binomial", 0.6, ("enrollments", "exposures"), ("all",)),
    ]
    for period, windows in (("day", 14), ("week", 2), ("overall", 1)):
        for metric, statistic, base, bases, segments in plan:
            for basis in bases:
                for segment in segments:
                    for w in range(1, windows + 1):
                        common = dict(
                            metric=metric,
                            statistic=statistic,
                            ci_width=0.95,
                            segment=segment,
                            analysis_basis=basis,
                            period=period,
                            window_index=w,
                        )
                        values = {}
                        for b in BRANCHES:
                            v = base * (1 + EFFECTS[b]) * (1 + 0.02 * math.sin(w))
                            v += rnd.gauss(0, base * 0.01)
                            values[b] = v
                            half = base * 0.04
                            out.append(
                                dict(common, branch=b, point=v, lower=v - half, upper=v + half)
                            )
                        for b in BRANCHES[1:]:
                            d = values[b] - values["control"]
                            r = d / values["control"]
                            out.append(
                                dict(
                                    common,
                                    branch=b,
                                    comparison="difference",
                                    comparison_to_branch="control",
                                    point=d,
                                    lower=d - base * 0.05,
                                    upper=d + base * 0.05,
                                    p_value=0.03,
                                )
                            )
                            out.append(
                                dict(
                                    common,
                                    branch=b,
                                    comparison="relative_uplift",
                                    comparison_to_branch="control",
                                    point=r,
                                    lower=r - 0.05,
                                    upper=r + 0.05,
                                    p_value=0.03,
                                )
                            )
    return out


def srm_rows() -> list[dict[str, Any]]:
    rows = []
    for basis, p in (("enrollments", 0.4), ("exposures", 1e-6)):
        for b, share in zip(BRANCHES, (0.33, 0.34, 0.33), strict=True):
            rows.append(
                dict(
                    metric="enrollments",
                    statistic="srm",
                    branch=b,
                    point=share,
                    parameter="0.333333",
                    p_value=p,
                    analysis_basis=basis,
                    period="overall",
                    window_index=1,
                    segment="all",
                )
            )
    return rows


def error_rows(slug: str) -> list[dict[str, Any]]:
    return [
        dict(
            experiment=slug,
            period="week",
            window=1,
            metric="search_count",
            level="error",
            exception_type="MetricError",
            message="DuckDB: division by zero",
            timestamp=dt.datetime(2026, 1, 2, 3, 4, 5),
        ),
        dict(
            experiment=slug,
            period="day",
            window=2,
            metric=None,
            level="warning",
            exception_type="MultipleBranches",
            message="3 clients enrolled in more than one branch were excluded",
            timestamp=dt.datetime(2026, 1, 2, 3, 4, 6),
        ),
    ]


def publish_demo(store) -> None:
    """Two experiments: SLUG (full, with metadata and SRM) and OTHER (one hostile metric
    name, no metadata document)."""
    meta = metadata_document(
        {
            "metrics": {
                "active_hours": {
                    "friendly_name": "Active hours",
                    "description": "Hours of activity",
                    "bigger_is_better": True,
                }
            },
            "outcomes": {},
        },
        srm_rows(),
    )
    publish(
        store,
        SLUG,
        synthetic_statistics(),
        error_rows(SLUG),
        meta,
        periods=["day", "week", "overall", "days28"],
    )
    other = [
        dict(
            metric=HOSTILE_METRIC,
            statistic="mean",
            branch=b,
            point=1.0 + i,
            lower=0.5 + i,
            upper=1.5 + i,
            period="overall",
            window_index=1,
        )
        for i, b in enumerate(("control", "treatment"))
    ]
    publish(store, OTHER, other, [], None, periods=["overall"])


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("published")
    publish_demo(LocalArtifactStore(root))
    return root


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("statistics/statistics_my_exp_daily.json", ("my_exp", "daily")),
        (
            "statistics/statistics_my_exp_preenrollment_weekly.json",
            ("my_exp", "preenrollment_weekly"),
        ),
        ("statistics/statistics_a_weekly_thing_weekly.json", ("a_weekly_thing", "weekly")),
        ("statistics/statistics_x_days28.json", ("x", "days28")),
        ("statistics/statistics_daily.json", None),
        ("statistics/statistics_x_monthly.json", None),
        ("metadata/metadata_x.json", None),
    ],
)
def test_parse_statistics_path(path, expected):
    assert parse_statistics_path(path) == expected


def test_load_results(published):
    results = load_results(LocalArtifactStore(published))
    assert [r.file_slug for r in results] == ["other_exp", "report_demo_v2"]
    other, demo = results
    assert demo.name == SLUG  # from the errors document
    assert other.name == "other_exp"  # no errors: the file slug stands in
    assert list(demo.statistics) == ["daily", "weekly", "days28", "overall"]
    assert demo.statistics["days28"] == []
    assert len(demo.statistics["weekly"]) == 2 * len(demo.statistics["overall"])
    assert demo.metadata is not None and len(demo.metadata["sample_ratio_mismatch"]) == 6
    assert [e["log_level"] for e in demo.errors] == ["ERROR", "WARNING"]
    assert other.metadata is None and other.errors == []
    only = load_results(LocalArtifactStore(published), SLUG)
    assert [r.file_slug for r in only] == ["report_demo_v2"]


def test_load_results_errors(tmp_path):
    with pytest.raises(ReportError, match=r"no statistics files under .*statistics"):
        load_results(LocalArtifactStore(tmp_path))
    store = LocalArtifactStore(tmp_path)
    store.write_bytes("statistics/statistics_x_daily.json", b"{not json")
    with pytest.raises(ReportError, match=r"statistics_x_daily\.json: not valid JSON"):
        load_results(store)
    store.write_json("statistics/statistics_x_daily.json", {"rows": []})
    with pytest.raises(ReportError, match="expected a JSON array"):
        load_results(store)
    with pytest.raises(ReportError, match="for experiment 'y'"):
        load_results(store, "y")


def test_embed_json_cannot_close_the_script_element():
    text = embed_json({"m": HOSTILE_METRIC, "c": "<!-- \u2028"})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"m": HOSTILE_METRIC, "c": "<!-- \u2028"}


def test_render_report_is_self_contained(published, tmp_path):
    path = render_report(str(published), tmp_path / "out")
    assert path == tmp_path / "out" / "index.html"
    page = path.read_text()
    assert "__JETSTREAM_REPORT" not in page  # every template token was filled
    lowered = page.lower()
    for needle in ("<script src", '<link rel="stylesheet"', "https://", "@import", "url("):
        assert needle not in lowered
    # the only http URI is the SVG namespace name, which is never fetched
    assert lowered.count("http://") == lowered.count("http://www.w3.org/2000/svg") == 1
    assert "Content-Security-Policy" in page
    assert HOSTILE_METRIC not in page  # escaped inside the data block


def test_report_command(published, tmp_path):
    from jetstream.commands.report import command

    result = CliRunner().invoke(
        command, ["--statistics", str(published), "--out", str(tmp_path), "--experiment", SLUG]
    )
    assert result.exit_code == 0, result.output
    uri = result.output.strip().splitlines()[-1]
    assert uri == (tmp_path / "index.html").resolve().as_uri()
    assert "report_demo_v2" in (tmp_path / "index.html").read_text()
    assert "other_exp" not in (tmp_path / "index.html").read_text()
    missing = CliRunner().invoke(
        command, ["--statistics", str(tmp_path / "x"), "--out", str(tmp_path)]
    )
    assert missing.exit_code != 0
    assert "no statistics files" in str(missing.exception)


def test_render_report_from_gcs(gcs_emulator, tmp_path):
    client = gcs_client()
    client.create_bucket("results")
    publish_demo(GCSArtifactStore("results", "prefix", client=client))
    path = render_report("gs://results/prefix", tmp_path, SLUG)
    assert "report_demo_v2" in path.read_text()


# ------------------------------------------------------------------ in a browser


def _drawn(page) -> dict[str, int]:
    return {
        "cards": page.count("#charts article.card"),
        "lines": page.count("#charts svg path.series-line"),
        "bands": page.count("#charts svg path.band"),
        "whiskers": page.count("#charts svg path.whisker"),
        "points": page.count("#charts svg circle.point"),
        "rows": page.count("#rows tbody tr"),
    }


@pytest.mark.slow
def test_dashboard_in_browser(published, tmp_path):
    path = render_report(str(published), tmp_path / "report")
    with browser_page(path.as_uri(), wait_for="body[data-rendered]") as page:
        # defaults: first experiment (other_exp, overall only), then switch to the demo
        assert page.options("#f-experiment") == ["other_exp", "report_demo_v2"]
        assert page.page.evaluate("window.__pwned === undefined")
        assert HOSTILE_METRIC in page.text("#charts")  # drawn as text, not run
        hostile = _drawn(page)
        assert hostile["cards"] == 1 and hostile["whiskers"] == 2 and hostile["rows"] == 2

        page.select("#f-experiment", "report_demo_v2")
        assert page.text("#title").startswith("Results")
        assert page.value("#f-period") == "overall"  # the chosen period is kept
        assert page.options("#f-period") == ["daily", "weekly", "days28", "overall"]
        page.select("#f-period", "weekly")
        weekly = _drawn(page)
        # 4 metric/statistic groups x (branches, difference, relative uplift) charts
        assert weekly["cards"] == 4
        assert weekly["lines"] == 4 * (3 + 2 + 2)
        assert weekly["bands"] == weekly["lines"]
        assert weekly["points"] == 2 * weekly["lines"]  # two weekly windows
        assert weekly["rows"] == 4 * 7 * 2
        page.screenshot(tmp_path / "weekly.png", full_page=False)

        page.select("#f-period", "daily")
        daily = _drawn(page)
        assert daily["lines"] == weekly["lines"] and daily["points"] == 14 * daily["lines"]
        assert daily["rows"] == 4 * 7 * 14

        page.select("#f-period", "overall")
        overall = _drawn(page)
        assert overall["lines"] == 0 and overall["bands"] == 0  # one window: whiskers
        assert overall["whiskers"] == weekly["lines"] and overall["rows"] == 4 * 7

        page.select("#f-period", "days28")
        assert _drawn(page)["cards"] == 0
        assert "No rows match" in page.text("#charts")

        page.select("#f-period", "weekly")
        page.select("#f-basis", "exposures")
        exposures = _drawn(page)
        assert exposures["cards"] == 2  # active_hours/mean and retained/binomial
        assert exposures["rows"] == 2 * 7 * 2
        page.select("#f-basis", "enrollments")

        assert page.options("#f-segment") == ["all", "new_users"]
        page.select("#f-segment", "new_users")
        segment = _drawn(page)
        assert segment["cards"] == 1 and segment["rows"] == 7 * 2
        page.select("#f-segment", "all")

        page.select("#f-metric", "active_hours")
        metric = _drawn(page)
        assert metric["cards"] == 2  # mean and median
        cards = page.page.eval_on_selector_all(
            "#charts article.card", "cs => cs.map(c => c.dataset.metric)"
        )
        assert cards == ["active_hours", "active_hours"]
        assert "Active hours" in page.text("#charts article.card h3")  # friendly name
        assert page.options("#f-statistic") == ["*", "mean", "median"]
        page.select("#f-statistic", "median")
        statistic = _drawn(page)
        assert statistic["cards"] == 1 and statistic["rows"] == 7 * 2
        page.select("#f-metric", "*")
        page.select("#f-statistic", "mean")
        assert page.page.eval_on_selector_all(
            "#charts article.card",
            "cs => cs.map(c => c.dataset.metric + '/' + c.dataset.statistic)",
        ) == ["active_hours/mean", "search_count/mean"]

        # SRM flags: one of the two tests is a mismatch
        assert page.count("#srm-table tbody tr") == 2
        assert page.count("#srm-table tr.srm-flag") == 1
        assert "1 of 2 tests flag a sample ratio mismatch" in page.text("#srm")

        # errors panel, grouped by metric, with a level filter
        assert page.count("#errors-table tr.error-row") == 2
        assert "division by zero" in page.text("#errors")
        page.select("#f-level", "WARNING")
        assert page.count("#errors-table tr.error-row") == 1
        assert "division by zero" not in page.text("#errors")
        shot = page.screenshot(tmp_path / "full.png")
    assert page.problems == []
    assert shot.stat().st_size > 20_000
    assert (tmp_path / "weekly.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
