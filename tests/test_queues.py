"""Event queues: at-least-once delivery, retries with back-off, dead letters, claims."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from motia_sse.queue.base import Delivery, EventQueue, RetryPolicy
from motia_sse.queue.memory import MemoryQueue
from motia_sse.queue.redis_queue import RedisQueue
from motia_sse.queue.sqlite_queue import SqliteQueue
from tests.conftest import RedisServer
from tests.polling import eventually
from tests.queue_taking import take_within

FAST = RetryPolicy(max_attempts=3, backoff=0.05)
MakeQueue = Callable[..., EventQueue]


@pytest.fixture(name="make_queue", params=["memory", "sqlite", "redis"])
async def _make_queue(request: pytest.FixtureRequest,
                      tmp_path: Path) -> AsyncIterator[MakeQueue]:
    """Queues of one kind; redis queues made here share one prefix (one cluster)."""
    if request.param in ("memory", "sqlite"):
        shared: EventQueue = (MemoryQueue(FAST) if request.param == "memory"
                              else SqliteQueue.open(tmp_path / "q.sqlite3", FAST))
        yield lambda **_: shared
        await shared.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis = Redis.from_url(server.url)
    prefix = f"test-{uuid.uuid4().hex[:10]}"

    def make(visibility_timeout: float = 60.0) -> EventQueue:
        return RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout)

    yield make
    await redis.aclose()


def event(n: int) -> Delivery:
    """A delivery for step `Step`."""
    return Delivery("Step", "topic", {"n": n}, f"trace-{n}")


async def take(queue: EventQueue, within: float = 5.0) -> Delivery:
    """The next delivery, or TimeoutError."""
    delivery = await take_within(queue, within)
    if delivery is None:
        raise TimeoutError(f"no delivery within {within}s")
    return delivery


async def drain(queue: EventQueue, within: float) -> list[Delivery]:
    """Every delivery that arrives within `within` seconds."""
    got: list[Delivery] = []
    try:
        while True:
            got.append(await take(queue, within))
    except TimeoutError:
        return got


async def test_each_event_once_across_consumers(make_queue: MakeQueue) -> None:
    """Two consumers of one queue: every event is handled exactly once when none fails."""
    first, second = make_queue(), make_queue()
    for n in range(20):
        await first.put(event(n))
    seen: list[int] = []

    async def consume(queue: EventQueue) -> None:
        while True:
            delivery = await queue.get()
            seen.append(delivery.data["n"])
            await queue.ack(delivery)

    consumers = [asyncio.create_task(consume(q)) for q in (first, second)]
    await eventually(lambda: len(seen) >= 20, every=0.01, what="20 events handled")
    await asyncio.sleep(0.3)  # time enough for a duplicate to show up
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    assert sorted(seen) == list(range(20))
    assert await drain(second, 0.3) == []


async def test_failures_retry_with_backoff_then_dead_letter(make_queue: MakeQueue) -> None:
    """A delivery that keeps failing is retried up to max_attempts, then dead-lettered."""
    queue = make_queue()
    await queue.put(event(1))
    attempts = []
    for _ in range(FAST.max_attempts):
        delivery = await take(queue)
        attempts.append(delivery.attempt)
        await queue.fail(delivery, f"RuntimeError: try {delivery.attempt}")
    assert attempts == [1, 2, 3]
    assert await drain(queue, 0.5) == []
    [dead] = await queue.dead_letters()
    assert (dead.step, dead.topic, dead.data, dead.trace_id) == ("Step", "topic", {"n": 1},
                                                                 "trace-1")
    assert (dead.attempts, dead.error) == (3, "RuntimeError: try 3")


async def test_a_retry_succeeds(make_queue: MakeQueue) -> None:
    """A delivery that fails once and then succeeds is not dead-lettered."""
    queue = make_queue()
    await queue.put(event(2))
    await queue.fail(await take(queue), "flaky")
    retry = await take(queue)
    assert (retry.attempt, retry.data) == (2, {"n": 2})
    await queue.ack(retry)
    assert await drain(queue, 0.3) == []
    assert await queue.dead_letters() == []


async def test_abandoned_delivery_is_claimed(redis_server: RedisServer) -> None:
    """An entry taken by a consumer that never settles it goes to another after the
    visibility timeout."""
    redis = Redis.from_url(redis_server.url)
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    dead_worker = RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout=0.5)
    survivor = RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout=0.5)
    await dead_worker.put(event(3))
    taken = await take(dead_worker)  # ... and then its process dies
    claimed = await take(survivor, within=10)
    assert (claimed.data, claimed.trace_id) == (taken.data, taken.trace_id)
    await survivor.ack(claimed)
    assert await drain(survivor, 1.5) == []
    await redis.aclose()


async def test_events_emitted_before_any_worker_are_kept(redis_server: RedisServer) -> None:
    """Events put while no process consumes are delivered when one starts."""
    redis = Redis.from_url(redis_server.url)
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    producer = RedisQueue(redis, prefix, ["Step"], FAST)
    await producer.put(event(4))
    late: Any = RedisQueue(redis, prefix, ["Step"], FAST)
    assert (await take(late)).data == {"n": 4}
    await redis.aclose()


async def test_sqlite_queue_keeps_events_across_a_crash(tmp_path: Path) -> None:
    """Queued, taken and retrying events all survive closing the file unfinished."""
    path = tmp_path / "q.sqlite3"
    before = SqliteQueue.open(path, FAST)
    for n in range(3):
        await before.put(event(n))
    taken = await take(before)  # its handler was running when the process died
    await before.fail(await take(before), "flaky")  # waiting out its back-off
    before._db.close()  # no ack, no goodbye: as after SIGKILL

    after = SqliteQueue.open(path, FAST)
    got = await drain(after, 0.5)
    assert sorted(d.data["n"] for d in got) == [0, 1, 2]
    assert {d.data["n"]: d.attempt for d in got}[1] == 2
    assert taken.data["n"] == 0
    for delivery in got:
        await after.ack(delivery)
    assert after.pending() == 0
    await after.close()
