"""Keeping a delivery's claim on the queue alive while its handler runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from motia_sse.queue.base import Delivery, EventQueue
from motia_sse.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Renewals per claim timeout: two may fail (a Redis blip) before the claim runs out.
RENEWALS_PER_TIMEOUT = 3


@contextlib.asynccontextmanager
async def renewing(queue: EventQueue, delivery: Delivery) -> AsyncIterator[None]:
    """Renew the delivery's claim (`queue.extend`) until the block ends, so that a
    handler running past the queue's claim timeout is not taken over and run twice.

    Only the worker holding a delivery renews it: a process that dies stops renewing,
    and its deliveries are taken over after the timeout as before."""
    timeout = queue.claim_timeout
    if timeout is None:
        yield
        return
    renewer = asyncio.create_task(_renew(queue, delivery, timeout / RENEWALS_PER_TIMEOUT),
                                  name=f"motia-sse-renew:{delivery.step}")
    try:
        yield
    finally:
        await cancel_and_wait(renewer)


async def _renew(queue: EventQueue, delivery: Delivery, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await queue.extend(delivery)
        except Exception as exc:  # the queue's server is away; the next try may reach it
            log.warning("cannot renew the claim on event %r for %r (%s)",
                        delivery.topic, delivery.step, exc)
