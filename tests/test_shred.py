"""`jetstream shred` on a real DuckDB file: the shredded ids leave the file's bytes (not only
the tables), and a per-client table a concurrent writer creates during the shred is covered."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
from click.testing import CliRunner

from jetstream.cli import cli
from jetstream.shred import shred
from jetstream.sql.enrollments import CLIENT_KEY_COLUMN
from jetstream.warehouse.duckdb import DuckDBWarehouse
from jetstream.warehouse.mozfun import farm_fingerprint
from tests.support.paths import REPO
from tests.warehouse.test_bigquery import fake, wh  # noqa: F401 - fixtures

ROOT = REPO


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def _build(path: Path, ids: list[str], tables: int = 3) -> DuckDBWarehouse:
    duck = DuckDBWarehouse(path)
    rows = pa.table({"analysis_id": ids, "branch": ["control", "treatment"] * (len(ids) // 2)})
    for i in range(tables):
        # column definitions: analysis_id stored uncompressed, as the engine's tables are
        duck.execute(f"CREATE TABLE enrollments_t{i} (analysis_id STRING, branch STRING)")
        duck.load_arrow(f"enrollments_t{i}", rows)
    keys = farm_fingerprint(pa.array(ids, pa.string()))
    duck.load_arrow("exposure_days_t0", pa.table({CLIENT_KEY_COLUMN: keys, "day": [1] * len(ids)}))
    duck.execute("CREATE TABLE statistics_t0 (metric STRING, point FLOAT64)")
    return duck


def _shred(path: Path, victims: list[str], tmp: Path) -> str:
    ids_file = tmp / "ids.txt"
    ids_file.write_text("\n".join(victims) + "\n")
    res = CliRunner().invoke(
        cli, ["shred", "--client-ids", str(ids_file), "--warehouse", f"duckdb:{path}"]
    )
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    return res.output


def _occurrences(path: Path, ids: list[str]) -> dict[str, int]:
    data = path.read_bytes()
    return {i: data.count(i.encode()) for i in ids if data.count(i.encode())}


def test_shredded_ids_are_not_left_in_the_duckdb_file(tmp_path: Path) -> None:
    path = tmp_path / "duck.duckdb"
    ids = _ids(400)
    duck = _build(path, ids)
    victims, kept = ids[:20], ids[20:]
    with duck.session() as con:
        con.execute("CHECKPOINT")
    assert len(_occurrences(path, victims)) == len(victims)  # the check can see them

    out = _shred(path, victims, tmp_path)

    assert _occurrences(path, victims) == {}
    assert "file rewritten" in out
    assert len(_occurrences(path, kept)) == len(kept)  # the others are still readable
    assert not list(tmp_path.glob("*.compact*"))
    duck = DuckDBWarehouse(path)
    left = duck.query("SELECT analysis_id FROM enrollments_t0").column(0).to_pylist()
    assert sorted(left) == sorted(kept)
    keys = duck.query(f"SELECT {CLIENT_KEY_COLUMN} FROM exposure_days_t0").column(0).to_pylist()
    assert sorted(keys) == sorted(farm_fingerprint(pa.array(kept, pa.string())).to_pylist())
    assert duck.table_exists("statistics_t0")


WRITER = """
import sys, time
from pathlib import Path
from jetstream.warehouse.duckdb import DuckDBWarehouse
path, stop = sys.argv[1], Path(sys.argv[2])
duck = DuckDBWarehouse(path)
n = 0
while not stop.exists():
    # a run creating a per-client table from the warehouse's data, one lock hold each
    duck.create_table_as(f"metrics_late{n}", "SELECT *, 'm' AS metric_slug FROM segments_zz")
    n += 1
    time.sleep(0.02)
print(n)
"""


def test_a_table_created_during_the_shred_is_covered(tmp_path: Path) -> None:
    path = tmp_path / "duck.duckdb"
    ids = _ids(200)
    duck = _build(path, ids, tables=12)
    # the last table the shred reaches: a writer copying it copies the shredded clients
    # until the shred has passed it
    duck.execute("CREATE TABLE segments_zz (analysis_id STRING, segment STRING)")
    duck.load_arrow("segments_zz", pa.table({"analysis_id": ids, "segment": ["s"] * len(ids)}))
    victims = ids[:20]
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(stop)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(t.startswith("metrics_late") for t in duck.list_tables()):
            assert writer.poll() is None and time.monotonic() < deadline, "writer did not start"
            time.sleep(0.05)
        _shred(path, victims, tmp_path)
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0, out
    assert int(out.strip().splitlines()[-1]) >= 1
    late = [t for t in duck.list_tables() if t.startswith("metrics_late")]
    holding = {}
    for t in late:
        n = duck.query(
            f"SELECT COUNT(*) AS n FROM {t} WHERE analysis_id IN UNNEST(@v)", {"v": victims}
        )
        if n.column(0)[0].as_py():
            holding[t] = n.column(0)[0].as_py()
    assert holding == {}, f"tables still holding shredded clients: {holding}"


def test_bigquery_shred_binds_the_ids_and_covers_a_table_created_meanwhile(fake, wh):  # noqa: F811
    fake.tables = {
        "enrollments_x": [{"name": "analysis_id", "type": "STRING"}],
        "exposure_days_x": [{"name": CLIENT_KEY_COLUMN, "type": "INT64"}],
        "statistics_x": [{"name": "metric", "type": "STRING"}],
    }
    plain = fake.insert_job

    def insert_job(body: dict) -> dict:
        query = body["configuration"].get("query", {}).get("query", "")
        if query.startswith("DELETE") and "metrics_late" not in fake.tables:
            # a run creates a per-client table while the shred deletes
            fake.tables["metrics_late"] = [
                {"name": "analysis_id", "type": "STRING"},
                {"name": "metric_slug", "type": "STRING"},
            ]
        return plain(body)

    fake.insert_job = insert_job
    victims = ["id-1", "id-2"]
    result = shred(wh, victims)

    assert set(result.deleted) == {"enrollments_x", "exposure_days_x", "metrics_late"}
    assert not result.compacted
    deletes = [
        j["configuration"]["query"]
        for j in fake.job_inserts()
        if j["configuration"].get("query", {}).get("query", "").startswith("DELETE")
    ]
    assert len(deletes) == 3
    for job in deletes:
        (param,) = job["queryParameters"]
        values = [v["value"] for v in param["parameterValue"]["arrayValues"]]
        assert (param["name"], values) == ("client_ids", victims)
        assert not any(v in job["query"] for v in victims)  # bound, never inlined
    # the ids never went into a table of the dataset (time travel would keep it)
    assert fake.uploads == []
    assert not [j for j in fake.job_inserts() if "load" in j["configuration"]]
