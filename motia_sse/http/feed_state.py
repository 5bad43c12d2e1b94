"""What a feed sends when it opens, given the client's `Last-Event-ID`: converge, not replay.

An item feed sends nothing if the client has the current version, else the snapshot or
`delete`; a group feed nothing or one fresh `sync`; a multiplexed feed, for each of its
subscriptions, what changed after the newest version it delivered.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from motia_sse.http.numbers import parse_count
from motia_sse.runtime import Runtime
from motia_sse.streams.delta_wire import text_item_frame
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Subscription
from motia_sse.streams.stream import Stream
from motia_sse.streams.wire import FeedKind, gone_frame, item_frame, sync_frame


async def initial_state(runtime: Runtime, subs: list[Subscription], last_seen: str | None,
                        deltas: bool = False) -> list[tuple[Hashable, Frame]]:
    """What a feed sends on connect, for all its subscriptions (`deltas`: in the form a
    delta feed's client keeps an item's text)."""
    in_history: dict[str, bool] = {}  # by stream: the store is asked once per feed
    initial: list[tuple[Hashable, Frame]] = []
    for sub in subs:
        frame = await _initial(runtime, sub, last_seen, in_history, deltas)
        if frame is not None:
            initial.append((tuple(sub), frame))
    return initial


async def _initial(runtime: Runtime, sub: Subscription, last_seen: str | None,
                   in_history: dict[str, bool], deltas: bool) -> Frame | None:
    """What a subscription sends on connect, given the client's Last-Event-ID.

    Single feeds compare the exact version they sent. A multiplexed feed's id is the
    newest version it delivered; events go out in version order, so anything newer
    is what the client lacks."""
    stream = runtime.streams[sub.stream]
    shared = stream.shared_versions
    if last_seen is not None and sub.kind.multiplexed and not await _in_history(
            stream, last_seen, in_history):
        shared = False  # the client's mark predates what the store knows: resend all
    if sub.kind.watches_group:
        return await _initial_group(stream, sub, last_seen, shared)
    return await _initial_item(stream, sub, last_seen, shared, deltas)


async def _initial_group(stream: Stream[Any], sub: Subscription, last_seen: str | None,
                         shared: bool) -> Frame | None:
    """`sync` with the whole group, unless the client has its current version."""
    group = await stream.stored_group(sub.group)
    if _is_current(sub.kind, group.version, last_seen, shared):
        return None
    return sync_frame(sub.kind, sub.stream, sub.group, group, shared)


async def _initial_item(stream: Stream[Any], sub: Subscription, last_seen: str | None,
                        shared: bool, deltas: bool) -> Frame | None:
    """The item, or that it is not there, unless the client knows that already."""
    assert sub.item is not None
    item = await stream.stored(sub.group, sub.item)
    if item is not None and not item.deleted:
        if _is_current(sub.kind, item.version, last_seen, shared):
            return None
        return (text_item_frame if deltas else item_frame)(sub.kind, sub.stream, item, shared)
    # Absent: never existed (no tombstone), or deleted at the tombstone's version.
    version = 0 if item is None else item.version
    seen_delete = item is not None and _is_current(sub.kind, version, last_seen, shared)
    if sub.kind.multiplexed:
        # Our stores keep tombstones, so "no tombstone" means it never existed. A fresh
        # connection is told "not there" at once: the client may have reopened only to
        # change what it watches, and been showing the item until then.
        knows = last_seen is not None and shared and (item is None or seen_delete)
    else:
        knows = last_seen is None or seen_delete
    if knows:
        return None
    return gone_frame(sub.kind, sub.stream, sub.group, sub.item, version, shared)


def _mark(last_seen: str) -> int | None:
    """A multiplexed feed's Last-Event-ID as a version; None if it cannot be one."""
    return parse_count(last_seen, max_digits=20)


async def _in_history(stream: Stream[Any], last_seen: str, known: dict[str, bool]) -> bool:
    if stream.name not in known:
        mark = _mark(last_seen)
        known[stream.name] = mark is not None and mark >= await stream.history_start()
    return known[stream.name]


def _is_current(kind: FeedKind, version: int, last_seen: str | None, shared: bool) -> bool:
    if last_seen is None:
        return False
    if not kind.multiplexed:
        return last_seen == str(version)
    mark = _mark(last_seen)
    return shared and mark is not None and version <= mark
