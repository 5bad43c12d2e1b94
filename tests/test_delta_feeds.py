"""Delta frames (`delta=1`) on every kind of feed, read off real sockets and applied."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp.test_utils import TestClient

from motia_sse.runtime import RUNTIME
from tests.delta_client import DeltaView
from tests.polling import eventually
from tests.raw_sse import RawEvent, RawResponse, open_raw

# Deltas go out only when smaller than the item: texts here start long enough.
START = "Once upon a time, " * 8
TOKENS = ["Hel", "lo", ",", " wor", "ld", " — ", "日本", "語", " e\u0301", "👍🏽", "!"]


def answer(message: str, item_id: str = "message") -> dict[str, Any]:
    """An `openai` item as its feeds send it."""
    return {"message": message, "error": None, "id": item_id}


def streams(client: TestClient[Any, Any]) -> Any:
    """The app's `ctx.streams`."""
    return client.app[RUNTIME].streams


async def feed(client: TestClient[Any, Any], path: str, **kwargs: Any) -> RawResponse:
    """A raw feed, checked to have opened."""
    response = await open_raw(client.port or 0, path, **kwargs)
    assert response.status == 200
    return response


async def grow(client: TestClient[Any, Any], group: str, tokens: list[str],
               start: str = START) -> Any:
    """Set the openai item `group`/message to `start` plus one more token at a time;
    the last item."""
    text, item = start, None
    for token in tokens:
        text += token
        item = await streams(client).openai.set(group, "message", {"message": text})
    return item


async def take(view: DeltaView, response: RawResponse, count: int) -> list[RawEvent]:
    """Read `count` events into `view`."""
    events = [await response.next() for _ in range(count)]
    for event in events:
        view.take(event)
    return events


async def test_item_feed_snapshot_then_deltas(client: TestClient[Any, Any]) -> None:
    """The first change after opening is whole; later ones are `event: delta` in exactly
    the issue's shape, in UTF-16 units, and applying them gives each item's text."""
    first = await streams(client).openai.set("t1", "message", {"message": START})
    response = await feed(client, "/streams/openai/t1/message?delta=1")
    view = DeltaView("item")
    opened = await take(view, response, 1)
    assert (opened[0].event, opened[0].own_id) == ("message", str(first.version))

    item = await grow(client, "t1", TOKENS, start=START)
    events = await take(view, response, len(TOKENS))
    assert [e.event for e in events] == ["message"] + ["delta"] * (len(TOKENS) - 1)
    assert view.texts[("item", "", "", "message")] == (
        str(item.version),
        orjson.dumps(answer(START + "".join(TOKENS))).decode())
    one = events[1]
    assert one.own_id == str(int(events[0].own_id or 0) + 1)
    prefix, suffix = len('{"message":"' + START + 'Hel'), len('","error":null,"id":"message"}')
    assert one.data == (f'{{"base":{events[0].own_id},"prefix":{prefix},"suffix":{suffix},'
                        '"insert":"lo"}')
    emoji = next(e for e in events if "👍" in e.data)
    before = START + "".join(TOKENS[:TOKENS.index("👍🏽")])
    # Characters beyond U+FFFF count two units, as JavaScript's String.length does.
    assert emoji.json()["prefix"] == len('{"message":') + 1 + len(before.encode("utf-16-le")) // 2
    await response.close()


async def test_delete_in_the_middle_then_whole_again(client: TestClient[Any, Any]) -> None:
    """A delete drops the text; the item set again comes whole, then as deltas."""
    await grow(client, "t2", ["a"])
    response = await feed(client, "/streams/openai/t2/message?delta=1")
    view = DeltaView("item")
    await take(view, response, 1)
    await grow(client, "t2", ["b", "c"], start=START + "a")
    await streams(client).openai.delete("t2", "message")
    await grow(client, "t2", ["x", "y", "z"])
    events = await take(view, response, 6)
    assert [e.event for e in events] == ["message", "delta", "delete", "message", "delta",
                                         "delta"]
    assert view.item() == answer(START + "xyz")
    await response.close()


async def test_resume_gets_a_snapshot_first(client: TestClient[Any, Any]) -> None:
    """Reconnecting with an older Last-Event-ID: the current snapshot, then a whole
    change, then deltas; with the current one, nothing, then whole, then deltas."""
    old = await grow(client, "t3", ["a"])
    now = await grow(client, "t3", ["b", "c"], start=START + "a")
    path = "/streams/openai/t3/message?delta=1"
    behind = await feed(client, path, last_event_id=str(old.version))
    current = await feed(client, path, last_event_id=str(now.version))
    view_behind, view_current = DeltaView("item"), DeltaView("item")
    resumed = await take(view_behind, behind, 1)
    assert (resumed[0].event, resumed[0].own_id) == ("message", str(now.version))
    assert await current.silent_for(0.2)
    await grow(client, "t3", ["d", "e"], start=START + "abc")
    after = await take(view_behind, behind, 2)
    assert [e.event for e in after] == ["message", "delta"]
    assert [e.event for e in await take(view_current, current, 2)] == ["message", "delta"]
    assert view_behind.item() == view_current.item() == answer(START + "abcde")
    await behind.close()
    await current.close()


async def test_group_feed_rows_as_update_deltas(client: TestClient[Any, Any]) -> None:
    """`create` and `update` carry a row's text; `update-delta` names the row."""
    await grow(client, "t4", ["old"])
    response = await feed(client, "/streams/openai/t4?delta=1")
    view = DeltaView("group")
    sync = await take(view, response, 1)
    assert sync[0].event == "sync", "unchanged with deltas"
    openai = streams(client).openai
    await grow(client, "t4", ["!", "!"], start=START + "old")
    await grow(client, "t4", ["new", "er"])
    await openai.set("t4", "other", {"message": START + "new"})
    await openai.set("t4", "other", {"message": START + "newer"})
    await openai.delete("t4", "message")
    await grow(client, "t4", ["back", " again"])
    events = await take(view, response, 9)
    assert [e.event for e in events] == ["update", "update-delta", "update-delta",
                                         "update-delta", "create", "update-delta", "delete",
                                         "create", "update-delta"]
    assert events[1].json()["id"] == "message"
    assert events[5].json()["id"] == "other"
    assert view.rows() == {"other": answer(START + "newer", "other"),
                           "message": answer(START + "back again")}
    await response.close()


async def test_multiplexed_feed_keeps_the_text_on_its_own_line(
        client: TestClient[Any, Any]) -> None:
    """`item` / `update` put the envelope and the item's text on two `data:` lines;
    `item-delta` and `update-delta` name stream, group and id."""
    await grow(client, "t5", ["a"])
    subs = "&".join("sub=" + quote(s, safe="") for s in ("openai/t5/message", "openai/t5"))
    response = await feed(client, f"/streams?{subs}&delta=1")
    view = DeltaView("mux")
    opened = await take(view, response, 2)
    assert sorted(e.event for e in opened) == ["item", "sync"]
    item = next(e for e in opened if e.event == "item")
    assert item.data.split("\n")[0] == '{"stream":"openai","group":"t5","id":"message"}'
    await grow(client, "t5", ["b", "c"], start=START + "a")
    events = await take(view, response, 4)
    assert sorted(e.event for e in events) == ["item", "item-delta", "update", "update-delta"]
    delta = next(e for e in events if e.event == "item-delta").json()
    assert list(delta) == ["stream", "group", "id", "base", "prefix", "suffix", "insert"]
    expected = answer(START + "abc")
    assert view.item(("item", "openai", "t5", "message")) == expected
    assert view.rows() == {"message": expected}
    await response.close()


async def test_without_delta_the_wire_is_unchanged(client: TestClient[Any, Any]) -> None:
    """With delta feeds open beside them, feeds without `delta=1` (or with `delta=0`)
    get whole items, byte for byte what a feed got before deltas existed."""
    await grow(client, "t6", ["a"])
    paths = ["/streams/openai/t6/message", "/streams/openai/t6/message?delta=0",
             "/streams/openai/t6", "/streams?sub=openai%2Ft6%2Fmessage"]
    plain = [await feed(client, path) for path in paths]
    delta = await feed(client, "/streams/openai/t6/message?delta=1")
    await delta.next()
    for response in plain:
        await response.next()
    item = await grow(client, "t6", ["b", "c"], start=START + "a")
    text = orjson.dumps(answer(START + "abc")).decode()
    lasts = [(await response.until(lambda e: e.own_id == str(item.version)))[-1]
             for response in plain]
    assert [(e.event, e.data) for e in lasts] == [
        ("message", text), ("message", text), ("update", text),
        ("item", f'{{"stream":"openai","group":"t6","id":"message","data":{text}}}')]
    assert b"delta" not in b"".join(bytes(r.body) for r in plain)
    for response in [*plain, delta]:
        await response.close()


async def test_bad_delta_value_is_a_400(client: TestClient[Any, Any]) -> None:
    """`delta=yes` is refused with a JSON error naming the parameter."""
    response = await client.get("/streams/openai/t7/message?delta=yes")
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid delta"
    assert "delta = 'yes'" in body["details"][0]
    assert "expected 1" in body["details"][0]


async def test_texts_are_kept_only_while_a_delta_feed_watches(
        client: TestClient[Any, Any]) -> None:
    """A hub with no delta watchers keeps no copy; one kept per watched item; none once
    the last delta feed has gone."""
    hub = client.app[RUNTIME].hub
    plain = await feed(client, "/streams/openai/t8/message")
    await grow(client, "t8", ["a", "b"])
    await plain.until(lambda e: json.loads(e.data)["message"] == START + "ab")
    assert hub.texts.kept == 0
    watchers = [await feed(client, "/streams/openai/t8?delta=1"),
                await feed(client, "/streams/openai/t8/message?delta=1")]
    await eventually(lambda: hub.subscriber_count == 3, what="three subscriptions")
    await grow(client, "t8", ["c"], start=START + "ab")
    assert hub.texts.kept == 1
    for response in watchers:
        await response.close()
    await eventually(lambda: hub.subscriber_count == 1, what="the delta feeds gone")
    assert hub.texts.kept == 0
    await plain.close()


async def test_stalled_reader_applies_only_to_what_it_holds(
        client: TestClient[Any, Any]) -> None:
    """A reader that stops mid-stream while 2,000 growing sets happen, then reads it
    all: conflation turned deltas whose base it never got into snapshots, and applying
    what arrived gives the final item exactly."""
    await grow(client, "t9", [""])
    response = await feed(client, "/streams/openai/t9/message?delta=1", receive_buffer=4096)
    view = DeltaView("item")
    await take(view, response, 1)
    slow = next(iter(client.app[RUNTIME].feeds))
    # A slow network: the server's kernel buffer for this socket stays small (else
    # loopback grows it to megabytes, more than this test writes).
    transport = slow._protocol.transport
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    text, item = START, None
    for n in range(2000):
        # Now and then a long token, so that the socket fills while deltas stay small.
        text += f" {n}{'x' * 2000 if n % 50 == 0 else ''}é😀中\u0301"
        item = await streams(client).openai.set("t9", "message", {"message": text})
        if n % 20 == 0:
            await asyncio.sleep(0)  # let the socket move, as a busy server's loop would
    assert item is not None
    assert slow.conflated > 0, "the reader lagged and pending deltas were conflated"
    for event in await response.until(lambda e: e.own_id == str(item.version), within=30):
        view.take(event)
    assert view.item() == answer(text)
    # Opened, then whole once conflation had dropped a base; deltas otherwise.
    assert view.snapshots >= 2, view
    assert view.deltas > 0, view
    assert view.snapshots + view.deltas < 2000, "conflated, not a backlog"
    await response.close()
