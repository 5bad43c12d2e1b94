"""What each kind of feed sends for a change: the event names and JSON of the wire.

Item feed (`/streams/<s>/<g>/<id>`): a plain `message` with the item, `delete`, `event`.
Group feed (`/streams/<s>/<g>`): `sync` with every item, then `create`, `update`, `delete`.
Multiplexed feed (`/streams?sub=...`): the same changes, each naming its stream, group
and item: `item`, `item-delete`, `sync`, `create`, `update`, `delete`, `event`.
Every stored change carries its version in `id:`.
"""

from __future__ import annotations

import enum
from typing import Any

from motia_sse.streams.frames import Frame
from motia_sse.streams.store import Change, GroupSnapshot, JsonObject, StoredItem


class FeedKind(enum.Enum):
    """What a subscription watches, and on which kind of connection."""

    ITEM = "item"
    GROUP = "group"
    MUX_ITEM = "mux-item"
    MUX_GROUP = "mux-group"

    # Members are singletons: their identity hashes them, in C, where Enum's own
    # __hash__ is Python code run for every key (kind, stream, group, item) looked up.
    __hash__ = object.__hash__

    @property
    def watches_group(self) -> bool:
        """Whether the subscription is to a whole group rather than one item."""
        return self in (FeedKind.GROUP, FeedKind.MUX_GROUP)

    @property
    def multiplexed(self) -> bool:
        """Whether events must name their stream, group and item."""
        return self in (FeedKind.MUX_ITEM, FeedKind.MUX_GROUP)


def _item(item_id: str, data: JsonObject) -> JsonObject:
    return {**data, "id": item_id}


def sse_id(kind: FeedKind, version: int, shared: bool) -> str | None:
    """The `id:` of an event of `version` (None: no `id:` line)."""
    # A multiplexed feed resumes from one version for all its streams; a custom store
    # counts its own versions, which must not move that mark.
    return str(version) if version and (shared or not kind.multiplexed) else None


def change_frame(kind: FeedKind, change: Change, shared: bool = True) -> Frame:
    """The event a subscription of `kind` gets for a committed change."""
    version, event_id = change.version, sse_id(kind, change.version, shared)
    where = {"stream": change.stream, "group": change.group_id, "id": change.id}
    if change.data is None:
        name = {FeedKind.ITEM: "delete", FeedKind.MUX_ITEM: "item-delete"}.get(kind, "delete")
        body: Any = where if kind.multiplexed else {"id": change.id}
        return Frame.encode(body, event=name, event_id=event_id, version=version, kind="delete")
    item = _item(change.id, change.data)
    if kind is FeedKind.ITEM:
        return Frame.encode(item, event_id=event_id, version=version)
    if kind is FeedKind.MUX_ITEM:
        return Frame.encode({**where, "data": item}, event="item", event_id=event_id,
                            version=version)
    body = {**where, "data": item} if kind.multiplexed else item
    return Frame.encode(body, event=change.kind, event_id=event_id, version=version,
                        kind=change.kind)


def item_frame(kind: FeedKind, stream: str, item: StoredItem, shared: bool = True) -> Frame:
    """An item's current snapshot, as sent when a feed opens."""
    assert item.data is not None, "a tombstone has no snapshot"
    data = _item(item.id, item.data)
    event_id = sse_id(kind, item.version, shared)
    if kind is FeedKind.ITEM:
        return Frame.encode(data, event_id=event_id, version=item.version)
    body = {"stream": stream, "group": item.group_id, "id": item.id, "data": data}
    return Frame.encode(body, event="item", event_id=event_id, version=item.version)


def gone_frame(kind: FeedKind, stream: str, group_id: str, item_id: str, version: int = 0,
               shared: bool = True) -> Frame:
    """`delete` for an item a reconnecting client saw and that has gone since
    (`version` is its tombstone's, 0 if the store keeps none)."""
    event_id = sse_id(kind, version, shared)
    if kind is FeedKind.ITEM:
        return Frame.encode({"id": item_id}, event="delete", event_id=event_id,
                            version=version, kind="delete")
    body = {"stream": stream, "group": group_id, "id": item_id}
    return Frame.encode(body, event="item-delete", event_id=event_id, version=version,
                        kind="delete")


def sync_frame(kind: FeedKind, stream: str, group_id: str, group: GroupSnapshot,
               shared: bool = True) -> Frame:
    """A group's full state: replaces whatever the client had."""
    items = [_item(i.id, i.data) for i in group.items if i.data is not None]
    body: Any = {"stream": stream, "group": group_id, "items": items} if kind.multiplexed \
        else items
    return Frame.encode(body, event="sync", event_id=sse_id(kind, group.version, shared),
                        version=group.version)


def custom_frame(kind: FeedKind, stream: str, group_id: str, item_id: str | None,
                 event_type: str, data: Any) -> Frame:
    """An ephemeral event from `Stream.send`: `event: event`, never stored."""
    body: JsonObject = {"type": event_type, "data": data}
    if kind.multiplexed:
        body = {"stream": stream, "group": group_id, "id": item_id, **body}
    return Frame.encode(body, event="event")
