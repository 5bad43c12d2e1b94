"""The embedded default store: one SQLite file under the data folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import ClassVar

import attrs

from motia_sse.streams.store import (
    Change,
    ChangeKind,
    GroupSnapshot,
    JsonObject,
    StoredItem,
    clock_version,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_items (
    stream TEXT NOT NULL,
    group_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    data TEXT,  -- NULL: a tombstone, deleted at `version`
    version INTEGER NOT NULL,
    created INTEGER,  -- the version that created the item: groups list items in this order
    PRIMARY KEY (stream, group_id, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_groups (
    stream TEXT NOT NULL,
    group_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (stream, group_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""


@attrs.define
class SqliteStore:
    """Items that survive a restart. One process owns the file.

    Calls run on the event loop thread: in WAL mode with synchronous=NORMAL a
    write is a few microseconds of page work and no fsync, cheaper than a hop
    to a thread, and it keeps each change atomic with its version bump.
    """

    reports_previous: ClassVar[bool] = True
    _db: sqlite3.Connection
    _version: int
    # The first version the file holds history from: 0 for files made before the
    # counter started at the clock (they counted from 1).
    _history_start: int = 0

    @classmethod
    def open(cls, path: Path) -> SqliteStore:
        """Open (creating if needed) the store file at `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        _add_created(db)
        meta = dict(db.execute("SELECT key, value FROM stream_meta").fetchall())
        if "version" not in meta:
            # A new file, or one whose predecessor was deleted: count on from the clock,
            # never from a version that clients of the old file may hold.
            meta = {"version": clock_version()}
            meta["history"] = meta["version"] + 1
            db.executemany("INSERT INTO stream_meta VALUES (?, ?)", meta.items())
        return cls(db, meta["version"], meta.get("history", 0))

    async def get(self, stream: str, group_id: str, item_id: str) -> StoredItem | None:
        row = self._db.execute(
            "SELECT data, version FROM stream_items"
            " WHERE stream = ? AND group_id = ? AND item_id = ?",
            (stream, group_id, item_id),
        ).fetchone()
        if row is None:
            return None
        data = None if row[0] is None else json.loads(row[0])
        return StoredItem(group_id, item_id, data, row[1])

    async def set(self, stream: str, group_id: str, item_id: str, data: JsonObject) -> Change:
        encoded = json.dumps(data, separators=(",", ":"))
        with self._db:
            self._db.execute("BEGIN")
            version = self._bump(stream, group_id)
            existed = self._db.execute(
                "SELECT data IS NOT NULL FROM stream_items"
                " WHERE stream = ? AND group_id = ? AND item_id = ?",
                (stream, group_id, item_id),
            ).fetchone()
            self._db.execute(
                "INSERT INTO stream_items VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET data = excluded.data, version = excluded.version,"
                " created = CASE WHEN data IS NULL THEN excluded.created ELSE created END",
                (stream, group_id, item_id, encoded, version, version),
            )
        self._version = version
        kind: ChangeKind = "update" if existed and existed[0] else "create"
        return Change(stream, group_id, item_id, kind, version, data)

    async def delete(self, stream: str, group_id: str, item_id: str) -> Change | None:
        where = (stream, group_id, item_id)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # the read and the delete: one write lock
            row = self._db.execute(
                "SELECT data FROM stream_items WHERE stream = ? AND group_id = ?"
                " AND item_id = ? AND data IS NOT NULL", where).fetchone()
            if row is None:
                return None
            version = self._bump(stream, group_id)
            self._db.execute(
                "UPDATE stream_items SET data = NULL, version = ?"
                " WHERE stream = ? AND group_id = ? AND item_id = ?", (version, *where))
        self._version = version
        return Change(stream, group_id, item_id, "delete", version, None, json.loads(row[0]))

    async def get_group(self, stream: str, group_id: str) -> GroupSnapshot:
        with self._db:
            self._db.execute("BEGIN")  # one read transaction: items and version agree
            rows = self._db.execute(
                "SELECT item_id, data, version FROM stream_items"
                " WHERE stream = ? AND group_id = ? AND data IS NOT NULL"
                " ORDER BY created, item_id",
                (stream, group_id),
            ).fetchall()
            version = self._db.execute(
                "SELECT version FROM stream_groups WHERE stream = ? AND group_id = ?",
                (stream, group_id),
            ).fetchone()
        items = [StoredItem(group_id, r[0], json.loads(r[1]), r[2]) for r in rows]
        return GroupSnapshot(items, version[0] if version else 0)

    async def history_start(self) -> int:
        """The first version this file was given."""
        return self._history_start

    async def close(self) -> None:
        self._db.close()

    def _bump(self, stream: str, group_id: str) -> int:
        version = self._version + 1
        self._db.execute(
            "INSERT INTO stream_meta VALUES ('version', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (version,),
        )
        self._db.execute(
            "INSERT INTO stream_groups VALUES (?, ?, ?)"
            " ON CONFLICT (stream, group_id) DO UPDATE SET version = excluded.version",
            (stream, group_id, version),
        )
        return version


def _add_created(db: sqlite3.Connection) -> None:
    # Files made before groups listed items in creation order lack the column; their
    # items' creation is unknown, and their last change is the nearest thing to it.
    columns = {row[1] for row in db.execute("PRAGMA table_info(stream_items)")}
    if "created" not in columns:
        with db:
            db.execute("BEGIN")
            db.execute("ALTER TABLE stream_items ADD COLUMN created INTEGER")
            db.execute("UPDATE stream_items SET created = version")
