"""The store protocol every stream backend implements, and the records it returns."""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

import attrs

ChangeKind = Literal["create", "update", "delete"]
JsonObject = dict[str, Any]
# `history_start` of a store that knows no version at all (it lost everything).
NO_HISTORY = 2**63 - 1


def clock_version() -> int:
    """Where a store with no counter starts counting: now, in microseconds, so that it
    never gives out a version an earlier life of it did (unless that one wrote a
    million changes a second)."""
    return time.time_ns() // 1000


@attrs.frozen
class StoredItem:
    """One item as stored: its JSON data and the version of its last change.

    `data` is None for a tombstone: the item was deleted at `version`. Stores keep
    tombstones so that a reconnecting feed can tell "deleted since you looked" from
    "never existed"; a store that keeps none returns None for deleted items."""

    group_id: str
    id: str
    data: JsonObject | None
    version: int

    @property
    def deleted(self) -> bool:
        """Whether this is a tombstone."""
        return self.data is None


@attrs.frozen
class Change:
    """What one `set` or `delete` did, as the store committed it."""

    stream: str
    group_id: str
    id: str
    kind: ChangeKind
    version: int
    # None for a delete.
    data: JsonObject | None
    # For a delete: the data the item had, read in the same atomic step as the delete.
    previous: JsonObject | None = None


@attrs.frozen
class GroupSnapshot:
    """A group's items and the version of its last change (0 if it never had one)."""

    items: list[StoredItem]
    version: int


class StreamStore(Protocol):
    """Keeps stream items; every change gets a version greater than any before it.

    Greater than any version the store ever gave out, that is, even across a restart
    that lost its data: clients keep the versions they saw, and take anything at or
    below their mark for old news. The server's stores start counting at the clock
    (in microseconds) whenever they find no counter.

    A store may set `announces_changes = True` if it delivers every committed change
    to all server processes itself (as the Redis store does, atomically with the
    write); otherwise the stream hands each change to the fan-out. A store whose
    history does not reach back to version 1 (one that forgets on restart) has an
    `async def history_start() -> int`: the first version it still knows, NO_HISTORY
    if none."""

    async def get(self, stream: str, group_id: str, item_id: str) -> StoredItem | None:
        """The item, its tombstone, or None if it never existed."""
        ...

    async def set(self, stream: str, group_id: str, item_id: str, data: JsonObject) -> Change:
        """Create or replace the item; bump its version with the write."""
        ...

    async def delete(self, stream: str, group_id: str, item_id: str) -> Change | None:
        """Remove the item (leaving a tombstone); None if there was none.

        The change's `previous` holds the data the item had, read atomically with the
        delete; a store that fills it says so with `reports_previous = True`. For one
        that does not (written before `previous` existed) the stream reads the item just
        before deleting it: one more call, and not atomic with the delete."""
        ...

    async def get_group(self, stream: str, group_id: str) -> GroupSnapshot:
        """Every live item of the group (no tombstones), oldest first (in the order they
        were created, as Motia lists a group; one deleted and set again is new), read
        together with the group's version.

        The group's version is that of its newest change, deletes included."""
        ...

    async def close(self) -> None:
        """Release files and connections."""
        ...
