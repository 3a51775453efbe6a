from __future__ import annotations

import json
import os
import threading
import urllib.request

import pytest

from jetstream.artifacts import (
    ArtifactError,
    ArtifactStore,
    GCSArtifactStore,
    LocalArtifactStore,
    open_store,
)
from tests.support import servers
from tests.support.servers import gcs_client

gcs_emulator = servers.gcs_emulator  # fixtures
gcs_emulator_server = servers.gcs_emulator_server

BUCKET = "results-bucket"


@pytest.fixture
def gcs_store(gcs_emulator):
    client = gcs_client()
    client.create_bucket(BUCKET)
    return GCSArtifactStore(BUCKET, "jetstream/v1", client=client)


@pytest.fixture(params=["local", "gcs"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "out")
    return request.getfixturevalue("gcs_store")


def test_round_trip_list_delete(store):
    assert isinstance(store, ArtifactStore)
    assert store.list() == []
    store.write_json("statistics/statistics_x_daily.json", [{"point": 1.5}])
    store.write_json("statistics/statistics_x_weekly.json", [])
    store.write_bytes("errors/errors_x.json", b"[]")
    store.write_bytes("report.html", b"<html></html>", content_type="text/html")
    assert json.loads(store.read_bytes("statistics/statistics_x_daily.json")) == [{"point": 1.5}]
    assert store.exists("errors/errors_x.json")
    assert not store.exists("errors/errors_y.json")
    assert store.list() == [
        "errors/errors_x.json",
        "report.html",
        "statistics/statistics_x_daily.json",
        "statistics/statistics_x_weekly.json",
    ]
    assert store.list("statistics/") == [
        "statistics/statistics_x_daily.json",
        "statistics/statistics_x_weekly.json",
    ]
    store.write_json("statistics/statistics_x_daily.json", {"v": 2})  # overwrite
    assert json.loads(store.read_bytes("statistics/statistics_x_daily.json")) == {"v": 2}
    store.delete("statistics/statistics_x_daily.json")
    store.delete("statistics/statistics_x_daily.json")  # idempotent
    assert not store.exists("statistics/statistics_x_daily.json")
    with pytest.raises(FileNotFoundError, match="statistics_x_daily.json"):
        store.read_bytes("statistics/statistics_x_daily.json")


def test_unicode_and_strict_json(store):
    store.write_json("a.json", {"name": "Première", "n": 1})
    assert json.loads(store.read_bytes("a.json").decode("utf-8")) == {"name": "Première", "n": 1}
    with pytest.raises(ArtifactError, match="NaN"):
        store.write_json("b.json", {"point": float("nan")})
    assert not store.exists("b.json")


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x.json", "a/../../x.json", "a\\b.json"])
def test_bad_paths_rejected(store, bad):
    with pytest.raises(ArtifactError, match="invalid artifact path"):
        store.write_bytes(bad, b"x")


def test_local_writes_leave_no_temp_files_and_url(tmp_path):
    store = LocalArtifactStore(tmp_path)
    for i in range(20):
        store.write_json("d/x.json", {"i": i})
    assert os.listdir(tmp_path / "d") == ["x.json"]
    assert store.url("d/x.json") == (tmp_path / "d" / "x.json").as_uri()
    assert oct((tmp_path / "d" / "x.json").stat().st_mode & 0o777) == "0o644"


def test_local_atomic_under_concurrent_reads(tmp_path):
    """A reader polling while a writer replaces a large file many times never sees a partial
    or mixed document."""
    store = LocalArtifactStore(tmp_path)
    path = "statistics/statistics_big_daily.json"
    rows = 3000
    store.write_json(path, [{"v": 0, "row": r} for r in range(rows)])
    stop = threading.Event()
    seen: set[int] = set()
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            data = store.read_bytes(path)
            try:
                doc = json.loads(data)
            except json.JSONDecodeError as exc:
                failures.append(f"partial read of {len(data)} bytes: {exc}")
                return
            versions = {d["v"] for d in doc}
            if len(doc) != rows or len(versions) != 1:
                failures.append(f"mixed document: {len(doc)} rows, versions {versions}")
                return
            seen.update(versions)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for v in range(1, 30):
            store.write_json(path, [{"v": v, "row": r} for r in range(rows)])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert failures == []
    assert len(seen) > 1  # the readers really overlapped the writes


def test_gcs_sets_content_type_and_cache_control(gcs_store):
    gcs_store.write_json("metadata/metadata_x.json", {"a": 1})
    gcs_store.write_bytes("page.html", b"<p>", content_type="text/html")
    blob = gcs_store.bucket.get_blob("jetstream/v1/metadata/metadata_x.json")
    assert blob.content_type == "application/json"
    assert blob.cache_control == "public, max-age=60"
    assert gcs_store.bucket.get_blob("jetstream/v1/page.html").content_type == "text/html"


def test_gcs_prefix_isolates_and_url_reaches_object(gcs_store, gcs_emulator):
    other = GCSArtifactStore(BUCKET, "", client=gcs_store.client)
    gcs_store.write_json("x.json", [1])
    other.write_json("root.json", [2])
    assert gcs_store.list() == ["x.json"]
    assert other.list() == ["jetstream/v1/x.json", "root.json"]
    url = gcs_store.url("x.json")
    assert url == f"{gcs_emulator}/{BUCKET}/jetstream/v1/x.json"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.loads(response.read()) == [1]


def test_open_store_local_and_gcs(tmp_path, gcs_emulator):
    local = open_store(str(tmp_path / "dir"))
    assert isinstance(local, LocalArtifactStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalArtifactStore)
    gcs_client().create_bucket("b2")
    gcs = open_store("gs://b2/some/prefix")  # STORAGE_EMULATOR_HOST -> anonymous client
    assert isinstance(gcs, GCSArtifactStore)
    gcs.write_json("x.json", {"ok": True})
    assert gcs_client().bucket("b2").blob("some/prefix/x.json").download_as_bytes() == (
        b'{"ok":true}'
    )
    with pytest.raises(ArtifactError, match="no bucket"):
        open_store("gs://")
    with pytest.raises(ArtifactError, match="unsupported"):
        open_store("s3://bucket/x")


def test_gcs_missing_bucket_is_a_clear_error(gcs_emulator):
    store = GCSArtifactStore("no-such-bucket", client=gcs_client())
    with pytest.raises((ArtifactError, FileNotFoundError), match="no-such-bucket"):
        store.write_json("x.json", [])
