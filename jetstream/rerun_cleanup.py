"""Before a rerun after a config change: drop the tables a full rerun recreates and delete
the rows of removed metrics and dropped windows (used by `jetstream changes` and the
webhook)."""

from __future__ import annotations

from collections.abc import Iterable

from jetstream.logs import get_logger

log = get_logger("jetstream.changes")


def apply_cleanup(warehouse_uri: str, plans: Iterable) -> list[str]:
    """Drop the tables full reruns recreate and delete the rows of removed metrics and
    dropped windows. Returns the statements run (for the log and the report)."""
    from jetstream.changes import cleanup_statements, tables_to_drop
    from jetstream.warehouse import open_warehouse

    plans = [p for p in plans if p.error is None and not p.is_empty]
    if not plans:
        return []
    done: list[str] = []
    wh = open_warehouse(warehouse_uri)
    try:
        for plan in plans:
            for table in tables_to_drop(plan):
                if wh.table_exists(table):
                    wh.drop_table(table)
                    done.append(f"DROP TABLE {wh.table_ref(table)}")
            # only tables that exist: a never-analysed experiment has none
            statements = cleanup_statements(plan, wh.table_ref, exists=wh.table_exists)
            if statements:
                wh.transaction(statements)
                done += statements
    finally:
        wh.close()
    for s in done:
        log.info("cleanup", statement=s)
    return done
