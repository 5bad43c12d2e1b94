"""The in-process queue: an asyncio.Queue, retries on timers, dead letters in memory."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque

import attrs

from motia_sse.queue.base import DeadLetter, Delivery, RetryPolicy

MAX_DEAD_LETTERS = 1000


@attrs.define
class MemoryQueue:
    """Deliveries in process memory, in the order they were emitted."""

    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    _queue: asyncio.Queue[Delivery] = attrs.field(factory=asyncio.Queue)
    _retries: dict[int, asyncio.TimerHandle] = attrs.field(factory=dict)
    _retry_ids: itertools.count[int] = attrs.field(factory=itertools.count)
    _dead: deque[DeadLetter] = attrs.field(factory=lambda: deque(maxlen=MAX_DEAD_LETTERS))

    async def put(self, delivery: Delivery) -> None:
        self._queue.put_nowait(delivery)

    async def get(self) -> Delivery:
        return await self._queue.get()

    async def ack(self, delivery: Delivery) -> None:
        """Nothing to forget."""

    async def fail(self, delivery: Delivery, error: str) -> None:
        if delivery.attempt >= self.policy.max_attempts:
            self._dead.append(DeadLetter(delivery.step, delivery.topic, delivery.data,
                                         delivery.trace_id, delivery.attempt, error,
                                         time.time()))
            return
        retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
        key = next(self._retry_ids)
        self._retries[key] = asyncio.get_running_loop().call_later(
            self.policy.delay(delivery.attempt), self._requeue, key, retry)

    def _requeue(self, key: int, delivery: Delivery) -> None:
        del self._retries[key]
        self._queue.put_nowait(delivery)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(reversed(self._dead))[:limit]

    async def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
