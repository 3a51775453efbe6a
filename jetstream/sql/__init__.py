"""BigQuery-dialect SQL builders. Pure: strings in, strings out. The DuckDB warehouse runs
the same text through sqlglot; there is no second dialect here."""
