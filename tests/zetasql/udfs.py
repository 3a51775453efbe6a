"""BigQuery signatures of the mozfun / udf functions the DuckDB path supports
(jetstream/warehouse/mozfun.py), for the ZetaSQL catalog: argument types, return type.

The signatures follow the functions' definitions in mozilla/bigquery-etl. A function that
takes ANY TYPE there is declared once per argument type our configs and the synthetic
telemetry pass (maps of STRING, INT64, FLOAT64, BOOL and STRUCT<branch> values); ANY_1 /
ARRAY_ANY_1 are ZetaSQL's templated arguments.
"""

from __future__ import annotations

HISTOGRAM = (
    "STRUCT<bucket_count INT64, histogram_type INT64, `sum` INT64, `range` ARRAY<INT64>, "
    "`values` ARRAY<STRUCT<key INT64, value INT64>>>"
)
MAP_VALUE_TYPES = ("STRING", "INT64", "FLOAT64", "BOOL", "STRUCT<branch STRING>")
GET_KEY = [([f"ARRAY<STRUCT<key STRING, value {v}>>", "STRING"], v) for v in MAP_VALUE_TYPES] + [
    (["ARRAY<STRUCT<key INT64, value INT64>>", "INT64"], "INT64")
]

SIGNATURES: dict[str, list[tuple[list[str], str]]] = {
    "mozfun.map.get_key": GET_KEY,
    "udf.get_key": GET_KEY,
    "mozfun.map.extract_keyed_scalar_sum": [(["ARRAY<STRUCT<key STRING, value INT64>>"], "INT64")],
    "mozfun.json.extract_int_map": [(["STRING"], "ARRAY<STRUCT<key INT64, value INT64>>")],
    "mozfun.hist.extract": [(["STRING"], HISTOGRAM)],
    "mozfun.hist.threshold_count": [(["STRING", "INT64"], "INT64")],
    "udf.histogram_max_key_with_nonzero_value": [(["STRING"], "INT64")],
    "udf.extract_histogram_sum": [(["STRING"], "INT64")],
    "udf.keyed_histogram_get_sum": [
        (["ARRAY<STRUCT<key STRING, value STRING>>", "STRING"], "INT64")
    ],
    "mozfun.bits28.days_since_seen": [(["INT64"], "INT64")],
    "mozfun.norm.truncate_version": [(["STRING", "STRING"], "NUMERIC")],
    "mozfun.norm.extract_version": [(["STRING", "STRING"], "NUMERIC")],
    "mozfun.norm.fenix_build_to_datetime": [(["STRING"], "DATETIME")],
    "mozfun.norm.os": [(["STRING"], "STRING")],
    "mozfun.norm.windows_version_info": [(["STRING", "STRING", "INT64"], "STRING")],
    "mozfun.stats.mode_last": [(["ARRAY_ANY_1"], "ANY_1")],
}
PROJECT = "moz-fx-data-shared-prod"


def declarations() -> list[dict]:
    """The functions for analyze.py: each name also as `moz-fx-data-shared-prod`.x.y(...)."""
    out = []
    for name, signatures in SIGNATURES.items():
        for full in (name, f"{PROJECT}.{name}"):
            out.append({"name": full, "signatures": [[a, r] for a, r in signatures]})
    return out
