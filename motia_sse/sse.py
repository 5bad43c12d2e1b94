"""The feed handlers: stream items as Server-Sent Events."""

from __future__ import annotations

from collections.abc import Hashable

from aiohttp import web
from aiohttp.web_request import Request
from aiohttp_sse import EventSourceResponse

from motia_sse.api import error_response
from motia_sse.exceptions import ValidationError
from motia_sse.ids import check_id
from motia_sse.runtime import RUNTIME
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import delete_frame, snapshot_frame


async def item_feed(request: Request) -> web.StreamResponse:
    """`GET /streams/<name>/<group>/<id>`: the item's snapshot, then every change."""
    runtime = request.app[RUNTIME]
    name = request.match_info["stream"]
    if name not in runtime.streams:
        return error_response(404, f"no stream named {name!r}",
                              [f"defined streams: {', '.join(runtime.streams.names()) or 'none'}"])
    try:
        group_id = check_id("group id", request.match_info["group"])
        item_id = check_id("item id", request.match_info["item"])
    except ValidationError as exc:
        return error_response(400, exc.error, exc.details)
    stream = runtime.streams[name]
    key = (name, group_id, item_id)

    response = EventSourceResponse(ping_interval=runtime.settings.heartbeat_interval)
    writer = await response.prepare(request)
    assert writer is not None
    feed = Feed(request.protocol, writer, request.version >= (1, 1))
    runtime.hub.subscribe_item(key, feed)
    runtime.feeds.add(feed)
    try:
        async with response:
            initial: list[tuple[Hashable, Frame]] = [("retry", runtime.retry_frame)]
            stored = await stream.stored(group_id, item_id)
            last_seen = response.last_event_id
            if stored is not None and last_seen != str(stored.version):
                initial.append((key, snapshot_frame(item_id, stored.data, stored.version)))
            elif stored is None and last_seen is not None:
                # The client saw the item; it has gone since. Converge: say so.
                initial.append((key, delete_frame(item_id, None)))
            feed.release(initial)
            await feed.pump()
    finally:
        runtime.hub.unsubscribe_item(key, feed)
        runtime.feeds.discard(feed)
    return response
