"""A bounded kernel send buffer on feed sockets, so that a stalled client's lag is bounded.

A feed writes to the socket while the kernel takes the bytes, and conflates (keeps only
the newest frame per item) once it does not. What the kernel took before that still
reaches the client when it reads again, stale. Left to itself Linux auto-tunes a
socket's send buffer up to `net.ipv4.tcp_wmem`'s maximum (4 MB on loopback here), so a
client that stalls during a token stream first reads megabytes of old versions before
the newest one. Fixing SO_SNDBUF bounds that to about twice the setting (Linux doubles
it for its own bookkeeping, and caps it at `net.core.wmem_max`); BENCHMARKS.md, "Bounded
lag", has the measurement behind the default.
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

# The smallest useful value: Linux raises anything below ~4.5 KB to that floor anyway.
MIN_SEND_BUFFER = 4096


def parse_send_buffer(text: str) -> int:
    """`--feed-send-buffer`: bytes, with an optional k or m (KiB, MiB); 0 leaves the
    kernel's auto-tuning on."""
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    scale = {"k": 1024, "m": 1024 * 1024}.get(raw[-1:], 1)
    digits = raw[:-1] if scale > 1 else raw
    if not digits.isdigit():
        raise ValueError(f"{text!r}: expected bytes, as 65536 or 64k (0: the kernel's "
                         "auto-tuning)")
    value = int(digits) * scale
    if 0 < value < MIN_SEND_BUFFER:
        raise ValueError(f"{text!r}: expected 0 (the kernel's auto-tuning) or at least "
                         f"{MIN_SEND_BUFFER} bytes")
    return value


def bound_send_buffer(request: web.Request, size: int) -> None:
    """Fix the send buffer of a feed's TCP socket at `size` bytes (0: leave it alone).

    It is not given back when the feed ends: a feed ends when its client goes or the
    server stops, so the connection rarely serves another request, and a fixed buffer
    only slows a large answer on it, never breaks it."""
    transport = request.transport
    if size <= 0 or transport is None:
        return
    sock = tcp_socket(transport)
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def tcp_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """The TCP socket under a transport; None for a Unix socket or none at all."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return sock  # type: ignore[no-any-return]
