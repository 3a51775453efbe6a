"""The BigQuery type a query parameter is declared with, from its Python value: one
mapping for the BigQuery client (`warehouse/bigquery.py` binds parameters with it) and the
SQL log (which records the declared types for the offline GoogleSQL check)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any


def scalar_type(value: Any) -> str:
    """BOOL, INT64, FLOAT64, NUMERIC, TIMESTAMP/DATETIME, DATE, BYTES or STRING."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP" if value.tzinfo is not None else "DATETIME"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    return "STRING"


def parameter_type(value: Any) -> str:
    """The declared type of a parameter: ARRAY<element type> for a list or tuple (of its
    first non-null element; STRING when empty), else the scalar type."""
    if isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        return f"ARRAY<{scalar_type(items[0]) if items else 'STRING'}>"
    return scalar_type(value)
