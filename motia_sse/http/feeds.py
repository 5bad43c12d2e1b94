"""The feed handlers: stream items and groups as Server-Sent Events.

`GET /streams/<name>/<group>/<id>`  one item
`GET /streams/<name>/<group>`       one group
`GET /streams?sub=<name>/<group>[/<id>]&sub=...`  many, on one connection
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from motia_sse.exceptions import Refused, UnknownStreamError, ValidationError
from motia_sse.http.access import StreamSubscription
from motia_sse.http.disconnect import unwatch, watch
from motia_sse.http.numbers import parse_count
from motia_sse.http.responses import error_response
from motia_sse.runtime import RUNTIME, Runtime
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Subscription
from motia_sse.streams.ids import check_id
from motia_sse.streams.stream import Stream
from motia_sse.streams.wire import FeedKind, gone_frame, item_frame, sync_frame

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
            subs = await _admit(runtime, request, client, parse)
        except Refused as exc:
            headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
            return error_response(exc.status, exc.error, exc.details, headers)
        if request.method != "GET":  # HEAD: a feed's bytes bypass aiohttp's writer
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        response, feed = await _open(request)
        # Subscribe before reading, hold until the initial state is out: nothing is missed.
        runtime.feeds.add(feed, client, subs)
        watcher = None
        try:
            watcher = watch(request, feed.close)
            feed.release(await _first_frames(runtime, request, subs, feed))
            await feed.pump()
        finally:
            unwatch(request, watcher)
            runtime.feeds.remove(feed, client, subs)
        return response

    feed_handler.__doc__ = doc
    return feed_handler


async def _admit(runtime: Runtime, request: web.Request, client: str,
                 parse: Parse) -> list[Subscription]:
    """What the feed watches, once the limits and the access rules let it open; or Refused."""
    runtime.feeds.admit(client)  # counts its own refusals
    try:
        subs = parse(runtime, request)
        await runtime.check_access(request, [StreamSubscription(s.stream, s.group, s.item)
                                             for s in subs])
    except Refused as exc:
        runtime.feeds.refused(exc.status)
        raise
    return subs


async def _open(request: web.Request) -> tuple[web.StreamResponse, Feed]:
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
    return response, Feed(request.protocol, writer, chunked)


async def _first_frames(runtime: Runtime, request: web.Request, subs: list[Subscription],
                        feed: Feed) -> list[tuple[Hashable, Frame]]:
    """The retry delay and the initial state; if the state cannot be read, the retry
    delay alone, and the feed closed."""
    retry: tuple[Hashable, Frame] = ("retry", runtime.retry_frame)
    try:
        return [retry, *await _initial_state(runtime, subs,
                                             request.headers.get("Last-Event-ID"))]
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


async def _initial_state(runtime: Runtime, subs: list[Subscription],
                         last_seen: str | None) -> list[tuple[Hashable, Frame]]:
    """What a feed sends on connect, for all its subscriptions."""
    in_history: dict[str, bool] = {}  # by stream: the store is asked once per feed
    initial: list[tuple[Hashable, Frame]] = []
    for sub in subs:
        frame = await _initial(runtime, sub, last_seen, in_history)
        if frame is not None:
            initial.append((tuple(sub), frame))
    return initial


async def _initial(runtime: Runtime, sub: Subscription, last_seen: str | None,
                   in_history: dict[str, bool]) -> Frame | None:
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
    return await _initial_item(stream, sub, last_seen, shared)


async def _initial_group(stream: Stream[Any], sub: Subscription, last_seen: str | None,
                         shared: bool) -> Frame | None:
    """`sync` with the whole group, unless the client has its current version."""
    group = await stream.stored_group(sub.group)
    if _is_current(sub.kind, group.version, last_seen, shared):
        return None
    return sync_frame(sub.kind, sub.stream, sub.group, group, shared)


async def _initial_item(stream: Stream[Any], sub: Subscription, last_seen: str | None,
                        shared: bool) -> Frame | None:
    """The item, or that it is not there, unless the client knows that already."""
    assert sub.item is not None
    item = await stream.stored(sub.group, sub.item)
    if item is not None and not item.deleted:
        if _is_current(sub.kind, item.version, last_seen, shared):
            return None
        return item_frame(sub.kind, sub.stream, item, shared)
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
