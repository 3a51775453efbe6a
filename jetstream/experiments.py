"""Experiments as Experimenter describes them (its v8 JSON shape), read from a local JSON file
or from the Experimenter API over HTTP.

`Experiment.from_v8` is strict: a payload that cannot be analysed correctly (no slug, a date
that does not parse, branches that are not a list of {slug, ratio}) is rejected with an
`ExperimentSourceError` naming the source, the experiment and the field. Keys we do not use
are ignored. `appName` is kept as given: it is the platform name (`firefox_desktop`, `fenix`,
`firefox_ios`, `focus_android`, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import attrs
import httpx
import tenacity

from jetstream.config.model import Branch
from jetstream.errors import ExperimentSourceError, TransientError
from jetstream.logs import get_logger

log = get_logger(__name__)

EXPERIMENTER_V8_URL = "https://experimenter.services.mozilla.com/api/v8/experiments/"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@attrs.frozen
class Experiment:
    """One experiment (or rollout) as recorded in Experimenter."""

    slug: str
    app_name: str
    app_id: str | None
    branches: tuple[Branch, ...]
    reference_branch: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    proposed_enrollment: int | None
    enrollment_end_date: dt.date | None
    is_enrollment_paused: bool
    is_rollout: bool
    status: str | None
    outcomes: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    randomization_unit: str | None = None

    @property
    def branch_slugs(self) -> tuple[str, ...]:
        return tuple(b.slug for b in self.branches)

    @property
    def enrollment_period(self) -> int | None:
        """Days of enrollment, as `ExperimentSettings.enrollment_period` wants them: from the
        actual enrollment end date when Experimenter knows it (paused), else the proposed
        enrollment period."""
        if self.enrollment_end_date is not None and self.start_date is not None:
            return max((self.enrollment_end_date - self.start_date).days, 1)
        return self.proposed_enrollment

    @classmethod
    def from_v8(cls, payload: Any, source: str = "<payload>") -> Experiment:
        """Parse one v8 record. Raises ExperimentSourceError naming source, slug, field."""
        if not isinstance(payload, dict):
            raise ExperimentSourceError(
                f"{source}: an experiment must be a JSON object, got {type(payload).__name__}"
            )
        slug = payload.get("slug")
        if not isinstance(slug, str) or not slug.strip():
            raise ExperimentSourceError(
                f"{source}: experiment {payload.get('id')!r}: field 'slug' is missing or "
                f"not a non-empty string (got {slug!r})"
            )
        f = _Fields(source, slug, payload)
        app_name = f.optional_str("appName")
        if app_name is None:
            # The Remote Settings shape has only `application` ("firefox-desktop").
            application = f.optional_str("application")
            if application is None:
                f.fail("appName", "is missing (and there is no 'application' to fall back on)")
            app_name = application.replace("-", "_")
        bucket = payload.get("bucketConfig")
        if bucket is not None and not isinstance(bucket, dict):
            f.fail("bucketConfig", f"must be an object, got {bucket!r}")
        randomization_unit = None
        if bucket:
            randomization_unit = _Fields(source, slug, bucket, "bucketConfig.").optional_str(
                "randomizationUnit"
            )
        return cls(
            slug=slug,
            app_name=app_name,
            app_id=f.optional_str("appId"),
            branches=f.branches(),
            reference_branch=f.optional_str("referenceBranch"),
            start_date=f.date("startDate"),
            end_date=f.date("endDate"),
            proposed_enrollment=f.optional_int("proposedEnrollment"),
            enrollment_end_date=f.date("enrollmentEndDate"),
            is_enrollment_paused=f.flag("isEnrollmentPaused"),
            is_rollout=f.flag("isRollout"),
            status=f.optional_str("status") or f.optional_str("publishStatus"),
            outcomes=f.slugs("outcomes"),
            segments=f.slugs("segments"),
            randomization_unit=randomization_unit,
        )

    def to_v8(self) -> dict[str, Any]:
        """The v8 JSON shape; `Experiment.from_v8(e.to_v8()) == e`."""
        out: dict[str, Any] = {
            "slug": self.slug,
            "appName": self.app_name,
            "appId": self.app_id,
            "branches": [{"slug": b.slug, "ratio": _ratio_out(b.ratio)} for b in self.branches],
            "referenceBranch": self.reference_branch,
            "startDate": _date_out(self.start_date),
            "endDate": _date_out(self.end_date),
            "proposedEnrollment": self.proposed_enrollment,
            "enrollmentEndDate": _date_out(self.enrollment_end_date),
            "isEnrollmentPaused": self.is_enrollment_paused,
            "isRollout": self.is_rollout,
            "outcomes": [{"slug": o} for o in self.outcomes],
            "segments": list(self.segments),
        }
        if self.status is not None:
            out["status"] = self.status
        if self.randomization_unit is not None:
            out["bucketConfig"] = {"randomizationUnit": self.randomization_unit}
        return out


def parse_experiments(payload: Any, source: str) -> dict[str, Experiment]:
    """A v8 list of experiments -> {slug: Experiment}. Duplicate slugs are an error."""
    if not isinstance(payload, list):
        raise ExperimentSourceError(
            f"{source}: expected a JSON array of experiments, got {type(payload).__name__}"
        )
    out: dict[str, Experiment] = {}
    for i, item in enumerate(payload):
        exp = Experiment.from_v8(item, source=f"{source}[{i}]")
        if exp.slug in out:
            raise ExperimentSourceError(
                f"{source}[{i}]: experiment {exp.slug!r}: slug appears more than once"
            )
        out[exp.slug] = exp
    return out


def load_experiments(
    source: str,
    *,
    timeout: float = 30,
    retries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Experiment]:
    """Read experiments from a local JSON file or an http(s) URL (the Experimenter API).

    HTTP: `timeout` seconds per attempt; up to `retries` more attempts after the first on
    connection errors, timeouts, 429 and 5xx, waiting backoff * 2**attempt seconds (or the
    server's Retry-After, capped at 60 s) in between. A 4xx other than 408/425/429 fails at
    once with ExperimentSourceError; exhausting the retries raises TransientError.
    """
    if source.startswith(("http://", "https://")):
        body = _fetch(source, timeout=timeout, retries=retries, backoff=backoff, sleep=sleep)
    else:
        path = Path(source.removeprefix("file://"))
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise ExperimentSourceError(f"{source}: experiments file not found") from None
        except OSError as exc:
            raise ExperimentSourceError(f"{source}: cannot read experiments file: {exc}") from exc
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        snippet = body[:80].decode("utf-8", "replace")
        raise ExperimentSourceError(
            f"{source}: response is not valid JSON ({exc}); starts with {snippet!r}"
        ) from exc
    experiments = parse_experiments(payload, source)
    log.info("experiments_loaded", source=source, count=len(experiments))
    return experiments


class _Retryable(Exception):
    """One failed attempt worth retrying: a timeout, a dropped connection, 429 or 5xx."""

    def __init__(self, problem: str, retry_after: float = 0.0):
        super().__init__(problem)
        self.problem, self.retry_after = problem, retry_after


def _get_once(client: httpx.Client, url: str, timeout: float) -> bytes:
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise _Retryable(f"timed out after {timeout} s ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise _Retryable(f"connection failed: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if status < 300:
        return response.content
    if status not in RETRYABLE_STATUS:
        raise ExperimentSourceError(
            f"{url}: HTTP {status} {response.reason_phrase}: {response.text[:200]!r}"
        )
    raise _Retryable(f"HTTP {status} {response.reason_phrase}", _retry_after(response))


def _fetch(
    url: str, *, timeout: float, retries: int, backoff: float, sleep: Callable[[float], None]
) -> bytes:
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = backoff * 2 ** (state.attempt_number - 1)
        return max(base, exc.retry_after if isinstance(exc, _Retryable) else 0.0)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "experiments_fetch_retry",
            url=url,
            attempt=state.attempt_number,
            problem=str(exc),
            wait_s=state.upcoming_sleep,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Retryable),
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        try:
            return retrying(_get_once, client, url, timeout)
        except _Retryable as exc:
            raise TransientError(
                f"{url}: gave up after {retries + 1} attempts; last: {exc.problem}"
            ) from None


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return 0.0


class _Fields:
    """Typed access to one record's fields with errors that name source, slug and field."""

    def __init__(self, source: str, slug: str, data: dict[str, Any], prefix: str = ""):
        self.source, self.slug, self.data, self.prefix = source, slug, data, prefix

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ExperimentSourceError(
            f"{self.source}: experiment {self.slug!r}: field '{self.prefix}{key}' {problem}"
        )

    def optional_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        return value or None

    def optional_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            self.fail(key, f"must be a whole number, got {value!r}")
        if value < 0:
            self.fail(key, f"must not be negative, got {value!r}")
        return int(value)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
        return value

    def date(self, key: str) -> dt.date | None:
        """`YYYY-MM-DD` (the v8 API) or an ISO date-time (the Remote Settings shape)."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            return self.fail(key, f"must be a date string YYYY-MM-DD, got {value!r}")
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            return self.fail(key, f"is not a valid date (YYYY-MM-DD): {value!r}")

    def branches(self) -> tuple[Branch, ...]:
        value = self.data.get("branches")
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail("branches", f"must be a list, got {type(value).__name__}")
        out = []
        seen: set[str] = set()
        for i, b in enumerate(value):
            if not isinstance(b, dict):
                self.fail(f"branches[{i}]", f"must be an object, got {b!r}")
            slug = b.get("slug")
            if not isinstance(slug, str) or not slug:
                self.fail(f"branches[{i}].slug", f"is missing or empty (got {slug!r})")
            if slug in seen:
                self.fail(f"branches[{i}].slug", f"repeats branch {slug!r}")
            seen.add(slug)
            ratio = b.get("ratio", 1)
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio < 0:
                self.fail(f"branches[{i}].ratio", f"must be a non-negative number, got {ratio!r}")
            out.append(Branch(slug=slug, ratio=float(ratio)))
        return tuple(out)

    def slugs(self, key: str) -> tuple[str, ...]:
        """A list of slugs given as strings or as objects with a `slug` key."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(key, f"must be a list, got {type(value).__name__}")
        out = []
        for i, item in enumerate(value):
            slug = item.get("slug") if isinstance(item, dict) else item
            if not isinstance(slug, str) or not slug:
                self.fail(f"{key}[{i}]", f"must be a slug or an object with a slug, got {item!r}")
            out.append(slug)
        return tuple(out)


def _date_out(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ratio_out(ratio: float) -> int | float:
    return int(ratio) if float(ratio).is_integer() else ratio
