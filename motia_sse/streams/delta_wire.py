"""What delta feeds (`delta=1`) send for a change: the item's text, or a delta to it.

Item and group feeds send the very bytes they send without deltas; a multiplexed feed
puts the item's text on a `data:` line of its own after the envelope, so that a client
keeps it verbatim (`event.data` is the envelope, a newline, the text). A delta is
`delta` on item feeds, `update-delta` for a group's rows, `item-delta` for a
multiplexed item subscription (README, "Delta frames").
"""

from __future__ import annotations

from typing import Any

import orjson

from motia_sse.streams.delta_texts import Revision
from motia_sse.streams.frames import Frame, TextFrame
from motia_sse.streams.store import Change, StoredItem
from motia_sse.streams.wire import FeedKind, change_frame, item_frame, sse_id

DELTA_EVENTS = {FeedKind.ITEM: "delta", FeedKind.GROUP: "update-delta",
                FeedKind.MUX_ITEM: "item-delta", FeedKind.MUX_GROUP: "update-delta"}


def text_change_frame(kind: FeedKind, change: Change, revision: Revision,
                      shared: bool = True) -> TextFrame:
    """The event a delta subscription of `kind` gets for a committed change: the
    snapshot, carrying the delta that replaces it for a client holding `revision.base`
    (if it is smaller, and the change is no group's `create`)."""
    key = (kind, change.stream, change.group_id, change.id)
    if revision.text is None:
        return TextFrame.of_frame(change_frame(kind, change, shared), key)
    event_id = sse_id(kind, change.version, shared)
    snapshot = _snapshot(kind, change.stream, change.group_id, change.id, revision.text,
                         event_id, change.version, change.kind)
    if revision.splice is None or change.kind != "update":
        return TextFrame.of_frame(snapshot, key)
    where: dict[str, Any] = {}
    if kind.multiplexed:
        where = {"stream": change.stream, "group": change.group_id}
    if kind is not FeedKind.ITEM:
        where["id"] = change.id
    splice = revision.splice
    delta = Frame.encode({**where, "base": revision.base, "prefix": splice.prefix,
                          "suffix": splice.suffix, "insert": splice.insert},
                         event=DELTA_EVENTS[kind], event_id=event_id,
                         version=change.version, kind=snapshot.kind)
    if len(delta.raw) >= len(snapshot.raw):
        return TextFrame.of_frame(snapshot, key)
    return TextFrame.of_frame(snapshot, key, revision.base, delta)


def text_item_frame(kind: FeedKind, stream: str, item: StoredItem,
                    shared: bool = True) -> Frame:
    """An item's current snapshot as a delta feed gets it when it opens."""
    if not kind.multiplexed:
        return item_frame(kind, stream, item, shared)
    assert item.data is not None, "a tombstone has no snapshot"
    text = orjson.dumps({**item.data, "id": item.id})
    return _snapshot(kind, stream, item.group_id, item.id, text,
                     sse_id(kind, item.version, shared), item.version, "")


def _snapshot(kind: FeedKind, stream: str, group: str, item_id: str, text: bytes,
              event_id: str | None, version: int, change_kind: str) -> Frame:
    """The item's text as its own `data:` line, after the envelope on multiplexed feeds;
    the same events as without deltas (`message`, `item`, `create`, `update`)."""
    lines = [text]
    if kind.multiplexed:
        lines.insert(0, orjson.dumps({"stream": stream, "group": group, "id": item_id}))
    if not kind.watches_group:
        return Frame.lines(lines, event=None if kind is FeedKind.ITEM else "item",
                           event_id=event_id, version=version)
    return Frame.lines(lines, event=change_kind, event_id=event_id, version=version,
                       kind=change_kind)
