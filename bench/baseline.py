"""The baseline: the leanest broadcaster one would write directly on aiohttp.

It serves the URLs the benchmark uses on motia_sse:

`GET  /streams/<s>/<g>/<id>`   the item feed: `retry:`, the snapshot, then every change as
                               `id: <version>\\ndata: <json>\\n\\n`
`POST /bench/items/<g>/<id>`   set the item (stream "bench") to the JSON body; fan it out
`POST /bench/noop`             a trivial JSON handler

Each change is encoded once, as an HTTP/1.1 chunk, and written with one
`transport.write` per subscriber. No validation, no heartbeat, no conflation, no
back-pressure: the floor that motia_sse's extra work is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import cast

import orjson
from aiohttp import web

from motia_sse.process.event_loop import new_event_loop

Key = tuple[str, str, str]
RETRY = b"retry: 2000\n\n"
SUBSCRIBERS = web.AppKey("subscribers", dict[Key, set[asyncio.Transport]])
SNAPSHOTS = web.AppKey("snapshots", dict[Key, bytes])
VERSION = web.AppKey("version", list[int])


def chunk(raw: bytes) -> bytes:
    """`raw` as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(raw), raw)


async def feed(request: web.Request) -> web.StreamResponse:
    """One item's feed, until the client goes (the handler is cancelled then)."""
    info = request.match_info
    key = (info["stream"], info["group"], info["item"])
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    # uvloop's transports do not subclass asyncio.Transport, but behave as one.
    transport = cast(asyncio.Transport, request.transport)
    assert transport is not None
    transport.write(chunk(RETRY) + request.app[SNAPSHOTS].get(key, b""))
    subscribers = request.app[SUBSCRIBERS].setdefault(key, set())
    subscribers.add(transport)
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        subscribers.discard(transport)
        if not subscribers:
            request.app[SUBSCRIBERS].pop(key, None)
    return response


async def set_item(request: web.Request) -> web.Response:
    """Store the body as the item and write it to every subscriber."""
    info = request.match_info
    key = ("bench", info["group"], info["item"])
    data = orjson.loads(await request.read())
    data["id"] = info["item"]
    version = request.app[VERSION]
    version[0] += 1
    body = orjson.dumps(data)
    frame = chunk(b"id: %d\ndata: %b\n\n" % (version[0], body))
    request.app[SNAPSHOTS][key] = frame
    for transport in request.app[SUBSCRIBERS].get(key, ()):
        if not transport.is_closing():
            transport.write(frame)
    return web.Response(body=body, content_type="application/json")


async def noop(request: web.Request) -> web.Response:
    """Read and parse the JSON body; answer a constant."""
    orjson.loads(await request.read())
    return web.Response(body=b'{"ok":true}', content_type="application/json")


def create_app() -> web.Application:
    """The baseline application."""
    app = web.Application()
    app[SUBSCRIBERS] = {}
    app[SNAPSHOTS] = {}
    app[VERSION] = [0]
    app.router.add_get("/streams/{stream}/{group}/{item}", feed)
    app.router.add_post("/bench/items/{group}/{item}", set_item)
    app.router.add_post("/bench/noop", noop)
    return app


def main() -> None:
    """`python -m bench.baseline --port N`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The loop motia_sse runs on in the same bench run (MOTIA_LOOP, set by bench.run).
    loop = new_event_loop(os.environ.get("MOTIA_LOOP", "asyncio"))  # type: ignore[arg-type]
    web.run_app(create_app(), host="127.0.0.1", port=args.port, handler_cancellation=True,
                access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
