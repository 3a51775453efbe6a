"""The one statistics catalogue: its parameters are exactly what the implementations read,
the registry and the config validator both derive from it, and it is scipy-free."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest

from jetstream.statistics import catalogue, registry
from jetstream.statistics.base import StatisticInput
from jetstream.statistics.implementations import REQUIRED
from jetstream.statistics.pretreatments import PRE_TREATMENTS as PRE_TREATMENT_FUNCTIONS

# Parameters `summarise` consumes itself (the statistic receives the covariate column).
READ_BY_SUMMARISE = {"covariate_adjustment"}
# Pre-treatment arguments `summarise` injects by default (a config may set them, as in
# Jetstream, whose pre-treatments all accept `analysis_period_length`).
INJECTED_ARGUMENTS = {"normalize_over_analysis_period": {"analysis_period_length"}}


class _Recording(Mapping[str, Any]):
    """A params mapping that records every key the implementation looks up."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.values.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("an implementation must read its parameters by name")

    def __len__(self) -> int:
        return len(self.values)


def _input(statistic: str, params: Mapping[str, Any]) -> StatisticInput:
    rng = np.random.default_rng(3)
    values = {b: rng.lognormal(0, 1, 200) for b in ("control", "treatment")}
    if statistic == "binomial":
        values = {b: (v > 1).astype(float) for b, v in values.items()}
    columns = {b: {"num": v, "den": v + 1.0} for b, v in values.items()}
    return StatisticInput(
        metric="m",
        values=values,
        branches=("control", "treatment"),
        references=("control",),
        params=params,
        seed=1,
        covariates={b: v * 0.5 + rng.lognormal(0, 1, v.size) for b, v in values.items()},
        columns=columns,
    )


def _base(name: str) -> dict[str, Any]:
    """Small runs; the ratio's columns."""
    params: dict[str, Any] = {}
    if "num_samples" in catalogue.STATISTICS[name].params:
        params["num_samples"] = 50
    if name == "population_ratio":
        params.update(numerator="num", denominator="den")
    return params


@pytest.mark.parametrize("name", sorted(catalogue.STATISTICS))
def test_catalogue_parameters_are_what_the_implementation_reads(name):
    definition = catalogue.STATISTICS[name]
    spec = registry[name]
    params = spec.resolve_params(_base(name))
    recording = _Recording(params)
    outcome = spec.function(_input(name, recording))
    assert outcome.rows, outcome.errors
    assert [e for e in outcome.errors if e.level == "error"] == []
    assert recording.read - {"covariate_name"} == set(definition.params) - READ_BY_SUMMARISE
    assert definition.uses_covariate == ("covariate_adjustment" in definition.params)


CHOICES = [
    (statistic.name, param.name, choice)
    for statistic in catalogue.STATISTICS.values()
    for param in statistic.params.values()
    for choice in param.choices
]


def _run(name: str, **params: Any) -> list[str]:
    """The error messages of one run of the implementation with `params`."""
    spec = registry[name]
    resolved = spec.resolve_params({**_base(name), **params})
    outcome = spec.function(_input(name, resolved))
    return [e.message for e in outcome.errors if e.level == "error"]


@pytest.mark.parametrize(("name", "param", "choice"), CHOICES)
def test_every_choice_in_the_catalogue_is_implemented(name, param, choice):
    assert _run(name, **{param: choice}) == []


@pytest.mark.parametrize(("name", "param"), sorted({(n, p) for n, p, _ in CHOICES}))
def test_a_value_outside_the_choices_is_rejected_by_the_implementation_too(name, param):
    definition = catalogue.STATISTICS[name].params[param]
    assert definition.check("bogus") is not None
    try:
        errors = _run(name, **{param: "bogus"})
    except ValueError as exc:  # summarise reports it as a failed statistic
        errors = [str(exc)]
    assert any(param in e or "bogus" in e for e in errors), errors


def test_bandwidth_may_also_be_a_number():
    param = catalogue.STATISTICS["kernel_density_estimate"].params["bandwidth"]
    assert param.check(0.5) is None and param.check(True) is not None
    assert _run("kernel_density_estimate", bandwidth=0.5, grid_size=8) == []


@pytest.mark.parametrize("name", sorted(catalogue.STATISTICS))
def test_registry_takes_names_and_defaults_from_the_catalogue(name):
    definition = catalogue.STATISTICS[name]
    spec = registry[name]
    assert spec.name == name and spec.label == definition.label != ""
    assert spec.defaults == {
        p.name: REQUIRED if p.required else p.default for p in definition.params.values()
    }
    for p in definition.params.values():
        if p.default is not None:
            assert p.check(p.default) is None, (name, p.name)
    assert set(registry) == set(catalogue.STATISTICS)


@pytest.mark.parametrize("name", sorted(catalogue.PRE_TREATMENTS))
def test_pre_treatment_arguments_are_the_function_signature(name):
    signature = inspect.signature(PRE_TREATMENT_FUNCTIONS[name])
    accepted = set(list(signature.parameters)[1:])
    definition = catalogue.PRE_TREATMENTS[name]
    assert accepted == set(definition.params)
    for p in definition.params.values():
        default = signature.parameters[p.name].default
        if p.name in INJECTED_ARGUMENTS.get(name, set()):
            assert p.default is None  # the window's length unless the config sets it
        elif p.required:
            assert default is inspect.Parameter.empty
        else:
            assert default == p.default
    assert set(PRE_TREATMENT_FUNCTIONS) == set(catalogue.PRE_TREATMENTS)


def test_config_validation_uses_the_same_catalogue():
    from jetstream.config import schema

    assert schema.catalogue is catalogue


def test_importing_the_package_or_the_config_does_not_import_scipy():
    code = (
        "import sys, jetstream.statistics, jetstream.statistics.catalogue, jetstream.config; "
        "assert 'scipy' not in sys.modules, sorted(m for m in sys.modules if 'scipy' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import jetstream.statistics, sys; assert 'scipy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
