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

Long handlers: the worker renews the claim of each delivery it holds (`extend`, an
XCLAIM to itself that restarts the entry's idle time), so only a silent process's
entries are taken over. Skipped steps: get() reads only the other steps' streams, so a
step at its concurrency limit leaves its entries to processes with room; `wake` cuts a
blocked read short (CLIENT UNBLOCK) when a step has room again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Set as AbstractSet
from typing import Any

import attrs
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from motia_sse.queue.base import DeadLetter, Delivery, RetryPolicy
from motia_sse.queue.redis_layout import (
    ADVANCE,
    EXTEND,
    PROMOTE,
    PUT_GROUPED,
    decode,
    encode,
    line_entry,
)

GROUP = "workers"
MAX_DEAD_LETTERS = 10_000


@attrs.define
class RedisQueue:
    """Deliveries in Redis Streams, shared by every server process."""

    _redis: Redis
    _prefix: str
    _steps: list[str]
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    # Seconds an entry may stay with a silent consumer before another claims it.
    visibility_timeout: float = 60.0
    _consumer: str = attrs.field(
        factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    # Entries read (or claimed) and not handed out yet: a skipped step's wait here.
    _buffer: list[Delivery] = attrs.field(factory=list)
    _ready: bool = False
    _last_upkeep: float = 0.0
    # The connection of the blocking read under way, which `wake` unblocks.
    _reader_id: int | None = None
    _woken: asyncio.Event = attrs.field(factory=asyncio.Event)
    _promote: Any = attrs.field(init=False)
    _put_grouped: Any = attrs.field(init=False)
    _advance: Any = attrs.field(init=False)
    _extend: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._promote = self._redis.register_script(PROMOTE)
        self._put_grouped = self._redis.register_script(PUT_GROUPED)
        self._advance = self._redis.register_script(ADVANCE)
        self._extend = self._redis.register_script(EXTEND)

    @property
    def claim_timeout(self) -> float | None:
        """The visibility timeout: a claim not renewed for that long is taken over."""
        return self.visibility_timeout

    def _stream(self, step: str) -> str:
        return f"{self._prefix}:queue:{step}"

    def _line(self, step: str, group: str) -> str:
        # The step's length keeps ("a:b", "c") and ("a", "b:c") apart.
        return f"{self._prefix}:queue-line:{len(step)}:{step}:{group}"

    @property
    def _retry_key(self) -> str:
        return f"{self._prefix}:queue-retry"

    @property
    def _dead_key(self) -> str:
        return f"{self._prefix}:queue-dead"

    async def put(self, delivery: Delivery) -> None:
        stream = self._stream(delivery.step)
        if delivery.group is None:
            await self._redis.xadd(stream, {"d": encode(delivery)})
            return
        grouped = attrs.evolve(delivery, event_id=uuid.uuid4().hex)
        await self._put_grouped(keys=[self._line(delivery.step, delivery.group), stream],
                                args=[line_entry(grouped), encode(grouped)])

    async def get(self, skip: AbstractSet[str] = frozenset()) -> Delivery:
        await self._ensure_groups()
        while True:
            delivery = self._buffered(skip)
            while delivery is None:
                self._woken.clear()
                await self._upkeep(skip)
                self._buffer += await self._read(skip)
                delivery = self._buffered(skip)
            if delivery.group is None:
                return delivery
            head = await self._head(delivery)
            if head is not None:
                return head

    def _buffered(self, skip: AbstractSet[str]) -> Delivery | None:
        """The first buffered delivery of a step not skipped, taken out of the buffer."""
        for i, delivery in enumerate(self._buffer):
            if delivery.step not in skip:
                return self._buffer.pop(i)
        return None

    async def wake(self) -> None:
        self._woken.set()
        if self._reader_id is not None:
            # As if the read's block had run out: it returns nothing, and get() looks again.
            await self._redis.client_unblock(self._reader_id)

    async def extend(self, delivery: Delivery) -> None:
        stream, entry_id = delivery.receipt
        await self._extend(keys=[stream], args=[GROUP, self._consumer, entry_id])

    async def _head(self, token: Delivery) -> Delivery | None:
        """The event a token stands for, or None (and the token gone) if it is stale."""
        assert token.group is not None
        head: Any = await self._redis.lindex(self._line(token.step, token.group), 0)
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
            await self._advance(keys=[self._line(delivery.step, delivery.group),
                                      self._stream(delivery.step)],
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
                pipe.xadd(self._dead_key, {"d": orjson.dumps(attrs.asdict(dead))},
                          maxlen=MAX_DEAD_LETTERS, approximate=True)
                await self._release(pipe, delivery)
            else:
                retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
                due = time.time() + policy.delay(delivery.attempt)
                member = stream + b"\n" + encode(retry, uuid.uuid4().hex)
                pipe.zadd(self._retry_key, {member: due})
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        entries: Any = await self._redis.xrevrange(self._dead_key, count=limit)
        return [DeadLetter(**orjson.loads(fields[b"d"])) for _, fields in entries]

    async def close(self) -> None:
        """The connection belongs to the backend, which closes it."""

    async def _ensure_groups(self) -> None:
        if self._ready:
            return
        for step in self._steps:
            try:
                # From the stream's start: events emitted before any worker ran count.
                await self._redis.xgroup_create(self._stream(step), GROUP, id="0",
                                                mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ready = True

    async def _read(self, skip: AbstractSet[str]) -> list[Delivery]:
        if not self._steps:
            await asyncio.sleep(3600)
            return []
        # Wake up often enough to promote retries and claim abandoned entries.
        block = min(1.0, self.visibility_timeout / 4)
        streams: Any = {self._stream(step): ">" for step in self._steps if step not in skip}
        if not streams:  # every step skipped: nothing to read until one has room
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), block)
            return []
        # Without BLOCK first: a busy queue answers at once, without the reader's id.
        replies: Any = await self._redis.xreadgroup(GROUP, self._consumer, streams, count=1)
        if not replies:
            replies = await self._blocking_read(streams, block)
        return [decode(stream, entry_id, fields)
                for stream, entries in replies or [] for entry_id, fields in entries]

    async def _blocking_read(self, streams: Any, block: float) -> Any:
        """XREADGROUP waiting up to `block` s for an entry, on a connection `wake` unblocks."""
        reader = self._redis.client()  # one pooled connection, named by its id
        try:
            self._reader_id = int(await reader.client_id())
            if self._woken.is_set():  # woken before the id was known: look again now
                return None
            return await reader.xreadgroup(GROUP, self._consumer, streams, count=1,
                                           block=int(block * 1000))
        finally:
            self._reader_id = None
            await reader.aclose()

    async def _upkeep(self, skip: AbstractSet[str]) -> None:
        now = time.time()
        if now - self._last_upkeep < min(1.0, self.visibility_timeout / 4):
            return
        self._last_upkeep = now
        await self._promote(keys=[self._retry_key], args=[now])
        for waiting in self._buffer:  # still ours, though not handed out yet
            await self.extend(waiting)
        idle = int(self.visibility_timeout * 1000)
        for step in self._steps:
            if step in skip:  # its entries wait for a process with room
                continue
            stream = self._stream(step)
            reply: Any = await self._redis.xautoclaim(stream, GROUP, self._consumer,
                                                      min_idle_time=idle, count=10)
            claimed = reply[1]
            self._buffer += [decode(stream.encode(), entry_id, fields)
                             for entry_id, fields in claimed if fields]
