"""The newest log records in memory, for the workbench: by trace, step and level, or live."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

import attrs
from aiohttp import web

from motia_sse.logs.entry import LogEntry, make_entry
from motia_sse.logs.subscription import SUBSCRIBER_QUEUE, LogQuery, LogSubscription

DEFAULT_CAPACITY = 5000
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


def _first_seq() -> int:
    # Microseconds since the epoch: ids keep growing across restarts, so a browser's
    # Last-Event-ID from before one asks, rightly, for every record after it.
    return time.time_ns() // 1000


@attrs.define(eq=False)
class LogBuffer:
    """The newest records, at most `capacity` of them and `max_bytes` of their JSON
    (the newest one is kept whatever its size), and the live subscribers to new ones.

    Records may come from any thread; subscribers are served on the loop `bind` names."""

    capacity: int = DEFAULT_CAPACITY
    max_bytes: int = DEFAULT_MAX_BYTES
    subscriber_queue: int = SUBSCRIBER_QUEUE
    _entries: deque[LogEntry] = attrs.field(factory=deque, init=False)
    _size: int = attrs.field(default=0, init=False)
    _subscribers: set[LogSubscription] = attrs.field(factory=set, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _next_seq: int = attrs.field(factory=_first_seq, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _closed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {self.capacity}")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {self.max_bytes}")

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The records' size now, as `max_bytes` counts it."""
        return self._size

    @property
    def subscribers(self) -> int:
        """Live subscriptions now."""
        return len(self._subscribers)

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Serve subscribers on `loop` (None: on whichever thread logs)."""
        self._loop = loop

    def add(self, record: logging.LogRecord) -> LogEntry:
        """Keep `record`, and pass it to every subscriber."""
        with self._lock:
            entry = make_entry(self._next_seq, record)
            self._next_seq += 1
            self._keep(entry)
            subscribers = list(self._subscribers)
        if subscribers:
            self._deliver(entry, subscribers)
        return entry

    def recent(self, query: LogQuery, limit: int, after: int | None = None) -> list[LogEntry]:
        """The newest `limit` matching records (after seq `after`), oldest first."""
        with self._lock:
            return self._select(query, limit, after)

    def subscribe(self, query: LogQuery, limit: int,
                  after: int | None = None) -> tuple[list[LogEntry], LogSubscription]:
        """The recent matching records and a subscription to the next: none missed, none twice."""
        subscription = LogSubscription(query, self.subscriber_queue)
        with self._lock:
            if self._closed:
                subscription.close()
            else:
                self._subscribers.add(subscription)
            return self._select(query, limit, after), subscription

    def unsubscribe(self, subscription: LogSubscription) -> None:
        """Stop passing records to `subscription`."""
        with self._lock:
            self._subscribers.discard(subscription)
        subscription.close()

    def close_subscriptions(self) -> None:
        """End every live subscription now, and those asked for later (on shutdown)."""
        with self._lock:
            self._closed = True
            subscribers, self._subscribers = list(self._subscribers), set()
        for subscription in subscribers:
            subscription.close()

    def _keep(self, entry: LogEntry) -> None:
        """Append `entry`, forgetting the oldest records while past a bound."""
        self._entries.append(entry)
        self._size += entry.size
        while len(self._entries) > self.capacity or (
                self._size > self.max_bytes and len(self._entries) > 1):
            self._size -= self._entries.popleft().size

    def _select(self, query: LogQuery, limit: int, after: int | None) -> list[LogEntry]:
        found: list[LogEntry] = []
        for entry in reversed(self._entries):
            if len(found) >= limit or (after is not None and entry.seq <= after):
                break
            if query.matches(entry):
                found.append(entry)
        found.reverse()
        return found

    def _deliver(self, entry: LogEntry, subscribers: list[LogSubscription]) -> None:
        loop = self._loop
        if loop is None or running_loop() is loop:
            for subscription in subscribers:
                subscription.offer(entry)
            return
        try:
            for subscription in subscribers:
                loop.call_soon_threadsafe(subscription.offer, entry)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


LOG_BUFFER = web.AppKey("motia_sse.logs.buffer", LogBuffer)
