"""mozanalysis as a per-client oracle: the reference libraries (mozanalysis and
mozilla-metric-config-parser, pinned, in their own virtualenv) parse the demo config
repository and write the SQL Jetstream would run for the demo experiment; that SQL runs on
the synthetic warehouse through our BigQuery->DuckDB layer, after our own analysis of the
demo, and every per-client value is compared with what the engine stored: enrollment
branch and date, segment membership, who counts as exposed, and each metric per period,
window and analysis basis. Differences must be in EXPECTED (deliberate, documented);
anything else fails and is listed."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from jetstream import results, synthetic
from jetstream.commands.loading import load_one
from jetstream.warehouse import open_warehouse
from tests.oracles import mozanalysis_harness as oracle
from tests.oracles.compare import (
    Difference,
    Expected,
    compare_columns,
    compare_population,
    split_multi_branch,
    unexpected,
)
from tests.support import e2e_support as es
from tests.support import venvs as venv

CLIENTS = 300

# Deliberate differences from Jetstream/mozanalysis on the demo (firefox_desktop-like)
# configuration, with the reason and the switch that restores the reference behaviour.
EXPECTED = (
    Expected(
        "segment",
        frozenset({"sidebar_regulars"}),
        "window_start/window_end on a segment set its window here (recomputed per analysis "
        "window for analysis_window_end); metric-config-parser ignores them and uses the "
        "segment data source's window (0, 0) (docs/config-reference.md, 'Differences "
        "from the reference tool' 5 and 'Segment windows')",
        "set the window on the segment data source, not on the segment",
    ),
    Expected(
        "population",
        frozenset({"multi_branch_clients"}),
        "a client with enrollment events for several branches is left out of the analysis "
        "(docs/config-reference.md, 'Differences from Jetstream' 1; a warning counts them); "
        "mozanalysis keys enrollments by (client, branch) and keeps a row per branch",
    ),
    Expected(
        "metric_missing",
        None,
        "pre-enrollment periods are computed on the enrollments basis only (they feed "
        "covariates; jetstream/tasks/staging.py bases_for); Jetstream also writes an "
        "exposures-basis table for them when a metric has that basis",
        periods=frozenset({"preenrollment_week", "preenrollment_days28"}),
        bases=frozenset({"exposures"}),
    ),
    Expected(
        "enrollment",
        frozenset({"num_exposure_events"}),
        "a client never exposed has 0 exposure events here (a count), NULL in mozanalysis; "
        "exposure dates agree and statistics filter on them (docs/config-reference.md, "
        "'Differences from Jetstream' 5)",
    ),
    Expected(
        "population",
        frozenset({"only_mozanalysis"}),
        "as above: no exposures-basis rows for pre-enrollment periods",
        periods=frozenset({"preenrollment_week", "preenrollment_days28"}),
        bases=frozenset({"exposures"}),
    ),
)

ENROLLMENT_COLUMNS = ("branch", "enrollment_date", "num_enrollment_events")
EXPOSURE_COLUMNS = ("exposure_date", "num_exposure_events")


@pytest.fixture(scope="module")
def oracle_python() -> Path:
    try:
        return oracle.python()
    except venv.Unavailable as exc:
        pytest.skip(f"mozanalysis oracle virtualenv unavailable: {exc}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> es.Computed:
    return es.computed(
        tmp_path_factory.mktemp("oracle"), es.DEMO_SLUG, es.DEMO_REPO, clients=CLIENTS
    )


def _rows(
    table, diffs: list[Difference], period: str = "", basis: str = ""
) -> dict[str, dict[str, Any]]:
    """Rows by client; clients with a row per branch are reported and left out."""
    rows, multi = split_multi_branch(table.to_pylist())
    if multi:
        diffs.append(
            Difference("population", "multi_branch_clients", period, basis, len(multi), multi[0])
        )
    return rows


def _stored(path: Path, slug: str) -> tuple[dict, dict, dict, list[tuple]]:
    enrollments = {
        r["analysis_id"]: r
        for r in es.query(path, f'SELECT * FROM main."{results.enrollments_table(slug)}"')
    }
    metrics: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    windows: dict[tuple[str, int], tuple[int, int]] = {}
    for r in es.query(
        path,
        "SELECT analysis_id, analysis_basis, period, window_index, window_start, window_end, "
        f'metric_slug, metric_value FROM main."metrics_{results.safe(slug)}"',
    ):
        key = (r["period"], r["window_index"], r["analysis_basis"], r["metric_slug"])
        metrics[key][r["analysis_id"]] = r["metric_value"]
        windows[(r["period"], r["window_index"])] = (r["window_start"], r["window_end"])
    segments: dict[tuple, dict[str, bool]] = defaultdict(dict)
    for r in es.query(path, f'SELECT * FROM main."segments_{results.safe(slug)}"'):
        segments[(r["period"], r["window_index"], r["segment"])][r["analysis_id"]] = r["in_segment"]
    return enrollments, metrics, segments, sorted(windows.items())


def compare_with_mozanalysis(
    stored_path: Path, experiments: str, config_repo: Path, slug: str, tmp_path: Path
) -> tuple[list[Difference], dict[str, int], int]:
    """The oracle's per-client rows for every window the engine stored, against the
    stored tables (on a copy of the warehouse): the differences, the counts compared and
    the number of windows."""
    enrollments, metrics, segments, windows = _stored(stored_path, slug)
    assert windows, f"the engine stored no metric windows for {slug}"
    analyses = oracle.generate_sql(experiments, config_repo, slug, [key for key, _ in windows])
    stored_windows = dict(windows)
    diffs: list[Difference] = []
    theirs = {(a["period"], a["window_index"]) for a in analyses}
    for period, index in sorted(theirs ^ set(stored_windows)):
        side = "only_mozanalysis" if (period, index) in theirs else "only_ours"
        diffs.append(Difference("window", side, f"{period}[{index}]", "", 0, "analysed"))
    analyses = [a for a in analyses if (a["period"], a["window_index"]) in stored_windows]

    (tmp_path / "oracle").mkdir()
    path = tmp_path / "oracle" / "warehouse.duckdb"
    shutil.copyfile(stored_path, path)
    wh = open_warehouse(es.url(path))
    counts: dict[str, int] = defaultdict(int)
    try:
        for i, a in enumerate(analyses):
            period, index = a["period"], a["window_index"]
            where = f"{period}[{index}]"
            if (a["window_start"], a["window_end"]) != stored_windows[(period, index)]:
                diffs.append(
                    Difference(
                        "window", "bounds", where, "", 0,
                        f"mozanalysis {a['window_start'], a['window_end']}, "
                        f"ours {stored_windows[(period, index)]}",
                    )
                )  # fmt: skip
            wh.create_table_as(oracle.ENROLLMENTS_PLACEHOLDER, a["enrollments_sql"])
            enrolled = _rows(
                wh.query(f"SELECT * FROM {oracle.ENROLLMENTS_PLACEHOLDER}"),
                diffs if i == 0 else [],
                "",
                "enrollments table",
            )
            counts["enrolled clients"] = max(counts["enrolled clients"], len(enrolled))
            if i == 0:
                diffs += compare_population(enrolled, enrollments, "", "enrollments table")
                # with a custom exposure signal, exposure depends on the analysis window
                columns = ENROLLMENT_COLUMNS + (() if a["exposure_signal"] else EXPOSURE_COLUMNS)
                found, n = compare_columns("enrollment", enrolled, enrollments, columns)
                diffs += found
                counts["enrollment values"] += n
            for name in a["segments"]:
                ours = {
                    cid: {name: v} for cid, v in segments.get((period, index, name), {}).items()
                } or {cid: {name: r.get(name)} for cid, r in enrollments.items() if name in r}
                if not ours:
                    diffs.append(Difference("segment", name, where, "", 0, "not stored"))
                    continue
                found, n = compare_columns("segment", enrolled, ours, [name], where)
                diffs += found
                counts["segment values"] += n
            for m in a["metrics"]:
                basis = m["basis"]
                sql = m["sql"].replace(
                    f"`{oracle.ENROLLMENTS_PLACEHOLDER}`", oracle.ENROLLMENTS_PLACEHOLDER
                )
                rows = _rows(wh.query(sql), diffs, where, basis)
                if basis == "exposures":  # Jetstream's subset: clients with an exposure date
                    rows = {c: r for c, r in rows.items() if r["exposure_date"] is not None}
                stored_any = {
                    cid
                    for (p, w, b, _), values in metrics.items()
                    if (p, w, b) == (period, index, basis)
                    for cid in values
                }
                diffs += compare_population(rows, stored_any, where, basis)
                counts["client windows"] += len(set(rows) & stored_any)
                for name in m["metrics"]:
                    stored = metrics.get((period, index, basis, name))
                    if not stored:
                        diffs.append(
                            Difference(
                                "metric_missing", name, where, basis, len(rows), "not stored"
                            )
                        )
                        continue
                    ours = {cid: {name: v} for cid, v in stored.items()}
                    found, n = compare_columns("value", rows, ours, [name], where, basis)
                    diffs += found
                    counts["metric values"] += n
    finally:
        wh.close()

    return diffs, counts, len(analyses)


def check(slug: str, diffs: list[Difference], counts: dict[str, int], windows: int) -> None:
    """Prints what was compared and every difference; fails on any not in EXPECTED."""
    print(f"\nmozanalysis oracle, {slug}: {windows} windows; " + ", ".join(
        f"{k} {v}" for k, v in sorted(counts.items())
    ))  # fmt: skip
    for d in diffs:
        print(("expected   " if d not in unexpected([d], EXPECTED) else "UNEXPECTED ") + str(d))
    stale = [r for r in EXPECTED if not any(r.covers(d) for d in diffs)]
    for rule in stale:
        print(f"expected difference no longer seen ({rule.kind} {sorted(rule.subjects or ())})")
    assert counts["metric values"] > 0
    bad = unexpected(diffs, EXPECTED)
    assert not bad, f"{len(bad)} difference(s) from mozanalysis not in EXPECTED:\n" + "\n".join(
        map(str, bad)
    )


@pytest.mark.slow
def test_demo_matches_mozanalysis_per_client(
    oracle_python: Path, demo: es.Computed, tmp_path: Path
) -> None:
    slug = demo.spec.slug
    check(
        slug, *compare_with_mozanalysis(demo.path, es.EXPERIMENTS, demo.config_repo, slug, tmp_path)
    )


@pytest.mark.slow
@pytest.mark.shared
def test_fenix_matches_mozanalysis_per_client(
    oracle_python: Path, metric_hub: Path, tmp_path: Path
) -> None:
    """A Glean platform (fenix, `glean-event` enrollments from events_stream) with the real
    metric-hub defaults, on Glean-shaped synthetic tables."""
    glean = pytest.importorskip(
        "jetstream.synthetic.glean",
        reason="no Glean-shaped synthetic tables in this tree (jetstream/synthetic/glean.py "
        "comes with the fidelity branch): the fenix oracle case needs them",
    )
    fenix = [e.slug for e in glean.GLEAN_EXPERIMENTS if e.app_name == "fenix"]
    assert fenix, "no fenix experiment among the synthetic Glean experiments"
    slug = fenix[0]
    path = tmp_path / "warehouse.duckdb"
    es.write_synthetic(path, CLIENTS, es.SEED)
    wh = open_warehouse(es.url(path))
    try:
        synthetic.write(wh, glean.generate_glean(clients=CLIENTS, seed=es.SEED))
    finally:
        wh.close()
    experiments = tmp_path / "experiments.json"
    records = synthetic.experimenter_records(experiments=glean.GLEAN_EXPERIMENTS)
    experiments.write_text(json.dumps(records))
    spec = load_one(slug, str(experiments), metric_hub)
    es.run_graph(
        spec, es.demo_dates(spec), metric_hub, path, tmp_path / "out",
        experiments=str(experiments),
    )  # fmt: skip
    check(slug, *compare_with_mozanalysis(path, str(experiments), metric_hub, slug, tmp_path))


def test_comparison_flags_values_populations_and_unlisted_differences() -> None:
    oracle_rows = {"a": {"m": 1, "d": True}, "b": {"m": 2.0, "d": False}, "c": {"m": None}}
    ours = {"a": {"m": 1.0, "d": 1.0}, "b": {"m": 2.5, "d": 0.0}, "x": {"m": 0.0}}
    diffs, n = compare_columns("value", oracle_rows, ours, ["m", "d"], "week[0]", "exposures")
    assert n == 4
    assert [(d.subject, d.clients) for d in diffs] == [("m", 1)]
    assert "b: mozanalysis 2.0, ours 2.5" in diffs[0].example
    population = compare_population(oracle_rows, ours, "week[0]", "exposures")
    assert [(d.subject, d.clients) for d in population] == [
        ("only_mozanalysis", 1),
        ("only_ours", 1),
    ]
    listed = Expected("value", frozenset({"m"}), "a reason")
    assert unexpected(diffs + population, [listed]) == population


def test_oracle_venv_build_failure_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv that cannot be built raises Unavailable (the oracle test then skips
    with the reason) and leaves no half-built directory behind."""
    monkeypatch.setenv("JETSTREAM_ORACLES_CACHE", str(tmp_path))
    with pytest.raises(venv.Unavailable, match="cannot build the broken virtualenv"):
        venv.venv_python("broken", ["not a requirement!!"])
    assert not (tmp_path / "broken").exists()
    assert not (tmp_path / "broken.building").exists()
