"""Cron steps: run each handler on its schedule; with Redis, once per tick in all."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import attrs
from croniter import croniter

from motia_sse.metrics.meters import Meters
from motia_sse.run.context import ContextFactory, new_trace_id
from motia_sse.run.handler_call import run_handler
from motia_sse.run.loader import LoadedStep
from motia_sse.run.step_settings import StepDefaults, handler_timeout, retry_policy
from motia_sse.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# (step name, tick as epoch seconds) -> whether this process runs that tick.
ClaimTick = Callable[[str, int], Awaitable[bool]]


async def always(step: str, tick: int) -> bool:
    """One process: every tick is ours."""
    del step, tick
    return True


@attrs.define
class CronScheduler:
    """Sleeps until the next tick of any cron step, then runs what is due."""

    _steps: list[LoadedStep]
    _contexts: ContextFactory
    _claim: ClaimTick = always
    # With metrics on: runs by step and outcome, and how long they took.
    _meters: Meters | None = None
    # What a step's own max_attempts, backoff and timeout fall back to.
    _defaults: StepDefaults = attrs.field(factory=StepDefaults)
    _task: asyncio.Task[None] | None = None
    _running: set[asyncio.Task[None]] = attrs.field(factory=set)

    def start(self) -> None:
        """Begin the schedule (nothing to do without cron steps)."""
        if self._steps:
            self._task = asyncio.create_task(self._loop(), name="motia-sse-cron")

    async def stop(self, grace: float) -> None:
        """No more ticks; running handlers get `grace` seconds, then are cancelled."""
        await cancel_and_wait(self._task)
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                await cancel_and_wait(task)

    async def _loop(self) -> None:
        now = time.time()
        schedules = {s.name: croniter(getattr(s.config, "cron", ""),
                                      datetime.fromtimestamp(now, UTC)) for s in self._steps}
        due: dict[str, float] = {name: it.get_next(float) for name, it in schedules.items()}
        steps = {s.name: s for s in self._steps}
        while True:
            await asyncio.sleep(max(0.0, min(due.values()) - time.time()))
            now = time.time()
            for name, tick in list(due.items()):
                if tick > now:
                    continue
                await self._fire(steps[name], int(tick))
                while due[name] <= now:  # a late loop skips missed ticks, it does not pile up
                    due[name] = schedules[name].get_next(float)

    async def _fire(self, step: LoadedStep, tick: int) -> None:
        try:
            if not await self._claim(step.name, tick):
                return
        except Exception:  # Redis away: skip this tick rather than run it twice
            log.exception("cannot claim cron tick %s of %r", tick, step.name)
            return
        self._keep(asyncio.create_task(self._run(step, tick, new_trace_id()),
                                       name=f"cron:{step.name}:{tick}"))

    def run_now(self, name: str) -> str | None:
        """Run cron step `name` once now, beside its schedule and unclaimed (the
        workbench's Run now, in this process); its trace id, or None if there is none."""
        step = next((s for s in self._steps if s.name == name), None)
        if step is None:
            return None
        trace_id = new_trace_id()
        # Its tick is the second it was asked for: the logs show when it ran.
        self._keep(asyncio.create_task(self._run(step, int(time.time()), trace_id),
                                       name=f"cron:{name}:now"))
        return trace_id

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, step: LoadedStep, tick: int, trace_id: str) -> None:
        started = time.perf_counter()
        ctx = self._contexts(step, trace_id)
        policy = retry_policy(step.config, self._defaults)
        timeout = handler_timeout(step.config, self._defaults)
        # Retries stay in this process, in this tick's trace: the tick was claimed once.
        for attempt in range(1, policy.max_attempts + 1):
            error = await run_handler(step, ctx, failed="cron handler failed", tick=tick,
                                      attempt=attempt, time_limit=timeout)
            if error is None or attempt == policy.max_attempts:
                break
            await asyncio.sleep(policy.delay(attempt))
        if self._meters is not None:
            self._meters.handler("cron", step.name).observe(time.perf_counter() - started)
            self._meters.cron_runs[step.name, "ok" if error is None else "failed"] += 1
