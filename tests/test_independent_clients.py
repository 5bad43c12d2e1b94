"""An independent client agrees: every feed read with a bare-socket parser of our own
(`tests.raw_sse`, no aiohttp client) and with the third-party `aiohttp-sse-client`, its
own reconnect logic and Last-Event-ID included, checked against the store's state."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient
from aiohttp_sse_client.client import EventSource

from motia_sse import Settings
from motia_sse.runtime import RUNTIME, Runtime
from motia_sse.streams.stream import Stream, StreamChannel, StreamEvent
from tests.conftest import ClientFactory
from tests.polling import eventually
from tests.raw_sse import RawEvent, RawResponse, SseParser, open_raw
from tests.sse_parse import silent

# What a client saw of one event: its name, the source's last event ID, the JSON data.
Seen = tuple[str, str, Any]
RETRY_MS = 100
MUX_PATH = "/streams?sub=progress/g1/a&sub=progress/g2"


@pytest.fixture(name="settings", params=["memory", "sqlite"])
def _settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Both stores; a short retry so that the library reconnects quickly."""
    return attrs.evolve(settings, store=request.param, retry_ms=RETRY_MS)


def job(done: int, status: str = "running", total: int = 9) -> dict[str, Any]:
    """Data for the example `progress` stream."""
    return {"status": status, "done": done, "total": total}


def progress(client: TestClient[Any, Any]) -> Stream[Any]:
    """The example `progress` stream of the app under test."""
    runtime: Runtime = client.app[RUNTIME]
    return runtime.streams.progress


def seen_raw(event: RawEvent) -> Seen:
    """A raw-parser event as (name, last event id, data)."""
    return (event.event, event.last_event_id, event.json())


def seen_lib(event: Any) -> Seen:
    """An aiohttp-sse-client MessageEvent as (name, last event id, data)."""
    return (event.type or "message", event.last_event_id, json_loads(event.data))


def json_loads(text: str) -> Any:
    """JSON, or the text itself if it is not JSON (so a mismatch shows in the assert)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# What the store says each feed must carry.

def row(item_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """An item as feeds send it: its data plus its id."""
    return {**data, "id": item_id}


async def item_now(client: TestClient[Any, Any], group: str, item: str) -> Seen:
    """What the item feed sends a client that lacks the current state."""
    stored = await progress(client).stored(group, item)
    assert stored is not None
    if stored.data is None:
        return ("delete", str(stored.version), {"id": item})
    return ("message", str(stored.version), row(item, stored.data))


async def sync_now(client: TestClient[Any, Any], group: str, mux: bool = False) -> Seen:
    """The `sync` the group feed (or multiplexed feed) sends for the group now."""
    snapshot = await progress(client).stored_group(group)
    items = [row(i.id, i.data) for i in snapshot.items if i.data is not None]
    body: Any = {"stream": "progress", "group": group, "items": items} if mux else items
    return ("sync", str(snapshot.version), body)


async def mux_item_now(client: TestClient[Any, Any], group: str, item: str) -> Seen:
    """What the multiplexed feed sends for an item subscription now."""
    name, version, body = await item_now(client, group, item)
    where = {"stream": "progress", "group": group, "id": item}
    if name == "delete":
        return ("item-delete", version, where)
    return ("item", version, {**where, "data": body})


# The two clients.

RawOpener = Callable[..., Awaitable[RawResponse]]


@pytest.fixture(name="raw")
async def _raw(client: TestClient[Any, Any]) -> AsyncIterator[RawOpener]:
    """Open feeds on a bare socket with `tests.raw_sse`; hang up at the end."""
    opened: list[RawResponse] = []
    port = client.port
    assert port is not None

    async def open_feed(path: str, last_event_id: str | None = None,
                        http_version: str = "1.1") -> RawResponse:
        response = await open_raw(port, path, last_event_id=last_event_id,
                                  http_version=http_version)
        opened.append(response)
        assert response.status == 200, response
        assert response.header("Content-Type") == "text/event-stream"
        return response

    yield open_feed
    for response in opened:
        await response.close()


@attrs.define
class LibraryFeed:
    """aiohttp-sse-client's EventSource, iterated in a background task as an app would;
    it reconnects by itself, sending the Last-Event-ID it saw."""

    source: Any = None
    opens: int = 0
    events: asyncio.Queue[Seen] = attrs.Factory(asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def on_open(self) -> None:
        """Count connections: the first and every reconnect."""
        self.opens += 1

    async def read(self) -> None:
        """Queue every event the library dispatches."""
        async for event in self.source:
            await self.events.put(seen_lib(event))

    async def next(self, within: float = 5.0) -> Seen:
        """The next event; TimeoutError if none comes, the reader's error if it died."""
        assert self.task is not None
        get = asyncio.ensure_future(self.events.get())
        done, _ = await asyncio.wait({get, self.task}, timeout=within,
                                     return_when=asyncio.FIRST_COMPLETED)
        if get in done:
            return get.result()
        get.cancel()
        if self.task in done:
            self.task.result()
            raise EOFError("the library stopped iterating")
        raise TimeoutError(f"no event in {within}s")

    async def silent_for(self, seconds: float) -> bool:
        """True if no event arrives within `seconds`."""
        return await silent(self.next, seconds)

    async def wait_opens(self, count: int, within: float = 5.0) -> None:
        """Wait until the library has connected `count` times in all."""
        await eventually(lambda: self.opens >= count, within=within, every=0.01,
                         what=f"{count} connections from the library")


LibraryOpener = Callable[[str], Awaitable[LibraryFeed]]


@pytest.fixture(name="library")
async def _library(client: TestClient[Any, Any]) -> AsyncIterator[LibraryOpener]:
    """Open feeds with aiohttp-sse-client; stop and close them at the end."""
    session = aiohttp.ClientSession()
    feeds: list[LibraryFeed] = []
    async with contextlib.AsyncExitStack() as stack:

        async def open_feed(path: str) -> LibraryFeed:
            feed = LibraryFeed()
            feed.source = EventSource(
                str(client.make_url(path)), session=session, on_open=feed.on_open,
                reconnection_time=timedelta(milliseconds=RETRY_MS), max_connect_retry=0)
            await stack.enter_async_context(feed.source)
            feed.task = asyncio.create_task(feed.read())
            feeds.append(feed)
            return feed

        yield open_feed
        for feed in feeds:
            assert feed.task is not None
            feed.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed.task
    await session.close()


async def read_both(raw: RawResponse, lib: LibraryFeed, count: int) -> list[Seen]:
    """`count` events from each client; they must be the same; returns them."""
    from_raw = [seen_raw(await raw.next()) for _ in range(count)]
    from_lib = [await lib.next() for _ in range(count)]
    assert from_raw == from_lib
    return from_raw


async def quiet_both(raw: RawResponse, lib: LibraryFeed, seconds: float = 0.3) -> None:
    """Neither client gets anything more."""
    assert await raw.silent_for(seconds)
    assert await lib.silent_for(0.05)


async def wait_feeds(client: TestClient[Any, Any], count: int) -> None:
    """Wait until the server holds `count` open feeds."""
    feeds = client.app[RUNTIME].feeds
    await eventually(lambda: len(feeds) == count, every=0.01, what=f"{count} open feeds")


# The raw client itself: a parser that follows the spec.

SPEC_STREAM = (
    b"\xef\xbb\xbf: a comment first\r\n"
    b"retry: 1500\r\n\r\n"
    b"data: first\ndata:  second line keeps one space\rid: 7\r\n\r\n"
    b"event: no data, not dispatched\nid: 8\n\n"
    b"data\nevent: named\n\n"
    b"id: 9\x00ignored\nretry: 2s\nfoo: unknown field\ndata:x\n\r"
    b"id\ndata: \xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x89\n\n"
    b"data: no blank line at the end is never dispatched\n"
)
SPEC_EVENTS = [
    RawEvent("message", "first\n second line keeps one space", "7", "7"),
    RawEvent("named", "", "8", None),
    RawEvent("message", "x", "8", None),
    RawEvent("message", "\u00e9t\u00e9 \U0001f389", "", ""),
]


@pytest.mark.parametrize("piece", [1, 2, 3, 7, len(SPEC_STREAM)])
def test_raw_parser_follows_the_whatwg_rules(piece: int) -> None:
    """The raw parser dispatches per the spec however the bytes are split."""
    parser = SseParser()
    events: list[RawEvent] = []
    for start in range(0, len(SPEC_STREAM), piece):
        events += parser.feed(SPEC_STREAM[start:start + piece])
    assert events == SPEC_EVENTS
    assert parser.retry == 1500
    assert parser.comments == ["a comment first"]
    assert parser.last_event_id == ""


# The wire itself.

def blocks_of(text: str) -> list[str]:
    """The body split at blank lines; each block must be a complete event or comment."""
    text = text.replace("\r\n", "\n")
    assert text.endswith("\n\n"), f"the body does not end with a blank line: {text!r}"
    return text[:-2].split("\n\n")


async def test_http11_feed_is_well_formed_chunked_sse(
    client: TestClient[Any, Any], raw: RawOpener
) -> None:
    """HTTP/1.1: chunked, one event per chunk ending in a blank line, ended by the last chunk."""
    stream = progress(client)
    first = await stream.set("w", "job", job(1))
    feed = await raw("/streams/progress/w/job")
    assert (feed.version, feed.status) == ("HTTP/1.1", 200)
    assert feed.chunked
    assert feed.header("Content-Length") is None
    assert feed.header("Content-Encoding") is None
    assert feed.header("Cache-Control") == "no-cache"
    assert seen_raw(await feed.next()) == await item_now(client, "w", "job")
    second = await stream.set("w", "job", job(2))
    assert seen_raw(await feed.next()) == ("message", str(second.version), row("job", job(2)))
    await asyncio.sleep(0.3)  # a heartbeat or two
    client.app[RUNTIME].close_feeds()
    assert await feed.read_to_end() == []
    assert feed.ended, "the server ends the body with the last chunk"

    assert feed.chunks, "the body came in chunks"
    for chunk in feed.chunks:
        text = chunk.decode()
        assert len(blocks_of(text)) == 1, f"a chunk holds exactly one block: {text!r}"
    blocks = blocks_of(bytes(feed.body).decode())
    pings = [b for b in blocks if b == ": ping"]
    assert pings, "heartbeats are comments"
    assert feed.parser.comments == ["ping"] * len(pings)
    assert [b for b in blocks if b != ": ping"] == [
        f"retry: {RETRY_MS}",
        f'id: {first.version}\ndata: {{"status":"running","done":1,"total":9,"id":"job"}}',
        f'id: {second.version}\ndata: {{"status":"running","done":2,"total":9,"id":"job"}}']


async def test_http10_feed_is_plain_and_closed_by_the_server(
    client: TestClient[Any, Any], raw: RawOpener
) -> None:
    """HTTP/1.0: no chunked coding, no length; the body is bare SSE ended by the close."""
    await progress(client).set("w10", "job", job(1))
    feed = await raw("/streams/progress/w10/job", http_version="1.0")
    assert feed.status == 200
    assert not feed.header_all("Transfer-Encoding")
    assert feed.header("Content-Length") is None
    assert seen_raw(await feed.next()) == await item_now(client, "w10", "job")
    client.app[RUNTIME].close_feeds()
    assert await feed.read_to_end() == []
    assert feed.eof, "the server closes the connection to end the body"
    assert feed.chunks == []
    blocks = blocks_of(bytes(feed.body).decode())
    assert blocks[0] == f"retry: {RETRY_MS}"
    assert blocks[1].startswith("id: ")


async def test_http10_feed_does_not_promise_keep_alive(
    client: TestClient[Any, Any], raw: RawOpener
) -> None:
    """An HTTP/1.0 response whose end is the close does not say `Connection: keep-alive`."""
    feed = await raw("/streams/progress/w10b/job", http_version="1.0")
    assert "keep-alive" not in (feed.header("Connection") or "").lower()


# The item feed.

async def test_item_feed_both_clients_agree_with_the_store(
    client: TestClient[Any, Any], raw: RawOpener, library: LibraryOpener
) -> None:
    """Snapshot, changes, custom event, delete: both clients see what the store committed."""
    stream = progress(client)
    await stream.set("g", "job", job(0, "queued"))
    path = "/streams/progress/g/job"
    feed, lib = await raw(path), await library(path)
    assert await read_both(feed, lib, 1) == [await item_now(client, "g", "job")]
    assert feed.parser.retry == RETRY_MS

    one = await stream.set("g", "job", job(1))
    two = await stream.set("g", "job", job(2))
    await stream.send(StreamChannel("g", "job"), StreamEvent("typing", {"who": "ann"}))
    await stream.delete("g", "job")
    tombstone = await item_now(client, "g", "job")
    assert await read_both(feed, lib, 4) == [
        ("message", str(one.version), row("job", job(1))),
        ("message", str(two.version), row("job", job(2))),
        ("event", str(two.version), {"type": "typing", "data": {"who": "ann"}}),
        tombstone,
    ]
    assert tombstone[0] == "delete"
    assert int(tombstone[1]) > two.version
    await quiet_both(feed, lib)


@pytest.mark.parametrize("change", ["unchanged", "changed", "deleted"])
async def test_item_feed_raw_resume(
    client: TestClient[Any, Any], raw: RawOpener, change: str
) -> None:
    """Raw resume with Last-Event-ID: nothing, the newest snapshot only, or `delete`."""
    stream = progress(client)
    await stream.set("r", "job", job(1))
    path = "/streams/progress/r/job"
    first = await raw(path)
    await first.next()
    seen = first.parser.last_event_id
    await first.close()
    if change == "changed":
        await stream.set("r", "job", job(2))
        await stream.set("r", "job", job(3))
    elif change == "deleted":
        await stream.delete("r", "job")

    again = await raw(path, last_event_id=seen)
    expected = [] if change == "unchanged" else [await item_now(client, "r", "job")]
    assert [seen_raw(await again.next()) for _ in expected] == expected
    assert await again.silent_for(0.3)
    if change != "unchanged":
        assert expected[0][0] == ("message" if change == "changed" else "delete")
    # Live again: the next change arrives.
    latest = await stream.set("r", "job", job(4))
    assert seen_raw(await again.next()) == ("message", str(latest.version), row("job", job(4)))


@pytest.mark.parametrize("change", ["unchanged", "changed", "deleted"])
async def test_item_feed_library_reconnects_with_last_event_id(
    client: TestClient[Any, Any], library: LibraryOpener, change: str
) -> None:
    """The library's own reconnect gets nothing, the newest snapshot, or `delete`."""
    stream = progress(client)
    await stream.set("l", "job", job(1))
    lib = await library("/streams/progress/l/job")
    assert await lib.next() == await item_now(client, "l", "job")
    client.app[RUNTIME].close_feeds()
    if change == "changed":
        await stream.set("l", "job", job(2))
        await stream.set("l", "job", job(3))
    elif change == "deleted":
        await stream.delete("l", "job")

    await lib.wait_opens(2)
    await wait_feeds(client, 1)
    if change != "unchanged":
        assert await lib.next() == await item_now(client, "l", "job")
    assert await lib.silent_for(0.3)
    latest = await stream.set("l", "job", job(4))
    assert await lib.next() == ("message", str(latest.version), row("job", job(4)))
    assert lib.opens == 2


# The group feed.

async def test_group_feed_both_clients_agree_with_the_store(
    client: TestClient[Any, Any], raw: RawOpener, library: LibraryOpener
) -> None:
    """`sync`, create, update, delete: both clients agree and replay to the store's group."""
    stream = progress(client)
    await stream.set("team", "b", job(1))
    await stream.set("team", "a", job(2))
    path = "/streams/progress/team"
    feed, lib = await raw(path), await library(path)
    [sync] = await read_both(feed, lib, 1)
    assert sync == await sync_now(client, "team")

    c = await stream.set("team", "c", job(3))
    b = await stream.set("team", "b", job(4))
    await stream.set("elsewhere", "x", job(5))
    await stream.delete("team", "a")
    deleted = await stream.stored("team", "a")
    assert deleted is not None
    assert await read_both(feed, lib, 3) == [
        ("create", str(c.version), row("c", job(3))),
        ("update", str(b.version), row("b", job(4))),
        ("delete", str(deleted.version), {"id": "a"}),
    ]
    await quiet_both(feed, lib)

    # Replaying the events on the sync gives the store's group, version included.
    view = {r["id"]: r for r in sync[2]}
    view.update(c=row("c", job(3)), b=row("b", job(4)))
    del view["a"]
    assert ("sync", str(deleted.version), [view[k] for k in sorted(view)]) \
        == await sync_now(client, "team")


GROUP_CHANGES = ["unchanged", "created", "updated", "deleted"]


async def change_group(stream: Stream[Any], group: str, change: str) -> None:
    """Apply one kind of change to a group holding items `a` and `b`."""
    if change == "created":
        await stream.set(group, "c", job(3))
    elif change == "updated":
        await stream.set(group, "a", job(4))
        await stream.set(group, "b", job(5))
    elif change == "deleted":
        await stream.delete(group, "b")


@pytest.mark.parametrize("change", GROUP_CHANGES)
async def test_group_feed_raw_resume(
    client: TestClient[Any, Any], raw: RawOpener, change: str
) -> None:
    """Raw resume of a group with Last-Event-ID: nothing, or exactly one fresh `sync`."""
    stream = progress(client)
    await stream.set("rg", "a", job(1))
    await stream.set("rg", "b", job(2))
    first = await raw("/streams/progress/rg")
    await first.next()
    seen = first.parser.last_event_id
    await first.close()
    await change_group(stream, "rg", change)
    await stream.set("other", "a", job(9))  # another group: no business of this feed

    again = await raw("/streams/progress/rg", last_event_id=seen)
    if change != "unchanged":
        assert seen_raw(await again.next()) == await sync_now(client, "rg")
    assert await again.silent_for(0.3)


@pytest.mark.parametrize("change", GROUP_CHANGES)
async def test_group_feed_library_reconnects_with_last_event_id(
    client: TestClient[Any, Any], library: LibraryOpener, change: str
) -> None:
    """The library's own reconnect to a group gets nothing, or one fresh `sync`."""
    stream = progress(client)
    await stream.set("lg", "a", job(1))
    await stream.set("lg", "b", job(2))
    lib = await library("/streams/progress/lg")
    assert await lib.next() == await sync_now(client, "lg")
    client.app[RUNTIME].close_feeds()
    await change_group(stream, "lg", change)

    await lib.wait_opens(2)
    await wait_feeds(client, 1)
    if change != "unchanged":
        assert await lib.next() == await sync_now(client, "lg")
    assert await lib.silent_for(0.3)
    d = await stream.set("lg", "d", job(6))
    assert await lib.next() == ("create", str(d.version), row("d", job(6)))


# The multiplexed feed: item g1/a and group g2 on one connection.

async def mux_initial(client: TestClient[Any, Any]) -> list[Seen]:
    """What the multiplexed feed sends on a fresh connect, in version order."""
    initial = [await mux_item_now(client, "g1", "a"), await sync_now(client, "g2", mux=True)]
    return sorted(initial, key=lambda seen: int(seen[1]))


async def test_mux_feed_both_clients_agree_with_the_store(
    client: TestClient[Any, Any], raw: RawOpener, library: LibraryOpener
) -> None:
    """Multiplexed: both clients see the same named events, as the store committed them."""
    stream = progress(client)
    await stream.set("g2", "x", job(1))
    await stream.set("g1", "a", job(2))
    feed, lib = await raw(MUX_PATH), await library(MUX_PATH)
    assert await read_both(feed, lib, 2) == await mux_initial(client)

    a = await stream.set("g1", "a", job(3))
    await stream.set("g1", "not-subscribed", job(0))
    y = await stream.set("g2", "y", job(4))
    x = await stream.set("g2", "x", job(5))
    await stream.delete("g2", "x")
    x_gone = await stream.stored("g2", "x")
    await stream.delete("g1", "a")
    a_gone = await stream.stored("g1", "a")
    assert x_gone is not None
    assert a_gone is not None

    def where(group: str, item: str) -> dict[str, str]:
        return {"stream": "progress", "group": group, "id": item}

    assert await read_both(feed, lib, 5) == [
        ("item", str(a.version), {**where("g1", "a"), "data": row("a", job(3))}),
        ("create", str(y.version), {**where("g2", "y"), "data": row("y", job(4))}),
        ("update", str(x.version), {**where("g2", "x"), "data": row("x", job(5))}),
        ("delete", str(x_gone.version), where("g2", "x")),
        ("item-delete", str(a_gone.version), where("g1", "a")),
    ]
    await quiet_both(feed, lib)
    assert (await sync_now(client, "g2", mux=True))[2]["items"] == [row("y", job(4))]


MUX_CHANGES = ["none", "elsewhere", "item", "group", "both", "item-deleted"]


async def change_mux(stream: Stream[Any], change: str) -> list[tuple[str, str | None]]:
    """Apply one kind of change; return the subscriptions it touches, in change order."""
    if change == "elsewhere":  # neither the subscribed item nor the subscribed group
        await stream.set("g1", "b", job(7))
        await stream.set("g3", "z", job(7))
        return []
    if change == "item":
        await stream.set("g1", "a", job(8))
        await stream.set("g1", "a", job(9))
        return [("g1", "a")]
    if change == "group":
        await stream.set("g2", "y", job(8))
        return [("g2", None)]
    if change == "both":
        await stream.set("g2", "x", job(8))
        await stream.set("g1", "a", job(8))
        return [("g2", None), ("g1", "a")]
    if change == "item-deleted":
        await stream.delete("g1", "a")
        return [("g1", "a")]
    return []


async def mux_expected(client: TestClient[Any, Any],
                       touched: list[tuple[str, str | None]]) -> list[Seen]:
    """What a resuming multiplexed feed owes for the touched subscriptions."""
    return [await mux_item_now(client, group, item) if item is not None
            else await sync_now(client, group, mux=True) for group, item in touched]


@pytest.mark.parametrize("change", MUX_CHANGES)
async def test_mux_feed_raw_resume(
    client: TestClient[Any, Any], raw: RawOpener, change: str
) -> None:
    """Raw multiplexed resume: only the changed subscriptions, once each, in version order."""
    stream = progress(client)
    await stream.set("g1", "a", job(1))
    await stream.set("g2", "x", job(2))
    first = await raw(MUX_PATH)
    await first.next()
    await first.next()
    seen = first.parser.last_event_id
    assert seen == str(max(int(e[1]) for e in await mux_initial(client)))
    await first.close()
    touched = await change_mux(stream, change)

    again = await raw(MUX_PATH, last_event_id=seen)
    expected = await mux_expected(client, touched)
    assert [seen_raw(await again.next()) for _ in expected] == expected
    assert await again.silent_for(0.3)


@pytest.mark.parametrize("change", MUX_CHANGES)
async def test_mux_feed_library_reconnects_with_last_event_id(
    client: TestClient[Any, Any], library: LibraryOpener, change: str
) -> None:
    """The library's own multiplexed reconnect gets only the changed subscriptions."""
    stream = progress(client)
    await stream.set("g1", "a", job(1))
    await stream.set("g2", "x", job(2))
    lib = await library(MUX_PATH)
    assert [await lib.next(), await lib.next()] == await mux_initial(client)
    client.app[RUNTIME].close_feeds()
    touched = await change_mux(stream, change)

    await lib.wait_opens(2)
    await wait_feeds(client, 1)
    expected = await mux_expected(client, touched)
    assert [await lib.next() for _ in expected] == expected
    assert await lib.silent_for(0.3)
    w = await stream.set("g2", "w", job(3))
    assert await lib.next() == (
        "create", str(w.version),
        {"stream": "progress", "group": "g2", "id": "w", "data": row("w", job(3))})


# Under load: connect while changes stream in, end up where the store is.

def apply_mux(state: dict[str, Any], seen: Seen) -> None:
    """Apply one multiplexed-feed event to a client-side model of g1/a and group g2."""
    name, _, body = seen
    if name == "item":
        state["a"] = body["data"]
    elif name == "item-delete":
        state["a"] = None
    elif name == "sync":
        state["g2"] = {r["id"]: r for r in body["items"]}
    elif name in ("create", "update"):
        state["g2"][body["id"]] = body["data"]
    elif name == "delete":
        state["g2"].pop(body["id"], None)


async def test_mux_feed_clients_converge_under_concurrent_changes(
    client: TestClient[Any, Any], raw: RawOpener, library: LibraryOpener
) -> None:
    """Clients joining mid-burst end at the store's state, ids only growing, on both clients."""
    stream = progress(client)
    await stream.set("g1", "a", job(0))

    async def write() -> None:
        for n in range(1, 121):
            if n % 17 == 0:
                await stream.delete("g1", "a")
            else:
                await stream.set("g1", "a", job(n))
            if n % 5 == 0:
                await stream.delete("g2", "xyz"[n % 3])
            else:
                await stream.set("g2", "xyz"[n % 3], job(n))
            await asyncio.sleep(0.002 if n % 10 else 0.02)

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.05)
    feed, lib = await raw(MUX_PATH), await library(MUX_PATH)
    await writer

    async def drain(next_event: Callable[[], Awaitable[Seen]]) -> list[Seen]:
        seen: list[Seen] = []
        with contextlib.suppress(TimeoutError):
            while True:
                seen.append(await next_event())
        return seen

    async def raw_next() -> Seen:
        return seen_raw(await feed.next(within=0.5))

    from_raw = await drain(raw_next)
    from_lib = await drain(lambda: lib.next(within=0.5))
    store = {"a": (await mux_item_now(client, "g1", "a"))[2].get("data"),
             "g2": {r["id"]: r for r in (await sync_now(client, "g2", mux=True))[2]["items"]}}
    for events in (from_raw, from_lib):
        assert "sync" in [e[0] for e in events[:2]], events[:2]
        ids = [int(e[1]) for e in events]
        assert ids == sorted(set(ids)), "ids only grow"
        state: dict[str, Any] = {"a": None}
        for event in events:
            apply_mux(state, event)
        assert state == store


# Across a restart: a client resuming on a new process converges like a fresh one.

def view_of(kind: str, events: list[Seen]) -> Any:
    """The state a client builds from a feed's events: the item, the group, or for the
    multiplexed feed both."""
    if kind == "mux":
        state: dict[str, Any] = {"a": None, "g2": None}
        for event in events:
            apply_mux(state, event)
        return state
    view: Any = None
    for name, _, body in events:
        if name == "message":
            view = body
        elif name == "sync":
            view = {r["id"]: r for r in body}
        elif name in ("create", "update"):
            view[body["id"]] = body
        elif name == "delete":
            view = None if kind == "item" else {k: v for k, v in view.items()
                                                 if k != body["id"]}
    return view


async def drain_raw(feed: RawResponse, quiet: float = 0.3) -> list[Seen]:
    """Every event until the feed has been quiet for `quiet` seconds."""
    seen: list[Seen] = []
    with contextlib.suppress(TimeoutError):
        while True:
            seen.append(seen_raw(await feed.next(within=quiet)))
    return seen


RESTART_FEEDS = {"item": "/streams/progress/g1/a", "group": "/streams/progress/g2",
                 "mux": MUX_PATH}


async def test_resume_across_a_restart_converges(
    make_client: ClientFactory, settings: Settings, request: pytest.FixtureRequest
) -> None:
    """Resumed after a restart, each feed leaves the client where a fresh client starts."""
    before = await make_client(settings)
    assert before.port is not None
    await progress(before).set("g1", "a", job(1))
    await progress(before).set("g2", "x", job(2))
    old: dict[str, tuple[list[Seen], str]] = {}
    for kind, path in RESTART_FEEDS.items():
        feed = await open_raw(before.port, path)
        old[kind] = (await drain_raw(feed), feed.parser.last_event_id)
        await feed.close()
    before.app[RUNTIME].close_feeds()
    await before.close()

    after = await make_client(settings)
    assert after.port is not None
    await progress(after).set("g1", "a", job(50))
    for kind, path in RESTART_FEEDS.items():
        events, last_id = old[kind]
        resumed = await open_raw(after.port, path, last_event_id=last_id)
        fresh = await open_raw(after.port, path)
        try:
            assert view_of(kind, events + await drain_raw(resumed)) \
                == view_of(kind, await drain_raw(fresh)), kind
        finally:
            await resumed.close()
            await fresh.close()
