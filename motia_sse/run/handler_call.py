"""Running a user's handler: a failure is logged with the line of the steps folder that
raised it (the step file, middleware.py or a helper module); past its timeout the handler
is cancelled, logged with the line it was at."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from motia_sse.exceptions import HandlerTimeout
from motia_sse.run.context import FlowContext
from motia_sse.run.loader import LoadedStep
from motia_sse.run.tracebacks import line_in


async def run_handler(step: LoadedStep, ctx: FlowContext, *args: Any,
                      failed: str = "handler failed", time_limit: float | None = None,
                      **fields: Any) -> Exception | None:
    """Await `step.handler(*args, ctx)`, cancelled after `time_limit` seconds (None: never);
    what it raised (logged by `log_failure`), a HandlerTimeout (logged), or None."""
    # A cron handler takes the context alone (the loader checked), others an input first.
    handler: Callable[..., Awaitable[Any]] = step.handler
    deadline = asyncio.timeout(time_limit)
    try:
        async with deadline:
            await handler(*args, ctx)
    except Exception as exc:
        # The handler's own TimeoutError (a client's, say) is a failure like any other.
        if isinstance(exc, TimeoutError) and deadline.expired() and time_limit is not None:
            return _log_timeout(step, ctx, exc, time_limit, failed, **fields)
        log_failure(step, ctx, exc, failed, **fields)
        return exc
    return None


def _log_timeout(step: LoadedStep, ctx: FlowContext, exc: TimeoutError, timeout: float,
                 failed: str, **fields: Any) -> HandlerTimeout:
    """One line, no traceback: where the handler was waiting is what the user needs."""
    error = HandlerTimeout(timeout)
    # asyncio.timeout raises from the CancelledError that went through the handler.
    where = line_in(exc.__cause__, step.steps_dir) if exc.__cause__ else None
    ctx.logger.error(f"{failed}: {error}" + (f", cancelled at {where}" if where else ""),
                     timeout=timeout, **fields)
    return error


def log_failure(step: LoadedStep, ctx: FlowContext, exc: Exception,
                failed: str = "handler failed", **fields: Any) -> str:
    """Log `<failed> at <file:line>` and the traceback on the step's logger; the file:line.

    Call it in the `except` that caught `exc`: the traceback logged is the one in flight.
    The API runner calls it alone: it answers some exceptions without this log, and
    awaiting its handler through `run_handler` would add a frame to every request."""
    where = line_in(exc, step.steps_dir) or str(step.path)
    ctx.logger.exception(f"{failed} at {where}", **fields)
    return where
