"""Running a user's handler: a failure is logged with the line of the step file that raised it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from motia_sse.run.context import FlowContext
from motia_sse.run.loader import LoadedStep
from motia_sse.run.tracebacks import line_in


async def run_handler(step: LoadedStep, ctx: FlowContext, *args: Any,
                      failed: str = "handler failed", **fields: Any) -> Exception | None:
    """Await `step.handler(*args, ctx)`; what it raised, logged by `log_failure`, or None."""
    # A cron handler takes the context alone (the loader checked), others an input first.
    handler: Callable[..., Awaitable[Any]] = step.handler
    try:
        await handler(*args, ctx)
    except Exception as exc:
        log_failure(step, ctx, exc, failed, **fields)
        return exc
    return None


def log_failure(step: LoadedStep, ctx: FlowContext, exc: Exception,
                failed: str = "handler failed", **fields: Any) -> str:
    """Log `<failed> at <file:line>` and the traceback on the step's logger; the file:line.

    Call it in the `except` that caught `exc`: the traceback logged is the one in flight.
    The API runner calls it alone: it answers some exceptions without this log, and
    awaiting its handler through `run_handler` would add a frame to every request."""
    where = line_in(exc, step.path.parent) or str(step.path)
    ctx.logger.exception(f"{failed} at {where}", **fields)
    return where
