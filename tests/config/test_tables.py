"""The schema step's typed tables: each raw key read once, ill-typed values unset (the
structural check reports them), list items keep their index."""

from __future__ import annotations

import datetime as dt

from jetstream.config import tables
from jetstream.config.layers import CONFIG, DEFAULTS, DEFINITIONS, METRICS, Layer, Layers
from jetstream.config.model import AnalysisBasis, CovariateAdjustment, PreTreatment
from jetstream.periods import Period


def test_metric_table_reads_typed_values_and_drops_ill_typed_ones():
    t = tables.metric_table(
        {
            "select_expression": "SUM(x)",
            "data_source": 3,
            "depends_on": ["a", 1, "b"],
            "bigger_is_better": False,
            "analysis_bases": ["exposures", "nope"],
            "analysis_units": [],
            "owner": "me",
            "statistics": {
                "bootstrap_mean": {
                    "num_samples": 10,
                    "bogus": 1,
                    "pre_treatments": ["remove_nulls", {"name": "log", "base": 2}, "nope"],
                },
                "linear_model_mean": {
                    "covariate_adjustment": {"period": "preenrollment_week", "metric": "m0"}
                },
                "population_ratio": {"numerator": "n", "denominator": 4},
                "not_a_statistic": {},
                "count": "not a table",
            },
        }
    )
    assert t.select_expression == "SUM(x)" and t.data_source is None
    assert t.depends_on == ((0, "a"), (2, "b"))
    assert t.bigger_is_better is False
    assert t.analysis_bases == (AnalysisBasis.EXPOSURES,)
    assert t.analysis_units == () and t.owner == ("me",) and t.type == "scalar"
    by_name = {s.name: s for s in t.statistics}
    mean = by_name["bootstrap_mean"]
    assert mean.known and mean.params == {"num_samples": 10}
    assert mean.pre_treatments == (PreTreatment("remove_nulls"), PreTreatment("log", {"base": 2}))
    assert by_name["linear_model_mean"].covariate == CovariateAdjustment(
        Period.PREENROLLMENT_WEEK, "m0"
    )
    assert by_name["population_ratio"].metric_params == (("numerator", "n"),)
    assert not by_name["not_a_statistic"].known and not by_name["count"].known


def test_experiment_table():
    t = tables.experiment_table(
        {
            "start_date": "2024-01-02",
            "enrollment_period": True,
            "sample_size": 5,
            "skip": "yes",
            "outcomes": ["a", 2, "b"],
            "exposure_signal": {"name": "e", "window_start": True, "window_end": 3},
        }
    )
    assert t.start_date == dt.date(2024, 1, 2)
    assert t.enrollment_period is None and t.sample_size == 5 and t.skip is False
    assert t.outcomes == ((0, "a"), (2, "b"))
    assert t.exposure_signal is not None
    assert (t.exposure_signal.window_start, t.exposure_signal.window_end) == (None, 3)


def test_layers_merge_key_by_key_and_remember_where_each_key_came_from():
    defs = Layer.of(
        "defs.toml", {"metrics": {"m": {"select_expression": "1", "data_source": "d"}}}, DEFINITIONS
    )
    defaults = Layer.of("defaults.toml", {"metrics": {"weekly": ["m"]}}, DEFAULTS)
    config = Layer.of(
        "exp.toml", {"metrics": {"m": {"data_source": "e"}, "overall": ["m", 1]}}, CONFIG
    )
    layers = Layers(defs, defaults, config)
    found = layers.find(METRICS, "m")
    assert found is not None
    assert (found.table.select_expression, found.table.data_source) == ("1", "e")
    assert found.origin["select_expression"].file == "defs.toml"
    assert found.origin["data_source"].file == "exp.toml" and found.top.file == "exp.toml"
    assert layers.find(METRICS, "weekly") is None
    lists = layers.period_lists()
    assert list(lists[Period.WEEK]) == ["m"] and lists[Period.WEEK]["m"].key == "metrics.weekly[0]"
    assert lists[Period.OVERALL]["m"].file == "exp.toml"
