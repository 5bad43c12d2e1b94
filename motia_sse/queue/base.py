"""What travels on the event queue, and what a queue must do."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any, Protocol

import attrs


@attrs.frozen
class Delivery:
    """One event for one subscribing step, with the trace it belongs to."""

    step: str
    topic: str
    data: Any
    trace_id: str
    # 1 on the first try; the queue counts retries.
    attempt: int = 1
    # The queue's handle on this delivery (a Redis stream entry id, ...).
    receipt: Any = attrs.field(default=None, eq=False)
    # The message group (`emit(..., message_group_id=...)`): the queue hands out a
    # group's deliveries for one step one at a time, in emit order; None: unordered.
    group: str | None = None
    # The queue's id of a grouped event, the same on every attempt (Redis checks with
    # it that the group's head is still the event being settled).
    event_id: str | None = attrs.field(default=None, eq=False)


@attrs.frozen
class DeadLetter:
    """A delivery that failed every attempt, kept for inspection."""

    step: str
    topic: str
    data: Any
    trace_id: str
    attempts: int
    error: str
    failed_at: float
    # The event's message group (None: ungrouped); last, so older records still load.
    group: str | None = None


@attrs.frozen
class RetryPolicy:
    """How often a failing handler is tried, and how long to wait in between."""

    max_attempts: int = 3
    # Seconds before the first retry; doubles each time.
    backoff: float = 0.5
    max_backoff: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt`."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))


class EventQueue(Protocol):
    """Carries deliveries from `emit` to the workers, at least once.

    Ordered events: a delivery with a `group` is not handed out while an earlier one of
    the same (step, group) is out, waiting for its retry, or still queued; `ack` (or
    the dead-lettering `fail`) lets the group's next one go. A failing event thus holds
    its group until it succeeds or is dead-lettered."""

    async def put(self, delivery: Delivery) -> None:
        """Enqueue; returns once the delivery is accepted."""
        ...

    @property
    def claim_timeout(self) -> float | None:
        """Seconds a delivery handed out stays the caller's without `extend`, before
        another process may take it over; None: until the process ends."""
        ...

    async def get(self, skip: AbstractSet[str] = frozenset()) -> Delivery:
        """Wait for the next delivery; it stays the caller's until ack or fail.

        `skip`: steps whose deliveries stay queued (for other processes, or for later),
        a live set re-read on each look; `wake` makes a waiting get() look again."""
        ...

    async def wake(self) -> None:
        """A step left `skip`: a waiting get() looks again now."""
        ...

    async def extend(self, delivery: Delivery) -> None:
        """The caller still holds the delivery: its claim starts a new `claim_timeout`.

        A delivery another process has taken over meanwhile stays with that one."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """The delivery was handled (or dropped on purpose): forget it."""
        ...

    async def fail(self, delivery: Delivery, error: str,
                   policy: RetryPolicy | None = None) -> None:
        """The handler failed: retry later, or dead-letter after the last attempt.

        `policy`: the failing step's own attempts and back-off; None, the queue's."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        ...

    async def close(self) -> None:
        """Release what the queue holds open."""
        ...
