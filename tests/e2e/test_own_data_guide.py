"""docs/own-data.md, followed literally on generated Parquet files: the guide's files are
written and its commands run as printed, and the analysis finds the planted effect."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.guide_runner import ROOT, follow

GUIDE = ROOT / "docs" / "own-data.md"
START = dt.date(2026, 1, 5)
END = dt.date(2026, 1, 14)
MAP = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


def write_parquet(workdir: Path, clients: int = 1500, seed: int = 7) -> None:
    """events.parquet and activity.parquet with the guide's columns: clients enrol on the
    first three days; treatment clients use the product 20% more."""
    rng = np.random.default_rng(seed)
    events: dict[str, list] = {k: [] for k in ("submission_date", "client_id",
        "event_category", "event_method", "event_string_value", "event_map_values")}  # fmt: skip
    activity: dict[str, list] = {
        k: [] for k in ("submission_date", "client_id", "active_minutes", "purchases")
    }
    for i in range(clients):
        cid = f"client-{i:05d}"
        branch = "treatment" if rng.random() < 0.5 else "control"
        enrolled = START + dt.timedelta(days=int(rng.integers(0, 3)))
        events["submission_date"].append(enrolled)
        events["client_id"].append(cid)
        events["event_category"].append("normandy")
        events["event_method"].append("enroll")
        events["event_string_value"].append("my-checkout-test")
        events["event_map_values"].append([{"key": "branch", "value": branch}])
        lift = 1.2 if branch == "treatment" else 1.0
        day = enrolled
        while day <= END:
            if rng.random() < 0.7:
                activity["submission_date"].append(day)
                activity["client_id"].append(cid)
                activity["active_minutes"].append(float(rng.gamma(2.0, 15.0) * lift))
                activity["purchases"].append(int(rng.poisson(0.05 * lift)))
            day += dt.timedelta(days=1)
    pq.write_table(
        pa.table(
            events,
            schema=pa.schema(
                [
                    ("submission_date", pa.date32()),
                    ("client_id", pa.string()),
                    ("event_category", pa.string()),
                    ("event_method", pa.string()),
                    ("event_string_value", pa.string()),
                    ("event_map_values", MAP),
                ]
            ),  # fmt: skip
        ),
        workdir / "events.parquet",
    )
    pq.write_table(
        pa.table(
            activity,
            schema=pa.schema(
                [
                    ("submission_date", pa.date32()),
                    ("client_id", pa.string()),
                    ("active_minutes", pa.float64()),
                    ("purchases", pa.int64()),
                ]
            ),  # fmt: skip
        ),
        workdir / "activity.parquet",
    )


@pytest.mark.slow
def test_own_data_guide_followed_literally(tmp_path: Path):
    write_parquet(tmp_path)
    follow(GUIDE.read_text(), tmp_path)
    stats = tmp_path / "results" / "statistics"
    overall = json.loads((stats / "statistics_my_checkout_test_overall.json").read_text())
    rel = [
        r
        for r in overall
        if r["metric"] == "active_minutes"
        and r["statistic"] == "mean"
        and r["branch"] == "treatment"
        and r.get("comparison") == "relative_uplift"
    ]
    assert rel, sorted({(r["metric"], r["statistic"], r.get("comparison")) for r in overall})
    assert rel[0]["lower"] > 0.05 and rel[0]["upper"] < 0.40, rel[0]
    assert {r["metric"] for r in overall} >= {"active_minutes", "purchases", "purchased"}
    assert (tmp_path / "report" / "index.html").is_file()
