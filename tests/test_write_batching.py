"""Changes published in one loop turn reach each feed in one write, byte for byte as before."""

from __future__ import annotations

from functools import partial
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
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

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(name="client")
async def _client(make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """The example steps, with no heartbeat to interleave with what the test counts."""
    return await make_client(attrs.evolve(settings, heartbeat_interval=600.0))


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


async def test_a_turn_of_sets_is_one_write_per_feed(client: TestClient[Any, Any]) -> None:
    """50 sets without yielding, as an answer's chunks from one socket read: a plain feed
    and a delta feed get every frame, in order, the plain one exactly the bytes of the 50
    snapshots, each in a write or two instead of 50."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    await openai.set("turn", "message", {"message": START})
    plain, delta = await open_feeds(client, "/streams/openai/turn/message",
                                    "/streams/openai/turn/message?delta=1")
    await eventually(lambda: runtime.hub.subscriber_count == 2, what="both subscribed")
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

