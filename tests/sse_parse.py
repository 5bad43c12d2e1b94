"""A small SSE parser over an aiohttp response, for reading feeds in tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import attrs


@attrs.frozen
class SseEvent:
    """One dispatched event, as a browser's EventSource would see it."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


@attrs.define
class SseReader:
    """Reads events (and counts comments) from an open text/event-stream response."""

    response: aiohttp.ClientResponse
    comments: list[str] = attrs.Factory(list)
    retry: int | None = None
    last_id: str | None = None

    async def next(self, within: float = 5.0) -> SseEvent:
        """The next event; TimeoutError if none comes `within` seconds."""
        async with asyncio.timeout(within):
            return await self._next()

    async def _next(self) -> SseEvent:
        event, event_id = "message", None
        data: list[str] = []
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("feed closed")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    if event_id is not None:
                        self.last_id = event_id
                    return SseEvent(event, "\n".join(data), event_id)
                event, event_id = "message", None
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "retry":
                self.retry = int(value)

    async def until(self, predicate: Any, within: float = 5.0) -> list[SseEvent]:
        """Read events until one satisfies `predicate`; return all read."""
        seen: list[SseEvent] = []
        async with asyncio.timeout(within):
            while True:
                seen.append(await self._next())
                if predicate(seen[-1]):
                    return seen

    async def silent_for(self, seconds: float) -> bool:
        """True if no event arrives within `seconds` (comments do not count)."""
        return await silent(self.next, seconds)


async def silent(next_event: Callable[..., Awaitable[Any]], seconds: float) -> bool:
    """True if `next_event(within=seconds)` times out: no event came."""
    try:
        await next_event(within=seconds)
    except TimeoutError:
        return True
    return False
