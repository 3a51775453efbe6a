"""What the metrics and statistics tasks share: the analysis bases of a unit, whether one
query serves both bases, and the staging tables the metrics task keeps for the statistics'
read. Imported by both task modules; imports neither."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from jetstream.config.model import AnalysisBasis, AnalysisSpec, Metric
from jetstream.periods import Period


@attrs.frozen
class Staged:
    """A staging table kept (within the unit's session) after its rows were stored, so the
    statistics read the per-client values from it instead of pivoting the stored rows."""

    table: str
    bases: frozenset[AnalysisBasis]
    names: tuple[str, ...]  # metric columns
    types: dict[str, str]  # column -> BigQuery type


def bases_for(period: Period, metrics: Sequence[Metric]) -> list[AnalysisBasis]:
    """The analysis bases of a unit's metrics, in AnalysisBasis order (pre-enrollment
    periods: the enrollments basis only)."""
    if period.is_preenrollment:
        return [AnalysisBasis.ENROLLMENTS]
    found = {b for m in metrics for b in m.analysis_bases}
    return [b for b in AnalysisBasis if b in found]


def exposures_within_enrollments(
    spec: AnalysisSpec, period: Period, bases: Sequence[AnalysisBasis]
) -> bool:
    """True when one query can serve both `bases`: an exposures-basis value then equals
    the enrollments-basis value of the same client (a custom exposure signal, so windows
    count from enrollment, and a period with an exposures basis)."""
    return (
        spec.exposure_signal is not None
        and not period.is_preenrollment
        and set(bases) == {AnalysisBasis.ENROLLMENTS, AnalysisBasis.EXPOSURES}
    )
