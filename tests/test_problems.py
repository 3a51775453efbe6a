"""Errors and warnings folded by kind (`jetstream.problems`), and on the demo: the
published errors document is a handful of rows with the multi-branch exclusion first."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from jetstream.export import errors_path
from jetstream.problems import Tally, aggregate, ordered, split_count
from tests.support import e2e_support as e2e

MSG = "reference mean of 'x' in branch '{b}' is not positive; relative uplift is undefined"


def test_tally_folds_segments_bases_and_branches_into_one_row_with_a_count():
    t = Tally()
    for segment in ("all", "new_users"):
        for basis in ("enrollments", "exposures"):
            for b in ("control", "treatment-a"):
                t.add(
                    MSG.format(b=b),
                    level="warning",
                    metric="x",
                    statistic="deciles",
                    segment=segment,
                    basis=basis,
                )
    t.add("covariate for 'x' is missing", level="warning", metric="x", statistic="mean_lm")
    rows = t.rows()
    assert len(rows) == 2
    level, metric, statistic, _, message = rows[0]
    assert (level, metric, statistic) == ("warning", "x", "deciles")
    assert message.endswith("(8 times: segments all/new_users; bases enrollments/exposures)")
    assert split_count(message)[1] == 8
    assert rows[1][4] == "covariate for 'x' is missing"  # once: no suffix


def _doc(window, message, metric="x", level="WARNING", period="day"):
    return {
        "log_level": level,
        "analysis_period": period,
        "window_index": window,
        "metric": metric,
        "statistic": "deciles" if metric else None,
        "exception_type": "StatisticError" if metric else "MultipleBranches",
        "message": message,
    }


def test_aggregate_folds_windows_and_puts_errors_and_experiment_wide_rows_first():
    unit = MSG.format(b="control") + " (4 times: segments all/new_users; bases enrollments)"
    docs = [_doc(w, unit) for w in (1, 2, 3, 5)]
    docs.append(_doc(None, "21 clients enrolled in more than one branch were excluded", None))
    docs.append(_doc(2, "statistic 'deciles' failed", level="ERROR"))
    out = aggregate(docs)
    assert [d["log_level"] for d in out] == ["ERROR", "WARNING", "WARNING"]
    assert out[1]["metric"] is None and "more than one branch" in out[1]["message"]
    folded = out[2]
    assert folded["window_index"] is None
    assert folded["message"].endswith(
        "(16 times: windows 1-3, 5; segments all/new_users; bases enrollments)"
    )
    # other periods are folded in too
    out = aggregate([*docs, _doc(1, unit, period="week")])
    assert len(out) == 3 and out[2]["analysis_period"] is None
    assert "(20 times: windows day 1-3, 5/week 1; segments" in out[2]["message"]
    assert ordered([{"level": "warning", "metric": "m"}, {"level": "error"}])[0]["level"] == (
        "error"
    )


@pytest.mark.slow
def test_demo_errors_are_a_handful_with_the_multi_branch_exclusion_first(tmp_path_factory):
    spec = e2e.load_spec(e2e.DEMO_SLUG, e2e.DEMO_REPO)
    last = spec.experiment.last_enrollment_date
    assert last is not None
    c = e2e.computed(
        tmp_path_factory.mktemp("e2e-demo"),
        e2e.DEMO_SLUG,
        e2e.DEMO_REPO,
        [last, last + dt.timedelta(days=6)],
    )
    table_rows = e2e.errors(c.path, e2e.DEMO_SLUG)
    path = next(c.out.rglob(errors_path(e2e.DEMO_SLUG).split("/")[-1]))
    docs = json.loads(path.read_text())
    assert 0 < len(docs) <= 20, [d["message"] for d in docs]
    assert len(docs) < len(table_rows) or len(table_rows) <= 20
    first = docs[0]
    assert first["log_level"] == "WARNING" and first["metric"] is None
    assert "more than one branch were excluded" in first["message"], first
    # the per-comparison warnings are folded: every statistic warning kind is one row
    kinds = [(d["analysis_period"], d["metric"], d["statistic"]) for d in docs if d["metric"]]
    assert len(kinds) == len(set(kinds)) or len(docs) <= 20


def test_preview_announces_consecutive_zero_byte_statements_in_one_line():
    from jetstream.preview.cost import Budget
    from jetstream.preview.recording import SqlRecorder

    lines: list[str] = []
    rec = SqlRecorder(None, "c.toml", "x", Budget(10**9, False, 6.25), lines.append)
    rec.record("DROP TABLE IF EXISTS a", 0)
    rec.record("CREATE OR REPLACE VIEW v AS SELECT 1", 0)
    rec.record("DROP TABLE IF EXISTS b", 0)
    rec.record("SELECT a FROM t", 2048)
    rec.record("DROP TABLE IF EXISTS c", 0)
    rec.flush()
    assert len(lines) == 3, lines
    assert lines[0].startswith("  [001]-[003] 3 statements at 0 B (")
    assert lines[1].startswith("  [004] setup (select): 2.0 KiB")
    assert lines[2].startswith("  [005] setup (") and ": 0 B" in lines[2]


def test_run_summary_lists_the_published_kinds_errors_and_experiment_wide_first(tmp_path):
    from jetstream.artifacts import LocalArtifactStore
    from jetstream.commands.run import problem_lines
    from jetstream.export import errors_document

    unit = MSG.format(b="control") + " (4 times: segments all; bases enrollments)"
    rows = [
        {
            "level": "warning",
            "period": "day",
            "window": w,
            "metric": "x",
            "statistic": "deciles",
            "exception_type": "StatisticError",
            "message": unit,
        }
        for w in range(1, 29)
    ]
    rows.append(
        {
            "level": "warning",
            "exception_type": "MultipleBranches",
            "message": "21 clients enrolled in more than one branch were excluded",
        }
    )
    LocalArtifactStore(tmp_path).write_json(errors_path("my-exp"), errors_document(rows))
    lines = problem_lines(str(tmp_path), ["my-exp", "absent"])
    assert lines[0] == "my-exp: 2 kinds of errors and warnings:"
    assert lines[1] == "  WARNING 21 clients enrolled in more than one branch were excluded"
    assert lines[2].startswith("  WARNING x/deciles: reference mean")
    assert lines[2].endswith("(112 times: windows 1-28; segments all; bases enrollments)")
    assert len(lines) == 3
