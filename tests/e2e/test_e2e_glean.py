"""The real metric-hub `fenix` and `firefox_ios` defaults, unchanged, on the embedded engine:
synthetic Glean telemetry (jetstream/synthetic/glean.py), enrollments by the default
`glean-event` query from the app's `events_stream`, every due window of every period with
metric rows and no error rows, as test_e2e_engine does for firefox_desktop."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pytest

from jetstream import results, synthetic
from jetstream.commands.loading import load_one
from jetstream.config.model import AnalysisBasis
from jetstream.periods import due_window
from jetstream.synthetic.glean import GLEAN_EXPERIMENTS, generate_glean
from jetstream.warehouse import open_warehouse
from tests.support import e2e_support as e2e

CLIENTS = 600


@pytest.fixture(scope="module")
def glean_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("e2e-glean")
    path = work / "warehouse.duckdb"
    e2e.write_synthetic(path, CLIENTS, e2e.SEED)  # desktop tables too (unused here)
    wh = open_warehouse(e2e.url(path))
    try:
        synthetic.write(wh, generate_glean(clients=CLIENTS, seed=e2e.SEED))
    finally:
        wh.close()
    records = synthetic.experimenter_records(experiments=GLEAN_EXPERIMENTS)
    experiments = work / "experiments.json"
    experiments.write_text(json.dumps(records))
    return path, str(experiments)


@pytest.mark.shared
@pytest.mark.parametrize("slug", [e.slug for e in GLEAN_EXPERIMENTS])
def test_mobile_defaults_run_on_the_embedded_engine(
    slug: str, glean_warehouse: tuple[Path, str], metric_hub: Path, tmp_path: Path
) -> None:
    path, experiments = glean_warehouse
    spec = load_one(slug, experiments, metric_hub)
    exp = spec.experiment
    assert exp.enrollments_query_type == "glean-event"
    last, end = exp.last_enrollment_date, exp.end_date
    assert last is not None and end is not None and exp.is_complete
    dates = [last + dt.timedelta(days=d) for d in (0, 1, 6)] + [end]
    work = tmp_path / "warehouse.duckdb"
    shutil.copyfile(path, work)
    e2e.run_graph(spec, dates, metric_hub, work, tmp_path / "out", experiments=experiments)

    n_clients = e2e.query(
        work, f"SELECT COUNT(*) AS n FROM main.{results.enrollments_table(slug)}"
    )[0]["n"]
    assert n_clients > 100
    exposed = e2e.query(
        work,
        f"SELECT COUNT(*) AS n FROM main.{results.enrollments_table(slug)} "
        "WHERE exposure_date IS NOT NULL",
    )[0]["n"]
    assert 0 < exposed < n_clients  # the app's exposure events of the enrolled branch
    stored = e2e.query(
        work,
        f"SELECT period, window_index, analysis_basis, metric_slug, COUNT(*) AS n, "
        f"COUNT(metric_value) AS values FROM main.{results.metrics_table(slug)} GROUP BY ALL",
    )
    have = {(r["period"], r["window_index"], r["analysis_basis"], r["metric_slug"]) for r in stored}
    missing, periods = [], set()
    for date in dates:
        for period in spec.periods:
            w = due_window(period, date, last, end, exp.is_complete)
            if w is None:
                continue
            periods.add(period)
            for m in spec.metrics_for(period):
                bases = [AnalysisBasis.ENROLLMENTS] if period.is_preenrollment else m.analysis_bases
                for b in bases:
                    if (period.value, w.index, b.value, m.name) not in have:
                        missing.append((period.value, w.index, b.value, m.name))
    assert not missing, f"no metric rows for {missing}"
    assert periods == set(spec.periods)
    for r in stored:
        if r["analysis_basis"] == "enrollments":
            assert r["n"] == n_clients, r
        assert r["values"] > 0, f"{r['metric_slug']} {r['period']} stored only NULLs"
    errors = e2e.errors(work, slug, "error")
    assert errors == [], errors
    stats = e2e.query(work, f"SELECT COUNT(*) AS n FROM main.{results.statistics_table(slug)}")[0][
        "n"
    ]
    assert stats > 0


def test_profile_group_unit_runs_end_to_end(tmp_path: Path) -> None:
    """`analysis_unit = "profile_group_id"`: enrollments by the Normandy events'
    profile_group_id, every data source joined on it. The synthetic profile groups hold one
    client each (`pg-<client id>`), so every value equals the client_id run's."""
    repo = tmp_path / "repo"
    shutil.copytree(e2e.DEMO_REPO, repo)
    config = repo / "jetstream" / f"{e2e.DEMO_SLUG}.toml"
    text = config.read_text()
    assert "[experiment]\n" in text
    config.write_text(
        text.replace("[experiment]\n", '[experiment]\nanalysis_unit = "profile_group_id"\n', 1)
    )
    spec = e2e.load_spec(e2e.DEMO_SLUG, repo)
    assert spec.experiment.analysis_unit == "profile_group_id"
    last = spec.experiment.last_enrollment_date
    assert last is not None
    dates = [last, last + dt.timedelta(days=6)]
    by_group = e2e.computed(tmp_path / "group", e2e.DEMO_SLUG, repo, dates)
    by_client = e2e.computed(tmp_path / "client", e2e.DEMO_SLUG, e2e.DEMO_REPO, dates)
    assert e2e.errors(by_group.path, e2e.DEMO_SLUG, "error") == []

    def values(c: e2e.Computed, prefix: str) -> dict[tuple, object]:
        rows = e2e.query(
            c.path,
            "SELECT analysis_id, period, window_index, analysis_basis, metric_slug, "
            f"metric_value FROM main.{results.metrics_table(e2e.DEMO_SLUG)}",
        )
        out = {}
        for r in rows:
            assert r["analysis_id"].startswith(prefix), r
            key = r["analysis_id"].removeprefix(prefix)
            out[(key, r["period"], r["window_index"], r["analysis_basis"], r["metric_slug"])] = r[
                "metric_value"
            ]
        return out

    grouped, by_id = values(by_group, "pg-"), values(by_client, "")
    assert grouped and grouped.keys() == by_id.keys()
    # equal but for the order of floating-point sums
    differ = [
        k
        for k, v in grouped.items()
        if not (
            v == by_id[k] or (isinstance(v, float) and math.isclose(v, by_id[k], rel_tol=1e-12))
        )
    ]
    assert not differ, differ[:5]
