"""The monitoring page (headless chromium), the serve app and scheduler, the CronWorkflows."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml

from jetstream.artifacts import open_store
from jetstream.monitoring.jobs import PAGE_PATH, Monitor
from jetstream.monitoring.page import ENROLLMENT_CHARTS, SEARCH_CHARTS, render_page
from jetstream.monitoring.schedule import Job
from jetstream.monitoring.server import DemoStream, Scheduler, app, demo_experiments, due_jobs
from jetstream.warehouse import open_warehouse
from tests.support.paths import REPO

CHROMIUM = Path("/usr/bin/chromium")
AT = dt.datetime(2026, 3, 2, 7, 12, tzinfo=dt.UTC)


def _data():
    times = [AT - dt.timedelta(minutes=5 * i) for i in range(30, 0, -1)]
    data = {}
    for slug, branches in {"exp-a": ["control", "treatment"], "exp-</b>": ["x", "y", "z"]}.items():
        data[slug] = {
            name: [
                {"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "branch": b, "value": i * (j + 1)}
                for i, t in enumerate(times)
                for j, b in enumerate(branches)
            ]
            for name, _ in ENROLLMENT_CHARTS + SEARCH_CHARTS
        }
    data["exp-a"]["experiment_cumulative_ad_clicks"] = []
    health = {
        "exp-a": {"ok": False, "srm": {"mismatch": True, "p_value": 0.001,
                                       "enrolled_clients": {"control": 600, "treatment": 400}},
                  "no_recent_enrollments": {"flag": False, "enrollments": 9,
                                            "enrollment_open": True}},
    }  # fmt: skip
    return data, health


def test_page_is_self_contained():
    data, health = _data()
    page = render_page(AT, data, health, refresh_seconds=30)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<link" not in page and "src=" not in page
    assert "exp-&lt;/b&gt;" in page  # names are escaped
    blob = page.split('id="monitoring-data">')[1].split("</script>")[0]
    assert json.loads(blob.replace("<\\/", "</"))["data"]["exp-</b>"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_page_renders_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    data, health = _data()
    path = tmp_path / "index.html"
    path.write_text(render_page(AT, data, health, refresh_seconds=0))
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox"])  # fmt: skip
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_selector(".chart svg")
        charts = page.locator(".chart").count()
        svgs = page.locator(".chart svg").count()
        lines = page.locator(".chart svg polyline").count()
        empty = page.locator(".chart svg text.empty").count()
        branches = page.locator("polyline[data-branch='treatment']").count()
        status = page.locator("[data-health]").first.get_attribute("data-health")
        legend = page.locator(".chart[data-experiment='exp-a'] text.legend").first.text_content()
        browser.close()
    assert errors == []
    n_charts = len(ENROLLMENT_CHARTS) + len(SEARCH_CHARTS)
    assert charts == svgs == 2 * n_charts
    assert empty == 1  # exp-a has no ad clicks yet
    assert lines == (n_charts - 1) * 2 + n_charts * 3
    assert branches == n_charts - 1
    assert status == "alarm"
    assert legend == "control: 29"


def test_serve_app_routes(tmp_path):
    from starlette.testclient import TestClient

    store = open_store(str(tmp_path))
    client = TestClient(app(store))
    first = client.get("/")
    assert first.status_code == 200 and "Waiting" in first.text
    store.write_bytes(PAGE_PATH, b"<html>page</html>", "text/html")
    store.write_json("monitoring/exp-a_health.json", {"ok": True})
    assert client.get("/").text == "<html>page</html>"
    assert client.get("/monitoring/exp-a_health.json").json() == {"ok": True}
    assert client.get("/monitoring/missing.json").status_code == 404
    assert client.get("/monitoring/..%2Fsecret").status_code == 404


def test_due_jobs_follow_the_cron_schedules():
    since = dt.datetime(2026, 3, 2, 2, 52, tzinfo=dt.UTC)
    jobs = due_jobs(since, since + dt.timedelta(minutes=40))
    assert jobs[0] == (since.replace(minute=55), Job.FIVE_MINUTE)
    three = since.replace(hour=3, minute=0)
    assert jobs[1:3] == [(three, Job.DAILY), (three, Job.FIVE_MINUTE)]
    assert (since.replace(hour=3, minute=30), Job.HOURLY) in jobs
    assert sum(j is Job.FIVE_MINUTE for _, j in jobs) == 8


@pytest.mark.slow
def test_scheduler_demo_pass_publishes_moving_numbers(tmp_path):
    wh = open_warehouse("duckdb::memory:")
    store = open_store(str(tmp_path))
    now = dt.datetime(2026, 3, 2, 7, 12, tzinfo=dt.UTC)
    scheduler = Scheduler(Monitor(wh), lambda: demo_experiments(now.date()), store,
                          DemoStream(clients=2000), tick=1.0)  # fmt: skip
    scheduler.run_once(now)
    assert scheduler.runs == 3
    doc = json.loads(
        store.read_bytes("monitoring/demo-sidebar-redesign_experiment_enrollment_overall.json")
    )
    total = sum(r["value"] for r in doc)
    scheduler.run_once(now + dt.timedelta(minutes=10))
    doc = json.loads(
        store.read_bytes("monitoring/demo-sidebar-redesign_experiment_enrollment_overall.json")
    )
    assert sum(r["value"] for r in doc) > total > 0
    assert store.exists(PAGE_PATH)


@pytest.mark.shared
def test_cron_workflows_render_and_validate(shared_dir):
    from jetstream.manifests import load_schema, validate_all
    from workflows.monitoring import monitoring_cron_workflows, render

    schema = load_schema(shared_dir / "schemas" / "argo-workflows.schema.json")
    objs = [w.to_dict() for w in monitoring_cron_workflows()]
    assert validate_all(objs, schema) == []
    specs = {o["metadata"]["name"]: o["spec"] for o in objs}
    assert {n: s["schedules"] for n, s in specs.items()} == {
        "jetstream-monitor-five-minute": ["*/5 * * * *"],
        "jetstream-monitor-hourly": ["30 * * * *"],
        "jetstream-monitor-daily": ["0 3 * * *"],
    }
    for spec in specs.values():
        assert spec["concurrencyPolicy"] == "Forbid" and spec["timezone"] == "UTC"
        args = spec["workflowSpec"]["templates"][0]["container"]["args"]
        assert args[:3] == ["monitor", "run", "--job"] and "{{workflow.scheduledTime}}" in args
    here = REPO / "charts" / "jetstream" / "files" / "workflows"
    for name, text in render().items():
        assert (here / name).read_text() == text, f"{name} is stale: python -m workflows.monitoring"
        assert yaml.safe_load(text)["kind"] == "CronWorkflow"
    # A broken one is caught (the validator is not vacuous).
    bad = objs[0] | {"spec": {**objs[0]["spec"], "schedules": ["*/5 * *"]}}
    assert validate_all([bad], schema)


def test_chromium_is_not_downloaded():
    # The browser is the system one; playwright's own download directory is not needed.
    assert CHROMIUM.exists() or shutil.which("chromium") is None
