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
from jetstream.report.aggregate import metric_order, period_view, reference_branch, rounded
from jetstream.report.messages import group_messages, message_pattern
from tests.support import browser, servers
from tests.support.browser import browser_page
from tests.support.servers import gcs_client

gcs_emulator = servers.gcs_emulator  # fixtures
gcs_emulator_server = servers.gcs_emulator_server

SLUG = "report-demo.v2"
OTHER = "other-exp"
HOSTILE_METRIC = "</script><script>window.__pwned=1</script>"
BRANCHES = ("control", "treatment-a", "treatment-b")
EFFECTS = {"control": 0.0, "treatment-a": 0.05, "treatment-b": -0.03}


PAIRS = (
    ("treatment-a", "control"),
    ("treatment-b", "control"),
    ("treatment-b", "treatment-a"),
    # mirrors, published as the analysis publishes them; the page shows each pair once
    ("control", "treatment-a"),
    ("treatment-a", "treatment-b"),
)
MIRRORS = PAIRS[3:]
PERIODS = (("day", 14), ("week", 2), ("overall", 1))


def _srm_p(period: str, basis: str, window: int) -> float:
    """SRM p-values that differ by period: the exposures basis always mismatches, and the
    enrollments basis mismatches in week 2 only."""
    if basis == "exposures" or (period == "week" and window == 2):
        return 1e-6
    return 0.4


def synthetic_statistics(seed: int = 1) -> list[dict[str, Any]]:
    """Rows shaped like the statistics table, deliberately uneven so that every filter
    changes what is drawn: exposures only for active_hours and retained, segment new_users
    only for active_hours, a second statistic (median) only for active_hours; comparisons
    with the reference branch and between the treatments; client counts and SRM tests per
    period, window, basis and segment; deciles (a parameter) for search_count."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    plan = [
        ("active_hours", "mean", 3.0, ("enrollments", "exposures"), ("all", "new_users")),
        ("active_hours", "median", 2.0, ("enrollments",), ("all",)),
        ("search_count", "mean", 5.0, ("enrollments",), ("all",)),
        ("retained", "binomial", 0.6, ("enrollments", "exposures"), ("all",)),
    ]
    for period, windows in PERIODS:
        for basis in ("enrollments", "exposures"):
            for segment in ("all", "new_users"):
                for w in range(1, windows + 1):
                    where = dict(
                        segment=segment, analysis_basis=basis, period=period, window_index=w
                    )
                    for i, b in enumerate(BRANCHES):
                        n = 1000 + 10 * w + i + (500 if segment == "all" else 0)
                        out.append(
                            dict(where, metric="identity", statistic="count", branch=b, point=n)
                        )
                        out.append(
                            dict(
                                where,
                                metric="identity",
                                statistic="srm",
                                branch=b,
                                point=0.33 + 0.01 * (i == 1),
                                parameter="0.333333",
                                p_value=_srm_p(period, basis, w),
                            )
                        )
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
                        for b, to in PAIRS:
                            d = values[b] - values[to]
                            r = d / values[to]
                            p = rnd.uniform(0.001, 0.2)
                            for kind, point, half in (
                                ("difference", d, base * 0.05),
                                ("relative_uplift", r, 0.05),
                            ):
                                out.append(
                                    dict(
                                        common,
                                        branch=b,
                                        comparison=kind,
                                        comparison_to_branch=to,
                                        point=point,
                                        lower=point - half * rnd.uniform(0.5, 1.5),
                                        upper=point + half * rnd.uniform(0.5, 1.5),
                                        p_value=p,
                                        p_value_adjusted=min(1.0, 3 * p),
                                    )
                                )
        for q in ("0.1", "0.5", "0.9"):
            out.append(
                dict(
                    metric="search_count",
                    statistic="deciles",
                    parameter=q,
                    branch="control",
                    point=5.0 * float(q),
                    lower=4.0 * float(q),
                    upper=6.0 * float(q),
                    period=period,
                    window_index=1,
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
    ] + [
        dict(
            experiment=slug,
            period=period,
            window=w,
            metric=metric,
            statistic="deciles",
            level="warning",
            exception_type="StatisticError",
            message=f"reference mean of '{metric}' in branch '{b}' is not positive; "
            "relative uplift is undefined",
            timestamp=dt.datetime(2026, 1, 2, 3, 5, w),
        )
        for period in ("day", "week")
        for w in (1, 2)
        for metric in ("active_hours", "search_count")
        for b in BRANCHES
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
                },
                "retained": {"friendly_name": "Retained", "bigger_is_better": False},
                "search_count": {"friendly_name": "SAP searches"},
            },
            "outcomes": {
                "engagement": {"friendly_name": "Engagement", "metrics": ["search_count"]}
            },
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
    ] + [
        dict(
            metric=HOSTILE_METRIC,
            statistic="mean",
            branch="treatment",
            comparison=kind,
            comparison_to_branch="control",
            point=1.0,
            lower=0.5,
            upper=1.5,
            period="overall",
            window_index=1,
        )
        for kind in ("difference", "relative_uplift")
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
    assert len(demo.statistics["weekly"]) == 2 * len(demo.statistics["overall"]) - 3
    assert demo.metadata is not None and len(demo.metadata["sample_ratio_mismatch"]) == 6
    assert [e["log_level"] for e in demo.errors][:2] == ["ERROR", "WARNING"]
    assert len(demo.errors) == 4  # 2 + 24 rows, the 24 folded by kind (jetstream.problems)
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


# ------------------------------------------------------------------ aggregation


def test_message_pattern_and_grouping():
    assert message_pattern("21 clients enrolled in more than one branch were excluded") == (
        "# clients enrolled in more than one branch were excluded"
    )
    assert (
        message_pattern(
            "reference mean of 'x' in branch 'control' is not positive [segment a_b, exposures basis]"
        )
        == "reference mean of '…' in branch '…' is not positive [segment …, exposures basis]"
    )
    errors = error_rows(SLUG)
    doc = [dict(e, log_level=e["level"].upper(), analysis_period=e["period"]) for e in errors]
    kinds = group_messages(doc)
    assert [(k["level"], k["count"], k["exception_type"]) for k in kinds] == [
        ("ERROR", 1, "MetricError"),
        ("WARNING", 1, "MultipleBranches"),  # experiment-wide: before the 24 below
        ("WARNING", 24, "StatisticError"),
    ]
    assert kinds[1]["experiment_wide"] and not kinds[2]["experiment_wide"]
    assert kinds[2]["facets"]["metric"] == ["active_hours", "search_count"]
    assert kinds[2]["facets"]["analysis_period"] == ["day", "week"]
    assert len(kinds[2]["examples"]) == 5
    many = [dict(doc[2], metric=f"m{i}") for i in range(20)]
    facets = group_messages(many)[0]["facets"]
    assert len(facets["metric"]) == 12 and facets["metric_more"] == 8


def test_reference_branch_and_metric_order():
    rows = [
        dict(branch="b", comparison="difference", comparison_to_branch="a"),
        dict(branch="a", comparison="difference", comparison_to_branch="b"),
        dict(branch="a", comparison="difference", comparison_to_branch="b"),
    ]
    assert reference_branch(None, rows) == "b"
    assert reference_branch(None, [*rows, dict(branch="control")]) == "b"
    to_control = dict(branch="a", comparison="difference", comparison_to_branch="control")
    assert reference_branch(None, [*rows, to_control]) == "control"  # not a majority
    assert reference_branch(None, [dict(branch="x"), dict(branch="control")]) == "control"
    assert reference_branch({"external_config": {"reference_branch": "a"}}, rows) == "a"
    md = {
        "metrics": {"z": {"friendly_name": "Zed"}, "y": {}, "x": {"bigger_is_better": False}},
        "outcomes": {"o": {"friendly_name": "Outcome", "metrics": ["x", "missing"]}},
    }
    metrics, note = metric_order(md, {"x", "y", "z", "w"})
    assert [m["slug"] for m in metrics] == ["x", "z", "y", "w"]
    assert metrics[0]["primary"] and metrics[0]["outcome"] == "Outcome"
    assert not metrics[0]["bigger_is_better"] and metrics[1]["name"] == "Zed"
    assert "published outcomes (Outcome)" in note
    metrics, note = metric_order({"metrics": md["metrics"]}, {"x", "y", "z"})
    assert [m["slug"] for m in metrics] == ["z", "y", "x"] and "configuration order" in note
    assert not any(m["primary"] for m in metrics)


def test_period_view_keeps_only_what_the_views_draw(published):
    demo = load_results(LocalArtifactStore(published), SLUG)[0]
    view = period_view(demo.statistics["weekly"], "control", list(BRANCHES))
    assert view["windows"] == [1, 2]
    assert view["omitted"] == {"deciles": 3}
    assert sorted(view["cells"]) == ["enrollments", "exposures"]
    cell = view["cells"]["enrollments"]["all"]
    assert cell["counts"]["treatment-a"] == [1511.0, 1521.0]
    assert [t["p"] for t in cell["srm"]] == [0.4, 1e-6]
    assert cell["srm"][0]["expected"] == {b: 0.333333 for b in BRANCHES}
    keys = {(c["m"], c["s"], c["b"], c["to"]) for c in cell["comparisons"]}
    # 4 metric/statistic pairs x 3 branch pairs: of the 5 published directions, the
    # mirrors (control vs treatment-a, treatment-a vs treatment-b) are dropped
    assert len(keys) == 4 * 3
    assert not keys & {("active_hours", "mean", b, to) for b, to in MIRRORS}
    everything = period_view(demo.statistics["weekly"])  # no reference: alphabetical
    assert len(everything["cells"]["enrollments"]["all"]["comparisons"]) == 4 * 3
    c = next(
        c
        for c in cell["comparisons"]
        if c["m"] == "search_count" and (c["b"], c["to"]) == ("treatment-b", "treatment-a")
    )
    rows = [
        r
        for r in demo.statistics["weekly"]
        if r["metric"] == "search_count"
        and r.get("comparison_to_branch") == "treatment-a"
        and r["branch"] == "treatment-b"
        and r["analysis_basis"] == "enrollments"
        and r["segment"] == "all"
    ]
    for r in rows:
        i = int(r["window_index"]) - 1
        triple = c["rel" if r["comparison"] == "relative_uplift" else "abs"][i]
        assert triple == pytest.approx([r["point"], r["lower"], r["upper"]], rel=1e-5)
        assert c["p"][i] == pytest.approx(r["p_value"], rel=1e-5)
        assert c["q"][i] == pytest.approx(r["p_value_adjusted"], rel=1e-5)
    assert rounded(float("nan")) is None and rounded(True) is None
    assert rounded(1.23456789012) == 1.23457


# ------------------------------------------------------------------ in a browser


def pct(v: float) -> str:
    """The page's percent format (report.js `pct`)."""
    s = f"{v * 100:.2f}"
    if s == "-0.00":
        s = "0.00"
    return ("+" if v > 0 and s != "0.00" else "") + s + "%"


_SCORECARD_JS = """rows => rows.map(tr => {
  const span = sel => { const s = tr.querySelector(sel); return s && s.dataset.point !== undefined
    ? [Number(s.dataset.point), Number(s.dataset.lower), Number(s.dataset.upper), s.querySelector("b").textContent]
    : null; };
  const clients = tr.querySelector("td.clients"), p = tr.querySelector("td.p");
  return { m: tr.dataset.metric, s: tr.dataset.statistic, b: tr.dataset.branch, to: tr.dataset.to,
           rel: span(".rel"), abs: span(".abs"),
           p: p.dataset.p === undefined ? null : Number(p.dataset.p),
           q: p.dataset.q === undefined ? null : Number(p.dataset.q),
           n: clients.dataset.n === undefined ? null : Number(clients.dataset.n),
           nref: clients.dataset.nRef === undefined ? null : Number(clients.dataset.nRef),
           mark: tr.querySelector(".mark").className,
           swatch: tr.querySelector(".swatch").style.background };
})"""


def scorecard(page) -> list[dict[str, Any]]:
    return list(page.page.eval_on_selector_all("#scorecard tr.score-row", _SCORECARD_JS))


def expected_scorecard(
    published: Path, suffix: str, basis: str, segment: str, window: int, all_pairs: bool
) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """What the scorecard must show, straight from the published statistics JSON."""
    rows = json.loads(
        (published / f"statistics/statistics_report_demo_v2_{suffix}.json").read_text()
    )
    here = [
        r
        for r in rows
        if r["analysis_basis"] == basis
        and r["segment"] == segment
        and int(r["window_index"]) == window
    ]
    counts = {r["branch"]: r["point"] for r in here if r["statistic"] == "count"}
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in here:
        if not r.get("comparison") or r.get("parameter") is not None:
            continue
        if not all_pairs and r["comparison_to_branch"] != "control":
            continue
        if (r["branch"], r["comparison_to_branch"]) in MIRRORS:
            continue
        key = (r["metric"], r["statistic"], r["branch"], r["comparison_to_branch"])
        e = out.setdefault(key, {"n": counts[r["branch"]], "nref": counts[key[3]]})
        e["rel" if r["comparison"] == "relative_uplift" else "abs"] = (
            r["point"],
            r["lower"],
            r["upper"],
        )
        e["p"], e["q"] = r["p_value"], r["p_value_adjusted"]
    return out


def check_scorecard(
    page, published, suffix, basis, segment, window, all_pairs
) -> list[dict[str, Any]]:
    shown = scorecard(page)
    expected = expected_scorecard(published, suffix, basis, segment, window, all_pairs)
    assert {(r["m"], r["s"], r["b"], r["to"]) for r in shown} == set(expected)
    assert len(shown) == len(expected)
    for r in shown:
        e = expected[(r["m"], r["s"], r["b"], r["to"])]
        assert r["rel"][:3] == pytest.approx(list(e["rel"]), rel=1e-5)
        assert r["rel"][3] == pct(e["rel"][0])
        assert r["abs"][:3] == pytest.approx(list(e["abs"]), rel=1e-5)
        assert (r["p"], r["q"]) == pytest.approx((e["p"], e["q"]), rel=1e-5)
        assert (r["n"], r["nref"]) == (e["n"], e["nref"])
        lo, hi = e["rel"][1], e["rel"][2]
        bigger = r["m"] != "retained"  # the metadata says retained is smaller-is-better
        if lo <= 0 <= hi:
            assert "neutral" in r["mark"]
        else:
            good = (e["rel"][0] > 0) == bigger
            assert ("good" if good else "bad") in r["mark"]
    return shown


@pytest.mark.slow
def test_report_in_browser(published, tmp_path):
    path = render_report(str(published), tmp_path / "report")
    with browser_page(path.as_uri(), width=1400, wait_for="body[data-rendered]") as page:
        # the first experiment: a hostile metric name is drawn as text, never run
        assert page.options("#f-experiment") == ["other_exp", "report_demo_v2"]
        assert page.page.evaluate("window.__pwned === undefined")
        assert HOSTILE_METRIC in page.text("#scorecard")
        assert page.count("#forest g.forest-row") == 1

        page.select("#f-experiment", "report_demo_v2")
        assert page.options("#f-period") == ["daily", "weekly", "days28", "overall"]
        assert page.value("#f-period") == "overall"
        # primary outcome metrics first, then configuration order
        shown = check_scorecard(page, published, "overall", "enrollments", "all", 1, False)
        assert [r["m"] for r in shown][:2] == ["search_count", "search_count"]
        assert page.text("#scorecard tr.group-row") == "PRIMARY METRICS (ENGAGEMENT)"
        assert [r["m"] for r in shown[2:]] == [
            "active_hours", "active_hours", "active_hours", "active_hours", "retained", "retained"
        ]  # fmt: skip
        # one colour per treatment, the same in the scorecard, forest plot and legend
        colours = {r["b"]: r["swatch"] for r in shown}
        assert len(set(colours.values())) == 2
        assert page.count("#forest g.forest-row") == len(shown)
        assert page.count("#legend .legend-item") == 2
        assert page.text("#srm").startswith("SRM ok")
        assert page.page.is_hidden("#timeline-panel")  # one window: nothing over time

        # the period filter reaches the SRM verdict and the window choice
        page.select("#f-period", "weekly")
        assert page.options("#f-window") == ["1", "2"] and page.value("#f-window") == "2"
        check_scorecard(page, published, "weekly", "enrollments", "all", 2, False)
        assert "MISMATCH" in page.text("#srm") and "weekly, window 2" in page.text("#srm")
        page.select("#f-window", "1")
        check_scorecard(page, published, "weekly", "enrollments", "all", 1, False)
        assert page.text("#srm").startswith("SRM ok")
        assert page.count("#timeline article.card") == 4
        assert page.count("#timeline g.series") == 4 * 2
        assert page.count("#timeline path.series-line") == 4 * 2

        # all branch pairs behind the toggle, dashed and in their own colour
        page.page.check("#f-pairs")
        shown = check_scorecard(page, published, "weekly", "enrollments", "all", 1, True)
        assert len(shown) == 4 * 3
        assert len({r["swatch"] for r in shown}) == 3
        assert page.count("#timeline g.series") == 4 * 3
        assert page.count("#forest g.forest-row") == 4 * 3
        assert page.count("#legend .legend-item") == 3
        page.page.uncheck("#f-pairs")
        assert len(scorecard(page)) == 4 * 2

        page.select("#f-period", "daily")
        assert page.value("#f-window") == "14"  # the latest window of the new period
        check_scorecard(page, published, "daily", "enrollments", "all", 14, False)
        assert page.count("#timeline path.series-line") == 4 * 2
        assert page.count("#timeline circle.point") == 4 * 2 * 14

        page.select("#f-basis", "exposures")
        shown = check_scorecard(page, published, "daily", "exposures", "all", 14, False)
        assert {r["m"] + "/" + r["s"] for r in shown} == {"active_hours/mean", "retained/binomial"}
        assert "MISMATCH" in page.text("#srm") and "legitimately imbalanced" in page.text("#srm")
        page.select("#f-basis", "enrollments")

        assert page.options("#f-segment") == ["all", "new_users"]
        page.select("#f-segment", "new_users")
        shown = check_scorecard(page, published, "daily", "enrollments", "new_users", 14, False)
        assert {r["m"] for r in shown} == {"active_hours"}

        page.select("#f-period", "days28")
        assert "No comparisons" in page.text("#scorecard")
        assert "No relative uplift" in page.text("#forest")

        page.select("#f-period", "overall")
        page.select("#f-segment", "all")
        assert "deciles (3 rows)" in page.text("#omitted")
        # errors first, the experiment-wide warning next, per-statistic warnings grouped
        kinds = page.page.eval_on_selector_all(
            "#messages-table tr.kind",
            "rs => rs.map(r => [r.cells[0].innerText, r.querySelector('.kind-count').innerText])",
        )
        assert kinds == [["ERROR", "1"], ["WARNING", "1"], ["WARNING", "24"]]
        summary = page.text("#messages-summary")
        assert "1 errors" in summary and "25 warnings in 2 kinds" in summary
        assert "3 clients enrolled in more than one branch were excluded" in summary
        assert "DuckDB: division by zero" in summary
        page.screenshot(tmp_path / "scorecard.png", full_page=False)
    assert page.problems == []
    assert (tmp_path / "scorecard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_benchmark_measures_the_page(published, tmp_path):
    """benchmarks/report_bench.py on the fixture, once: it finds every period and the
    toggle, and its timings come from the painted page (no figure is asserted)."""
    from benchmarks import report_bench

    if browser.chromium_path() is None:
        pytest.skip("no Chromium on this machine")
    figures, data = report_bench.bench_svg(published, tmp_path, repeat=1, slug=SLUG)
    assert [s for s in report_bench.switches_for(data)] == [
        ("#f-period", "daily"),
        ("#f-period", "weekly"),
        ("#f-period", "days28"),
        ("#f-period", "overall"),
        ("#f-pairs", "on"),
        ("#f-pairs", "off"),
    ]
    assert figures["bytes"] == (tmp_path / "index.html").stat().st_size
    assert figures["page_errors"] == []
    assert figures["first_render_ms"]["runs"] == 1 and figures["first_render_ms"]["max"] > 0
    assert set(figures["period_switch_by_period_ms"]) == {"daily", "weekly", "days28", "overall"}
    assert {"parse", "scorecard", "forest", "timeline", "messages"} <= set(
        figures["first_render_steps_ms"]
    )
    assert figures["published_rows"] == sum(
        len(r) for r in load_results(LocalArtifactStore(published), SLUG)[0].statistics.values()
    )
