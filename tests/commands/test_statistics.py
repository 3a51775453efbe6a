"""`jetstream statistics compute` (jetstream.commands.statistics) writes result rows."""

from __future__ import annotations

import json

from tests.statistics.data import make_table


def test_compute_command_writes_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from jetstream.commands.statistics import group

    t = make_table(200, 200)
    pq.write_table(pa.table({k: v for k, v in t.items()}), tmp_path / "in.parquet")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        group,
        [
            "compute",
            "--input",
            str(tmp_path / "in.parquet"),
            "--metric",
            "y",
            "--statistic",
            "bootstrap_mean",
            "--params",
            '{"num_samples": 100}',
            "--reference-branch",
            "control",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert len(rows) == 4
    assert rows[0]["segment"] == "all" and rows[0]["window_index"] == "1"
    result = CliRunner().invoke(
        group,
        [
            "compute",
            "--input",
            str(tmp_path / "in.parquet"),
            "--metric",
            "y",
            "--statistic",
            "bootstrap_mean",
            "--params",
            "[1]",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
