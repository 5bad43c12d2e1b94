"""Several server processes on one Redis act as one: feeds, events, failures, restarts."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from redis.asyncio import Redis

from motia_sse import Settings
from motia_sse.runtime import RUNTIME
from tests.conftest import (
    EXAMPLE_STEPS,
    ClientFactory,
    RedisServer,
    ServerProcess,
    WriteSteps,
    free_port,
)
from tests.delta_client import DeltaView
from tests.polling import eventually
from tests.raw_sse import open_raw
from tests.sse_parse import SseEvent, SseReader
from tests.work_steps import NOTES_STREAM, WORK_STEPS

MakeServer = Callable[..., ServerProcess]
TOKENS = ["Hel", "lo", ",", " wor", "ld", " — ", "日本", "語", " e\u0301", "👍🏽", "!"]
# A note grown by 300 sets in one handler, as an answer is: the other processes get the
# changes from Redis in bursts.
GROW_NOTE = f'''
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="GrowNote", path="/notes/{{group}}/{{id}}/grow", method="POST")
TOKENS = {TOKENS!r}

async def handler(req: ApiRequest[None], ctx: FlowContext) -> ApiResponse:
    group, note = req.path_params["group"], req.path_params["id"]
    held = await ctx.streams.notes.get(group, note)
    text = held.data.text if held is not None else ""
    for n in range(300):
        text += TOKENS[n % len(TOKENS)] + str(n)
        item = await ctx.streams.notes.set(group, note, {{"text": text}})
    return ApiResponse(status=200, body={{"text": text, "version": item.version}})
'''



@pytest.fixture(name="cluster")
def _cluster(write_steps: WriteSteps, redis_server: RedisServer,
             server_process: MakeServer) -> Callable[..., ServerProcess]:
    """Start server processes of the test steps, all on one Redis under one prefix."""
    steps = write_steps({**WORK_STEPS, "notes_stream.py": NOTES_STREAM,
                         "grow_note_step.py": GROW_NOTE}, "cluster_steps")
    prefix = f"test-{uuid.uuid4().hex[:10]}"

    def start(redis_url: str = redis_server.url, **env: str) -> ServerProcess:
        return server_process(
            "--steps", str(steps), "--redis", redis_url, "--redis-prefix", prefix,
            "--visibility-timeout", "1", "--retry-backoff", "0.05", "--max-attempts", "3",
            "--heartbeat", "0.5", "--workbench", env=env).start()

    return start


@pytest.fixture(name="session")
async def _session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


async def put(session: aiohttp.ClientSession, server: ServerProcess, group: str, item: str,
              value: int) -> int:
    """Set a cell through a server's API step; returns the item's version."""
    response = await session.put(f"{server.url}/cells/{group}/{item}", json={"value": value})
    assert response.status == 200, await response.text()
    version: int = (await response.json())["version"]
    return version


async def group_items(session: aiohttp.ClientSession, server: ServerProcess,
                      group: str) -> list[dict[str, Any]]:
    """A group's items, read from its feed's opening sync."""
    async with session.get(f"{server.url}/streams/cells/{group}") as response:
        sync = await SseReader(response).next()
    items: list[dict[str, Any]] = sync.json()
    return items


async def test_writes_on_one_reach_feeds_on_the_other(
    cluster: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    """A client of B sees, in order and with their versions, what A set; it resumes on A."""
    a, b = cluster(), cluster()
    await put(session, a, "g", "x", 0)
    async with session.get(f"{b.url}/streams/cells/g/x") as response:
        feed = SseReader(response)
        assert (await feed.next()).json()["value"] == 0
        versions = [await put(session, a, "g", "x", n) for n in range(1, 21)]
        events = [await feed.next() for _ in range(20)]
    assert [e.json()["value"] for e in events] == list(range(1, 21))
    assert [int(e.id or 0) for e in events] == versions
    last = events[-1].id or ""

    # Reconnect to the other process with Last-Event-ID: nothing new, then only news.
    async with session.get(f"{a.url}/streams/cells/g/x",
                           headers={"Last-Event-ID": last}) as response:
        resumed = SseReader(response)
        assert await resumed.silent_for(0.5)
        await put(session, b, "g", "x", 99)
        assert (await resumed.next()).json()["value"] == 99


async def test_each_event_handled_once_across_processes(
    cluster: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    """Events emitted on both processes are each handled exactly once, by either."""
    a, b = cluster(), cluster()
    for n in range(30):
        response = await session.post(f"{(a, b)[n % 2].url}/work", json={"n": n})
        assert response.status == 202
    await eventually(lambda: group_items(session, a, "runs"), until=lambda runs: len(runs) >= 30,
                     within=20, every=0.1, what="30 runs")
    await asyncio.sleep(1.5)  # past the visibility timeout: no late duplicate either
    runs = await group_items(session, b, "runs")
    assert sorted(r["value"] for r in runs) == list(range(30))


async def test_killed_worker_event_is_retried_elsewhere(
    cluster: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    """A process killed mid-handler: another claims the event and finishes it."""
    doomed = cluster(SLOW_WORKER="1")
    await session.post(f"{doomed.url}/work", json={"n": 7, "mode": "slow"})
    await eventually(lambda: group_items(session, doomed, "started"), what="the slow work started")
    survivor = cluster()
    doomed.stop(signal.SIGKILL)
    runs = await eventually(lambda: group_items(session, survivor, "runs"), within=20, every=0.1,
                            what="a run on the survivor")
    assert [r["value"] for r in runs] == [7]
    assert runs[0]["pid"] == survivor.process.pid if survivor.process else False


async def test_always_failing_handler_is_dead_lettered(
    cluster: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    """After max_attempts failures the event is in the dead letters, with its error."""
    a, b = cluster(), cluster()
    await session.post(f"{a.url}/work", json={"n": 5, "mode": "fail"})

    async def dead_letters() -> Any:
        return await (await session.get(f"{b.url}/__motia/dead-letters")).json()

    [letter] = await eventually(dead_letters, within=15, every=0.1, what="a dead letter on B")
    assert (letter["step"], letter["topic"], letter["data"]) == ("DoWork", "work",
                                                                 {"n": 5, "mode": "fail"})
    assert (letter["attempts"], letter["error"]) == (3, "RuntimeError: work 5 always fails")
    assert letter["trace_id"]
    assert "handler failed" in a.output() + b.output()


async def test_feeds_converge_after_redis_restarts(
    tmp_path: Path, cluster: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    """Redis goes away mid-stream and comes back: the feed ends on the final state."""
    redis = RedisServer(tmp_path / "restartable")
    redis.start(extra=["--appendonly", "yes", "--appendfsync", "always"])
    a, b = cluster(redis.url), cluster(redis.url)
    await put(session, a, "r", "x", 0)
    last: SseEvent | None = None

    async def follow() -> None:
        nonlocal last
        last_id: str | None = None
        while True:  # a client that reconnects, as EventSource does
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with session.get(f"{b.url}/streams/cells/r/x", headers=headers) as resp:
                    reader = SseReader(resp)
                    while True:
                        last = await reader.next(within=60)
                        last_id = reader.last_id
            except (aiohttp.ClientError, EOFError):
                await asyncio.sleep(0.1)

    following = asyncio.create_task(follow())
    for n in range(1, 6):
        await put(session, a, "r", "x", n)
    redis.stop()
    redis.start(extra=["--appendonly", "yes", "--appendfsync", "always"])

    async def set_six() -> bool:
        try:
            await put(session, a, "r", "x", 6)
        except AssertionError:
            return False
        return True

    # A's connection pool reconnects on its own.
    await eventually(set_six, within=20, every=0.2, what="a set on A with Redis back")
    for n in range(7, 11):
        await put(session, a, "r", "x", n)
    await eventually(lambda: last is not None and last.json()["value"] == 10, within=20,
                     what="the feed on B at 10")
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    redis.stop()
    assert "Redis pub/sub lost" in b.output()


def test_redis_down_at_start_is_one_clear_message(tmp_path: Path) -> None:
    """A Redis that does not answer at start-up: exit 1 with one line naming it."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, "-m", "motia_sse", "start", "--port", str(free_port()),
         "--steps", str(EXAMPLE_STEPS), "--redis", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    [line] = [x for x in done.stderr.splitlines() if x.startswith("motia-sse:")]
    assert line.startswith(f"motia-sse: cannot reach Redis at {url}: ")
    assert "Traceback" not in done.stderr


async def test_a_reconnect_storm_waits_for_redis_connections(
    make_client: ClientFactory, redis_settings: Settings
) -> None:
    """Hundreds of feeds opening at once (clients coming back after a restart) each get
    their snapshot: store reads queue for the bounded pool of Redis connections rather
    than fail past its size."""
    client = await make_client(attrs.evolve(redis_settings, max_feeds_per_client=1000))
    await client.app[RUNTIME].streams["progress"].set(
        "storm", "job", {"status": "running", "done": 1, "total": 2})
    url = str(client.make_url("/streams/progress/storm/job"))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def first_event(_: int) -> int:
            async with session.get(url) as response:
                assert response.status == 200
                return int((await SseReader(response).next(within=30)).json()["done"])

        assert await asyncio.gather(*map(first_event, range(400))) == [1] * 400


@pytest.fixture(name="forgetful_redis")
def _forgetful_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that keeps nothing on disk, to restart empty."""
    redis = RedisServer(tmp_path / "forgetful").start()
    yield redis
    redis.stop()


async def test_a_redis_restarted_empty_never_moves_a_client_back(
    forgetful_redis: RedisServer, cluster: Callable[..., ServerProcess],
    session: aiohttp.ClientSession
) -> None:
    """Redis loses everything; a multiplexed feed resumed with an id from before gets the
    item's new value, the group's new state and the delete of the row that vanished."""
    server = cluster(forgetful_redis.url)
    for n in range(5):
        await put(session, server, "g", "x", n)
    mark = await put(session, server, "g", "y", 9)
    forgetful_redis.stop()
    forgetful_redis.start()
    new = await put(session, server, "g", "x", 100)
    assert new > mark, "a version below the client's mark would read as old news"
    subs = "sub=cells/g/x&sub=cells/g&sub=cells/g/y"
    async with session.get(f"{server.url}/streams?{subs}",
                           headers={"Last-Event-ID": str(mark)}) as response:
        feed = SseReader(response)
        events = {e.event: e.json() for e in [await feed.next() for _ in range(3)]}
    assert events["item"]["data"]["value"] == 100
    assert [i["id"] for i in events["sync"]["items"]] == ["x"]
    assert events["item-delete"] == {"stream": "cells", "group": "g", "id": "y"}


async def test_sets_succeed_at_once_when_redis_is_back(
    forgetful_redis: RedisServer, cluster: Callable[..., ServerProcess],
    session: aiohttp.ClientSession
) -> None:
    """While Redis is down a set is a quick, clear 503; once it is back, every pooled
    connection from before reconnects by itself and concurrent sets all succeed."""
    server = cluster(forgetful_redis.url)

    async def put_many(value: int) -> list[int]:
        responses = await asyncio.gather(*(
            session.put(f"{server.url}/cells/many/{n}", json={"value": value})
            for n in range(30)))
        return [r.status for r in responses]

    assert await put_many(1) == [200] * 30  # the pool now holds many connections
    forgetful_redis.stop()
    down = await session.put(f"{server.url}/cells/many/0", json={"value": 2})
    assert down.status == 503
    assert down.headers["Retry-After"] == "5"
    body = await down.json()
    assert body["error"] == "store unavailable"
    assert body["trace_id"] == down.headers["x-trace-id"]
    forgetful_redis.start()
    assert await put_many(3) == [200] * 30
    assert "Traceback" not in server.output()


async def test_a_dropped_subscription_ends_the_feeds_even_when_redis_py_resubscribes(
    forgetful_redis: RedisServer, cluster: Callable[..., ServerProcess],
    session: aiohttp.ClientSession
) -> None:
    """Redis cuts the pub/sub connection (as it does a slow subscriber's) and redis-py
    reconnects by itself: changes published in between are lost to the process, so its
    feeds end and their clients resume with Last-Event-ID."""
    server = cluster(forgetful_redis.url)
    await put(session, server, "cut", "x", 1)
    async with session.get(f"{server.url}/streams/cells/cut/x") as response:
        feed = SseReader(response)
        assert (await feed.next()).json()["value"] == 1
        async with Redis.from_url(forgetful_redis.url) as redis:
            assert await redis.client_kill_filter(_type="pubsub") == 1
        with pytest.raises(EOFError):
            await _read_until_closed(feed)
    assert "Redis pub/sub lost" in server.output()
    resumed = await session.get(f"{server.url}/streams/cells/cut/x",
                                headers={"Last-Event-ID": feed.last_id or ""})
    await put(session, server, "cut", "x", 2)
    assert (await SseReader(resumed).next()).json()["value"] == 2
    resumed.close()


async def _read_until_closed(feed: SseReader) -> None:
    """Read heartbeats and events until the server ends the feed (EOFError)."""
    while True:
        await feed.next(within=10)


async def test_delta_feeds_on_either_process_rebuild_every_text(
    cluster: Callable[..., ServerProcess], session: aiohttp.ClientSession
) -> None:
    """A note grown by 300 sets on A (emoji, CJK, combining marks): delta feeds on B (which
    gets the changes from Redis) and on A, applying what they receive, end with exactly
    the text A set, as a plain feed on B does."""
    a, b = cluster(), cluster()
    grown = await session.post(f"{a.url}/notes/g/n/grow")
    assert grown.status == 200, await grown.text()
    paths = [(b, "/streams/notes/g/n?delta=1"), (b, "/streams/notes/g/n"),
             (a, "/streams/notes/g/n?delta=1")]
    feeds = [await open_raw(server.port, path) for server, path in paths]
    views = [DeltaView("item") for _ in feeds]
    for feed, view in zip(feeds, views, strict=True):
        assert feed.status == 200
        view.take(await feed.next())  # the note as it is
    grown = await session.post(f"{a.url}/notes/g/n/grow")
    assert grown.status == 200, await grown.text()
    final = await grown.json()
    for feed, view in zip(feeds, views, strict=True):
        for event in await feed.until(lambda e: e.own_id == str(final["version"]), within=30):
            view.take(event)
        assert view.item()["text"] == final["text"]
        await feed.close()
    assert views[0].deltas > 0, "the delta feed on B got deltas"
    assert views[2].deltas > 0, "the delta feed on A got deltas"
    assert views[1].deltas == 0
