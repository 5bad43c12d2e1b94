"""Limits: each configurable, each refused with a clear 4xx (or 503 for capacity)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import attrs

from motia_sse import Settings
from tests.conftest import EXAMPLE_STEPS, ClientFactory, ServerProcess
from tests.polling import eventually

MakeServer = Callable[..., ServerProcess]


async def test_body_size_limit(make_client: ClientFactory, settings: Settings) -> None:
    """A body over max_body_size is a 413 JSON error; one under it is served."""
    client = await make_client(attrs.evolve(settings, max_body_size=1000))
    big = await client.post("/open-ai", json={"message": "x" * 2000})
    assert big.status == 413
    body = await big.json()
    assert body["error"] == "Request Entity Too Large"
    small = await client.post("/jobs", json={"steps": 1, "delay": 0})
    assert small.status == 200


async def test_feed_limits(make_client: ClientFactory, settings: Settings) -> None:
    """Past max_feeds_per_client: 429; past max_feeds: 503; both say which limit."""
    client = await make_client(attrs.evolve(settings, max_feeds=3, max_feeds_per_client=2))
    held = [await client.get(f"/streams/progress/g/{n}") for n in range(2)]
    assert [r.status for r in held] == [200, 200]
    per_client = await client.get("/streams/progress/g/x")
    assert per_client.status == 429
    assert per_client.headers["Retry-After"] == "5"
    assert await per_client.json() == {
        "error": "too many feeds from this address",
        "details": ["127.0.0.1 holds 2 feeds, the limit is 2 (max_feeds_per_client)"]}
    held[0].close()
    again = await eventually(lambda: client.get("/streams/progress/g/y"),
                             until=lambda response: response.status == 200, every=0.02,
                             what="room again once the closed feed is let go")
    held.append(again)
    group = await client.get("/streams/progress/g")  # group feeds count the same
    assert group.status == 429
    for response in held:
        response.close()


async def test_total_feed_limit_is_503(make_client: ClientFactory, settings: Settings) -> None:
    """The server-wide limit refuses with 503 before any per-client one."""
    client = await make_client(attrs.evolve(settings, max_feeds=2, max_feeds_per_client=10))
    held = [await client.get(f"/streams/progress/h/{n}") for n in range(2)]
    refused = await client.get("/streams?sub=progress/h/2")
    assert refused.status == 503
    assert await refused.json() == {"error": "too many open feeds",
                                    "details": ["the server holds 2 feeds, its limit (max_feeds)"]}
    for response in held:
        response.close()


async def test_log_feeds_count_with_stream_feeds(make_client: ClientFactory,
                                                settings: Settings) -> None:
    """A log feed is a feed: it takes a place under max_feeds and max_feeds_per_client,
    is refused like a stream feed past them, and gives its place back when it ends."""
    client = await make_client(attrs.evolve(settings, max_feeds=3, max_feeds_per_client=2))
    held = [await client.get("/streams/progress/g/1"), await client.get("/__motia/logs/feed")]
    assert [r.status for r in held] == [200, 200]
    for path in ("/__motia/logs/feed", "/streams/progress/g/2"):
        refused = await client.get(path)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "5"
        assert await refused.json() == {
            "error": "too many feeds from this address",
            "details": ["127.0.0.1 holds 2 feeds, the limit is 2 (max_feeds_per_client)"]}
    held.pop().close()
    again = await eventually(lambda: client.get("/__motia/logs/feed"),
                             until=lambda response: response.status == 200, every=0.02,
                             what="room again once the closed log feed is let go")
    held.append(again)
    for response in held:
        response.close()


async def test_log_feeds_past_max_feeds_are_503(make_client: ClientFactory,
                                                settings: Settings) -> None:
    """With the server full of stream and log feeds, one more log feed is a 503."""
    client = await make_client(attrs.evolve(settings, max_feeds=2, max_feeds_per_client=10))
    held = [await client.get("/streams/progress/h/1"), await client.get("/__motia/logs/feed")]
    assert [r.status for r in held] == [200, 200]
    refused = await client.get("/__motia/logs/feed?level=error")
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    assert await refused.json() == {"error": "too many open feeds",
                                    "details": ["the server holds 2 feeds, its limit (max_feeds)"]}
    for response in held:
        response.close()


async def test_id_length_limit(make_client: ClientFactory, settings: Settings) -> None:
    """Ids longer than max_id_length are 400 on feeds and refused to steps."""
    client = await make_client(attrs.evolve(settings, max_id_length=8))
    response = await client.get("/streams/progress/123456789/x")
    assert response.status == 400
    assert (await response.json())["details"] == ["expected 1 to 8 characters, got 9"]
    job = await client.post("/jobs", json={"steps": 1, "delay": 0})
    # A 32-character trace id cannot be a group id here; a handler's bad id is a 400.
    assert job.status == 400
    assert await job.json() == {"error": "invalid group id", "trace_id": job.headers["x-trace-id"],
                                "details": ["expected 1 to 8 characters, got 32"]}


async def test_header_size_limit(server_process: MakeServer) -> None:
    """A header over --max-header-size is refused with a 4xx; the server goes on."""
    server = server_process("--steps", str(EXAMPLE_STEPS), "--store", "memory",
                            "--max-header-size", "1024", "--workbench").start()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/streams/progress/g/i",
                               headers={"X-Big": "x" * 2000}) as response:
            assert 400 <= response.status < 500
            assert "got more than 1024 bytes" in (await response.text()).lower()
        async with session.get(f"{server.url}/__motia/steps") as response:
            assert response.status == 200
