"""Changes published in one loop turn reach each feed in one write, byte for byte as before."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from functools import partial
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings, StreamChannel, StreamEvent
from motia_sse.runtime import RUNTIME
from motia_sse.streams.feed import Feed
from motia_sse.streams.store import Change
from motia_sse.streams.wire import FeedKind, change_frame
from tests.conftest import ClientFactory
from tests.delta_client import DeltaView
from tests.polling import eventually
from tests.raw_sse import RawEvent, RawResponse, open_raw

SETS = 50
START = "Once upon a time, " * 8


class CountingTransport:
    """A feed's transport that counts the writes made to it (and passes everything on)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0
        self.last: bytes = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(name="client")
async def _client(make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """The example steps, with no heartbeat to interleave with what the test counts, and
    a turn's batches kept to the turn's end however long it runs (a slow machine's sets)."""
    client = await make_client(attrs.evolve(settings, heartbeat_interval=600.0))
    client.app[RUNTIME].hub.min_batch_wait = 60.0
    return client


def count_writes(feed: Feed) -> CountingTransport:
    """Put a counting transport under `feed` (where it writes, and batches from)."""
    counting = CountingTransport(feed._protocol.transport)
    feed._protocol.transport = counting  # type: ignore[assignment]  # duck-typed
    feed._sink = counting
    return counting


def has_id(version: str, event: RawEvent) -> bool:
    """Whether `event` is the change of `version`."""
    return event.own_id == version


async def open_feeds(client: TestClient[Any, Any], *paths: str) -> list[RawResponse]:
    """Feeds on the item, each past its initial snapshot."""
    responses = [await open_raw(client.port or 0, path) for path in paths]
    for response in responses:
        assert response.status == 200
        await response.next()
    return responses


async def plain_and_delta(client: TestClient[Any, Any], group: str) -> list[RawResponse]:
    """The group's message set to START, and a plain and a delta feed subscribed to it."""
    runtime = client.app[RUNTIME]
    await runtime.streams.openai.set(group, "message", {"message": START})
    path = f"/streams/openai/{group}/message"
    feeds = await open_feeds(client, path, f"{path}?delta=1")
    await eventually(lambda: runtime.hub.subscriber_count == 2, what="both subscribed")
    return feeds


async def open_feeds_raw(client: TestClient[Any, Any], *paths: str) -> list[RawResponse]:
    """Feeds, their initial events left to read."""
    responses = [await open_raw(client.port or 0, path) for path in paths]
    assert [r.status for r in responses] == [200] * len(responses)
    return responses


async def test_a_turn_of_sets_is_one_write_per_feed(client: TestClient[Any, Any]) -> None:
    """50 sets without yielding, as an answer's chunks from one socket read: a plain feed
    and a delta feed get every frame, in order, the plain one exactly the bytes of the 50
    snapshots, each in a write or two instead of 50."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    plain, delta = await plain_and_delta(client, "turn")
    counters = {feed.deltas: count_writes(feed) for feed in runtime.feeds}
    before = len(plain.body)
    text, expected = START, b""
    for n in range(SETS):  # no await that yields: the memory store never does
        text += f"tok{n} "
        item = await openai.set("turn", "message", {"message": text})
        change = Change("openai", "turn", "message", "update", item.version,
                        {"message": text, "error": None})
        expected += change_frame(FeedKind.ITEM, change).raw
    done = partial(has_id, str(item.version))
    await plain.until(done)
    view = DeltaView("item")
    for event in await delta.until(done):
        view.take(event)
    assert bytes(plain.body[before:]) == expected
    assert view.item(("item", "", "", "message")) == {
        "message": text, "error": None, "id": "message"}
    assert (view.snapshots, view.deltas) == (1, SETS - 1)
    assert counters[False].writes <= 2, "the first change at once, the rest at the turn's end"
    assert counters[True].writes <= 2
    for response in (plain, delta):
        await response.close()


async def test_changes_a_turn_apart_are_written_at_once(
        client: TestClient[Any, Any]) -> None:
    """One change per loop turn (the fan-out of separate requests) is one write each, as
    without batching."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    await openai.set("apart", "message", {"message": START})
    (plain,) = await open_feeds(client, "/streams/openai/apart/message")
    await eventually(lambda: runtime.hub.subscriber_count == 1, what="subscribed")
    counter = count_writes(next(iter(runtime.feeds)))
    for n in range(5):
        version = str((await openai.set("apart", "message", {"message": f"{START}{n}"})).version)
        await plain.until(partial(has_id, version))
        assert counter.writes == n + 1
    await plain.close()



async def grow(client: TestClient[Any, Any], group: str, sets: int, text: str) -> tuple[str, str]:
    """`sets` sets of the group's message, each a token longer, in one loop turn; the
    final text and its version."""
    openai = client.app[RUNTIME].streams.openai
    version = 0
    for n in range(sets):  # no await that yields: the memory store never does
        text += f"tok{n} "
        version = (await openai.set(group, "message", {"message": text})).version
    return text, str(version)


async def test_feeds_that_keep_up_share_one_joined_write(
        client: TestClient[Any, Any]) -> None:
    """Three plain and three delta feeds of one item: a turn's later changes are joined
    once per kind of feed, and that one bytes object is what each feed of the kind writes."""
    runtime = client.app[RUNTIME]
    await runtime.streams.openai.set("shared", "message", {"message": START})
    path = "/streams/openai/shared/message"
    responses = await open_feeds(client, *[path] * 3, *[f"{path}?delta=1"] * 3)
    await eventually(lambda: runtime.hub.subscriber_count == 6, what="all subscribed")
    counters = [(feed.deltas, count_writes(feed)) for feed in runtime.feeds]
    text, version = await grow(client, "shared", SETS, START)
    await asyncio.sleep(0)  # the turn ends
    for deltas in (False, True):
        lasts = [c.last for d, c in counters if d is deltas]
        assert [c.writes for d, c in counters if d is deltas] == [2, 2, 2]
        assert all(last is lasts[0] for last in lasts), "one join for the kind's feeds"
    done = partial(has_id, version)
    for n, response in enumerate(responses):
        view = DeltaView("item")
        for event in await response.until(done):
            view.take(event)
        assert view.item(("item", "", "", "message"))["message"] == text
        assert (view.snapshots, view.deltas) == ((1, SETS - 1) if n >= 3 else (SETS, 0))
        await response.close()


async def test_a_row_whose_text_a_feed_lacks_goes_whole_to_it_alone(
        client: TestClient[Any, Any]) -> None:
    """Two delta feeds of a group: one saw row b change, the other opened after it (its
    text of b came in the sync, not as a version it holds). A turn changing a, then b:
    the first feed gets deltas for both, the second b whole first; both end right."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    await openai.set("rows", "a", {"message": START})
    await openai.set("rows", "b", {"message": START})
    views = {"early": DeltaView("group"), "late": DeltaView("group")}
    (early,) = await open_feeds_raw(client, "/streams/openai/rows?delta=1")
    seen = str((await openai.set("rows", "b", {"message": START + "x"})).version)
    for event in await early.until(partial(has_id, seen)):
        views["early"].take(event)
    (late,) = await open_feeds_raw(client, "/streams/openai/rows?delta=1")
    await eventually(lambda: runtime.hub.subscriber_count == 2, what="both subscribed")
    for item, sets in (("a", 3), ("b", 3)):
        text = START + ("x" if item == "b" else "")
        for n in range(sets):
            text += f"{item}{n} "
            last = await openai.set("rows", item, {"message": text})
    firsts = {}
    for name, response in (("early", early), ("late", late)):
        view = views[name]
        events = await response.until(partial(has_id, str(last.version)))
        for event in events:
            view.take(event)
        assert view.rows()["b"]["message"] == text
        assert view.rows()["a"]["message"].endswith("a2 ")
        firsts[name] = next(e.event for e in events
                            if e.event != "sync" and '"id":"b"' in e.data)
        await response.close()
    assert firsts == {"early": "update-delta", "late": "update"}


async def test_a_custom_event_mid_turn_keeps_its_place(client: TestClient[Any, Any]) -> None:
    """Sets, a custom event, sets, in one turn: the feed gets them in that order."""
    openai = client.app[RUNTIME].streams.openai
    plain, delta = await plain_and_delta(client, "mid")
    text, _ = await grow(client, "mid", 5, START)
    await openai.send(StreamChannel("mid", "message"), StreamEvent("marker", {"n": 1}))
    text, version = await grow(client, "mid", 5, text)
    for response in (plain, delta):
        events = await response.until(partial(has_id, version))
        names = [e.event for e in events]
        assert names.index("event") == 5, names
        assert len(names) == 11
        await response.close()


async def test_a_feed_closed_mid_turn_gets_what_came_before(
        client: TestClient[Any, Any]) -> None:
    """A feed ended between two sets of a turn (as a reload ends feeds) has read every
    change before its end, none after, and the response ends cleanly."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    await openai.set("cut", "message", {"message": START})
    (plain,) = await open_feeds(client, "/streams/openai/cut/message")
    await eventually(lambda: runtime.hub.subscriber_count == 1, what="subscribed")
    text, version = await grow(client, "cut", 5, START)
    next(iter(runtime.feeds)).close()
    await grow(client, "cut", 5, text)
    events = await plain.read_to_end()
    assert [e.own_id for e in events if e.event == "message"][-1] == version
    assert json.loads(events[-1].data)["message"] == text
    await plain.close()


async def test_stalled_feeds_beside_feeds_that_keep_up(client: TestClient[Any, Any]) -> None:
    """A plain and a delta feed that stop reading, beside a plain and a delta feed read
    all along, through 1,000 sets, five per loop turn: the stalled ones conflate (they
    leave the turn's shared batch for frames of their own), the delta reader that keeps
    up gets every version, and all four end with the final text exactly."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    await openai.set("mixed", "message", {"message": START})
    path = "/streams/openai/mixed/message"
    stalled = [await open_raw(client.port or 0, p, receive_buffer=4096)
               for p in (path, f"{path}?delta=1")]
    for response in stalled:
        await response.next()
    await eventually(lambda: runtime.hub.subscriber_count == 2, what="stalled subscribed")
    for feed in runtime.feeds:  # a slow network: the kernel keeps little for them
        transport = feed._protocol.transport
        assert transport is not None
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    slow = list(runtime.feeds)
    reading = await open_feeds_raw(client, path, f"{path}?delta=1")
    await eventually(lambda: runtime.hub.subscriber_count == 4, what="readers subscribed")
    views = [DeltaView("item") for _ in range(4)]
    version = ""

    async def read_all(response: RawResponse, view: DeltaView) -> None:
        await eventually(lambda: version != "", what="the last set")
        for event in await response.until(partial(has_id, version), within=30):
            view.take(event)

    readers = [asyncio.create_task(read_all(r, v)) for r, v in zip(reading, views[:2], strict=True)]
    text = START
    for turn in range(200):
        text, last = await grow(client, "mixed", 5, text + f"t{turn}é😀 ")
        await asyncio.sleep(0)
    version = last
    await asyncio.wait_for(asyncio.gather(*readers), 30)
    for response, view in zip(stalled, views[2:], strict=True):
        for event in await response.until(partial(has_id, version), within=30):
            view.take(event)
    assert all(feed.conflated > 0 for feed in slow), "the stalled feeds conflated"
    assert [view.item(("item", "", "", "message"))["message"] for view in views] == [text] * 4
    assert views[1].snapshots + views[1].deltas == 1 + 1000, "every version, as it kept up"
    for response in (*stalled, *reading):
        await response.close()


async def test_multiplexed_feeds_of_one_answer_share_its_batch(
        client: TestClient[Any, Any]) -> None:
    """Two pages' connections (multiplexed, as motia-stream.js opens) watching one answer:
    a turn's later changes reach both in one shared write, every frame in order."""
    runtime = client.app[RUNTIME]
    await runtime.streams.openai.set("muxed", "message", {"message": START})
    path = "/streams?sub=openai/muxed/message&delta=1"
    responses = await open_feeds(client, path, path)
    await eventually(lambda: runtime.hub.subscriber_count == 2, what="both subscribed")
    counters = [count_writes(feed) for feed in runtime.feeds]
    text, version = await grow(client, "muxed", SETS, START)
    await asyncio.sleep(0)  # the turn ends
    assert [c.writes for c in counters] == [2, 2]
    assert counters[0].last is counters[1].last
    for response in responses:
        view = DeltaView("mux")
        for event in await response.until(partial(has_id, version)):
            view.take(event)
        assert view.item(("item", "openai", "muxed", "message"))["message"] == text
        await response.close()


async def test_a_multiplexed_feed_of_two_answers_keeps_version_order(
        client: TestClient[Any, Any]) -> None:
    """A multiplexed feed watching two answers, beside item feeds of each (which share
    their answer's batch): changes to the two interleaved in one turn reach it in the
    order they were made, so its last event id never passes a change it has not got."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    for group in ("left", "right"):
        await openai.set(group, "message", {"message": START})
    mux, *items = await open_feeds(
        client, "/streams?sub=openai/left/message&sub=openai/right/message&delta=1",
        "/streams/openai/left/message?delta=1", "/streams/openai/right/message?delta=1")
    await mux.next()  # the second item of its initial state
    await eventually(lambda: runtime.hub.subscriber_count == 4, what="all subscribed")
    texts = {"left": START, "right": START}
    last = 0
    for n in range(20):
        group = ("left", "right")[n % 2]
        texts[group] += f"{group[0]}{n} "
        last = (await openai.set(group, "message", {"message": texts[group]})).version
    events = await mux.until(partial(has_id, str(last)))
    ids = [int(e.own_id) for e in events if e.own_id]
    assert ids == sorted(ids), "in the order the changes were made"
    assert len(ids) == 20
    for response in (mux, *items):
        await response.close()


async def test_a_long_turn_is_written_every_few_milliseconds(
        client: TestClient[Any, Any]) -> None:
    """A turn that runs long (here 40 sets 1 ms apart, as a model's stream parsed from one
    large read) has its batches written whenever they have waited `min_batch_wait` (10 ms
    here), not only at the turn's end: the feeds get every frame, in a few writes."""
    runtime = client.app[RUNTIME]
    runtime.hub.min_batch_wait = 0.01
    plain, delta = await plain_and_delta(client, "long")
    counters = [count_writes(feed) for feed in runtime.feeds]
    openai = runtime.streams.openai
    text = START
    for n in range(40):
        text += f"tok{n} "
        last = await openai.set("long", "message", {"message": text})
        busy_until = time.monotonic() + 0.001
        while time.monotonic() < busy_until:  # busy, without yielding to the loop
            pass
    for response in (plain, delta):
        view = DeltaView("item")
        for event in await response.until(partial(has_id, str(last.version))):
            view.take(event)
        assert view.item(("item", "", "", "message"))["message"] == text
        await response.close()
    assert all(3 <= c.writes <= 14 for c in counters), [c.writes for c in counters]
