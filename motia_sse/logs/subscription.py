"""What a log feed asks for (a query: trace, step, level) and receives (a subscription)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import attrs

from motia_sse.logs.entry import LogEntry

# Records one live subscriber may have waiting before the oldest are dropped.
SUBSCRIBER_QUEUE = 1000
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


@attrs.frozen
class LogQuery:
    """Which records a reader wants; None matches anything."""

    trace_id: str | None = None
    step: str | None = None
    min_level: int = logging.NOTSET

    def matches(self, entry: LogEntry) -> bool:
        """Whether `entry` passes every filter."""
        return (entry.levelno >= self.min_level
                and self.trace_id in (None, entry.trace_id)
                and self.step in (None, entry.step))


@attrs.define(eq=False)
class LogSubscription:
    """A live reader's queue: bounded, dropping its oldest records when the reader lags."""

    query: LogQuery
    _limit: int = SUBSCRIBER_QUEUE
    _pending: deque[LogEntry] = attrs.field(factory=deque)
    _dropped: int = 0
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event)
    _closed: bool = False

    def offer(self, entry: LogEntry) -> None:
        """Queue `entry` if it matches; never blocks."""
        if self._closed or not self.query.matches(entry):
            return
        if len(self._pending) >= self._limit:
            self._pending.popleft()
            self._dropped += 1
        self._pending.append(entry)
        self._wake.set()

    def close(self) -> None:
        """End the subscription; `next_batch` returns None from now on."""
        self._closed = True
        self._wake.set()

    async def next_batch(self) -> tuple[int, list[LogEntry]] | None:
        """Wait for records: (how many were dropped before them, the records); None once closed."""
        while not self._closed and not self._pending:
            await self._wake.wait()
            self._wake.clear()
        if self._closed:
            return None
        dropped, self._dropped = self._dropped, 0
        batch = list(self._pending)
        self._pending.clear()
        return dropped, batch
