"""Fan-out: each committed change is encoded once per kind of feed and offered to all."""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs

from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.store import Change
from motia_sse.streams.wire import FeedKind, change_frame, custom_frame


class Subscription(NamedTuple):
    """One thing a feed watches: an item (`item` set) or a whole group (`item` None)."""

    kind: FeedKind
    stream: str
    group: str
    item: str | None


GroupKey = tuple[str, str]
# Within a group: (kind, item id) for item subscriptions, (kind, None) for the group.
Target = tuple[FeedKind, str | None]


@attrs.define
class Hub:
    """Who listens to what in this process, indexed by stream and group."""

    _groups: dict[GroupKey, dict[Target, set[Feed]]] = attrs.field(factory=dict)
    # Frames, and their SSE bytes, offered to feeds since start: counted once per change
    # for all its feeds, not per feed (each feed counts what it did not write; feed.py).
    frames_offered: int = 0
    bytes_offered: int = 0

    def subscribe(self, sub: Subscription, feed: Feed) -> None:
        """Offer `feed` every change that `sub` covers, from now on."""
        targets = self._groups.setdefault((sub.stream, sub.group), {})
        targets.setdefault((sub.kind, sub.item), set()).add(feed)

    def unsubscribe(self, sub: Subscription, feed: Feed) -> None:
        """Stop offering; forgets keys that no feed listens to any more."""
        targets = self._groups.get((sub.stream, sub.group))
        feeds = targets.get((sub.kind, sub.item)) if targets is not None else None
        if targets is None or feeds is None:
            return
        feeds.discard(feed)
        if not feeds:
            del targets[(sub.kind, sub.item)]
            if not targets:
                del self._groups[(sub.stream, sub.group)]

    def publish(self, change: Change, shared: bool = True) -> None:
        """Offer a committed change to its subscribers, encoding once per kind of feed.

        `shared` is False for changes from a custom store (see `wire`)."""
        targets = self._groups.get((change.stream, change.group_id))
        if not targets:
            return
        for kind in FeedKind:
            feeds = targets.get((kind, None if kind.watches_group else change.id))
            if feeds:
                frame = change_frame(kind, change, shared)
                key = (kind, change.stream, change.group_id, change.id)
                for feed in feeds:
                    feed.offer(key, frame)
                self.frames_offered += len(feeds)
                self.bytes_offered += len(feeds) * len(frame.raw)

    def send(self, stream: str, group_id: str, item_id: str | None, event_type: str,
             data: Any) -> None:
        """Offer a custom event to the feeds watching its group and (if it names one) its
        item, as Motia's `send` does; a feed watching both gets it once.

        An event for the whole group skips subscriptions to single items of it: a page
        following fifty items of a group would otherwise hand it to fifty listeners."""
        targets = self._groups.get((stream, group_id))
        if not targets:
            return
        reached: set[Feed] = set()
        frames: dict[FeedKind, Frame] = {}
        for (kind, target), feeds in targets.items():
            if target is not None and target != item_id:
                continue
            fresh = feeds - reached
            if not fresh:
                continue
            if kind not in frames:
                frames[kind] = custom_frame(kind, stream, group_id, item_id, event_type, data)
            for feed in fresh:
                feed.offer_custom(frames[kind])
            self.frames_offered += len(fresh)
            self.bytes_offered += len(fresh) * len(frames[kind].raw)
            reached |= fresh

    def feeds_on(self, streams: set[str]) -> set[Feed]:
        """The feeds watching anything in `streams`."""
        return {feed for (stream, _), targets in self._groups.items() if stream in streams
                for feeds in targets.values() for feed in feeds}

    @property
    def subscriber_count(self) -> int:
        """Subscriptions held in this process."""
        return sum(len(feeds) for targets in self._groups.values() for feeds in targets.values())
