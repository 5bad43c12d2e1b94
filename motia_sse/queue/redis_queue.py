"""Event steps on Redis Streams: one stream and consumer group per subscribing step.

At least once: an entry stays pending until its handler finishes (XACK). A failed
attempt is parked in a sorted set until its back-off has passed, then put back on its
stream; after the last attempt it goes to the dead-letter stream. Entries a dead
process was holding are claimed by another after the visibility timeout (XAUTOCLAIM).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import Any

import attrs
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from motia_sse.queue.base import DeadLetter, Delivery, RetryPolicy

GROUP = "workers"
MAX_DEAD_LETTERS = 10_000

# Move due retries back to their streams, atomically, so two processes cannot both.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
    local stream, fields = string.match(member, '^([^\\n]*)\\n(.*)$')
    redis.call('XADD', stream, '*', 'd', fields)
    redis.call('ZREM', KEYS[1], member)
end
return #due
"""


def _encode(delivery: Delivery, nonce: str | None = None) -> bytes:
    fields = {"s": delivery.step, "t": delivery.topic, "d": delivery.data,
              "r": delivery.trace_id, "a": delivery.attempt}
    if nonce is not None:
        fields["n"] = nonce  # keeps equal retries apart in the sorted set
    return orjson.dumps(fields)


def _decode(stream: bytes, entry_id: bytes, fields: dict[bytes, bytes]) -> Delivery:
    m = orjson.loads(fields[b"d"])
    return Delivery(m["s"], m["t"], m["d"], m["r"], m["a"], receipt=(stream, entry_id))


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
    _buffer: list[Delivery] = attrs.field(factory=list)
    _ready: bool = False
    _last_upkeep: float = 0.0
    _promote: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._promote = self._redis.register_script(_PROMOTE)

    def _stream(self, step: str) -> str:
        return f"{self._prefix}:queue:{step}"

    @property
    def _retry_key(self) -> str:
        return f"{self._prefix}:queue-retry"

    @property
    def _dead_key(self) -> str:
        return f"{self._prefix}:queue-dead"

    async def put(self, delivery: Delivery) -> None:
        await self._redis.xadd(self._stream(delivery.step), {"d": _encode(delivery)})

    async def get(self) -> Delivery:
        await self._ensure_groups()
        while not self._buffer:
            await self._upkeep()
            self._buffer += await self._read()
        return self._buffer.pop(0)

    async def ack(self, delivery: Delivery) -> None:
        stream, entry_id = delivery.receipt
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def fail(self, delivery: Delivery, error: str) -> None:
        stream, entry_id = delivery.receipt
        async with self._redis.pipeline(transaction=True) as pipe:
            if delivery.attempt >= self.policy.max_attempts:
                dead = DeadLetter(delivery.step, delivery.topic, delivery.data,
                                  delivery.trace_id, delivery.attempt, error, time.time())
                pipe.xadd(self._dead_key, {"d": orjson.dumps(attrs.asdict(dead))},
                          maxlen=MAX_DEAD_LETTERS, approximate=True)
            else:
                retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
                due = time.time() + self.policy.delay(delivery.attempt)
                member = stream + b"\n" + _encode(retry, uuid.uuid4().hex)
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

    async def _read(self) -> list[Delivery]:
        if not self._steps:
            await asyncio.sleep(3600)
            return []
        # Wake up often enough to promote retries and claim abandoned entries.
        block = int(min(1.0, self.visibility_timeout / 4) * 1000)
        streams: Any = {self._stream(step): ">" for step in self._steps}
        replies: Any = await self._redis.xreadgroup(GROUP, self._consumer, streams, count=1,
                                                    block=block)
        return [_decode(stream, entry_id, fields)
                for stream, entries in replies or [] for entry_id, fields in entries]

    async def _upkeep(self) -> None:
        now = time.time()
        if now - self._last_upkeep < min(1.0, self.visibility_timeout / 4):
            return
        self._last_upkeep = now
        await self._promote(keys=[self._retry_key], args=[now])
        idle = int(self.visibility_timeout * 1000)
        for step in self._steps:
            stream = self._stream(step)
            reply: Any = await self._redis.xautoclaim(stream, GROUP, self._consumer,
                                                      min_idle_time=idle, count=10)
            claimed = reply[1]
            self._buffer += [_decode(stream.encode(), entry_id, fields)
                             for entry_id, fields in claimed if fields]
