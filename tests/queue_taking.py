"""Taking a delivery off a queue within a time, for the queue tests."""

from __future__ import annotations

import asyncio

from motia_sse.queue.base import Delivery, EventQueue
from motia_sse.tasks import cancel_and_wait


async def take_within(queue: EventQueue, within: float) -> Delivery | None:
    """The next delivery, or None if none comes within `within` seconds.

    Not `asyncio.timeout`: redis-py can swallow a cancellation mid-command and go on
    waiting (motia_sse.tasks), so a timed-out get would run on past its time, long enough
    for a claim to expire; the get is cancelled until it has stopped instead. A delivery
    it got while being cancelled is still returned: no event vanishes in a test."""
    task = asyncio.ensure_future(queue.get())
    await asyncio.wait({task}, timeout=within)
    if not task.done():
        await cancel_and_wait(task)
    return None if task.cancelled() else task.result()
