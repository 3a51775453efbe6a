"""Warehouses: the protocol, `open_warehouse`, DuckDB and BigQuery implementations."""

from jetstream.warehouse.base import QueryStats, Warehouse, open_warehouse

__all__ = ["QueryStats", "Warehouse", "open_warehouse"]
