"""Where published JSON goes: a local directory or a GCS bucket (with an optional prefix).

Both stores replace an object atomically: a reader sees the old content or the new content,
never a partial file. Paths are relative, `/`-separated, and may not climb out of the root.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable

from jetstream.errors import EXIT_USAGE, JetstreamError, TransientError
from jetstream.logs import get_logger

log = get_logger(__name__)

DEFAULT_CACHE_CONTROL = "public, max-age=60"
_TMP_PREFIX = ".tmp-"


class ArtifactError(JetstreamError):
    """An artifact path or location is invalid, or the store refused a request."""


class OutputLocationError(ArtifactError):
    """The output location cannot take files (not a directory, no permission, read-only):
    a usage error, retrying does not help."""

    exit_code = EXIT_USAGE


# errno values of a local write that may succeed later (full disk, quota, I/O hiccup).
_TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY})


def os_error(where: str, exc: OSError) -> JetstreamError:
    """A local write's OSError as a clear error: TransientError (exit 75) for a full disk or
    an I/O error, OutputLocationError (exit 2) for a path that cannot take files."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientError(f"{where}: cannot write: {reason} (errno {exc.errno})")
    return OutputLocationError(f"{where}: cannot write: {reason}")


def check_writable(location: str) -> None:
    """Before a run: a local output directory must exist or be creatable and take a file
    (written and removed again). Raises OutputLocationError or TransientError. A gs://
    location is checked by its first upload."""
    store = open_store(location)
    if not isinstance(store, LocalArtifactStore):
        return
    root = store.root
    if root.exists() and not root.is_dir():
        raise OutputLocationError(f"--out {location}: exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + "check-", dir=root)
        try:
            os.write(fd, b"{}")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise os_error(f"--out {location}", exc) from exc


@runtime_checkable
class ArtifactStore(Protocol):
    def write_bytes(
        self, path: str, data: bytes, content_type: str = "application/json"
    ) -> None: ...

    def write_json(self, path: str, obj: Any) -> None: ...

    def read_bytes(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def delete(self, path: str) -> None: ...

    def url(self, path: str) -> str: ...


def dumps_json(obj: Any) -> bytes:
    """Strict JSON (NaN and infinities are an error, not invalid output), UTF-8."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as exc:
        raise ArtifactError(f"cannot publish a document with NaN or infinity: {exc}") from exc


def open_store(location: str) -> ArtifactStore:
    """`gs://bucket[/prefix]` -> GCSArtifactStore; anything else is a local directory."""
    if location.startswith("gs://"):
        bucket, _, prefix = location.removeprefix("gs://").partition("/")
        if not bucket:
            raise ArtifactError(f"{location!r}: no bucket name after gs://")
        from jetstream.extras import require

        require("gcs", f"output {location!r}")
        return GCSArtifactStore(bucket, prefix)
    if "://" in location and not location.startswith("file://"):
        raise ArtifactError(f"{location!r}: unsupported artifact location (use a dir or gs://)")
    return LocalArtifactStore(location.removeprefix("file://"))


def _clean(path: str) -> str:
    """Normalise a relative artifact path; reject absolute paths and `..`."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
        raise ArtifactError(f"invalid artifact path {path!r}: must be relative, without '..'")
    parts = [part for part in p.parts if part not in ("", ".")]
    if not parts:
        raise ArtifactError(f"invalid artifact path {path!r}: empty")
    if any(part.startswith(_TMP_PREFIX) for part in parts):
        raise ArtifactError(f"invalid artifact path {path!r}: '{_TMP_PREFIX}' is reserved")
    return "/".join(parts)


class LocalArtifactStore:
    """Files under `root`. Writes go to a temp file in the target's directory, are fsynced,
    then renamed over the target with os.replace (atomic on POSIX)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def _file(self, path: str) -> Path:
        return self.root / _clean(path)

    def write_bytes(self, path: str, data: bytes, content_type: str = "application/json") -> None:
        target = self._file(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        except OSError as exc:
            raise os_error(self.url(path), exc) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise os_error(self.url(path), exc) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        log.debug("artifact_written", url=self.url(path), bytes=len(data))

    def write_json(self, path: str, obj: Any) -> None:
        self.write_bytes(path, dumps_json(obj), "application/json")

    def read_bytes(self, path: str) -> bytes:
        try:
            return self._file(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(f"{self.url(path)}: no such artifact") from None

    def exists(self, path: str) -> bool:
        return self._file(path).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(_TMP_PREFIX):
                    continue
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    out.append(rel)
        return sorted(out)

    def delete(self, path: str) -> None:
        """Remove an artifact; removing one that does not exist is not an error."""
        self._file(path).unlink(missing_ok=True)

    def url(self, path: str) -> str:
        return (self.root / _clean(path)).as_uri()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class GCSArtifactStore:
    """Objects in `gs://bucket/prefix/`. One upload replaces an object atomically in GCS.
    Honours STORAGE_EMULATOR_HOST (anonymous credentials then)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        project: str | None = None,
        cache_control: str = DEFAULT_CACHE_CONTROL,
    ):
        from google.cloud import storage  # type: ignore[attr-defined]

        if client is None:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(
                    project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or "emulator",
                    credentials=AnonymousCredentials(),
                )
            else:
                client = storage.Client(project=project)
        self.client = client
        self.bucket_name = bucket
        self.bucket = client.bucket(bucket)
        self.prefix = prefix.strip("/")
        self.cache_control = cache_control

    def __repr__(self) -> str:
        return f"GCSArtifactStore('gs://{self.bucket_name}/{self.prefix}')"

    def _key(self, path: str) -> str:
        clean = _clean(path)
        return f"{self.prefix}/{clean}" if self.prefix else clean

    def write_bytes(self, path: str, data: bytes, content_type: str = "application/json") -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        blob = self.bucket.blob(self._key(path))
        blob.cache_control = self.cache_control
        # Rewriting the same content is idempotent, so uploads may be retried.
        from google.api_core.exceptions import NotFound

        try:
            with _gcs_errors(self.url(path)):
                blob.upload_from_string(data, content_type=content_type, retry=DEFAULT_RETRY)
        except NotFound as exc:
            raise ArtifactError(
                f"{self.url(path)}: bucket gs://{self.bucket_name} does not exist"
            ) from exc
        log.debug("artifact_written", url=self.url(path), bytes=len(data))

    def write_json(self, path: str, obj: Any) -> None:
        self.write_bytes(path, dumps_json(obj), "application/json")

    def read_bytes(self, path: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            with _gcs_errors(self.url(path)):
                data: bytes = self.bucket.blob(self._key(path)).download_as_bytes()
                return data
        except NotFound:
            raise FileNotFoundError(f"{self.url(path)}: no such artifact") from None

    def exists(self, path: str) -> bool:
        with _gcs_errors(self.url(path)):
            return bool(self.bucket.blob(self._key(path)).exists())

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        with _gcs_errors(f"gs://{self.bucket_name}/{base}{prefix}"):
            names = [b.name for b in self.client.list_blobs(self.bucket, prefix=base + prefix)]
        return sorted(n[len(base) :] for n in names)

    def delete(self, path: str) -> None:
        """Remove an artifact; removing one that does not exist is not an error."""
        from google.api_core.exceptions import NotFound

        try:
            with _gcs_errors(self.url(path)):
                self.bucket.blob(self._key(path)).delete()
        except NotFound:
            pass

    def url(self, path: str) -> str:
        host = os.environ.get("STORAGE_EMULATOR_HOST", "https://storage.googleapis.com")
        return f"{host.rstrip('/')}/{self.bucket_name}/{self._key(path)}"


@contextlib.contextmanager
def _gcs_errors(where: str) -> Iterator[None]:
    """Map GCS failures that survived the client's own retries onto our error types:
    429/5xx/connection -> TransientError; other API errors -> ArtifactError; NotFound and
    anything else pass through unchanged."""
    from google.api_core import exceptions as gexc
    from requests import exceptions as rexc

    try:
        yield
    except gexc.NotFound:
        raise
    except (gexc.TooManyRequests, gexc.ServerError) as exc:
        raise TransientError(f"{where}: GCS is unavailable: {exc}") from exc
    except gexc.GoogleAPICallError as exc:
        raise ArtifactError(f"{where}: GCS refused the request: {exc}") from exc
    except (ConnectionError, TimeoutError, rexc.ConnectionError, rexc.Timeout) as exc:
        raise TransientError(f"{where}: cannot reach GCS: {exc}") from exc
