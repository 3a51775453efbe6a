"""Reading what `jetstream.export.publish` wrote: `statistics/statistics_<slug>_<suffix>.json`,
`metadata/metadata_<slug>.json` and `errors/errors_<slug>.json`, from a local directory or a
`gs://` location, one `ExperimentResults` per experiment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from jetstream import nesting
from jetstream.artifacts import ArtifactStore
from jetstream.errors import JetstreamError
from jetstream.export import file_slug
from jetstream.logs import get_logger
from jetstream.periods import Period

log = get_logger(__name__)

# Period order in the page: the established file suffixes, most useful first.
PERIOD_ORDER = [p.file_suffix for p in Period]
_STATISTICS_FILE = re.compile(r"^statistics/statistics_(?P<rest>.+)\.json$")


class ReportError(JetstreamError):
    """The published results cannot be read or rendered."""


@attrs.frozen
class ExperimentResults:
    """The published documents of one experiment. `file_slug` is the slug as it appears in
    the file names (`-` and `.` replaced by `_`); `statistics` maps a period's file suffix
    (daily, weekly, ...) to its rows."""

    file_slug: str
    statistics: Mapping[str, Sequence[Mapping[str, Any]]]
    metadata: Mapping[str, Any] | None
    errors: Sequence[Mapping[str, Any]]

    @property
    def name(self) -> str:
        """The experiment slug as written (file names lose `-` and `.`); the errors document
        names it, otherwise the file slug stands in."""
        for e in self.errors:
            slug = e.get("experiment")
            if isinstance(slug, str) and slug and file_slug(slug) == self.file_slug:
                return slug
        return self.file_slug


def parse_statistics_path(path: str) -> tuple[str, str] | None:
    """`statistics/statistics_<file slug>_<suffix>.json` -> (file slug, suffix), or None.
    Suffixes may contain `_` (preenrollment_weekly), so the longest known one wins."""
    m = _STATISTICS_FILE.match(path)
    if not m:
        return None
    rest = m.group("rest")
    for suffix in sorted(PERIOD_ORDER, key=len, reverse=True):
        if rest.endswith("_" + suffix) and len(rest) > len(suffix) + 1:
            return rest[: -len(suffix) - 1], suffix
    return None


def _read_json(store: ArtifactStore, path: str) -> Any:
    try:
        data = store.read_bytes(path)
    except FileNotFoundError:
        return None
    try:
        return nesting.loads_json(data, store.url(path))
    except nesting.NestingError as exc:
        raise ReportError(str(exc)) from None
    except ValueError as exc:
        raise ReportError(f"{store.url(path)}: not valid JSON: {exc}") from exc


def load_results(store: ArtifactStore, slug: str | None = None) -> list[ExperimentResults]:
    """Every experiment with statistics files in `store` (or only `slug`), sorted by slug.
    Missing metadata or errors documents are tolerated (None / empty)."""
    wanted = file_slug(slug) if slug else None
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in store.list("statistics/"):
        parsed = parse_statistics_path(path)
        if parsed is None:
            log.debug("report.skip_file", path=path)
            continue
        fslug, suffix = parsed
        if wanted is not None and fslug != wanted:
            continue
        rows = _read_json(store, path)
        if not isinstance(rows, list):
            raise ReportError(f"{store.url(path)}: expected a JSON array of statistics rows")
        found.setdefault(fslug, {})[suffix] = rows
    if not found:
        what = f"for experiment {slug!r} " if slug else ""
        raise ReportError(
            f"no statistics files {what}under {store.url('statistics')} "
            "(expected statistics/statistics_<slug>_<period>.json)"
        )
    out = []
    for fslug in sorted(found):
        metadata = _read_json(store, f"metadata/metadata_{fslug}.json")
        errors = _read_json(store, f"errors/errors_{fslug}.json") or []
        if not isinstance(errors, list):
            raise ReportError(f"errors/errors_{fslug}.json: expected a JSON array")
        suffixes = sorted(found[fslug], key=PERIOD_ORDER.index)
        periods = {suffix: found[fslug][suffix] for suffix in suffixes}
        out.append(ExperimentResults(fslug, periods, metadata, errors))
    return out
