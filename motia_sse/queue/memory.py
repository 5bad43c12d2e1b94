"""The embedded queue: an asyncio.Queue in this process."""

from __future__ import annotations

import asyncio

import attrs

from motia_sse.queue.base import Delivery


@attrs.define
class MemoryQueue:
    """Deliveries in process memory, in the order they were emitted."""

    _queue: asyncio.Queue[Delivery] = attrs.field(factory=asyncio.Queue)

    async def put(self, delivery: Delivery) -> None:
        self._queue.put_nowait(delivery)

    async def get(self) -> Delivery:
        return await self._queue.get()

    async def close(self) -> None:
        """Nothing to release."""

    def qsize(self) -> int:
        """Deliveries waiting."""
        return self._queue.qsize()
