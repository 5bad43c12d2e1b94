"""An event queue that counts what passes through it; used only with metrics on."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import attrs

from motia_sse.metrics.meters import Meters
from motia_sse.queue.base import DeadLetter, Delivery, EventQueue, RetryPolicy


@attrs.define
class CountedQueue:
    """Wraps any EventQueue: deliveries queued, retried and dead-lettered, by step."""

    _queue: EventQueue
    _meters: Meters
    # Tries a delivery gets when its step sets none (the queue's own RetryPolicy): a
    # failure of the last one is a dead letter, any earlier one a retry.
    _max_attempts: int

    async def put(self, delivery: Delivery) -> None:
        await self._queue.put(delivery)
        self._meters.queued[delivery.step] += 1

    @property
    def claim_timeout(self) -> float | None:
        """The wrapped queue's."""
        return self._queue.claim_timeout

    async def get(self, skip: AbstractSet[str] = frozenset()) -> Delivery:
        return await self._queue.get(skip)

    async def wake(self) -> None:
        await self._queue.wake()

    async def extend(self, delivery: Delivery) -> None:
        await self._queue.extend(delivery)

    async def ack(self, delivery: Delivery) -> None:
        await self._queue.ack(delivery)

    async def fail(self, delivery: Delivery, error: str,
                   policy: RetryPolicy | None = None) -> None:
        await self._queue.fail(delivery, error, policy)
        if delivery.attempt >= (self._max_attempts if policy is None else policy.max_attempts):
            self._meters.dead_lettered[delivery.step] += 1
        else:
            self._meters.retried[delivery.step] += 1

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self._queue.dead_letters(limit)

    async def close(self) -> None:
        await self._queue.close()
