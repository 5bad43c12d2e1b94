"""The embedded default's durable queue: events in a SQLite file, kept across crashes.

An event is a row until its handler finishes. A process that dies mid-handler leaves
its rows marked taken; the next start puts them back, so they run again (at least
once). Failed attempts wait in the same table until their back-off has passed.

Ordered events: a row with a `group_id` is written `held` when its (step, group) has
another row already, and only unheld rows are taken; deleting a group's row (ack, or
dead-lettering) unholds the group's next by id, which is emit order. A failing row
stays its group's head while it waits out its back-off, so the group waits with it;
after a crash the head is re-offered like any taken row, its group still behind it.

A taken row is re-offered only when the file is opened again, never on a timer, so
there is no claim to renew. get() passes over the rows of steps it is told to skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Set as AbstractSet
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
# Dead letters' groups, added to files of earlier versions as well as new ones.
_DEAD_GROUPS = "ALTER TABLE dead_letters ADD COLUMN group_id TEXT"
# Ordered events, added to queue files of earlier versions as well as new ones.
_GROUPS = """
ALTER TABLE queue ADD COLUMN group_id TEXT;
ALTER TABLE queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
"""
_INDEXES = """
DROP INDEX IF EXISTS queue_ready;
CREATE INDEX IF NOT EXISTS queue_runnable ON queue (held, taken, available_at, id);
CREATE INDEX IF NOT EXISTS queue_groups ON queue (step, group_id, id)
    WHERE group_id IS NOT NULL;
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
        columns = {row[1] for row in db.execute("PRAGMA table_info(queue)")}
        if "group_id" not in columns:
            db.executescript(_GROUPS)
        if "group_id" not in {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}:
            db.execute(_DEAD_GROUPS)
        db.executescript(_INDEXES)
        db.execute("UPDATE queue SET taken = 0 WHERE taken = 1")
        return cls(db, policy or RetryPolicy())

    async def put(self, delivery: Delivery) -> None:
        data = orjson.dumps(delivery.data).decode()
        if delivery.group is None:
            self._db.execute(
                "INSERT INTO queue (step, topic, data, trace_id, attempt, available_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (delivery.step, delivery.topic, data, delivery.trace_id, delivery.attempt,
                 0.0))
        else:  # held when the group has a row already: one statement, so atomic
            self._db.execute(
                "INSERT INTO queue (step, topic, data, trace_id, attempt, available_at,"
                " group_id, held) SELECT ?, ?, ?, ?, ?, ?, ?, EXISTS (SELECT 1 FROM queue"
                " WHERE step = ? AND group_id = ?)",
                (delivery.step, delivery.topic, data, delivery.trace_id, delivery.attempt,
                 0.0, delivery.group, delivery.step, delivery.group))
        self._wake.set()

    @property
    def claim_timeout(self) -> float | None:
        """A taken row is the process's until it ends."""
        return None

    async def get(self, skip: AbstractSet[str] = frozenset()) -> Delivery:
        while True:
            self._wake.clear()
            now = time.time()
            skipped = list(skip)
            others = f" AND step NOT IN ({', '.join('?' * len(skipped))})" if skipped else ""
            row = self._db.execute(
                "UPDATE queue SET taken = 1 WHERE id = (SELECT id FROM queue"
                f" WHERE held = 0 AND taken = 0 AND available_at <= ?{others}"
                " ORDER BY id LIMIT 1)"
                " RETURNING id, step, topic, data, trace_id, attempt, group_id",
                (now, *skipped)).fetchone()
            if row is not None:
                return Delivery(row[1], row[2], orjson.loads(row[3]), row[4], row[5],
                                receipt=row[0], group=row[6])
            (due,) = self._db.execute(
                f"SELECT MIN(available_at) FROM queue WHERE held = 0 AND taken = 0{others}",
                skipped).fetchone()
            wait = None if due is None else max(due - now, 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def wake(self) -> None:
        self._wake.set()

    async def extend(self, delivery: Delivery) -> None:
        """Nothing expires: nothing to renew."""

    async def ack(self, delivery: Delivery) -> None:
        if delivery.group is None:  # a single statement: no transaction to pay for
            self._forget(delivery)
            return
        with self._db:
            self._db.execute("BEGIN")
            self._forget(delivery)

    def _forget(self, delivery: Delivery) -> None:
        """Delete the row and unhold its group's next; inside the caller's transaction."""
        self._db.execute("DELETE FROM queue WHERE id = ?", (delivery.receipt,))
        if delivery.group is None:
            return
        self._db.execute(
            "UPDATE queue SET held = 0 WHERE id = (SELECT MIN(id) FROM queue"
            " WHERE step = ? AND group_id = ?)", (delivery.step, delivery.group))
        self._wake.set()

    async def fail(self, delivery: Delivery, error: str,
                   policy: RetryPolicy | None = None) -> None:
        policy = policy or self.policy
        if delivery.attempt < policy.max_attempts:
            due = time.time() + policy.delay(delivery.attempt)
            self._db.execute(
                "UPDATE queue SET attempt = attempt + 1, available_at = ?, taken = 0"
                " WHERE id = ?", (due, delivery.receipt))
            self._wake.set()
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO dead_letters (step, topic, data, trace_id, attempts, error,"
                " failed_at, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (delivery.step, delivery.topic, orjson.dumps(delivery.data).decode(),
                 delivery.trace_id, delivery.attempt, error, time.time(), delivery.group))
            self._forget(delivery)
            self._db.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
                (MAX_DEAD_LETTERS,))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT step, topic, data, trace_id, attempts, error, failed_at, group_id"
            " FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [DeadLetter(r[0], r[1], orjson.loads(r[2]), r[3], r[4], r[5], r[6], r[7])
                for r in rows]

    async def close(self) -> None:
        self._db.close()

    def pending(self) -> int:
        """Events not yet handled, taken or not."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()
        return int(count)
