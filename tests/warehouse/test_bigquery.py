"""BigQueryWarehouse against a recording HTTP endpoint that answers like the BigQuery REST API.

The real google-cloud-bigquery client talks to a small http.server on 127.0.0.1
(`client_options={"api_endpoint": url}`, anonymous credentials); the tests assert the exact job
configurations it sends. Offline and fast.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import io
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials

from jetstream.errors import MetricError, TransientError
from jetstream.warehouse import open_warehouse
from jetstream.warehouse.bigquery import BigQueryWarehouse, map_error

PROJECT = "test-project"
DATASET = "results"


class FakeBigQuery:
    """Records every request; answers jobs.insert, jobs.get, jobs.getQueryResults, multipart
    load uploads, tables.get/delete/list."""

    def __init__(self):
        self.requests: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self.tables: dict[str, dict] = {}
        self.query_results: dict[str, dict] = {}  # query text substring -> {schema, rows}
        self.concurrent_failures = 0  # the next N transaction scripts fail
        self.uploads: list[dict] = []
        self.lock = threading.Lock()

    # -- recording helpers --------------------------------------------------------------------
    def job_inserts(self) -> list[dict]:
        return [
            r["body"]
            for r in self.requests
            if r["method"] == "POST" and r["path"].endswith("/jobs")
        ]

    def paths(self, method: str) -> list[str]:
        return [r["path"] for r in self.requests if r["method"] == method]

    # -- behaviour ----------------------------------------------------------------------------
    def insert_job(self, body: dict) -> dict:
        ref = body.get("jobReference") or {}
        job_id = ref.get("jobId") or uuid.uuid4().hex
        config = body["configuration"]
        job = {
            "kind": "bigquery#job",
            "id": f"{PROJECT}:{job_id}",
            "jobReference": {"projectId": PROJECT, "jobId": job_id},
            "configuration": config,
            "status": {"state": "DONE"},
            "statistics": {
                "creationTime": "1700000000000",
                "startTime": "1700000000000",
                "endTime": "1700000001000",
            },
        }
        query = config.get("query", {}).get("query", "")
        if config.get("dryRun"):
            job["statistics"]["totalBytesProcessed"] = "123456"
            job["statistics"]["query"] = {"totalBytesProcessed": "123456"}
        elif "query" in config:
            job["statistics"]["totalBytesProcessed"] = "2048"
            job["statistics"]["query"] = {
                "totalBytesProcessed": "2048",
                "totalBytesBilled": "10485760",  # BigQuery bills at least 10 MiB per query
                "statementType": "SELECT",
            }
            if query.startswith("BEGIN TRANSACTION") and self.concurrent_failures > 0:
                self.concurrent_failures -= 1
                job["status"]["errorResult"] = {
                    "reason": "invalidQuery",
                    "message": "Transaction is aborted due to concurrent update against "
                    f"table {PROJECT}:{DATASET}.metrics_x.",
                }
                job["status"]["errors"] = [job["status"]["errorResult"]]
            elif "no_such_table" in query:
                job["status"]["errorResult"] = {
                    "reason": "notFound",
                    "message": f"Not found: Table {PROJECT}:{DATASET}.no_such_table",
                }
                job["status"]["errors"] = [job["status"]["errorResult"]]
            elif query.startswith(("BEGIN TRANSACTION", "DELETE", "INSERT")):
                job["statistics"]["query"]["statementType"] = "SCRIPT"
                job["statistics"]["query"]["numDmlAffectedRows"] = "7"
        self.jobs[job_id] = job
        return job

    def results(self, job_id: str) -> dict:
        job = self.jobs[job_id]
        query = job["configuration"].get("query", {}).get("query", "")
        answer = {"schema": {"fields": []}, "rows": []}
        for key, value in self.query_results.items():
            if key in query:
                answer = value
        return {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": job["jobReference"],
            "jobComplete": True,
            "schema": answer["schema"],
            "rows": answer["rows"],
            "totalRows": str(len(answer["rows"])),
            "totalBytesProcessed": "2048",
        }


def _handler(fake: FakeBigQuery):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, payload: dict | None = None):
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self, what: str):
            self._reply(
                404,
                {
                    "error": {
                        "code": 404,
                        "message": f"Not found: {what}",
                        "errors": [{"reason": "notFound", "message": f"Not found: {what}"}],
                    }
                },
            )

        def _handle(self, method: str):
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = None
            content_type = self.headers.get("Content-Type", "")
            if raw and "json" in content_type:
                body = json.loads(raw)
            with fake.lock:
                fake.requests.append(
                    {"method": method, "path": url.path, "query": parse_qs(url.query), "body": body}
                )
                parts = url.path.strip("/").split("/")
                if url.path.startswith("/upload/"):
                    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
                    )
                    pieces = list(message.iter_parts())
                    config = json.loads(pieces[0].get_content())
                    data = pieces[1].get_payload(decode=True)
                    fake.uploads.append({"job": config, "data": data})
                    fake.requests[-1]["body"] = config
                    return self._reply(200, fake.insert_job(config))
                # /bigquery/v2/projects/{p}/...
                rest = parts[4:]
                if rest == ["jobs"] and method == "POST":
                    return self._reply(200, fake.insert_job(body))
                if len(rest) == 2 and rest[0] == "jobs" and method == "GET":
                    return self._reply(200, fake.jobs[rest[1]])
                if len(rest) == 2 and rest[0] == "queries":
                    return self._reply(200, fake.results(rest[1]))
                if len(rest) == 3 and rest[0] == "datasets" and rest[2] == "tables":
                    tables = [
                        {
                            "tableReference": {
                                "projectId": PROJECT,
                                "datasetId": rest[1],
                                "tableId": t,
                            },
                            "type": "TABLE",
                        }
                        for t in sorted(fake.tables)
                    ]
                    return self._reply(200, {"tables": tables, "totalItems": len(tables)})
                if len(rest) == 4 and rest[0] == "datasets" and rest[2] == "tables":
                    name = rest[3]
                    if name not in fake.tables:
                        return self._not_found(f"Table {PROJECT}:{rest[1]}.{name}")
                    if method == "DELETE":
                        del fake.tables[name]
                        return self._reply(204)
                    return self._reply(
                        200,
                        {
                            "tableReference": {
                                "projectId": PROJECT,
                                "datasetId": rest[1],
                                "tableId": name,
                            },
                            "schema": {"fields": fake.tables[name]},
                        },
                    )
                return self._not_found(url.path)

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def do_DELETE(self):
            self._handle("DELETE")

    return Handler


@pytest.fixture
def fake():
    fake = FakeBigQuery()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def wh(fake) -> BigQueryWarehouse:
    sleeps: list[float] = []
    warehouse = open_warehouse(
        f"bigquery:{PROJECT}.{DATASET}",
        client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
        maximum_bytes_billed=10**12,
        estimate_jobs=False,  # one job per call here; estimates: test_cost_guards_*
        labels={"app": "jetstream"},
        use_storage_api=False,
        retry_delay=0.5,
        sleep=sleeps.append,
    )
    warehouse.sleeps = sleeps
    yield warehouse
    warehouse.close()


def test_open_warehouse_gives_bigquery_and_table_refs(wh):
    assert isinstance(wh, BigQueryWarehouse)
    assert wh.name == "bigquery"
    assert wh.table_ref("metrics_x") == f"`{PROJECT}.{DATASET}.metrics_x`"
    assert wh.table_ref("telemetry.clients_daily") == f"`{PROJECT}.telemetry.clients_daily`"
    assert (
        wh.table_ref("moz-fx-data-shared-prod.telemetry.events")
        == "`moz-fx-data-shared-prod.telemetry.events`"
    )


def test_query_sends_labels_bytes_cap_parameters_and_returns_rows(wh, fake):
    fake.query_results["FROM `test-project.results.enrollments_x`"] = {
        "schema": {
            "fields": [
                {"name": "branch", "type": "STRING", "mode": "NULLABLE"},
                {"name": "n", "type": "INTEGER", "mode": "NULLABLE"},
            ]
        },
        "rows": [{"f": [{"v": "control"}, {"v": "10"}]}, {"f": [{"v": "treatment"}, {"v": "12"}]}],
    }
    sql = (
        f"SELECT branch, COUNT(*) AS n FROM {wh.table_ref('enrollments_x')} "
        "WHERE enrollment_date = @day AND branch IN UNNEST(@branches) GROUP BY branch"
    )
    table = wh.query(
        sql,
        params={"day": dt.date(2024, 1, 2), "branches": ["control", "treatment"]},
        labels={"experiment": "x", "task": "enrollments"},
    )
    assert table.to_pylist() == [{"branch": "control", "n": 10}, {"branch": "treatment", "n": 12}]
    [job] = fake.job_inserts()
    config = job["configuration"]
    assert config["labels"] == {"app": "jetstream", "experiment": "x", "task": "enrollments"}
    assert config["query"]["query"] == sql
    assert config["query"]["useLegacySql"] is False
    assert config["query"]["maximumBytesBilled"] == str(10**12)
    assert config["query"]["queryParameters"] == [
        {
            "name": "day",
            "parameterType": {"type": "DATE"},
            "parameterValue": {"value": "2024-01-02"},
        },
        {
            "name": "branches",
            "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}},
            "parameterValue": {"arrayValues": [{"value": "control"}, {"value": "treatment"}]},
        },
    ]
    assert "dryRun" not in config


def test_dry_run_returns_bytes_and_sends_dry_run_job(wh, fake):
    assert wh.dry_run("SELECT client_id FROM `moz-fx-data-shared-prod.telemetry.events`") == 123456
    [job] = fake.job_inserts()
    assert job["configuration"]["dryRun"] is True
    assert job["configuration"]["query"]["useQueryCache"] is False
    assert job["configuration"]["query"]["query"] == (
        "SELECT client_id FROM `moz-fx-data-shared-prod.telemetry.events`"
    )
    assert not fake.paths("GET")  # a dry run never waits for results


def test_invalid_sql_is_rejected_before_any_request(wh, fake):
    with pytest.raises(MetricError, match="does not parse as BigQuery"):
        wh.query("SELECT FROM WHERE")
    with pytest.raises(MetricError, match="does not parse as BigQuery"):
        wh.transaction(["DELETE FROM x WHERE", "INSERT INTO x SELECT 1"])
    assert fake.requests == []


def test_job_error_becomes_metric_error_with_bigquery_message(wh, fake):
    with pytest.raises(MetricError, match="Not found: Table test-project:results.no_such_table"):
        wh.query("SELECT * FROM no_such_table")


def test_transaction_is_one_script_and_retries_a_concurrent_update(wh, fake):
    fake.concurrent_failures = 2
    stats = wh.transaction(
        [
            "DELETE FROM `test-project.results.metrics_x` WHERE window_index = 3;",
            "INSERT INTO `test-project.results.metrics_x` SELECT * FROM `test-project.results.t`",
        ]
    )
    scripts = [j["configuration"]["query"]["query"] for j in fake.job_inserts()]
    expected = (
        "BEGIN TRANSACTION;\n"
        "DELETE FROM `test-project.results.metrics_x` WHERE window_index = 3;\n"
        "INSERT INTO `test-project.results.metrics_x` SELECT * FROM `test-project.results.t`;\n"
        "COMMIT TRANSACTION;"
    )
    assert scripts == [expected] * 3
    assert wh.sleeps == [0.5, 1.0]  # exponential backoff between attempts
    assert stats.rows_affected == 7
    assert stats.bytes_processed == 2048


def test_transaction_gives_transient_error_when_retries_run_out(wh, fake):
    fake.concurrent_failures = 10
    with pytest.raises(TransientError, match="concurrent update"):
        wh.transaction(["DELETE FROM `test-project.results.metrics_x` WHERE TRUE"])
    assert len(fake.job_inserts()) == wh.transaction_attempts


def test_create_table_as_with_expiration(wh, fake):
    wh.create_table_as("enrollments_x", "SELECT 1 AS a", expiration_days=7)
    wh.create_table_as("statistics_x", "SELECT 2 AS b", replace=False)
    first, second = (j["configuration"]["query"]["query"] for j in fake.job_inserts())
    assert first == (
        "CREATE OR REPLACE TABLE `test-project.results.enrollments_x` OPTIONS("
        "expiration_timestamp=TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 7 DAY)) AS\n"
        "SELECT 1 AS a"
    )
    assert second == "CREATE TABLE `test-project.results.statistics_x` AS\nSELECT 2 AS b"


@pytest.mark.parametrize(
    "mode,disposition", [("append", "WRITE_APPEND"), ("replace", "WRITE_TRUNCATE")]
)
def test_load_arrow_is_a_parquet_load_job(wh, fake, mode, disposition):
    data = pa.table(
        {"client_id": ["a", "b"], "n": [1, 2], "keyed": [[{"key": "k", "value": 1}], []]}
    )
    wh.load_arrow("telemetry.clients_daily", data, mode=mode)
    [upload] = fake.uploads
    load = upload["job"]["configuration"]["load"]
    assert load["sourceFormat"] == "PARQUET"
    assert load["writeDisposition"] == disposition
    assert load["createDisposition"] == "CREATE_IF_NEEDED"
    assert load["destinationTable"] == {
        "projectId": PROJECT,
        "datasetId": "telemetry",
        "tableId": "clients_daily",
    }
    assert load["parquetOptions"] == {"enableListInference": True}
    assert upload["job"]["configuration"]["labels"] == {"app": "jetstream"}
    assert pq.read_table(io.BytesIO(upload["data"])).equals(data)
    assert not any("insertAll" in p for p in fake.paths("POST"))  # never streaming inserts


def test_load_arrow_rejects_unknown_mode(wh, fake):
    with pytest.raises(ValueError, match="append"):
        wh.load_arrow("t", pa.table({"a": [1]}), mode="upsert")
    assert fake.requests == []


def test_table_operations(wh, fake):
    fake.tables["metrics_x"] = [
        {"name": "branch", "type": "STRING", "mode": "NULLABLE"},
        {"name": "metric_value", "type": "FLOAT", "mode": "NULLABLE"},
        {"name": "window_index", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "ok", "type": "BOOLEAN", "mode": "NULLABLE"},
        {
            "name": "tags",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [{"name": "key", "type": "STRING"}, {"name": "value", "type": "INTEGER"}],
        },
    ]
    fake.tables["statistics_x"] = []
    assert wh.table_exists("metrics_x")
    assert not wh.table_exists("metrics_y")
    assert wh.table_columns("metrics_x") == {
        "branch": "STRING",
        "metric_value": "FLOAT64",
        "window_index": "INT64",
        "ok": "BOOL",
        "tags": "ARRAY<STRUCT<key STRING, value INT64>>",
    }
    assert wh.list_tables("metrics_") == ["metrics_x"]
    assert wh.list_tables() == ["metrics_x", "statistics_x"]
    wh.drop_table("metrics_x")
    wh.drop_table("metrics_x")  # already gone: fine
    assert "metrics_x" not in fake.tables
    assert (
        fake.paths("DELETE")
        == [f"/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/metrics_x"] * 2
    )
    with pytest.raises(MetricError, match="does not exist"):
        wh.table_columns("metrics_y")


@pytest.mark.parametrize(
    "exc,kind",
    [
        (gexc.ServiceUnavailable("backend down"), TransientError),
        (gexc.InternalServerError("oops"), TransientError),
        (gexc.TooManyRequests("slow down"), TransientError),
        (gexc.Forbidden("quota", errors=[{"reason": "rateLimitExceeded"}]), TransientError),
        (
            gexc.BadRequest("Transaction is aborted due to concurrent update against table t"),
            TransientError,
        ),
        (gexc.BadRequest("Syntax error: Unexpected keyword WHERE"), MetricError),
        (gexc.Forbidden("Access Denied: Table x"), MetricError),
    ],
)
def test_error_mapping(exc, kind):
    mapped = map_error(exc, "SELECT 1")
    assert type(mapped) is kind
    assert exc.message in str(mapped)


# -- cost guards -----------------------------------------------------------------------------


def _production(fake, **kwargs) -> BigQueryWarehouse:
    """As production opens it: no explicit cap (the settings' env var or the default)."""
    return open_warehouse(
        f"bigquery:{PROJECT}.{DATASET}",
        client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
        **{"use_storage_api": False, **kwargs},
    )


def test_cost_guards_every_job_is_capped_estimated_and_counted(fake, monkeypatch):
    from jetstream.warehouse.bigquery import DEFAULT_MAXIMUM_BYTES_BILLED

    monkeypatch.delenv("JETSTREAM_MAXIMUM_BYTES_BILLED", raising=False)
    wh = _production(fake)
    try:
        wh.query("SELECT 1 AS x")
        wh.execute(f"DELETE FROM {wh.table_ref('statistics_x')} WHERE TRUE")
    finally:
        wh.close()
    jobs = fake.job_inserts()
    assert [j["configuration"].get("dryRun", False) for j in jobs] == [True, False, True, False]
    for job in jobs:  # the estimate and the job carry the same cap
        assert job["configuration"]["query"]["maximumBytesBilled"] == str(
            DEFAULT_MAXIMUM_BYTES_BILLED
        )
    assert DEFAULT_MAXIMUM_BYTES_BILLED == 5 * 2**40
    assert wh.costs.as_dict() == {
        "jobs": 2,
        "bytes_estimated": 2 * 123456,
        "bytes_processed": 2 * 2048,
        "bytes_billed": 2 * 10485760,
    }


def test_cost_guards_cap_from_the_settings_and_refusal_before_the_job(fake, monkeypatch):
    monkeypatch.setenv("JETSTREAM_MAXIMUM_BYTES_BILLED", "2e12")
    wh = _production(fake)
    wh.query("SELECT 1 AS x")
    assert fake.job_inserts()[-1]["configuration"]["query"]["maximumBytesBilled"] == str(2 * 10**12)
    monkeypatch.setenv("JETSTREAM_MAXIMUM_BYTES_BILLED", "100000")  # under the estimate
    fake.requests.clear()
    small = _production(fake)
    with pytest.raises(MetricError, match=r"would process 123,456 bytes.*cap of 100,000"):
        small.query("SELECT 1 AS x")
    assert [j["configuration"].get("dryRun") for j in fake.job_inserts()] == [True]
    assert small.costs.jobs == 0 and small.costs.bytes_estimated == 123456
    monkeypatch.setenv("JETSTREAM_MAXIMUM_BYTES_BILLED", "0")
    fake.requests.clear()
    _production(fake).query("SELECT 1 AS x")
    assert all("maximumBytesBilled" not in j["configuration"]["query"] for j in fake.job_inserts())
    monkeypatch.setenv("JETSTREAM_MAXIMUM_BYTES_BILLED", "lots")
    from jetstream.errors import ConfigError

    with pytest.raises(ConfigError, match="JETSTREAM_MAXIMUM_BYTES_BILLED='lots'"):
        _production(fake)


def test_storage_api_is_used_for_results_or_the_fallback_is_logged(fake):
    """With google-cloud-bigquery-storage installed (a dependency) results stream through
    the Storage API; where it is missing the client pages through REST and says so."""
    import importlib.util

    wh = _production(fake, use_storage_api=True, estimate_jobs=False)
    if importlib.util.find_spec("google.cloud.bigquery_storage") is not None:
        assert type(wh._bqstorage()).__name__ == "BigQueryReadClient"
        return
    fake.query_results["SELECT 7"] = {
        "schema": {"fields": [{"name": "x", "type": "INTEGER", "mode": "NULLABLE"}]},
        "rows": [{"f": [{"v": "7"}]}],
    }
    assert wh.query("SELECT 7 AS x").to_pylist() == [{"x": 7}]
    assert wh.use_storage_api is False  # warned once, then REST


def test_append_loads_may_add_columns(wh, fake):
    wh.load_arrow("runs", pa.table({"run_id": ["r"], "bytes_billed": [10]}), mode="append")
    [job] = fake.job_inserts() or [u["metadata"] for u in fake.uploads]
    assert job["configuration"]["load"]["schemaUpdateOptions"] == ["ALLOW_FIELD_ADDITION"]
