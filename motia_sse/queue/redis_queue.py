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

# Queue a grouped event; the first of an empty line also gets the line's token.
_PUT_GROUPED = """
if redis.call('RPUSH', KEYS[1], ARGV[1]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
end
"""

# The line's head (ARGV[1] its id) is settled: pop it, and give the next head a token.
_ADVANCE = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or string.sub(head, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\\n' then
    return 0
end
redis.call('LPOP', KEYS[1])
local next = redis.call('LINDEX', KEYS[1], 0)
if next then
    local id = string.match(next, '^([^\\n]*)\\n')
    redis.call('XADD', KEYS[2], '*', 'd', cjson.encode({s = ARGV[2], g = ARGV[3], i = id,
                                                        a = 1}))
end
return 1
"""


def _encode(delivery: Delivery, nonce: str | None = None) -> bytes:
    """A stream entry's fields: the delivery, or for a grouped one its line's token."""
    fields: dict[str, Any]
    if delivery.group is None:
        fields = {"s": delivery.step, "t": delivery.topic, "d": delivery.data,
                  "r": delivery.trace_id, "a": delivery.attempt}
    else:
        fields = {"s": delivery.step, "g": delivery.group, "i": delivery.event_id,
                  "a": delivery.attempt}
    if nonce is not None:
        fields["n"] = nonce  # keeps equal retries apart in the sorted set
    return orjson.dumps(fields)


def _decode(stream: bytes, entry_id: bytes, fields: dict[bytes, bytes]) -> Delivery:
    """The delivery, or a token: a grouped delivery whose event is still on its line."""
    m = orjson.loads(fields[b"d"])
    if "g" in m:
        return Delivery(m["s"], "", None, "", m["a"], receipt=(stream, entry_id),
                        group=m["g"], event_id=m["i"])
    return Delivery(m["s"], m["t"], m["d"], m["r"], m["a"], receipt=(stream, entry_id))


def _line_entry(delivery: Delivery) -> bytes:
    """A grouped event as its line holds it: its id, a newline, its fields."""
    assert delivery.event_id is not None
    fields = {"t": delivery.topic, "d": delivery.data, "r": delivery.trace_id}
    return delivery.event_id.encode() + b"\n" + orjson.dumps(fields)


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
    _put_grouped: Any = attrs.field(init=False)
    _advance: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._promote = self._redis.register_script(_PROMOTE)
        self._put_grouped = self._redis.register_script(_PUT_GROUPED)
        self._advance = self._redis.register_script(_ADVANCE)

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
            await self._redis.xadd(stream, {"d": _encode(delivery)})
            return
        grouped = attrs.evolve(delivery, event_id=uuid.uuid4().hex)
        await self._put_grouped(keys=[self._line(delivery.step, delivery.group), stream],
                                args=[_line_entry(grouped), _encode(grouped)])

    async def get(self) -> Delivery:
        await self._ensure_groups()
        while True:
            while not self._buffer:
                await self._upkeep()
                self._buffer += await self._read()
            delivery = self._buffer.pop(0)
            if delivery.group is None:
                return delivery
            head = await self._head(delivery)
            if head is not None:
                return head

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
                                  delivery.trace_id, delivery.attempt, error, time.time())
                pipe.xadd(self._dead_key, {"d": orjson.dumps(attrs.asdict(dead))},
                          maxlen=MAX_DEAD_LETTERS, approximate=True)
                await self._release(pipe, delivery)
            else:
                retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
                due = time.time() + policy.delay(delivery.attempt)
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
