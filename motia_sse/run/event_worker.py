"""Runs event-step handlers for queued deliveries, a bounded number at a time (in all,
and per step where the step sets `concurrency`), each within its step's timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import attrs

from motia_sse.converter import structure
from motia_sse.exceptions import ValidationError
from motia_sse.metrics.meters import Meters
from motia_sse.queue.base import Delivery, EventQueue, RetryPolicy
from motia_sse.run.context import ContextFactory
from motia_sse.run.handler_call import run_handler
from motia_sse.run.loader import LoadedStep
from motia_sse.run.step_settings import StepDefaults, concurrency, handler_timeout, retry_policy
from motia_sse.run.tracebacks import describe
from motia_sse.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@attrs.define
class Worker:
    """Takes deliveries off the queue and runs each as its own task."""

    _queue: EventQueue
    _steps: dict[str, LoadedStep]
    _contexts: ContextFactory
    _max_concurrent: int
    # With metrics on: each handler run's duration, by step.
    _meters: Meters | None = None
    # What a step's own max_attempts, backoff and timeout fall back to.
    _defaults: StepDefaults = attrs.field(factory=StepDefaults)
    _running: set[asyncio.Task[None]] = attrs.field(factory=set)
    # (step, its concurrency) -> its handlers running at once; the limit is in the key
    # so that a reload changing it starts a fresh count (running ones keep the old).
    _step_slots: dict[tuple[str, int], asyncio.Semaphore] = attrs.field(factory=dict)
    _slots: asyncio.Semaphore = attrs.field(init=False)
    _dispatcher: asyncio.Task[None] | None = None

    def __attrs_post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self._max_concurrent)

    def start(self) -> None:
        """Begin taking deliveries."""
        self._dispatcher = asyncio.create_task(self._dispatch(), name="motia-sse-worker")

    async def stop(self, grace: float) -> None:
        """Take no more deliveries; give running handlers `grace` seconds, then cancel."""
        await cancel_and_wait(self._dispatcher)
        if self._running:
            log.info("waiting up to %ss for %d running handler(s)", grace, len(self._running))
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                log.warning("cancelling handler %s: shutdown timeout", task.get_name())
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def replace(self, steps: dict[str, LoadedStep], contexts: ContextFactory) -> None:
        """Run later deliveries with these steps (a reload); running ones go on as they are."""
        self._steps, self._contexts = steps, contexts

    @property
    def running(self) -> int:
        """Handlers running now."""
        return len(self._running)

    async def _dispatch(self) -> None:
        delay = 0.1
        while True:
            await self._slots.acquire()
            try:
                delivery = await self._queue.get()
            except Exception as exc:  # the queue's server is away; keep trying
                self._slots.release()
                log.warning("cannot take events (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except BaseException:
                self._slots.release()
                raise
            delay = 0.1
            name = f"{delivery.step}:{delivery.trace_id}"
            task = asyncio.create_task(self._run(delivery), name=name)
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _run(self, delivery: Delivery) -> None:
        try:
            async with self._step_slot(delivery.step):
                error = await self._handle(delivery)
            await self._settle(delivery, error)
        except Exception:  # the queue's server is away: the delivery is redelivered later
            log.exception("cannot settle event %r for %r", delivery.topic, delivery.step)

    async def _settle(self, delivery: Delivery, error: str | None) -> None:
        if error is None:
            await self._queue.ack(delivery)
        else:
            await self._queue.fail(delivery, error, self._policy(delivery.step))

    def _step_slot(self, name: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held while one of the step's handlers runs, if the step limits its concurrency.

        A delivery waiting here holds its global slot: the queue is one line for all
        steps, and taking more deliveries than --max-handlers would keep them from
        other processes (Redis) without running them."""
        step = self._steps.get(name)
        limit = None if step is None else concurrency(step.config)
        if limit is None:
            return contextlib.nullcontext()
        if (name, limit) not in self._step_slots:
            self._step_slots[name, limit] = asyncio.Semaphore(limit)
        return self._step_slots[name, limit]

    def _policy(self, name: str) -> RetryPolicy | None:
        """The step's attempts and back-off; None (the queue's own) for a step now gone."""
        step = self._steps.get(name)
        return None if step is None else retry_policy(step.config, self._defaults)

    async def _handle(self, delivery: Delivery) -> str | None:
        """Run the step's handler; the error to retry on, or None when done (or dropped)."""
        step = self._steps.get(delivery.step)
        if step is None:
            log.error("dropped event %r for unknown step %r", delivery.topic, delivery.step)
            return None
        ctx = self._contexts(step, delivery.trace_id)
        schema = getattr(step.config, "input", None)
        try:
            data = delivery.data if schema is None else structure(
                delivery.data, schema, f"input for step {step.name!r}")
        except ValidationError as exc:
            ctx.logger.error(f"dropped event {delivery.topic!r}: {exc.error}", details=exc.details)
            return None
        started = time.perf_counter()
        error = await run_handler(step, ctx, data, attempt=delivery.attempt,
                                  failed=f"handler failed on event {delivery.topic!r}",
                                  time_limit=handler_timeout(step.config, self._defaults))
        if self._meters is not None:
            self._meters.handler("event", step.name).observe(time.perf_counter() - started)
        return None if error is None else describe(error)
