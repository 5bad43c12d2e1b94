"""Noticing that a feed's client hung up, without aiohttp's handler cancellation.

The server runs with aiohttp's default `handler_cancellation=False`: a client that
hangs up never cuts an API step's handler off between two writes, and no handler
needs a task and a shield of its own. A feed, though, idles until the next change and
must end as soon as its client goes, to free its subscriptions and its slot under the
feed limits. While a feed runs, its connection's protocol is wrapped in `_Watcher`,
which passes every call through and, when the connection is lost, tells the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web


class _Watcher(asyncio.Protocol):
    """aiohttp's protocol for one connection, plus a callback when the connection ends."""

    __slots__ = ("_inner", "_on_lost")

    def __init__(self, inner: asyncio.Protocol, on_lost: Callable[[], None]) -> None:
        self._inner = inner
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            self._on_lost()


@contextmanager
def on_disconnect(request: web.Request, callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` (once, synchronously) if the client goes while the block runs."""
    transport = request.transport
    if transport is None or transport.is_closing():
        callback()
        yield
        return
    inner = transport.get_protocol()
    if not isinstance(inner, asyncio.Protocol):  # aiohttp's RequestHandler is one
        raise TypeError(f"cannot watch a {type(inner).__name__} connection")
    watcher = _Watcher(inner, callback)
    transport.set_protocol(watcher)
    try:
        yield
    finally:
        if transport.get_protocol() is watcher:
            transport.set_protocol(inner)
