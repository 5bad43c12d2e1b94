"""The store protocol every stream backend implements, and the records it returns."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import attrs

ChangeKind = Literal["create", "update", "delete"]
JsonObject = dict[str, Any]


@attrs.frozen
class StoredItem:
    """One item as stored: its JSON data and the version of its last change."""

    group_id: str
    id: str
    data: JsonObject
    version: int


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


@attrs.frozen
class GroupSnapshot:
    """A group's items and the version of its last change (0 if it never had one)."""

    items: list[StoredItem]
    version: int


class StreamStore(Protocol):
    """Keeps stream items; every change gets a version greater than any before it."""

    async def get(self, stream: str, group_id: str, item_id: str) -> StoredItem | None:
        """The item, or None."""
        ...

    async def set(self, stream: str, group_id: str, item_id: str, data: JsonObject) -> Change:
        """Create or replace the item; bump its version with the write."""
        ...

    async def delete(self, stream: str, group_id: str, item_id: str) -> Change | None:
        """Remove the item; None if there was none."""
        ...

    async def get_group(self, stream: str, group_id: str) -> GroupSnapshot:
        """Every item of the group, ordered by id, read together with the group's version.

        The group's version is that of its newest change, deletes included."""
        ...

    async def close(self) -> None:
        """Release files and connections."""
        ...
