"""`ctx.state`: JSON values by group (such as a trace id) and key, shared by all steps.

State lives in the server's stream store under a reserved stream name, so it is in
SQLite, memory or Redis exactly as stream items are, and survives what they survive.
"""

from __future__ import annotations

from typing import Any

import attrs

from motia_sse.converter import unstructure
from motia_sse.streams.ids import check_id
from motia_sse.streams.store import StreamStore

# Not a valid stream name for users (loader refuses leading "__"); no feed serves it.
STATE_STREAM = "__state"


@attrs.frozen
class State:
    """Key/value state scoped by a group id."""

    _store: StreamStore

    async def get(self, group_id: str, key: str) -> Any:
        """The value, or None."""
        stored = await self._store.get(STATE_STREAM, check_id("group id", group_id),
                                       check_id("key", key))
        return None if stored is None or stored.data is None else stored.data["value"]

    async def set(self, group_id: str, key: str, value: Any) -> Any:
        """Store `value` (attrs instances are unstructured to JSON); returns it as stored."""
        data = {"value": unstructure(value)}
        await self._store.set(STATE_STREAM, check_id("group id", group_id),
                              check_id("key", key), data)
        return data["value"]

    async def delete(self, group_id: str, key: str) -> Any:
        """Remove the key; returns the value it had, or None."""
        change = await self._store.delete(STATE_STREAM, check_id("group id", group_id),
                                          check_id("key", key))
        return None if change is None or change.previous is None else change.previous["value"]

    async def get_group(self, group_id: str) -> list[Any]:
        """Every value of the group, in the order the keys were first set."""
        group = await self._store.get_group(STATE_STREAM, check_id("group id", group_id))
        return [item.data["value"] for item in group.items if item.data is not None]

    async def clear(self, group_id: str) -> None:
        """Remove every key of the group."""
        group = await self._store.get_group(STATE_STREAM, check_id("group id", group_id))
        for item in group.items:
            await self._store.delete(STATE_STREAM, group_id, item.id)
