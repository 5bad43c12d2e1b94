"""Noticing that a feed's client hung up, or stopped answering, without aiohttp's
handler cancellation.

The server runs with aiohttp's default `handler_cancellation=False`: a client that
hangs up never cuts an API step's handler off between two writes, and no handler
needs a task and a shield of its own. A feed, though, idles until the next change and
must end as soon as its client goes, to free its subscriptions and its slot under the
feed limits. While a feed runs, its connection's protocol is wrapped in `_Watcher`,
which passes every call through and, when the connection is lost, tells the feed.

A peer that vanishes without closing (a cable pulled, a laptop shut) is caught by the
kernel: TCP_USER_TIMEOUT aborts the connection when what was sent (a heartbeat, at
least) stays unacknowledged for `SEND_TIMEOUT` seconds, which loses it like any other.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from motia_sse.http.send_buffer import tcp_socket

SEND_TIMEOUT = 120.0
_TCP_USER_TIMEOUT: int | None = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux


class _Watcher(asyncio.Protocol):
    """aiohttp's protocol for one connection, plus a callback when the connection ends."""

    __slots__ = ("_inner", "_on_lost")

    def __init__(self, inner: asyncio.Protocol, on_lost: Callable[[], None]) -> None:
        self._inner = inner
        self._on_lost = on_lost

    @property
    def inner(self) -> asyncio.Protocol:
        """The protocol it wraps (aiohttp's), to be given back."""
        return self._inner

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


def watch(request: web.Request, callback: Callable[[], None]) -> _Watcher | None:
    """Call `callback` (once, synchronously) when the client goes, until `unwatch`.

    None, with `callback` called at once, if the client has gone already."""
    transport = request.transport
    if transport is None or transport.is_closing():
        callback()
        return None
    inner = transport.get_protocol()
    if not isinstance(inner, asyncio.Protocol):  # aiohttp's RequestHandler is one
        raise TypeError(f"cannot watch a {type(inner).__name__} connection")
    watcher = _Watcher(inner, callback)
    transport.set_protocol(watcher)
    sock = tcp_socket(transport)
    if sock is not None and _TCP_USER_TIMEOUT is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_USER_TIMEOUT, int(SEND_TIMEOUT * 1000))
    return watcher


def unwatch(request: web.Request, watcher: _Watcher | None) -> None:
    """Give the connection back as it was (it may serve further requests)."""
    transport = request.transport
    if watcher is None or transport is None or transport.get_protocol() is not watcher:
        return
    transport.set_protocol(watcher.inner)
    sock = tcp_socket(transport)
    if sock is not None and _TCP_USER_TIMEOUT is not None:
        # The kernel's default (no limit), which aiohttp never changes: reading it back
        # on every feed open cost a system call for nothing.
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_USER_TIMEOUT, 0)


@contextmanager
def on_disconnect(request: web.Request, callback: Callable[[], None]) -> Iterator[None]:
    """`watch` for the length of a `with` block."""
    watcher = watch(request, callback)
    try:
        yield
    finally:
        unwatch(request, watcher)

