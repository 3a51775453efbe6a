"""Experiments as Experimenter describes them (its v8 JSON shape), read from a local JSON file
or from the Experimenter API over HTTP.

`Experiment.from_v8` is strict: a payload that cannot be analysed correctly (no slug or one
that breaks the slug rule of `jetstream.slugs`, a date that does not parse, branches that are
not a list of {slug, ratio}, numbers out of range) is rejected with an `ExperimentSourceError`
naming the source, the experiment and the field. A list is read record by record
(`parse_experiment_set`): a rejected record is listed in `ExperimentSet.rejected` and never
hides the others. Keys we do not use are ignored. `appName` is kept as given: it is the platform name (`firefox_desktop`, `fenix`,
`firefox_ios`, `focus_android`, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import attrs
import httpx
import tenacity

from jetstream import nesting, slugs
from jetstream.config.model import AnalysisSpec, Branch
from jetstream.errors import ExperimentSourceError, TransientError
from jetstream.logs import get_logger

# dates an experiment may carry: enrollment and analysis windows (up to 3650 days each)
# are added to them, so they stay far from date's limits
FIRST_DATE = dt.date(1970, 1, 1)
LAST_DATE = dt.date(9000, 12, 31)

log = get_logger(__name__)

EXPERIMENTER_V8_URL = "https://experimenter.services.mozilla.com/api/v8/experiments/"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Limits of one fetch of the experiments list (all attempts together for the deadline).
FETCH_DEADLINE_S = 120.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5
# More days of enrollment than this is a typo (or an attack), not an experiment.
MAX_ENROLLMENT_DAYS = 3650


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
        bad_slug = slugs.problem(slug)
        if bad_slug is not None:
            raise ExperimentSourceError(
                f"{source}: field 'slug' is not an Experimenter slug: {bad_slug}"
            )
        f = _Fields(source, slug, payload)
        app_name = f.name("appName")
        if app_name is None:
            # The Remote Settings shape has only `application` ("firefox-desktop").
            application = f.name("application")
            if application is None:
                f.fail("appName", "is missing (and there is no 'application' to fall back on)")
            app_name = application.replace("-", "_")
        bucket = payload.get("bucketConfig")
        if bucket is not None and not isinstance(bucket, dict):
            f.fail("bucketConfig", f"must be an object, got {bucket!r}")
        randomization_unit = None
        if bucket:
            randomization_unit = _Fields(source, slug, bucket, "bucketConfig.").name(
                "randomizationUnit"
            )
        return cls(
            slug=slug,
            app_name=app_name,
            app_id=f.name("appId"),
            branches=f.branches(),
            reference_branch=f.name("referenceBranch"),
            start_date=f.date("startDate"),
            end_date=f.date("endDate"),
            proposed_enrollment=f.optional_int("proposedEnrollment", MAX_ENROLLMENT_DAYS),
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


class ExperimentSet(dict[str, Experiment]):
    """{slug: Experiment} for the records that can be analysed, plus `rejected`: {label:
    message} for each record that cannot (the label is its slug when it has a usable one,
    else `source[i]`). One bad record never hides the others."""

    def __init__(self, experiments: dict[str, Experiment], rejected: dict[str, str]):
        super().__init__(experiments)
        self.rejected = rejected


def parse_experiment_set(payload: Any, source: str) -> ExperimentSet:
    """A v8 list of experiments -> ExperimentSet. Records that do not parse, and every record
    of a group whose slugs name the same tables and files (`slugs.collision_key`: equal slugs,
    or `a-b` beside `a_b`), are rejected with a message; the list itself must be an array."""
    if not isinstance(payload, list):
        raise ExperimentSourceError(
            f"{source}: expected a JSON array of experiments, got {type(payload).__name__}"
        )
    parsed: list[tuple[int, Experiment]] = []
    rejected: dict[str, str] = {}
    for i, item in enumerate(payload):
        try:
            parsed.append((i, Experiment.from_v8(item, source=f"{source}[{i}]")))
        except ExperimentSourceError as exc:
            label = _label(item, source, i)
            rejected[label if label not in rejected else f"{source}[{i}]"] = str(exc)
    groups: dict[str, list[tuple[int, Experiment]]] = {}
    for i, exp in parsed:
        groups.setdefault(slugs.collision_key(exp.slug), []).append((i, exp))
    out: dict[str, Experiment] = {}
    for members in groups.values():
        if len(members) == 1:
            out[members[0][1].slug] = members[0][1]
            continue
        names = ", ".join(f"{e.slug!r} ({source}[{i}])" for i, e in members)
        for i, exp in members:
            label = exp.slug if exp.slug not in rejected else f"{source}[{i}]"
            rejected[label] = (
                f"{source}[{i}]: experiment {exp.slug!r}: slug collides with another record "
                f"(the same tables and files would hold both): {names}; none of them is analysed"
            )
    for label, message in rejected.items():
        log.warning("experiment record rejected", experiment=label, problem=message)
    return ExperimentSet(out, rejected)


def parse_experiments(payload: Any, source: str) -> dict[str, Experiment]:
    """A v8 list of experiments -> {slug: Experiment}; strict: the first record that cannot be
    analysed (see `parse_experiment_set`) raises ExperimentSourceError."""
    found = parse_experiment_set(payload, source)
    if found.rejected:
        raise ExperimentSourceError(next(iter(found.rejected.values())))
    return dict(found)


def spec_problems(spec: AnalysisSpec) -> list[str]:
    """Why a resolved experiment cannot be analysed (see `branch_problems`); the reference
    branch is the config's `[experiment] reference_branch` or else Experimenter's."""
    exp = spec.experiment
    return branch_problems(spec.slug, exp.branch_slugs, exp.reference_branch)


def branch_problems(
    slug: str, branches: tuple[str, ...] | list[str], reference: str | None
) -> list[str]:
    """No branches, or a reference branch that is missing or not one of the branches."""
    if not branches:
        return [f"experiment {slug!r}: has no branches (field 'branches' is empty)"]
    if not reference:
        return [
            f"experiment {slug!r}: has no reference branch (field 'referenceBranch' is "
            "missing; set [experiment] reference_branch in its config)"
        ]
    if reference not in branches:
        return [
            f"experiment {slug!r}: reference branch {reference!r} is not one of its branches "
            f"({', '.join(branches)})"
        ]
    return []


def _label(item: Any, source: str, i: int) -> str:
    slug = item.get("slug") if isinstance(item, dict) else None
    if isinstance(slug, str) and slugs.problem(slug) is None:
        return slug
    return f"{source}[{i}]"


def load_experiments(
    source: str,
    *,
    timeout: float = 30,
    retries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float = FETCH_DEADLINE_S,
    max_bytes: int = MAX_RESPONSE_BYTES,
    max_redirects: int = MAX_REDIRECTS,
) -> ExperimentSet:
    """Read experiments from a local JSON file or an http(s) URL (the Experimenter API).
    Records that cannot be analysed are left out and listed in the result's `rejected`.

    HTTP: `timeout` seconds per network read; up to `retries` more attempts after the first
    on connection errors, timeouts, 429 and 5xx, waiting backoff * 2**attempt seconds (or the
    server's Retry-After, capped at 60 s) in between. A 4xx other than 408/425/429 fails at
    once with ExperimentSourceError; exhausting the retries raises TransientError. The whole
    fetch (every attempt and wait) must finish within `deadline` seconds, a response may not
    exceed `max_bytes` (it is streamed and cut off there) and at most `max_redirects`
    redirects are followed: each of these limits is a TransientError naming it.
    """
    if source.startswith(("http://", "https://")):
        body = _fetch(
            source,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            sleep=sleep,
            limits=_Limits(deadline, max_bytes, max_redirects),
        )
    else:
        path = Path(source.removeprefix("file://"))
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise ExperimentSourceError(f"{source}: experiments file not found") from None
        except OSError as exc:
            raise ExperimentSourceError(f"{source}: cannot read experiments file: {exc}") from exc
    try:
        payload = nesting.loads_json(body, source)
    except nesting.NestingError as exc:
        raise ExperimentSourceError(str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        snippet = body[:80].decode("utf-8", "replace")
        raise ExperimentSourceError(
            f"{source}: response is not valid JSON ({exc}); starts with {snippet!r}"
        ) from exc
    experiments = parse_experiment_set(payload, source)
    log.info(
        "experiments_loaded",
        source=source,
        count=len(experiments),
        rejected=len(experiments.rejected),
    )
    return experiments


@attrs.frozen
class _Limits:
    deadline: float
    max_bytes: int
    max_redirects: int


class _Retryable(Exception):
    """One failed attempt worth retrying: a timeout, a dropped connection, 429 or 5xx."""

    def __init__(self, problem: str, retry_after: float = 0.0):
        super().__init__(problem)
        self.problem, self.retry_after = problem, retry_after


def _get_once(
    client: httpx.Client, url: str, timeout: float, limits: _Limits, left: Callable[[], float]
) -> bytes:
    try:
        status, reason, headers, body = _get(client, url, timeout, limits, left)
    except httpx.TooManyRedirects:
        raise TransientError(
            f"{url}: more than {limits.max_redirects} redirects (a redirect loop?)"
        ) from None
    except httpx.TimeoutException as exc:
        raise _Retryable(f"timed out after {timeout} s ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise _Retryable(f"connection failed: {type(exc).__name__}: {exc}") from exc
    if status < 300:
        return body
    if status not in RETRYABLE_STATUS:
        raise ExperimentSourceError(
            f"{url}: HTTP {status} {reason}: {body[:200].decode('utf-8', 'replace')!r}"
        )
    raise _Retryable(f"HTTP {status} {reason}", _retry_after(headers))


def _fetch(
    url: str,
    *,
    timeout: float,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
    limits: _Limits,
) -> bytes:
    end = time.monotonic() + limits.deadline
    last: list[str] = []

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TransientError(
                f"{url}: no complete answer within the {limits.deadline:g} s deadline"
                + (f"; last: {last[-1]}" if last else "")
            )
        return remaining

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = backoff * 2 ** (state.attempt_number - 1)
        return max(base, exc.retry_after if isinstance(exc, _Retryable) else 0.0)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        last.append(str(exc))
        log.warning(
            "experiments_fetch_retry",
            url=url,
            attempt=state.attempt_number,
            problem=str(exc),
            wait_s=state.upcoming_sleep,
        )

    def bounded_sleep(seconds: float) -> None:
        sleep(min(seconds, left()))
        left()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Retryable),
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=wait,
        sleep=bounded_sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    with httpx.Client(
        timeout=timeout, follow_redirects=True, max_redirects=limits.max_redirects
    ) as client:
        try:
            return retrying(_get_once, client, url, timeout, limits, left)
        except _Retryable as exc:
            raise TransientError(
                f"{url}: gave up after {retries + 1} attempts; last: {exc.problem}"
            ) from None


def _get(
    client: httpx.Client,
    url: str,
    timeout: float,
    limits: _Limits,
    left: Callable[[], float],
) -> tuple[int, str, httpx.Headers, bytes]:
    """One GET, streamed. A network read waits at most min(timeout, time left at the start of
    the request) and the deadline is checked after every chunk, so a server that drips bytes
    is cut off at most one read after the deadline; the body stops at `limits.max_bytes`.
    Returns (status, reason, headers, body)."""
    with client.stream(
        "GET",
        url,
        headers={"Accept": "application/json"},
        timeout=httpx.Timeout(min(timeout, left())),
    ) as response:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise TransientError(
                f"{url}: response of {int(declared):,} bytes is over the "
                f"{limits.max_bytes:,}-byte limit"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limits.max_bytes:
                raise TransientError(
                    f"{url}: response is over the {limits.max_bytes:,}-byte limit; stopped reading"
                )
            chunks.append(chunk)
            left()
        return response.status_code, response.reason_phrase, response.headers, b"".join(chunks)


def _retry_after(headers: httpx.Headers) -> float:
    value = headers.get("Retry-After", "")
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

    def name(self, key: str) -> str | None:
        """An optional identifier (app name, branch slug, ...): `slugs.NAME` rule."""
        value = self.optional_str(key)
        if value is not None:
            bad = slugs.problem(value, slugs.NAME)
            if bad is not None:
                self.fail(key, bad)
        return value

    def optional_int(self, key: str, maximum: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value != int(value)
        ):
            self.fail(key, f"must be a whole number, got {value!r}")
        if value < 0:
            self.fail(key, f"must not be negative, got {value!r}")
        if value > maximum:
            self.fail(key, f"must be at most {maximum}, got {value!r}")
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
                day = dt.date.fromisoformat(value)
            else:
                day = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            return self.fail(key, f"is not a valid date (YYYY-MM-DD): {value!r}")
        if not FIRST_DATE <= day <= LAST_DATE:
            # windows add up to years of days to it: outside this range they overflow
            return self.fail(key, f"must be between {FIRST_DATE} and {LAST_DATE}, got {value!r}")
        return day

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
            bad = slugs.problem(slug, slugs.NAME)
            if bad is not None:
                self.fail(f"branches[{i}].slug", bad)
            if slug in seen:
                self.fail(f"branches[{i}].slug", f"repeats branch {slug!r}")
            seen.add(slug)
            ratio = b.get("ratio", 1)
            if (
                isinstance(ratio, bool)
                or not isinstance(ratio, int | float)
                or not math.isfinite(ratio)
                or ratio < 0
                or ratio > 1e6
            ):
                self.fail(
                    f"branches[{i}].ratio", f"must be a number from 0 to 1000000, got {ratio!r}"
                )
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
            bad = slugs.problem(slug, slugs.NAME)
            if bad is not None:
                self.fail(f"{key}[{i}]", bad)
            out.append(slug)
        return tuple(out)


def _date_out(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ratio_out(ratio: float) -> int | float:
    return int(ratio) if float(ratio).is_integer() else ratio
