"""What travels on the event queue, and what a queue must do."""

from __future__ import annotations

from typing import Any, Protocol

import attrs


@attrs.frozen
class Delivery:
    """One event for one subscribing step, with the trace it belongs to."""

    step: str
    topic: str
    data: Any
    trace_id: str


class EventQueue(Protocol):
    """Carries deliveries from `emit` to the worker."""

    async def put(self, delivery: Delivery) -> None:
        """Enqueue; returns once the delivery is accepted."""
        ...

    async def get(self) -> Delivery:
        """Wait for the next delivery."""
        ...

    async def close(self) -> None:
        """Release what the queue holds open."""
        ...
