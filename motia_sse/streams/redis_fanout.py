"""Changes and custom events across server processes, over Redis pub/sub."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import attrs
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from motia_sse.streams.hub import Hub
from motia_sse.streams.redis_store import changes_channel, decode_change, encode_change
from motia_sse.streams.store import Change
from motia_sse.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def events_channel(prefix: str) -> str:
    """The pub/sub channel custom events travel on."""
    return f"{prefix}:events"


@attrs.define
class RedisFanout:
    """Publishes what this process has to say; feeds this process's hub with what
    every process said, in the order Redis received it.

    If the subscription drops, announcements made meanwhile are lost to this process.
    So on reconnecting it ends its open feeds (`on_gap`): their clients reconnect at
    once with Last-Event-ID and converge on the stored state.
    """

    _redis: Redis
    _hub: Hub
    _prefix: str
    _on_gap: Callable[[], None]
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def changed(self, change: Change, shared: bool) -> None:
        # Only changes of stores that do not announce themselves (custom ones) get here.
        await self._redis.publish(changes_channel(self._prefix), encode_change(change, shared))

    async def send(self, stream: str, group_id: str, item_id: str | None, event_type: str,
                   data: Any) -> None:
        message = orjson.dumps({"s": stream, "g": group_id, "i": item_id, "t": event_type,
                                "d": data})
        await self._redis.publish(events_channel(self._prefix), message)

    async def start(self) -> None:
        """Subscribe, and return once the subscription is live."""
        self._task = asyncio.create_task(self._listen(), name="motia-sse-redis-fanout")
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._task.done():
            self._task.result()  # raise what stopped it

    async def stop(self) -> None:
        """Unsubscribe."""
        await cancel_and_wait(self._task)

    async def _listen(self) -> None:
        delay = 0.1
        first = True
        while True:
            try:
                await self._subscribe_and_dispatch(first)
            except (RedisError, OSError) as exc:
                if first and not self._ready.is_set():
                    raise
                log.warning("Redis pub/sub lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                first = False
            else:
                delay = 0.1

    async def _subscribe_and_dispatch(self, first: bool) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(changes_channel(self._prefix), events_channel(self._prefix))
            self._ready.set()
            if not first:
                log.info("Redis pub/sub back; ending open feeds so their clients resume")
                self._on_gap()
            connection = pubsub.connection
            assert connection is not None
            # redis-py also reconnects a dropped connection by itself (the pool's retry)
            # and subscribes again: what was published in between is lost just the same.
            connection.register_connect_callback(self._resubscribed)
            try:
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._dispatch(message["channel"], message["data"])
            finally:  # the connection goes back to the pool, for others to use
                connection.deregister_connect_callback(self._resubscribed)

    def _resubscribed(self, _: object) -> None:
        log.warning("Redis pub/sub lost and resubscribed; ending open feeds so their clients "
                    "resume")
        self._on_gap()

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        try:
            if channel == changes_channel(self._prefix).encode():
                change, shared = decode_change(data)
                self._hub.publish(change, shared)
            else:
                m = orjson.loads(data)
                self._hub.send(m["s"], m["g"], m["i"], m["t"], m["d"])
        except Exception:  # one bad message must not end the subscription
            log.exception("cannot dispatch message on %r", channel)
