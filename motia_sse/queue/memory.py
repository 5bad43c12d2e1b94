"""The in-process queue: an asyncio.Queue, retries on timers, dead letters in memory.

Ordered events: the first delivery of a (step, group) goes on the queue, the later
ones wait in that group's line, outside it; settling the one that is out (ack, or
dead-lettering) puts the line's next on the queue. A retry keeps its group's line
waiting while its timer runs. Ungrouped deliveries never look at the lines.

The queue is a line per step, so that get() can pass over a step the caller skips (one
at its concurrency limit) in O(steps); it hands out the oldest head of the others.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Set as AbstractSet

import attrs

from motia_sse.queue.base import DeadLetter, Delivery, RetryPolicy

MAX_DEAD_LETTERS = 1000


@attrs.define
class MemoryQueue:
    """Deliveries in process memory, in the order they were emitted."""

    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    # step -> its runnable deliveries, each with its place in the order of arrival.
    _queue: dict[str, deque[tuple[int, Delivery]]] = attrs.field(factory=dict)
    _arrivals: itertools.count[int] = attrs.field(factory=itertools.count)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event)
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
        self._push(delivery)

    def _push(self, delivery: Delivery) -> None:
        """Make the delivery runnable, behind every one already runnable."""
        self._queue.setdefault(delivery.step, deque()).append((next(self._arrivals), delivery))
        self._changed.set()

    @property
    def claim_timeout(self) -> float | None:
        """Nothing is taken over within one process."""
        return None

    async def get(self, skip: AbstractSet[str] = frozenset()) -> Delivery:
        while True:
            self._changed.clear()
            heads = [line for step, line in self._queue.items() if line and step not in skip]
            if heads:
                return min(heads, key=lambda line: line[0][0]).popleft()[1]
            await self._changed.wait()

    async def wake(self) -> None:
        self._changed.set()

    async def extend(self, delivery: Delivery) -> None:
        """Nothing expires: nothing to renew."""

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
            self._push(line.popleft())
        else:
            self._lines.pop(key, None)

    async def fail(self, delivery: Delivery, error: str,
                   policy: RetryPolicy | None = None) -> None:
        policy = policy or self.policy
        if delivery.attempt >= policy.max_attempts:
            self._dead.append(DeadLetter(delivery.step, delivery.topic, delivery.data,
                                         delivery.trace_id, delivery.attempt, error,
                                         time.time(), delivery.group))
            self._release(delivery)
            return
        retry = attrs.evolve(delivery, attempt=delivery.attempt + 1)
        key = next(self._retry_ids)
        self._retries[key] = asyncio.get_running_loop().call_later(
            policy.delay(delivery.attempt), self._requeue, key, retry)

    def _requeue(self, key: int, delivery: Delivery) -> None:
        del self._retries[key]
        self._push(delivery)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(reversed(self._dead))[:limit]

    async def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
