"""Persistent deduplication of webhook deliveries: a small sqlite file, so a delivery (or
the same push under another delivery id) is acted on once, across restarts.

A delivery is *claimed* before it is processed; a claim is *completed* with the answer
that was sent, or *released* when processing failed, so that GitHub's redelivery (same
delivery id) is processed again. Claims older than `stale_after` seconds are treated as
abandoned (the process died mid-way) and can be claimed again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- processing | done
    claimed_at REAL NOT NULL,
    answer TEXT                     -- JSON sent back, once done
)
"""


@attrs.frozen
class Claim:
    """The outcome of `DeliveryStore.claim`: `new` True when the caller owns the key now;
    otherwise `state` and `answer` describe the earlier delivery."""

    new: bool
    state: str = "processing"
    answer: dict[str, Any] | None = None


class DeliveryStore:
    def __init__(self, path: Path | str, stale_after: float = 3600.0):
        self.path = Path(path)
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield con
        finally:
            con.close()

    def claim(self, *keys: str) -> Claim:
        """Claim every key atomically; if any is taken (and not stale), claim none."""
        now = time.time()
        with self._lock, self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                for key in keys:
                    row = con.execute(
                        "SELECT state, claimed_at, answer FROM deliveries WHERE key = ?", (key,)
                    ).fetchone()
                    if row is None:
                        continue
                    state, claimed_at, answer = row
                    if state == "processing" and now - claimed_at > self.stale_after:
                        continue
                    con.execute("ROLLBACK")
                    return Claim(False, state, json.loads(answer) if answer else None)
                con.executemany(
                    "INSERT OR REPLACE INTO deliveries (key, state, claimed_at, answer) "
                    "VALUES (?, 'processing', ?, NULL)",
                    [(k, now) for k in keys],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return Claim(True)

    def complete(self, keys: tuple[str, ...] | list[str], answer: dict[str, Any]) -> None:
        text = json.dumps(answer, sort_keys=True, default=str)
        with self._lock, self._connect() as con:
            con.executemany(
                "UPDATE deliveries SET state = 'done', answer = ? WHERE key = ?",
                [(text, k) for k in keys],
            )

    def release(self, keys: tuple[str, ...] | list[str]) -> None:
        with self._lock, self._connect() as con:
            con.executemany(
                "DELETE FROM deliveries WHERE key = ? AND state = 'processing'",
                [(k,) for k in keys],
            )

    def state(self, key: str) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT state FROM deliveries WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def ping(self) -> None:
        """Raise if the store cannot be read (readiness)."""
        with self._connect() as con:
            con.execute("SELECT COUNT(*) FROM deliveries").fetchone()
