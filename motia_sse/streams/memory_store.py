"""A store in a dict: fast, and gone when the process ends."""

from __future__ import annotations

import attrs

from motia_sse.streams.store import Change, ChangeKind, JsonObject, StoredItem


@attrs.define
class MemoryStore:
    """Items in process memory; for tests and throwaway runs (`--store memory`)."""

    _groups: dict[tuple[str, str], dict[str, StoredItem]] = attrs.field(factory=dict)
    _version: int = 0

    async def get(self, stream: str, group_id: str, item_id: str) -> StoredItem | None:
        return self._groups.get((stream, group_id), {}).get(item_id)

    async def set(self, stream: str, group_id: str, item_id: str, data: JsonObject) -> Change:
        group = self._groups.setdefault((stream, group_id), {})
        kind: ChangeKind = "update" if item_id in group else "create"
        self._version += 1
        group[item_id] = StoredItem(group_id, item_id, data, self._version)
        return Change(stream, group_id, item_id, kind, self._version, data)

    async def delete(self, stream: str, group_id: str, item_id: str) -> Change | None:
        group = self._groups.get((stream, group_id))
        if group is None or group.pop(item_id, None) is None:
            return None
        if not group:
            del self._groups[(stream, group_id)]
        self._version += 1
        return Change(stream, group_id, item_id, "delete", self._version, None)

    async def get_group(self, stream: str, group_id: str) -> list[StoredItem]:
        group = self._groups.get((stream, group_id), {})
        return [group[k] for k in sorted(group)]

    async def close(self) -> None:
        self._groups.clear()
