"""The item feed, read over a real socket as a browser's EventSource would."""

from __future__ import annotations

import socket
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from motia_sse.http.disconnect import SEND_TIMEOUT
from motia_sse.runtime import RUNTIME
from motia_sse.streams.memory_store import MemoryStore
from motia_sse.streams.stream import StreamChannel, StreamEvent
from tests.conftest import OpenFeed
from tests.polling import eventually


def JobProgress(status: str, done: int, total: int) -> dict[str, Any]:
    """Data for the example `progress` stream."""
    return {"status": status, "done": done, "total": total}


def progress(client: TestClient[Any, Any]) -> Any:
    """The example `progress` stream of the app under test."""
    return client.app[RUNTIME].streams.progress


async def test_snapshot_then_every_change_then_delete(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """On connect the current snapshot; then one event per set; a delete is `event: delete`."""
    stream = progress(client)
    first = await stream.set("g1", "job", JobProgress("queued", 0, 3))
    feed = await open_feed(str(client.make_url("/streams/progress/g1/job")))
    snapshot = await feed.next()
    assert (snapshot.event, snapshot.id) == ("message", str(first.version))
    assert snapshot.json() == {"status": "queued", "done": 0, "total": 3, "id": "job"}
    assert feed.retry == 2000

    versions = []
    for done in (1, 2, 3):
        versions.append((await stream.set("g1", "job", {"status": "running", "done": done,
                                                        "total": 3})).version)
    events = [await feed.next() for _ in range(3)]
    assert [e.json()["done"] for e in events] == [1, 2, 3]
    assert [int(e.id or 0) for e in events] == versions
    assert versions == sorted(versions)

    removed = await stream.delete("g1", "job")
    assert removed is not None
    assert type(removed.data).__name__ == "JobProgress", "structured to the stream's schema"
    assert attrs.asdict(removed.data) == JobProgress("running", 3, 3)
    deleted = await feed.next()
    assert deleted.event == "delete"
    assert deleted.json() == {"id": "job"}
    assert (removed.id, removed.version) == ("job", int(deleted.id or 0))
    assert await stream.delete("g1", "job") is None


async def test_feed_of_missing_item_waits_for_it(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """A feed opened before the item exists sends nothing, then the item when it is set."""
    feed = await open_feed(str(client.make_url("/streams/progress/g2/job")))
    assert await feed.silent_for(0.3)
    await progress(client).set("g2", "job", JobProgress("queued", 0, 1))
    assert (await feed.next()).json()["status"] == "queued"


async def test_end_to_end_job_through_api_and_queue(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """POST /jobs, follow the item's feed to the final state set by the event step."""
    response = await client.post("/jobs", json={"steps": 5, "delay": 0.01})
    body = await response.json()
    meta = body["__motia"]
    feed = await open_feed(str(client.make_url(
        f"/streams/{meta['streamName']}/{meta['groupId']}/{meta['id']}")))
    events = await feed.until(lambda e: e.json()["status"] == "done")
    assert events[-1].json() == {"status": "done", "done": 5, "total": 5, "id": "job"}
    dones = [e.json()["done"] for e in events]
    assert dones == sorted(dones)


async def test_last_event_id_resume(client: TestClient[Any, Any], open_feed: OpenFeed) -> None:
    """Reconnecting with the current version sends no duplicate; an older one sends the
    current snapshot; a vanished item sends a delete."""
    stream = progress(client)
    item = await stream.set("g3", "job", JobProgress("running", 1, 2))
    url = str(client.make_url("/streams/progress/g3/job"))

    current = await open_feed(url, **{"Last-Event-ID": str(item.version)})
    assert await current.silent_for(0.3)
    assert current.comments, "heartbeats keep an idle feed alive"

    older = await open_feed(url, **{"Last-Event-ID": str(item.version - 1)})
    assert (await older.next()).id == str(item.version)

    newer = await stream.set("g3", "job", JobProgress("done", 2, 2))
    assert (await current.next()).id == str(newer.version)

    await stream.delete("g3", "job")
    gone = await open_feed(url, **{"Last-Event-ID": str(newer.version)})
    delete = await gone.next()
    assert delete.event == "delete"
    assert delete.id is not None
    assert int(delete.id) > newer.version
    seen_delete = await open_feed(url, **{"Last-Event-ID": delete.id})
    assert await seen_delete.silent_for(0.3), "a client that saw the delete gets nothing"
    never = await open_feed(url)
    assert await never.silent_for(0.3)


async def test_custom_events_reach_open_feeds_only(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """`send` reaches feeds open now as `event: event`; it is not stored nor replayed;
    an event for the whole group is not the item's."""
    stream = progress(client)
    await stream.set("g4", "job", JobProgress("running", 0, 1))
    url = str(client.make_url("/streams/progress/g4/job"))
    feed = await open_feed(url)
    await feed.next()
    await stream.send(StreamChannel("g4", "job"), StreamEvent("typing", {"who": "ann"}))
    await stream.send(StreamChannel("g4"), StreamEvent("group-wide", 1))
    await stream.send(StreamChannel("g4", "other"), StreamEvent("elsewhere"))
    first = await feed.next()
    assert (first.event, first.json()) == ("event", {"type": "typing", "data": {"who": "ann"}})
    assert await feed.silent_for(0.3)

    late = await open_feed(url)
    assert (await late.next()).event == "message"
    assert await late.silent_for(0.3)


async def test_feed_headers(client: TestClient[Any, Any]) -> None:
    """Feeds tell proxies not to buffer or cache, and are never compressed."""
    response = await client.get("/streams/progress/g5/job",
                                headers={"Accept-Encoding": "gzip, deflate"})
    try:
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in response.headers
    finally:
        response.close()


async def test_bad_names_are_json_errors(client: TestClient[Any, Any]) -> None:
    """An unknown stream is 404 JSON; an impossible id is 400 JSON."""
    unknown = await client.get("/streams/nope/g/i")
    assert unknown.status == 404
    assert await unknown.json() == {"error": "no stream named 'nope'",
                                    "details": ["defined streams: openai, progress"]}
    dotted = await client.session.get(
        URL(str(client.make_url("/")) + "streams/progress/%2E%2E/job", encoded=True))
    assert dotted.status == 400
    assert (await dotted.json())["error"] == "invalid group id"


async def test_disconnected_feed_is_dropped(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """A client that hangs up leaves no subscription behind."""
    hub = client.app[RUNTIME].hub
    feed = await open_feed(str(client.make_url("/streams/progress/g6/job")))
    await eventually(lambda: hub.subscriber_count > 0, every=0.01, what="a subscriber")
    feed.response.close()
    await eventually(lambda: hub.subscriber_count == 0, every=0.01, what="no subscriber left")


async def test_a_store_failing_at_open_ends_the_feed_with_one_line(
    client: TestClient[Any, Any], open_feed: OpenFeed, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    """A store that cannot be read when a feed opens (Redis restarting, say) ends the feed
    after its retry delay, so the client comes back; the log says why in one line."""
    async def away(*_: Any) -> None:
        raise ConnectionError("the store is away")

    monkeypatch.setattr(MemoryStore, "get", away)
    feed = await open_feed(str(client.make_url("/streams/progress/g7/job")))
    with pytest.raises(EOFError):
        await feed.next()
    assert feed.retry == client.app[RUNTIME].settings.retry_ms
    assert ("/streams/progress/g7/job: cannot read the current state (ConnectionError: the "
            "store is away); ending the feed, its client reconnects") in caplog.text
    assert "Traceback" not in caplog.text
    monkeypatch.undo()
    await client.app[RUNTIME].streams["progress"].set(
        "g7", "job", {"status": "running", "done": 1, "total": 2})
    again = await open_feed(str(client.make_url("/streams/progress/g7/job")))
    assert (await again.next()).json()["done"] == 1


async def test_idle_feeds_get_heartbeats_and_a_send_timeout(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """An idle feed gets a `: ping` comment every heartbeat interval (0.2 s here), which
    clients ignore; the kernel aborts a connection whose writes stay unacknowledged for
    SEND_TIMEOUT, so that a vanished peer ends its feed."""
    feed = await open_feed(str(client.make_url("/streams/progress/g8/job")))
    assert await feed.silent_for(0.9)
    assert feed.comments.count("ping") >= 3
    (server_feed,) = client.app[RUNTIME].feeds
    sock = server_feed._protocol.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == SEND_TIMEOUT * 1000


@pytest.mark.parametrize("path", ["/streams/progress/g9/job", "/streams/progress/g9",
                                  "/streams?sub=progress/g9/job"])
async def test_head_on_a_feed_is_405_and_the_connection_goes_on(
    client: TestClient[Any, Any], path: str
) -> None:
    """HEAD gets the GET's checks, then a JSON 405 naming GET; the kept-alive connection
    then serves the next request cleanly (no feed bytes leak into it)."""
    for _ in range(2):
        head = await client.head(path)
        assert (head.status, head.headers["Allow"]) == (405, "GET")
        steps = await client.get("/__motia/steps")
        assert steps.status == 200
        assert isinstance(await steps.json(), list)
