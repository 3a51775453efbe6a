"""Property-based fuzzing of the three input boundaries: the config loader (TOML text), the
experiments loader (JSON) and `jetstream statistics compute` (parquet). Whatever the
input, the answer is a clear error or a result, never a Python traceback; and what the
validator accepts, the run can plan.

The example counts come from the hypothesis profile of tests/conftest.py (small, so that
`make test` stays fast); HYPOTHESIS_PROFILE=fuzz-long runs many more.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jetstream import synthetic
from jetstream.cli import cli
from jetstream.config import ConfigRepo, validate_file
from jetstream.config.resolve import resolve_spec
from jetstream.errors import ConfigError, ExperimentSourceError, JetstreamError
from jetstream.experiments import load_experiments
from jetstream.graph import plan
from jetstream.periods import CONFIG_KEYS
from jetstream.statistics import catalogue
from jetstream.statistics.implementations import registry

DEMO = "demo-sidebar-redesign"
DEMO_DATE = dt.date(2026, 1, 17)
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

# -- values --------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)),
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)


def numbers_near(param: catalogue.Param) -> st.SearchStrategy[Any]:
    """Values around a parameter's bounds, and anything."""
    edges = [p for p in (param.minimum, param.maximum) if p is not None]
    near = [e + d for e in edges for d in (-1, -1e-9, 0, 1e-9, 1)]
    return st.one_of(
        st.sampled_from([*near, 0, 1, -1, 10**12, math.nan, math.inf, *param.choices]),
        anything,
    )


# -- TOML ----------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A TOML inline value (tables inline), for the generated documents."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


names = st.one_of(
    st.sampled_from(
        ["sidebar_opens", "used_sidebar", "m", "feature_events", "x`y", "../m", "1a", "a b", ""]
    ),
    text,
)
sql = st.one_of(
    st.sampled_from(
        [
            "COUNT(*)",
            "SUM(event_count)",
            "{{agg_sum('event_count')}}",
            "{{ nope }}",
            "SELECT (((",
            "1; DROP TABLE x",
            "`a`b`",
            "{% for x in y %}",
            "'{{parameters.sidebar_feature}}'",
        ]
    ),
    text,
)


@st.composite
def statistics_tables(draw) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([*catalogue.STATISTICS, "nope"]), max_size=2)):
        definition = catalogue.STATISTICS.get(name)
        params: dict[str, Any] = {}
        if definition is not None:
            for p in draw(st.lists(st.sampled_from(list(definition.params) or ["x"]), max_size=2)):
                param = definition.params.get(p)
                params[p] = draw(numbers_near(param) if param else anything)
        if draw(st.booleans()):
            treatment = draw(st.sampled_from([*catalogue.PRE_TREATMENTS, "nope"]))
            pt = catalogue.PRE_TREATMENTS.get(treatment)
            args = {a: draw(numbers_near(pt.params[a])) for a in (pt.params if pt else {})}
            params["pre_treatments"] = [{"name": treatment, **args}]
        out[name] = params
    return out


@st.composite
def configs(draw) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        keys = [
            "enrollment_period",
            "sample_size",
            "start_date",
            "end_date",
            "reference_branch",
            "segments",
            "multiple_comparisons",
            "skip",
        ]
        doc["experiment"] = {
            k: draw(
                st.one_of(
                    st.sampled_from([0, 1, 7, 100, 3650, 3651, 2**63 - 1, -5, 1e300, math.nan]),
                    anything,
                )
            )
            for k in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))
        }
    metrics: dict[str, Any] = {}
    for name in draw(st.lists(names, max_size=3, unique=True)):
        table: dict[str, Any] = {}
        if draw(st.booleans()):
            table["select_expression"] = draw(sql)
            table["data_source"] = draw(names)
        if draw(st.booleans()):
            table["depends_on"] = draw(st.lists(names, max_size=2))
        table["statistics"] = draw(statistics_tables())
        metrics[name] = table
    if metrics or draw(st.booleans()):
        for period in draw(st.lists(st.sampled_from(list(CONFIG_KEYS)), max_size=2)):
            metrics[period] = draw(
                st.lists(st.one_of(st.sampled_from(list(metrics) or ["m"]), names), max_size=3)
            )
        doc["metrics"] = metrics
    if draw(st.booleans()):
        doc["segments"] = {
            draw(names): {
                "select_expression": draw(sql),
                "data_source": draw(names),
                "window_start": draw(st.one_of(st.integers(), anything)),
            }
        }
    if draw(st.booleans()):
        doc["data_sources"] = {draw(names): {"from_expression": draw(sql)}}
    if draw(st.booleans()):
        doc[draw(text)] = draw(anything)
    return doc


@pytest.fixture(scope="module")
def demo_repo() -> ConfigRepo:
    return ConfigRepo.load(synthetic.DEMO_DIR)


@pytest.fixture(scope="module")
def demo_experiments():
    return load_experiments(str(synthetic.DEMO_DIR / "experiments.json"))


def _check_config_text(toml: str, repo: ConfigRepo, experiments) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jetstream" / f"{DEMO}.toml"
        path.parent.mkdir()
        path.write_text(toml)
        problems = validate_file(path, repo, experiments, "auto")  # never raises
        if any(p.is_error for p in problems):
            return
        import tomllib

        # valid: the run resolves and plans it, and the statistics engine takes its parameters
        spec = resolve_spec(experiments[DEMO], tomllib.loads(toml), repo, str(path))
        plan([spec], DEMO_DATE)
        for summaries in spec.metrics.values():
            for summary in summaries:
                stat = summary.statistic
                registry[stat.name].resolve_params(stat.params)


WEEKLY = {"weekly": ["sidebar_opens"]}


@settings(suppress_health_check=SLOW)
@given(doc=configs())
@example(doc={"experiment": {"enrollment_period": 2**63 - 1}})
@example(doc={"experiment": {"sample_size": 10**6}})
@example(
    doc={
        "metrics": {
            **WEEKLY,
            "sidebar_opens": {"statistics": {"deciles": {"confidence_interval": math.nan}}},
        }
    }
)
@example(
    doc={
        "metrics": {
            **WEEKLY,
            "sidebar_opens": {"statistics": {"bootstrap_mean": {"num_samples": 10**12}}},
        }
    }
)
@example(
    doc={
        "metrics": {
            "weekly": ["a`b"],
            "a`b": {"select_expression": "1", "data_source": "feature_events"},
        }
    }
)
@example(
    doc={
        "segments": {"s`": {"select_expression": "TRUE", "data_source": "feature_events"}},
        "experiment": {"segments": ["s`"]},
    }
)
def test_fuzz_config_documents(doc, demo_repo, demo_experiments):
    _check_config_text(toml_document(doc), demo_repo, demo_experiments)


@settings(suppress_health_check=SLOW)
@given(
    raw=st.one_of(
        st.text(max_size=200),
        st.sampled_from(["[", "x = " + "[" * 3000, "a." * 500 + "b = 1", '"\\ud800" = 1']),
    )
)
def test_fuzz_config_text(raw, demo_repo, demo_experiments):
    _check_config_text(raw, demo_repo, demo_experiments)


# -- experiments JSON ----------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)
dates = st.one_of(
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(str),
    st.sampled_from(["2026-01-05", "9999-12-31", "0001-01-01", "2026-13-01", ""]),
    json_values,
)


@st.composite
def records(draw) -> Any:
    base = json.loads((synthetic.DEMO_DIR / "experiments.json").read_text())[0]
    fields = {
        "slug": st.one_of(
            st.just(DEMO), st.sampled_from(["a", "A", "../x", "x`y", ""]), json_values
        ),
        "appName": st.one_of(st.sampled_from(["demo", "firefox_desktop", "nope"]), json_values),
        "branches": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"slug": st.one_of(st.sampled_from(["control", "treatment-a"]), json_values)},
                    optional={"ratio": json_values},
                ),
                max_size=3,
            ),
            json_values,
        ),
        "referenceBranch": st.one_of(st.sampled_from(["control", "nope"]), json_values),
        "startDate": dates,
        "endDate": dates,
        "enrollmentEndDate": dates,
        "proposedEnrollment": st.one_of(
            st.sampled_from([0, 7, 3650, 3651, 1e9, 2**63, -1, 1.5]), json_values
        ),
        "isRollout": json_values,
        "outcomes": st.one_of(st.lists(st.fixed_dictionaries({"slug": json_values})), json_values),
        "segments": json_values,
        "bucketConfig": json_values,
    }
    record = dict(base)
    for key in draw(st.lists(st.sampled_from(list(fields)), max_size=4, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            record.pop(key, None)
        else:
            record[key] = draw(fields[key])
    return record


@settings(suppress_health_check=SLOW)
@given(
    payload=st.one_of(
        st.lists(records(), max_size=3),
        json_values,
        st.lists(records(), min_size=1, max_size=1).map(lambda r: {"results": r}),
    )
)
def test_fuzz_experiments_json(payload, demo_repo):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "experiments.json"
        path.write_text(json.dumps(payload))
        try:
            exps = load_experiments(str(path))
        except ExperimentSourceError:
            return
        for slug, exp in exps.items():
            # an accepted record resolves (or is a ConfigError) and plans
            try:
                spec = resolve_spec(exp, None, demo_repo)
            except ConfigError:
                continue
            plan([spec], DEMO_DATE)
            assert slug


@settings(suppress_health_check=SLOW)
@given(raw=st.one_of(st.binary(max_size=100), st.sampled_from([b"[" * 100_000, b"{" * 5000])))
def test_fuzz_experiments_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "experiments.json"
        path.write_bytes(raw)
        with contextlib.suppress(ExperimentSourceError):
            load_experiments(str(path))


# -- statistics compute --------------------------------------------------------------

columns = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=12).map(
        lambda v: pa.array(v, pa.float64())
    ),
    st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=12).map(
        lambda v: pa.array(v, pa.int64())
    ),
    st.lists(st.one_of(st.none(), text), max_size=12).map(lambda v: pa.array(v, pa.string())),
    st.lists(st.one_of(st.none(), st.booleans()), max_size=12).map(
        lambda v: pa.array(v, pa.bool_())
    ),
)


@st.composite
def parquet_inputs(draw) -> tuple[pa.Table | bytes, list[str]]:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64)), []
    n = draw(st.integers(0, 12))
    cols: dict[str, pa.Array] = {}
    if draw(st.integers(0, 5)):
        cols["branch"] = pa.array(
            draw(st.lists(st.sampled_from(["a", "b", None, ""]), min_size=n, max_size=n)),
            pa.string(),
        )
    for name in ("m", "c"):
        values = draw(columns)
        cols[name] = values[:n] if len(values) >= n else pa.array([None] * n, values.type)
    statistic = draw(st.sampled_from([*catalogue.STATISTICS, "nope"]))
    definition = catalogue.STATISTICS.get(statistic)
    params: dict[str, Any] = {}
    if definition is not None:
        for p in draw(st.lists(st.sampled_from(list(definition.params) or ["x"]), max_size=2)):
            param = definition.params.get(p)
            value = draw(numbers_near(param) if param else json_values)
            params[p] = value if not isinstance(value, dt.date) else str(value)
        if statistic == "population_ratio":
            params.update(numerator="m", denominator="c")
        if "num_samples" in definition.params:
            params.setdefault("num_samples", 50)  # keeps the bootstraps quick
    treatment = draw(st.sampled_from([None, *catalogue.PRE_TREATMENTS, "nope"]))
    args = ["--metric", draw(st.sampled_from(["m", "c", "missing"])), "--statistic", statistic]
    args += ["--params", json.dumps(params, default=str)]
    if treatment is not None:
        pt = catalogue.PRE_TREATMENTS.get(treatment)
        targs = {
            a: v if not isinstance(v := draw(numbers_near(pt.params[a])), dt.date) else str(v)
            for a in (pt.params if pt else {})
        }
        args += ["--pre-treatments", json.dumps([[treatment, targs]], default=str)]
    if draw(st.booleans()):
        args += ["--covariate", "c"]
    if draw(st.booleans()):
        args += ["--reference-branch", draw(st.sampled_from(["a", "zz"]))]
    return pa.table(cols) if cols else pa.table({"m": pa.array([], pa.float64())}), args


@settings(suppress_health_check=SLOW)
@given(case=parquet_inputs())
def test_fuzz_statistics_compute(case):
    table, args = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.parquet"
        if isinstance(table, bytes):
            path.write_bytes(table)
            args = ["--metric", "m", "--statistic", "count"]
        else:
            pq.write_table(table, path)
        res = CliRunner().invoke(
            cli,
            ["statistics", "compute", "--input", str(path), *args, "--out", f"{tmp}/o.json"],
        )
    error = res.exception
    if error is None or isinstance(error, SystemExit | JetstreamError | click.ClickException):
        return
    raise AssertionError(f"statistics compute {args} raised {error!r}") from error
