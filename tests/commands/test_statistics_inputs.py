"""`summarise` and `jetstream statistics compute` on bad inputs: clear errors, never a
traceback or silently missing statistics."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jetstream.cli import cli
from jetstream.errors import JetstreamError
from jetstream.statistics import SummaryRequest, summarise


def _table(values) -> dict:
    n = len(values)
    return {"branch": np.array(["a", "b"] * (n // 2)), "m": np.asarray(values)}


@pytest.mark.parametrize("statistic", ["bootstrap_mean", "deciles", "binomial", "sum"])
def test_an_all_infinite_metric_is_an_error_not_null_statistics(statistic):
    rows, errors = summarise(SummaryRequest(_table([np.inf] * 10), "m", statistic))
    assert rows == []
    assert [e.level for e in errors] == ["error"]
    assert "has no finite values" in errors[0].message


def test_count_of_an_all_infinite_metric_still_counts():
    rows, errors = summarise(SummaryRequest(_table([np.inf] * 10), "m", "count"))
    assert sorted(r.point for r in rows) == [5, 5] and errors == []


def test_a_string_column_is_an_error():
    rows, errors = summarise(SummaryRequest(_table(["x", "y"]), "m", "bootstrap_mean"))
    assert rows == [] and "'m' does not hold numbers" in errors[0].message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"confidence_interval": float("nan")}, "must be a finite number"),
        ({"num_samples": 10**12}, "num_samples must be <= 100000"),
        ({"num_samples": 1e12}, "num_samples must be an integer"),
    ],
)
def test_parameters_follow_the_catalogue(params, expected):
    rows, errors = summarise(SummaryRequest(_table([1.0, 2.0]), "m", "bootstrap_mean", params))
    assert rows == [] and expected in errors[0].message


def test_pre_treatment_arguments_follow_the_catalogue():
    rows, errors = summarise(
        SummaryRequest(
            _table([1.0, 2.0]), "m", "bootstrap_mean", pre_treatments=[("log", {"base": 1})]
        )
    )
    assert rows == [] and "base must not be 1" in errors[0].message


def _compute(tmp_path, input_path, *extra: str):
    res = CliRunner().invoke(
        cli,
        [
            "statistics",
            "compute",
            "--input",
            str(input_path),
            "--statistic",
            "bootstrap_mean",
            "--out",
            str(tmp_path / "o.json"),
            *extra,
        ],
    )
    if isinstance(res.exception, JetstreamError):  # `jetstream.cli.main` prints and exits
        return res.exception.exit_code, f"{res.output}error: {res.exception}"
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"branch": ["a", "b"] * 3, "s": list("xyzuvw"), "n": [1.0, 2, 3, 4, 5, 6]}),
        path,
    )
    return path


@pytest.mark.parametrize("content", [b"hello", b"", b"PAR1" + b"\x00" * 20])
def test_compute_on_a_file_that_is_not_parquet(tmp_path, content):
    path = tmp_path / "x.parquet"
    path.write_bytes(content)
    code, output = _compute(tmp_path, path, "--metric", "n")
    assert code == 2, output
    assert "cannot be read as a parquet file" in output


def test_compute_on_a_string_column(tmp_path, parquet):
    code, output = _compute(tmp_path, parquet, "--metric", "s")
    assert code == 1, output
    assert "'s' does not hold numbers" in output
    assert json.loads((tmp_path / "o.json").read_text()) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--pre-treatments", "[1]"),
        ("--pre-treatments", '[["log", 5]]'),
        ("--pre-treatments", '{"a": 1}'),
        ("--pre-treatments", "[" * 5000 + "]" * 5000),
        ("--params", "[" * 100_000 + "]" * 100_000),
        ("--params", "[]"),
    ],
)
def test_compute_with_malformed_options(tmp_path, parquet, option, value):
    code, output = _compute(tmp_path, parquet, "--metric", "n", option, value)
    assert code == 2, output
    assert option in output


@pytest.mark.parametrize("statistic", ["bootstrap_mean", "deciles", "sum", "linear_model_mean"])
def test_some_infinite_values_that_spoil_results_are_an_error(statistic):
    values = [1.0, 2, 3, np.inf, 5, 6, 7, 8, 9, 10]
    params = {"drop_highest": 0.0} if statistic in ("bootstrap_mean", "linear_model_mean") else {}
    rows, errors = summarise(SummaryRequest(_table(values), "m", statistic, params))
    assert any(r.point is None for r in rows)
    [error] = [e for e in errors if e.level == "error"]
    assert "has 1 infinite value(s)" in error.message and "not published" in error.message


def test_finite_results_despite_an_infinite_value_are_not_an_error():
    values = [1.0, 2, 3, np.inf, 5, 6, 7, 8, 9, 10]
    rows, errors = summarise(SummaryRequest(_table(values), "m", "empirical_cdf"))
    assert rows and not [e for e in errors if e.level == "error"]
