"""Slow readers are conflated: bounded memory, others unaffected, the last event is final."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp.test_utils import TestClient

from motia_sse.runtime import RUNTIME
from tests.conftest import OpenFeed
from tests.sse_parse import SseEvent

UPDATES = 5000
PAYLOAD = "x" * 4000


async def stalled_connection(port: int, path: str) -> tuple[asyncio.StreamReader, Any]:
    """A raw client with a tiny receive buffer that sends its request and then stops."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


def last_event(raw: bytes) -> dict[str, str]:
    """The fields of the last complete event in a chunked SSE byte stream."""
    text = raw.decode(errors="replace")
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if "data: " in b]
    fields: dict[str, str] = {}
    for line in blocks[-1].splitlines():
        name, _, value = line.partition(": ")
        if name in ("id", "event", "data"):
            fields[name] = value
    return fields


async def test_stalled_reader_is_conflated(client: TestClient[Any, Any],
                                           open_feed: OpenFeed) -> None:
    """Thousands of updates while one client reads nothing: its pending state stays at
    one frame, the socket buffer stays bounded, a reading client gets every update, and
    the stalled one, reading again, ends on the final state having skipped the rest."""
    runtime = client.app[RUNTIME]
    openai = runtime.streams.openai
    await openai.set("slow", "message", {"message": "start"})
    path = "/streams/openai/slow/message"
    reader, writer = await stalled_connection(client.port or 0, path)
    fast = await open_feed(str(client.make_url(path)))
    assert (await fast.next()).json()["message"] == "start"

    received: list[SseEvent] = []

    async def read_fast() -> None:
        while True:
            event = await fast.next()
            received.append(event)
            if event.json()["message"].startswith(f"{UPDATES - 1}:"):
                return

    reading = asyncio.create_task(read_fast())
    peak_pending = peak_buffered = 0
    produced = 0
    for n in range(UPDATES):
        item = await openai.set("slow", "message", {"message": f"{n}:{PAYLOAD}"})
        produced += len(PAYLOAD)
        if n % 5 == 0:
            await asyncio.sleep(0)  # let sockets move, as a real server's loop would
            slow = max(runtime.feeds, key=lambda f: f.buffered)
            peak_pending = max(peak_pending, slow.pending)
            peak_buffered = max(peak_buffered, slow.buffered)
    await asyncio.wait_for(reading, 30)

    assert produced > 1_000_000
    assert peak_pending <= 1, "one item watched: at most one frame waits"
    assert peak_buffered < 200_000, f"socket buffer grew to {peak_buffered} bytes"
    assert [int(e.id or 0) for e in received] == list(range(item.version - UPDATES + 1,
                                                            item.version + 1))

    raw = bytearray()
    tail = f"id: {item.version}\n".encode()
    async with asyncio.timeout(30):
        # Until the final event is complete (heartbeat comments may follow it).
        while (end := raw.rfind(tail)) < 0 or raw.find(b"\n\n", end) < 0:
            raw += await reader.read(65536)
    final = last_event(bytes(raw))
    assert final["id"] == str(item.version)
    assert final["data"].startswith(f'{{"message":"{UPDATES - 1}:')
    events_seen = raw.count(b"\ndata: ")
    assert events_seen < UPDATES / 2, f"the stalled client got {events_seen} events, not a backlog"
    writer.close()
