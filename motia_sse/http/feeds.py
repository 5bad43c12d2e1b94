"""The feed handlers: stream items and groups as Server-Sent Events.

`GET /streams/<name>/<group>/<id>`  one item
`GET /streams/<name>/<group>`       one group
`GET /streams?sub=<name>/<group>[/<id>]&sub=...`  many, on one connection
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from urllib.parse import unquote

from aiohttp import web

from motia_sse.exceptions import Refused, UnknownStreamError, ValidationError
from motia_sse.http.access import StreamSubscription
from motia_sse.http.disconnect import unwatch, watch
from motia_sse.http.feed_state import initial_state
from motia_sse.http.responses import error_response
from motia_sse.http.send_buffer import bound_send_buffer
from motia_sse.runtime import RUNTIME, Runtime
from motia_sse.streams.delta_feed import DeltaFeed
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Subscription
from motia_sse.streams.ids import check_id
from motia_sse.streams.wire import FeedKind

log = logging.getLogger(__name__)


FeedHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What a feed URL watches, or Refused.
Parse = Callable[[Runtime, web.Request], list[Subscription]]
# The headers of every feed; `X-Accel-Buffering: no` keeps nginx from holding events back.
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
               "Connection": "keep-alive", "X-Accel-Buffering": "no"}


def _feed_handler(parse: Parse, doc: str) -> FeedHandler:
    """The handler of one kind of feed URL.

    One coroutine serves the feed for its whole life, as the coroutine frames an idle
    feed holds are much of its memory: admission, access, the initial state, then
    `Feed.pump`. The helpers it awaits on the way have returned by then."""

    async def feed_handler(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        # Behind a trusted proxy, the address it forwards for (proxy.py).
        client = request.remote or "unknown"
        try:
            subs, deltas = await _admit(runtime, request, client, parse)
        except Refused as exc:
            headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
            return error_response(exc.status, exc.error, exc.details, headers)
        if request.method != "GET":  # HEAD: a feed's bytes bypass aiohttp's writer
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        response, feed = await _open(request, deltas)
        # Subscribe before reading, hold until the initial state is out: nothing is missed.
        runtime.feeds.add(feed, client, subs)
        watcher = None
        try:
            watcher = watch(request, feed.close)
            bound_send_buffer(request, runtime.settings.feed_send_buffer)
            feed.release(await _first_frames(runtime, request, subs, feed))
            await feed.pump()
        finally:
            unwatch(request, watcher)
            runtime.feeds.remove(feed, client, subs)
        return response

    feed_handler.__doc__ = doc
    return feed_handler


async def _admit(runtime: Runtime, request: web.Request, client: str,
                 parse: Parse) -> tuple[list[Subscription], bool]:
    """What the feed watches and whether it asked for deltas, once the limits and the
    access rules let it open; or Refused."""
    runtime.feeds.admit(client)  # counts its own refusals
    try:
        subs, deltas = parse(runtime, request), _wants_deltas(request)
        await runtime.check_access(request, [StreamSubscription(s.stream, s.group, s.item)
                                             for s in subs])
    except Refused as exc:
        runtime.feeds.refused(exc.status)
        raise
    return subs, deltas


def _wants_deltas(request: web.Request) -> bool:
    """`delta=1`: changes to items the client holds come as deltas (README, "Delta
    frames"); `delta=0`, or none, the whole item every time."""
    if not request.query_string:  # item and group feeds, mostly: no query to parse
        return False
    value = request.query.getall("delta", ["0"])
    if value in (["0"], ["1"]):
        return value == ["1"]
    raise Refused(400, "invalid delta", [
        f"delta = {', '.join(map(repr, value))}: expected 1 (deltas) or 0 (whole items), "
        "once"])


async def _open(request: web.Request, deltas: bool) -> tuple[web.StreamResponse, Feed]:
    """Send the headers; the feed that writes this connection's events from then on."""
    chunked = request.version >= (1, 1)
    response = web.StreamResponse(headers=SSE_HEADERS)
    if not chunked:  # only closing the connection can end the feed then
        response.headers["Connection"] = "close"
    try:
        writer = await response.prepare(request)
    except ConnectionResetError:
        # The client hung up before the headers went out: nothing to serve, nothing
        # to log. aiohttp treats a cancelled handler as a premature disconnection.
        raise asyncio.CancelledError from None
    assert writer is not None
    return response, (DeltaFeed if deltas else Feed)(request.protocol, writer, chunked)


async def _first_frames(runtime: Runtime, request: web.Request, subs: list[Subscription],
                        feed: Feed) -> list[tuple[Hashable, Frame]]:
    """The retry delay and the initial state; if the state cannot be read, the retry
    delay alone, and the feed closed."""
    retry: tuple[Hashable, Frame] = ("retry", runtime.retry_frame)
    try:
        return [retry, *await initial_state(runtime, subs, request.headers.get("Last-Event-ID"),
                                            feed.deltas)]
    except Exception as exc:  # the store is away (Redis restarting, say)
        log.warning("%s: cannot read the current state (%s: %s); ending the feed, "
                    "its client reconnects", request.path_qs, type(exc).__name__, exc)
        feed.close()
        return [retry]


def _item_subs(runtime: Runtime, request: web.Request) -> list[Subscription]:
    info = request.match_info
    return [_subscription(runtime, FeedKind.ITEM, info["stream"], info["group"], info["item"])]


def _group_subs(runtime: Runtime, request: web.Request) -> list[Subscription]:
    info = request.match_info
    return [_subscription(runtime, FeedKind.GROUP, info["stream"], info["group"], None)]


def _parse_subs(runtime: Runtime, request: web.Request) -> list[Subscription]:
    values = request.query.getall("sub", [])
    if not values:
        raise Refused(400, "no subscriptions", [
            "expected one or more sub=<stream>/<group> or sub=<stream>/<group>/<id>"])
    limit = runtime.settings.max_subscriptions
    if len(values) > limit:
        raise Refused(400, "too many subscriptions", [
            f"got {len(values)}, the limit is {limit} (max_subscriptions)"])
    subs: dict[Subscription, None] = {}
    for index, value in enumerate(values):
        parts = value.split("/")
        if len(parts) not in (2, 3):
            raise Refused(400, "invalid subscription", [
                f"sub[{index}] = {value!r}: expected <stream>/<group> or "
                "<stream>/<group>/<id>, each part URL-encoded"])
        stream, group, *item = (unquote(p) for p in parts)
        kind = FeedKind.MUX_ITEM if item else FeedKind.MUX_GROUP
        try:
            subs[_subscription(runtime, kind, stream, group, item[0] if item else None)] = None
        except Refused as exc:
            details = [f"sub[{index}] = {value!r}: {d}" for d in exc.details]
            raise Refused(exc.status, exc.error, details) from None
    return list(subs)


item_feed = _feed_handler(_item_subs, "One item: its snapshot, then every change.")
group_feed = _feed_handler(
    _group_subs, "One group: `sync` with every item, then `create` / `update` / `delete`.")
multiplexed_feed = _feed_handler(
    _parse_subs, "Many items and groups on one connection, each event naming what it is about.")


def _subscription(runtime: Runtime, kind: FeedKind, stream: str, group: str,
                  item: str | None) -> Subscription:
    try:
        runtime.streams[stream]
        limit = runtime.settings.max_id_length
        check_id("group id", group, limit)
        if item is not None:
            check_id("item id", item, limit)
    except UnknownStreamError as exc:
        raise Refused(404, exc.error, exc.details) from None
    except ValidationError as exc:
        raise Refused(400, exc.error, exc.details) from None
    return Subscription(kind, stream, group, item)
