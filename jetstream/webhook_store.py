"""The webhook's durable push queue: a small sqlite file, so a push is acted on once, in
order, across restarts and crashes.

- `enqueue` records a push (keyed by its delivery id and by `before..after`, so a
  redelivery or the same push under another delivery id is a duplicate) as `queued`,
  before the delivery is answered: a push that got 202 is never lost.
- `take` hands every runnable queued push to one worker at a time, as `processing` under
  an owner and a lease. While any push is held under a live lease, nobody else takes
  anything: reruns of the repository never overlap, whichever process runs them. The
  holder renews the lease (`renew`) while it works; a holder that died stops renewing,
  and once its lease has run out the next `take` (any process, e.g. the restarted webhook)
  takes its pushes over.
- `finish` marks pushes `done` (with the answer) or `failed`, and records the commit the
  warehouse now reflects (`applied`); `retry` puts them back with a delay.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS pushes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery TEXT NOT NULL UNIQUE,
        push_key TEXT NOT NULL UNIQUE,      -- before..after
        ref TEXT NOT NULL,
        before_commit TEXT NOT NULL,
        after_commit TEXT NOT NULL,
        state TEXT NOT NULL,                -- queued | processing | done | failed
        received_at REAL NOT NULL,
        owner TEXT,
        claimed_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL DEFAULT 0,
        answer TEXT                         -- JSON, once done or failed
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS applied (
        ref TEXT PRIMARY KEY,
        commit_id TEXT NOT NULL,
        applied_at REAL NOT NULL
    )
    """,
)
QUEUED, PROCESSING, DONE, FAILED = "queued", "processing", "done", "failed"


@attrs.frozen
class Push:
    id: int
    delivery: str
    ref: str
    before: str
    after: str
    state: str
    attempts: int = 0
    answer: dict[str, Any] | None = None


@attrs.frozen
class Enqueued:
    """`new` True when the push was queued now; otherwise the earlier record."""

    new: bool
    push: Push


class DeliveryStore:
    def __init__(self, path: Path | str, lease: float = 120.0):
        self.path = Path(path)
        self.lease = lease
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                con.execute(statement)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    _COLUMNS = "id, delivery, ref, before_commit, after_commit, state, attempts, answer"

    @staticmethod
    def _push(row: Sequence[Any]) -> Push:
        answer = json.loads(row[7]) if row[7] else None
        return Push(row[0], row[1], row[2], row[3], row[4], row[5], row[6], answer)

    def find(self, delivery: str, before: str = "", after: str = "") -> Push | None:
        """The push recorded under this delivery id, or else under `before..after`."""
        with self._connect() as con:
            row = con.execute(
                f"SELECT {self._COLUMNS} FROM pushes WHERE delivery = ? OR push_key = ? "
                "ORDER BY delivery = ? DESC LIMIT 1",
                (delivery, f"{before}..{after}", delivery),
            ).fetchone()
        return self._push(row) if row else None

    def enqueue(self, delivery: str, ref: str, before: str, after: str) -> Enqueued:
        with self._transaction() as con:
            row = con.execute(
                f"SELECT {self._COLUMNS} FROM pushes WHERE delivery = ? OR push_key = ? LIMIT 1",
                (delivery, f"{before}..{after}"),
            ).fetchone()
            if row and row[5] == FAILED:  # a redelivery of a failed push: run it again
                con.execute(
                    "UPDATE pushes SET state = ?, attempts = 0, not_before = 0, answer = NULL "
                    "WHERE id = ?",
                    (QUEUED, row[0]),
                )
                return Enqueued(True, attrs.evolve(self._push(row), state=QUEUED, answer=None))
            if row:
                return Enqueued(False, self._push(row))
            cur = con.execute(
                "INSERT INTO pushes (delivery, push_key, ref, before_commit, after_commit, "
                "state, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery, f"{before}..{after}", ref, before, after, QUEUED, time.time()),
            )
            push_id = int(cur.lastrowid or 0)
        return Enqueued(True, Push(push_id, delivery, ref, before, after, QUEUED))

    def take(self, owner: str) -> list[Push]:
        """Every runnable push (queued and due, or held under a lease that ran out), now
        `processing` under `owner`; [] while another holder's lease is live."""
        now = time.time()
        with self._transaction() as con:
            held = con.execute(
                "SELECT COUNT(*) FROM pushes WHERE state = ? AND claimed_at >= ?",
                (PROCESSING, now - self.lease),
            ).fetchone()[0]
            if held:
                return []
            rows = con.execute(
                f"SELECT {self._COLUMNS} FROM pushes WHERE (state = ? AND not_before <= ?) "
                "OR state = ? ORDER BY id",
                (QUEUED, now, PROCESSING),
            ).fetchall()
            con.executemany(
                "UPDATE pushes SET state = ?, owner = ?, claimed_at = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                [(PROCESSING, owner, now, r[0]) for r in rows],
            )
        return [attrs.evolve(self._push(r), state=PROCESSING, attempts=r[6] + 1) for r in rows]

    def renew(self, owner: str, ids: Sequence[int]) -> int:
        """Extend the lease; returns how many pushes `owner` still holds."""
        with self._transaction() as con:
            return sum(
                con.execute(
                    "UPDATE pushes SET claimed_at = ? WHERE id = ? AND owner = ? AND state = ?",
                    (time.time(), i, owner, PROCESSING),
                ).rowcount
                for i in ids
            )

    def finish(
        self,
        ids: Sequence[int],
        answer: dict[str, Any],
        *,
        failed: bool = False,
        applied: tuple[str, str] | None = None,
    ) -> None:
        text = json.dumps(answer, sort_keys=True, default=str)
        with self._transaction() as con:
            con.executemany(
                "UPDATE pushes SET state = ?, answer = ?, owner = NULL WHERE id = ?",
                [(FAILED if failed else DONE, text, i) for i in ids],
            )
            if applied is not None:
                con.execute(
                    "INSERT OR REPLACE INTO applied (ref, commit_id, applied_at) VALUES (?, ?, ?)",
                    (*applied, time.time()),
                )

    def retry(self, ids: Sequence[int], delay: float) -> None:
        with self._transaction() as con:
            con.executemany(
                "UPDATE pushes SET state = ?, owner = NULL, not_before = ? WHERE id = ?",
                [(QUEUED, time.time() + delay, i) for i in ids],
            )

    def applied(self, ref: str) -> str | None:
        """The commit of `ref` whose rerun was last submitted, if any."""
        with self._connect() as con:
            row = con.execute("SELECT commit_id FROM applied WHERE ref = ?", (ref,)).fetchone()
        return str(row[0]) if row else None

    def pending(self) -> int:
        with self._connect() as con:
            return int(
                con.execute(
                    "SELECT COUNT(*) FROM pushes WHERE state IN (?, ?)", (QUEUED, PROCESSING)
                ).fetchone()[0]
            )

    def ping(self) -> None:
        """Raise if the store cannot be read (readiness)."""
        with self._connect() as con:
            con.execute("SELECT COUNT(*) FROM pushes").fetchone()
