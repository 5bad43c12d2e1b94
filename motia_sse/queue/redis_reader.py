"""This process's consumer in the Redis queue's group: what it reads, claims and renews.

It keeps the entries it has read (or claimed) and not handed out yet, so that get()
reads only the streams of steps not skipped, and a step at its concurrency limit leaves
its entries to processes with room; `wake` cuts a blocked read short (CLIENT UNBLOCK)
when a step has room again. Its upkeep, every so often between reads, moves due retries
back to their streams, renews the claim of each entry it holds (`extend`, an XCLAIM to
itself that restarts the entry's idle time, so only a silent process's entries are taken
over) and claims those a silent process left past the visibility timeout (XAUTOCLAIM).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Set as AbstractSet
from typing import Any

import attrs
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from motia_sse.queue.base import Delivery
from motia_sse.queue.redis_layout import EXTEND, GROUP, PROMOTE, RedisKeys, decode


@attrs.define
class StreamReader:
    """Reads the steps' streams as `consumer`, one of the group every process reads in."""

    _redis: Redis
    _keys: RedisKeys
    _steps: list[str]
    _consumer: str
    # Seconds an entry may stay with a silent consumer before another claims it.
    _visibility_timeout: float
    # Entries read (or claimed) and not handed out yet: a skipped step's wait here.
    _buffer: list[Delivery] = attrs.field(factory=list)
    _ready: bool = False
    _last_upkeep: float = 0.0
    # The connection of the blocking read under way, which `wake` unblocks.
    _reader_id: int | None = None
    _woken: asyncio.Event = attrs.field(factory=asyncio.Event)
    _promote: Any = attrs.field(init=False)
    _extend: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._promote = self._redis.register_script(PROMOTE)
        self._extend = self._redis.register_script(EXTEND)

    async def next(self, skip: AbstractSet[str]) -> Delivery:
        """The next delivery, or token, of a step not skipped: held already, claimed or read."""
        await self._ensure_groups()
        delivery = self._buffered(skip)
        while delivery is None:
            self._woken.clear()
            await self._upkeep(skip)
            self._buffer += await self._read(skip)
            delivery = self._buffered(skip)
        return delivery

    async def wake(self) -> None:
        """Cut the read under way short: a step may have room again."""
        self._woken.set()
        if self._reader_id is not None:
            # As if the read's block had run out: it returns nothing, and next() looks again.
            await self._redis.client_unblock(self._reader_id)

    async def extend(self, delivery: Delivery) -> None:
        """Renew this consumer's claim of `delivery`, if it still holds it."""
        stream, entry_id = delivery.receipt
        await self._extend(keys=[stream], args=[GROUP, self._consumer, entry_id])

    def _buffered(self, skip: AbstractSet[str]) -> Delivery | None:
        """The first buffered delivery of a step not skipped, taken out of the buffer."""
        for i, delivery in enumerate(self._buffer):
            if delivery.step not in skip:
                return self._buffer.pop(i)
        return None

    async def _ensure_groups(self) -> None:
        if self._ready:
            return
        for step in self._steps:
            try:
                # From the stream's start: events emitted before any worker ran count.
                await self._redis.xgroup_create(self._keys.stream(step), GROUP, id="0",
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
        block = min(1.0, self._visibility_timeout / 4)
        streams: Any = {self._keys.stream(step): ">" for step in self._steps
                        if step not in skip}
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
        if now - self._last_upkeep < min(1.0, self._visibility_timeout / 4):
            return
        self._last_upkeep = now
        await self._promote(keys=[self._keys.retry], args=[now])
        for waiting in self._buffer:  # still ours, though not handed out yet
            await self.extend(waiting)
        idle = int(self._visibility_timeout * 1000)
        for step in self._steps:
            if step in skip:  # its entries wait for a process with room
                continue
            stream = self._keys.stream(step)
            reply: Any = await self._redis.xautoclaim(stream, GROUP, self._consumer,
                                                      min_idle_time=idle, count=10)
            claimed = reply[1]
            self._buffer += [decode(stream.encode(), entry_id, fields)
                             for entry_id, fields in claimed if fields]
