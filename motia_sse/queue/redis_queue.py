"""Event steps on Redis Streams: one stream and consumer group per subscribing step.

At least once: an entry stays pending until its handler finishes (XACK). A failed
attempt is parked in a sorted set until its back-off has passed, then put back on its
stream; after the last attempt it goes to the dead-letter stream. Entries a dead
process was holding are claimed by another after the visibility timeout (XAUTOCLAIM).

Ordered events: a grouped event goes onto its (step, group)'s line, a Redis list in
emit order, as "<event id>\n<fields>"; the step's stream carries at most one *token*
per line, naming the line's head. Whoever reads the token runs the head; settling it
(ack, or dead-lettering) pops the head and adds the next head's token, atomically (a
Lua script inside the same MULTI as the XACK). A failing head's token waits in the
retry set like any retry, so the group waits with it; a dead process's token is
claimed after the visibility timeout like any entry, and its head runs again (at least
once, still in order). A token whose event is no longer the head (its handler outlived
the visibility timeout and another took over) is dropped unrun, and the pop checks the
head's id, so a late settle cannot pop an event that has not run.

Reading, claiming and renewing claims (long handlers, skipped steps) are this process's
consumer's: redis_reader.py.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Set as AbstractSet
from typing import Any

import attrs
import orjson
from redis.asyncio import Redis

from motia_sse.queue.base import DeadLetter, Delivery, RetryPolicy
from motia_sse.queue.redis_layout import (
    ADVANCE,
    GROUP,
    PUT_GROUPED,
    RedisKeys,
    encode,
    line_entry,
)
from motia_sse.queue.redis_reader import StreamReader

MAX_DEAD_LETTERS = 10_000


@attrs.define
class RedisQueue:
    """Deliveries in Redis Streams, shared by every server process."""

    _redis: Redis
    _prefix: str
    _steps: list[str]
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    # Seconds an entry may stay with a silent consumer before another claims it. Set once:
    # the reader has it.
    visibility_timeout: float = attrs.field(default=60.0, on_setattr=attrs.setters.frozen)
    _consumer: str = attrs.field(
        factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    _keys: RedisKeys = attrs.field(init=False)
    _reader: StreamReader = attrs.field(init=False)
    _put_grouped: Any = attrs.field(init=False)
    _advance: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._keys = RedisKeys(self._prefix)
        self._reader = StreamReader(self._redis, self._keys, self._steps, self._consumer,
                                    self.visibility_timeout)
        self._put_grouped = self._redis.register_script(PUT_GROUPED)
        self._advance = self._redis.register_script(ADVANCE)

    @property
    def claim_timeout(self) -> float | None:
        """The visibility timeout: a claim not renewed for that long is taken over."""
        return self.visibility_timeout

    async def put(self, delivery: Delivery) -> None:
        stream = self._keys.stream(delivery.step)
        if delivery.group is None:
            await self._redis.xadd(stream, {"d": encode(delivery)})
            return
        grouped = attrs.evolve(delivery, event_id=uuid.uuid4().hex)
        await self._put_grouped(keys=[self._keys.line(delivery.step, delivery.group), stream],
                                args=[line_entry(grouped), encode(grouped)])

    async def get(self, skip: AbstractSet[str] = frozenset()) -> Delivery:
        while True:
            delivery = await self._reader.next(skip)
            if delivery.group is None:
                return delivery
            head = await self._head(delivery)
            if head is not None:
                return head

    async def wake(self) -> None:
        await self._reader.wake()

    async def extend(self, delivery: Delivery) -> None:
        await self._reader.extend(delivery)

    async def _head(self, token: Delivery) -> Delivery | None:
        """The event a token stands for, or None (and the token gone) if it is stale."""
        assert token.group is not None
        head: Any = await self._redis.lindex(self._keys.line(token.step, token.group), 0)
        event_id, _, fields = (head or b"").partition(b"\n")
        if event_id.decode() != token.event_id:
            stream, entry_id = token.receipt
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, GROUP, entry_id)
                pipe.xdel(stream, entry_id)
                await pipe.execute()
            return None
        m = orjson.loads(fields)
        return attrs.evolve(token, topic=m["t"], data=m["d"], trace_id=m["r"])

    async def _release(self, pipe: Any, delivery: Delivery) -> None:
        """In `pipe`: the delivery is settled for good; its group's next may go."""
        if delivery.group is not None:
            await self._advance(keys=[self._keys.line(delivery.step, delivery.group),
                                      self._keys.stream(delivery.step)],
                                args=[delivery.event_id, delivery.step, delivery.group],
                                client=pipe)

    async def ack(self, delivery: Delivery) -> None:
        stream, entry_id = delivery.receipt
        async with self._redis.pipeline(transaction=True) as pipe:
            await self._release(pipe, delivery)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def fail(self, delivery: Delivery, error: str,
                   policy: RetryPolicy | None = None) -> None:
        policy = policy or self.policy
        stream, entry_id = delivery.receipt
        async with self._redis.pipeline(transaction=True) as pipe:
            if delivery.attempt >= policy.max_attempts:
                dead = DeadLetter(delivery.step, delivery.topic, delivery.data,
                                  delivery.trace_id, delivery.attempt, error, time.time(),
                                  delivery.group)
                pipe.xadd(self._keys.dead, {"d": orjson.dumps(attrs.asdict(dead))},
                          maxlen=MAX_DEAD_LETTERS, approximate=True)
                await self._release(pipe, delivery)
            else:
                retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
                due = time.time() + policy.delay(delivery.attempt)
                member = stream + b"\n" + encode(retry, uuid.uuid4().hex)
                pipe.zadd(self._keys.retry, {member: due})
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        entries: Any = await self._redis.xrevrange(self._keys.dead, count=limit)
        return [DeadLetter(**orjson.loads(fields[b"d"])) for _, fields in entries]

    async def close(self) -> None:
        """The connection belongs to the backend, which closes it."""
