"""The embedded default's durable queue: events in a SQLite file, kept across crashes.

An event is a row until its handler finishes. A process that dies mid-handler leaves
its rows marked taken; the next start puts them back, so they run again (at least
once). Failed attempts wait in the same table until their back-off has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import attrs
import orjson

from motia_sse.queue.base import DeadLetter, Delivery, RetryPolicy

MAX_DEAD_LETTERS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    topic TEXT NOT NULL,
    data TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    available_at REAL NOT NULL,
    taken INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (taken, available_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    topic TEXT NOT NULL,
    data TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


@attrs.define
class SqliteQueue:
    """Deliveries in a SQLite file, in the order they were emitted.

    Like the SQLite store, calls run on the event loop: each is a few microseconds
    of page work in WAL mode, with no fsync per commit."""

    _db: sqlite3.Connection
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event)

    @classmethod
    def open(cls, path: Path, policy: RetryPolicy | None = None) -> SqliteQueue:
        """Open (creating if needed) the queue file; re-offer what a dead process held."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute("UPDATE queue SET taken = 0 WHERE taken = 1")
        return cls(db, policy or RetryPolicy())

    async def put(self, delivery: Delivery) -> None:
        self._db.execute(
            "INSERT INTO queue (step, topic, data, trace_id, attempt, available_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (delivery.step, delivery.topic, orjson.dumps(delivery.data).decode(),
             delivery.trace_id, delivery.attempt, 0.0))
        self._wake.set()

    async def get(self) -> Delivery:
        while True:
            self._wake.clear()
            now = time.time()
            row = self._db.execute(
                "UPDATE queue SET taken = 1 WHERE id = (SELECT id FROM queue"
                " WHERE taken = 0 AND available_at <= ? ORDER BY id LIMIT 1)"
                " RETURNING id, step, topic, data, trace_id, attempt", (now,)).fetchone()
            if row is not None:
                return Delivery(row[1], row[2], orjson.loads(row[3]), row[4], row[5],
                                receipt=row[0])
            (due,) = self._db.execute(
                "SELECT MIN(available_at) FROM queue WHERE taken = 0").fetchone()
            wait = None if due is None else max(due - now, 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def ack(self, delivery: Delivery) -> None:
        self._db.execute("DELETE FROM queue WHERE id = ?", (delivery.receipt,))

    async def fail(self, delivery: Delivery, error: str) -> None:
        if delivery.attempt < self.policy.max_attempts:
            due = time.time() + self.policy.delay(delivery.attempt)
            self._db.execute(
                "UPDATE queue SET attempt = attempt + 1, available_at = ?, taken = 0"
                " WHERE id = ?", (due, delivery.receipt))
            self._wake.set()
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO dead_letters (step, topic, data, trace_id, attempts, error,"
                " failed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery.step, delivery.topic, orjson.dumps(delivery.data).decode(),
                 delivery.trace_id, delivery.attempt, error, time.time()))
            self._db.execute("DELETE FROM queue WHERE id = ?", (delivery.receipt,))
            self._db.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
                (MAX_DEAD_LETTERS,))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT step, topic, data, trace_id, attempts, error, failed_at FROM dead_letters"
            " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [DeadLetter(r[0], r[1], orjson.loads(r[2]), r[3], r[4], r[5], r[6])
                for r in rows]

    async def close(self) -> None:
        self._db.close()

    def pending(self) -> int:
        """Events not yet handled, taken or not."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()
        return int(count)
