"""Every BigQuery statement the engine issues, analysed by ZetaSQL (GoogleSQL's own
analyzer, the PyPI `zetasql` WASM build) against a catalog of the tables' BigQuery types
and the mozfun UDFs we support: a demo analysis (enrollments, exposures, segments,
partials, metrics, statistics, export, errors; DDL, views, transactions split into their
statements), the shred command, previews and their cleanup, the live-monitoring jobs.

The statements are recorded in BigQuery dialect before transpiling, by the DuckDB
warehouse's SQL log (jetstream/warehouse/sql_log.py), in the text BigQueryWarehouse would
send. ZetaSQL runs in its own virtualenv (tests/zetasql/harness.py); the test is skipped,
with the reason, only when that virtualenv cannot be built. Slow."""

from __future__ import annotations

import collections
import textwrap

import pytest

from jetstream.warehouse import mozfun
from tests.zetasql import collect, harness, udfs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> dict[str, list[dict]]:
    try:
        harness.venv_python()
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    tmp = tmp_path_factory.mktemp("zetasql")
    demo_log, warehouse = collect.demo(tmp)
    runs = {
        # shred runs on the demo's warehouse: analysed after the demo, in its catalog
        "demo+shred": demo_log + collect.shred(tmp, warehouse),
        "preview": collect.previews(tmp),
        "monitoring": collect.monitoring(tmp),
    }
    # query parameters are declared with the types the SQL log records for each statement
    # (as BigQueryWarehouse declares them: shred's ids are one ARRAY<STRING>)
    return harness.analyze(runs, udfs.declarations())


def test_every_bigquery_statement_passes_zetasql(analysed, capsys):
    counts = {run: len(results) for run, results in analysed.items()}
    failures = [(run, r) for run, results in analysed.items() for r in results if not r["ok"]]
    with capsys.disabled():  # the figure shows in the test output without -s
        print(f"\nZetaSQL analysed {sum(counts.values())} BigQuery statements: {counts}")
    report = "\n\n".join(
        f"[{run}] {r['error']}\n{textwrap.indent(r['sql'][:3000], '    ')}" for run, r in failures
    )
    assert not failures, f"{len(failures)} statements fail GoogleSQL analysis:\n\n{report}"


def test_every_kind_of_statement_was_analysed(analysed):
    """The recording reaches every path: a check that cannot pass on an empty log."""
    words = collections.Counter()
    for results in analysed.values():
        for r in results:
            text = " ".join(r["sql"].upper().split())
            words.update(w for w in (
                "CREATE OR REPLACE TABLE", "CREATE TABLE IF NOT EXISTS", "CREATE OR REPLACE VIEW",
                "BEGIN TRANSACTION", "COMMIT TRANSACTION", "DELETE FROM", "INSERT INTO",
                "DROP SCHEMA",
            ) if text.startswith(w))  # fmt: skip
    assert words["CREATE OR REPLACE TABLE"] > 20, words
    assert words["CREATE TABLE IF NOT EXISTS"] > 3, words
    assert words["BEGIN TRANSACTION"] == words["COMMIT TRANSACTION"] > 3, words
    assert words["DELETE FROM"] > 3 and words["INSERT INTO"] > 3, words
    assert words["CREATE OR REPLACE VIEW"] > 0, words
    assert words["DROP SCHEMA"] >= 2, words  # preview cleanup
    assert len(analysed["monitoring"]) > 10 and len(analysed["preview"]) > 10


def test_declared_udfs_are_the_supported_ones():
    supported = {
        name.replace("_", ".", 2) if name.startswith("mozfun_") else name.replace("_", ".", 1)
        for name in mozfun.SUPPORTED
        if name.startswith(("mozfun_", "udf_"))
    }
    assert set(udfs.SIGNATURES) == supported


def test_analyzer_rejects_what_bigquery_rejects():
    """The harness reports failures: reserved words, unknown functions and tables, an
    aggregate in UNNEST, type errors; and accepts the declared UDFs."""
    try:
        harness.venv_python()
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    load = {"kind": "load", "table": "telemetry.t", "columns": {"a": "ARRAY<STRING>", "n": "INT64",
            "m": "ARRAY<STRUCT<key STRING, value STRING>>"}}  # fmt: skip
    statements = [
        "CREATE TABLE IF NOT EXISTS `x` (window INT64)",
        "SELECT mozfun.hist.merge(a) FROM `mozdata.telemetry.t`",
        "SELECT n FROM no_such_table",
        "SELECT (SELECT COUNT(DISTINCT v) FROM UNNEST(ARRAY_CONCAT_AGG(a)) v) FROM telemetry.t",
        "SELECT LOWER(n) FROM telemetry.t",
        "SELECT mozfun.map.get_key(m, 'k') AS v, n FROM `moz-fx-data-shared-prod.telemetry.t`",
        "BEGIN TRANSACTION;\nDELETE FROM telemetry.t WHERE n = @n;\nCOMMIT TRANSACTION;",
    ]
    runs = {"probe": [load, *({"kind": "sql", "sql": s} for s in statements)]}
    results = harness.analyze(runs, udfs.declarations())["probe"]
    assert [r["ok"] for r in results] == [False] * 5 + [True] * 4, results
    errors = [r["error"] for r in results[:5]]
    assert "WINDOW" in errors[0]
    assert "Function not found: mozfun.hist" in errors[1]
    assert "Table not found: no_such_table" in errors[2]
    assert "not allowed in UNNEST" in errors[3]
    assert "No matching signature for function LOWER" in errors[4]
