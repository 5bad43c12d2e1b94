"""The stream API a step sees as `ctx.streams.<name>`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs

from motia_sse.converter import converter, structure, unstructure
from motia_sse.exceptions import ValidationError
from motia_sse.run.config import StreamConfig
from motia_sse.streams.fanout import Fanout
from motia_sse.streams.ids import MAX_ID_LENGTH, check_id
from motia_sse.streams.store import Change, GroupSnapshot, JsonObject, StoredItem, StreamStore

T = TypeVar("T")


@attrs.frozen
class StreamItem(Generic[T]):
    """An item as a step sees it: typed data, where it lives, its version."""

    stream: str
    group_id: str
    id: str
    data: T
    version: int


@attrs.frozen
class StreamChannel:
    """Where a custom event goes: the group's feeds, and the item's if `id` is given."""

    group_id: str
    id: str | None = None


@attrs.frozen
class StreamEvent:
    """A custom event: not stored, not replayed, only seen by feeds open right now."""

    type: str
    data: Any = None


def _qualname(kind: type[Any]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _unstructure_item(item: StreamItem[Any]) -> JsonObject:
    # As in Motia: the item carries where its feed is, so a client can open it.
    return {
        **unstructure(item.data),
        "id": item.id,
        "__motia": {
            "type": "state-stream",
            "streamName": item.stream,
            "groupId": item.group_id,
            "id": item.id,
        },
    }


converter.register_unstructure_hook(StreamItem, _unstructure_item)


@attrs.define
class Stream(Generic[T]):
    """Typed access to one stream's items; every change reaches its feeds."""

    config: StreamConfig
    _store: StreamStore
    _fanout: Fanout
    # False for a custom store: its versions are its own, not comparable with the
    # server store's, so a multiplexed reconnect resends its items rather than guess.
    shared_versions: bool = True
    # Longest group or item id accepted (Settings.max_id_length).
    max_id_length: int = MAX_ID_LENGTH
    # A store that announces its own changes (Redis, atomically with the write).
    _store_announces: bool = attrs.field(init=False)
    # A store that returns what a delete removed, atomically (all of the server's).
    _store_reports_previous: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._store_announces = bool(getattr(self._store, "announces_changes", False))
        self._store_reports_previous = bool(getattr(self._store, "reports_previous", False))

    async def history_start(self) -> int:
        """The first version the store still knows about (0: all of them)."""
        known = getattr(self._store, "history_start", None)
        return 0 if known is None else int(await known())

    @property
    def name(self) -> str:
        """The stream's name, as in its feed URLs."""
        return self.config.name

    async def set(self, group_id: str, id: str, data: T | Mapping[str, Any]) -> StreamItem[T]:
        """Create or replace an item; raises ValidationError if `data` does not fit."""
        self._check("group id", group_id)
        self._check("item id", id)
        typed = self._typed(data)
        change = await self._store.set(self.name, group_id, id, unstructure(typed))
        await self._announce(change)
        return StreamItem(self.name, group_id, id, typed, change.version)

    async def get(self, group_id: str, id: str) -> StreamItem[T] | None:
        """The item, or None."""
        stored = await self._store.get(self.name, self._check("group id", group_id),
                                       self._check("item id", id))
        return None if stored is None or stored.deleted else self._item(stored)

    async def delete(self, group_id: str, id: str) -> StreamItem[T] | None:
        """Remove the item and return its data as it was, with the delete's version
        (None if there was none), as Motia's `delete` does; feeds get `event: delete`."""
        self._check("group id", group_id)
        self._check("item id", id)
        # A store from before `Change.previous` (store.py) cannot say what it removed.
        before = None if self._store_reports_previous else await self.get(group_id, id)
        change = await self._store.delete(self.name, group_id, id)
        if change is None:
            return None
        await self._announce(change)
        if change.previous is None:
            return None if before is None else attrs.evolve(before, version=change.version)
        return self._item(StoredItem(group_id, id, change.previous, change.version))

    async def stored(self, group_id: str, id: str) -> StoredItem | None:
        """The item or its tombstone as stored (JSON data), for feeds."""
        return await self._store.get(self.name, group_id, id)

    async def stored_group(self, group_id: str) -> GroupSnapshot:
        """The group as stored, with its version, for feeds."""
        return await self._store.get_group(self.name, group_id)

    async def get_group(self, group_id: str) -> list[StreamItem[T]]:
        """Every item of the group, oldest first (in the order they were created)."""
        snapshot = await self._store.get_group(self.name, self._check("group id", group_id))
        return [self._item(s) for s in snapshot.items if not s.deleted]

    async def send(self, channel: StreamChannel, event: StreamEvent) -> None:
        """Push an ephemeral event to the feeds open on `channel` now."""
        self._check("group id", channel.group_id)
        if channel.id is not None:
            self._check("item id", channel.id)
        await self._fanout.send(self.name, channel.group_id, channel.id, event.type,
                                unstructure(event.data))

    async def _announce(self, change: Change) -> None:
        if not self._store_announces:
            await self._fanout.changed(change, self.shared_versions)

    def _check(self, what: str, value: str) -> str:
        return check_id(what, value, self.max_id_length)

    def _typed(self, data: T | Mapping[str, Any]) -> T:
        schema: type[T] = self.config.schema
        if isinstance(data, schema):
            return data
        if attrs.has(type(data)):
            # Usually the schema module imported twice under two names.
            raise ValidationError(f"invalid data for stream {self.name!r}", [
                f"expected {_qualname(schema)} or a dict, got {_qualname(type(data))} @ $"])
        return structure(data, schema, f"data for stream {self.name!r}")

    def _item(self, stored: StoredItem) -> StreamItem[T]:
        data = structure(stored.data, self.config.schema, f"stored item of {self.name!r}")
        return StreamItem(self.name, stored.group_id, stored.id, data, stored.version)
