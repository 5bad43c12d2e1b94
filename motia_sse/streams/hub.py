"""Fan-out: each committed change is encoded once and offered to every subscribed feed."""

from __future__ import annotations

from typing import Any

import attrs

from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.store import Change, JsonObject

ItemKey = tuple[str, str, str]


def snapshot_frame(item_id: str, data: JsonObject, version: int) -> Frame:
    """An item feed's snapshot: the data plus its id, the version in `id:`."""
    return Frame.encode({**data, "id": item_id}, event_id=str(version), version=version)


def delete_frame(item_id: str, version: int | None) -> Frame:
    """An item feed's `event: delete`; without a version when only the absence is known."""
    event_id = None if version is None else str(version)
    return Frame.encode({"id": item_id}, event="delete", event_id=event_id, version=version or 0)


def change_frame(change: Change) -> Frame:
    """The item feed's event for a committed change."""
    if change.data is None:
        return delete_frame(change.id, change.version)
    return snapshot_frame(change.id, change.data, change.version)


def custom_frame(event_type: str, data: Any) -> Frame:
    """An ephemeral event from `Stream.send`: `event: event`, never stored."""
    return Frame.encode({"type": event_type, "data": data}, event="event")


GroupKey = tuple[str, str]


@attrs.define
class Hub:
    """Who listens to what, in this process: item feeds indexed by group, then item."""

    _items: dict[GroupKey, dict[str, set[Feed]]] = attrs.field(factory=dict)

    def subscribe_item(self, key: ItemKey, feed: Feed) -> None:
        """Offer `feed` every change of one item from now on."""
        stream, group_id, item_id = key
        self._items.setdefault((stream, group_id), {}).setdefault(item_id, set()).add(feed)

    def unsubscribe_item(self, key: ItemKey, feed: Feed) -> None:
        """Stop offering; forgets keys that no feed listens to any more."""
        stream, group_id, item_id = key
        group = self._items.get((stream, group_id))
        feeds = group.get(item_id) if group is not None else None
        if group is None or feeds is None:
            return
        feeds.discard(feed)
        if not feeds:
            del group[item_id]
            if not group:
                del self._items[(stream, group_id)]

    def publish(self, change: Change) -> None:
        """Offer a committed change to its subscribers, encoding it at most once."""
        group = self._items.get((change.stream, change.group_id))
        feeds = group.get(change.id) if group is not None else None
        if feeds:
            key = (change.stream, change.group_id, change.id)
            frame = change_frame(change)
            for feed in feeds:
                feed.offer(key, frame)

    def send(self, stream: str, group_id: str, item_id: str | None, frame: Frame) -> None:
        """Offer a custom event to the item's feeds, or to every item feed of the group."""
        group = self._items.get((stream, group_id), {})
        targets = group.get(item_id, set()) if item_id is not None else set().union(*group.values())
        for feed in targets:
            feed.offer_custom(frame)

    @property
    def subscriber_count(self) -> int:
        """Item subscriptions held in this process."""
        return sum(len(feeds) for group in self._items.values() for feeds in group.values())
