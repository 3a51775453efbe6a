"""Definition hashes: every stored metric and statistic row carries the hash of the resolved
definition that produced it, including everything it depends on, so a config change
reruns exactly the rows whose hash changed. Pure."""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

import attrs

from jetstream.config.model import AnalysisSpec, Metric, StatisticSpec


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return {k: _plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def digest(*parts: Any) -> str:
    text = json.dumps([_plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def enrollment_hash(spec: AnalysisSpec) -> str:
    """Everything that decides who is in the analysis and when."""
    exp = spec.experiment
    return digest(
        exp.slug,
        exp.start_date,
        exp.enrollment_period,
        exp.branches,
        exp.enrollment_query,
        exp.enrollments_query_type,
        exp.sample_size,
        exp.analysis_unit,
        exp.app_id,
        spec.exposure_signal,
        spec.segments,
    )


def metric_hash(spec: AnalysisSpec, metric: Metric) -> str:
    deps = [spec.metric_definitions.get(d) for d in metric.depends_on]
    return digest(enrollment_hash(spec), metric, deps)


def statistic_hash(spec: AnalysisSpec, metric: Metric, statistic: StatisticSpec) -> str:
    related: list[Any] = []
    for key in ("numerator", "denominator"):
        name = statistic.params.get(key)
        if isinstance(name, str) and name in spec.metric_definitions:
            related.append(metric_hash(spec, spec.metric_definitions[name]))
    cov = statistic.covariate_adjustment
    if cov is not None:
        cov_metric = spec.metric_definitions.get(cov.metric or metric.name)
        related.append([cov.period.value, cov_metric and metric_hash(spec, cov_metric)])
    return digest(
        metric_hash(spec, metric), statistic, related, spec.experiment.multiple_comparisons
    )
