"""A store in a dict: fast, and gone when the process ends."""

from __future__ import annotations

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


@attrs.define
class MemoryStore:
    """Items in process memory; for tests and throwaway runs (`--store memory`)."""

    reports_previous: ClassVar[bool] = True
    _groups: dict[tuple[str, str], dict[str, StoredItem]] = attrs.field(factory=dict)
    _group_versions: dict[tuple[str, str], int] = attrs.field(factory=dict)
    # A restarted process never reuses a version a client saw from the one before it.
    _version: int = attrs.field(factory=clock_version)
    # Versions below this were never this store's: a client that saw one saw a
    # previous process, whose items are gone, and must get the whole state again.
    _history_start: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._history_start = self._version + 1

    async def history_start(self) -> int:
        """The first version this process gave out."""
        return self._history_start

    async def get(self, stream: str, group_id: str, item_id: str) -> StoredItem | None:
        return self._groups.get((stream, group_id), {}).get(item_id)

    async def set(self, stream: str, group_id: str, item_id: str, data: JsonObject) -> Change:
        group = self._groups.setdefault((stream, group_id), {})
        previous = group.get(item_id)
        kind: ChangeKind = "update" if previous and not previous.deleted else "create"
        if kind == "create":
            group.pop(item_id, None)  # a dict keeps creation order: a new item goes last
        version = self._bump(stream, group_id)
        group[item_id] = StoredItem(group_id, item_id, data, version)
        return Change(stream, group_id, item_id, kind, version, data)

    async def delete(self, stream: str, group_id: str, item_id: str) -> Change | None:
        group = self._groups.get((stream, group_id), {})
        previous = group.get(item_id)
        if previous is None or previous.deleted:
            return None
        version = self._bump(stream, group_id)
        group[item_id] = StoredItem(group_id, item_id, None, version)
        return Change(stream, group_id, item_id, "delete", version, None, previous.data)

    async def get_group(self, stream: str, group_id: str) -> GroupSnapshot:
        group = self._groups.get((stream, group_id), {})
        return GroupSnapshot([item for item in group.values() if not item.deleted],
                             self._group_versions.get((stream, group_id), 0))

    async def close(self) -> None:
        self._groups.clear()

    def _bump(self, stream: str, group_id: str) -> int:
        self._version += 1
        self._group_versions[(stream, group_id)] = self._version
        return self._version
