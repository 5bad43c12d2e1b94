"""Runs event-step handlers for queued deliveries, a bounded number at a time (in all,
and per step where the step sets `concurrency`), each within its step's timeout, its
claim on the queue renewed while it runs."""

from __future__ import annotations

import asyncio
import logging
import time

import attrs

from motia_sse.converter import structure
from motia_sse.exceptions import ValidationError
from motia_sse.metrics.meters import Meters
from motia_sse.queue.base import Delivery, EventQueue, RetryPolicy
from motia_sse.run.claim_renewal import renewing
from motia_sse.run.context import ContextFactory
from motia_sse.run.handler_call import run_handler
from motia_sse.run.loader import LoadedStep
from motia_sse.run.step_settings import StepDefaults, concurrency, handler_timeout, retry_policy
from motia_sse.run.step_slots import StepSlots
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
    # Each step's running handlers; the queue skips the steps at their concurrency.
    _step_slots: StepSlots = attrs.field(factory=StepSlots)
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
                delivery = await self._queue.get(self._step_slots.full)
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
            # Counted now, not when the task starts: the next get() must already skip a
            # step this delivery fills.
            self._step_slots.take(delivery.step, self._concurrency(delivery.step))
            name = f"{delivery.step}:{delivery.trace_id}"
            task = asyncio.create_task(self._run(delivery), name=name)
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _run(self, delivery: Delivery) -> None:
        step = delivery.step
        try:
            try:
                async with renewing(self._queue, delivery):
                    error = await self._handle(delivery)
            finally:
                room = self._step_slots.release(step, self._concurrency(step))
            await self._settle(delivery, error)
        except Exception:  # the queue's server is away: the delivery is redelivered later
            log.exception("cannot settle event %r for %r", delivery.topic, step)
        if room:
            try:  # the dispatcher's get() may be waiting without this step
                await self._queue.wake()
            except Exception as exc:  # it looks again on its own soon enough
                log.warning("cannot wake the event queue (%s)", exc)

    async def _settle(self, delivery: Delivery, error: str | None) -> None:
        if error is None:
            await self._queue.ack(delivery)
        else:
            await self._queue.fail(delivery, error, self._policy(delivery.step))

    def _concurrency(self, name: str) -> int | None:
        """The step's own limit on its handlers at once, if it sets one.

        A step at its limit is skipped by the queue rather than parked here: a parked
        delivery would hold one of the --max-handlers slots (so a deep backlog of one
        step would starve the others), or, parked without one, be kept from other
        processes sharing the queue (Redis) without running."""
        step = self._steps.get(name)
        return None if step is None else concurrency(step.config)

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
