"""Stopping background tasks for sure."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and wait until it has ended.

    redis-py can swallow a cancellation that lands in the middle of a command and carry
    on to its next await, so one `cancel()` is not always enough: insist until done."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
