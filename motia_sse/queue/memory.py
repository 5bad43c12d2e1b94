"""The in-process queue: an asyncio.Queue, retries on timers, dead letters in memory.

Ordered events: the first delivery of a (step, group) goes on the queue, the later
ones wait in that group's line, outside it; settling the one that is out (ack, or
dead-lettering) puts the line's next on the queue. A retry keeps its group's line
waiting while its timer runs. Ungrouped deliveries never look at the lines.
"""

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
    # (step, group) -> the group's deliveries behind the one that is out; a group is
    # held while it has a key here.
    _lines: dict[tuple[str, str], deque[Delivery]] = attrs.field(factory=dict)

    async def put(self, delivery: Delivery) -> None:
        if delivery.group is not None:
            line = self._lines.get((delivery.step, delivery.group))
            if line is not None:
                line.append(delivery)
                return
            self._lines[delivery.step, delivery.group] = deque()
        self._queue.put_nowait(delivery)

    async def get(self) -> Delivery:
        return await self._queue.get()

    async def ack(self, delivery: Delivery) -> None:
        """Nothing to forget, but a group to let go on."""
        self._release(delivery)

    def _release(self, delivery: Delivery) -> None:
        """The group's next delivery (if any) goes on the queue: this one is settled."""
        if delivery.group is None:
            return
        key = delivery.step, delivery.group
        line = self._lines.get(key)
        if line:
            self._queue.put_nowait(line.popleft())
        else:
            self._lines.pop(key, None)

    async def fail(self, delivery: Delivery, error: str,
                   policy: RetryPolicy | None = None) -> None:
        policy = policy or self.policy
        if delivery.attempt >= policy.max_attempts:
            self._dead.append(DeadLetter(delivery.step, delivery.topic, delivery.data,
                                         delivery.trace_id, delivery.attempt, error,
                                         time.time()))
            self._release(delivery)
            return
        retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
        key = next(self._retry_ids)
        self._retries[key] = asyncio.get_running_loop().call_later(
            policy.delay(delivery.attempt), self._requeue, key, retry)

    def _requeue(self, key: int, delivery: Delivery) -> None:
        del self._retries[key]
        self._queue.put_nowait(delivery)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(reversed(self._dead))[:limit]

    async def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
