"""One subscriber's connection: shared bytes written at once, conflated when it lags."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Hashable, Iterable

import attrs
from aiohttp.abc import AbstractStreamWriter
from aiohttp.base_protocol import BaseProtocol

from motia_sse.streams.frames import Frame

# Custom events are not snapshots and cannot be conflated; a lagging feed keeps
# at most this many of them and drops the oldest.
MAX_PENDING_CUSTOM = 64

_custom_ids = itertools.count()


@attrs.define(eq=False)
class Feed:
    """The write side of one SSE connection.

    The hub calls `offer` synchronously for every change. While the socket keeps
    up, the shared frame goes straight to the transport: one write, no task
    switch, no copy. Once the kernel buffer fills (the protocol pauses writing),
    frames wait in `_pending`, keyed by what they describe, so a newer snapshot
    of an item replaces the older one: a slow reader costs one frame per key,
    never a backlog. `pump` (run by the feed's own request handler) drains.
    """

    _protocol: BaseProtocol
    _writer: AbstractStreamWriter
    _chunked: bool
    _pending: dict[Hashable, Frame] = attrs.field(factory=dict)
    _custom: deque[Hashable] = attrs.field(factory=deque)
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event)
    # Held while the initial snapshot is being read, so nothing overtakes it.
    _held: bool = True
    _closed: bool = False

    def offer(self, key: Hashable, frame: Frame) -> None:
        """Queue or write one event; never blocks, never raises on a dead client."""
        if self._closed:
            return
        if not self._held and not self._pending and not self._protocol.writing_paused:
            self._write(frame)
            return
        self._pending.pop(key, None)
        self._pending[key] = frame
        if not self._held:
            self._wake.set()

    def offer_custom(self, frame: Frame) -> None:
        """Queue or write an event that no later event replaces."""
        key = ("custom", next(_custom_ids))
        self.offer(key, frame)
        if key in self._pending:
            self._custom.append(key)
            while len(self._custom) > MAX_PENDING_CUSTOM:
                self._pending.pop(self._custom.popleft(), None)

    def release(self, initial: Iterable[tuple[Hashable, Frame]]) -> None:
        """Write the initial events, then whatever arrived meanwhile that is newer."""
        for key, frame in initial:
            queued = self._pending.get(key)
            if queued is not None and queued.version <= frame.version:
                del self._pending[key]
            self._write(frame)
        self._held = False
        if self._pending:
            self._wake.set()

    def close(self) -> None:
        """Stop the feed; `pump` returns."""
        self._closed = True
        self._wake.set()

    @property
    def closed(self) -> bool:
        """Whether the feed has been stopped or its client has gone."""
        return self._closed or self._transport_gone()

    async def pump(self) -> None:
        """Write queued frames as the client drains them, until the feed is closed."""
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            await self._writer.drain()
            batch = list(self._pending.values())
            self._pending.clear()
            self._custom.clear()
            for frame in batch:
                self._write(frame)

    def _write(self, frame: Frame) -> None:
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            self.close()
            return
        transport.write(frame.chunk if self._chunked else frame.raw)

    def _transport_gone(self) -> bool:
        transport = self._protocol.transport
        return transport is None or transport.is_closing()
