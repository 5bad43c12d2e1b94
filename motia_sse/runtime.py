"""The parts one server shares between its routes, its feeds and its worker."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
from aiohttp import web

from motia_sse.config import Settings
from motia_sse.context import ContextFactory, Emitter, Streams
from motia_sse.loader import Project
from motia_sse.queue.memory import MemoryQueue
from motia_sse.queue.worker import Worker
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Hub
from motia_sse.streams.memory_store import MemoryStore
from motia_sse.streams.sqlite_store import SqliteStore
from motia_sse.streams.store import StreamStore
from motia_sse.streams.stream import Stream


@attrs.define
class Runtime:
    """One server's state; built by `build_runtime`, kept under `RUNTIME` in the app."""

    settings: Settings
    project: Project
    store: StreamStore
    custom_stores: list[StreamStore]
    hub: Hub
    streams: Streams
    queue: MemoryQueue
    contexts: ContextFactory
    worker: Worker
    retry_frame: Frame
    feeds: set[Feed] = attrs.field(factory=set)
    api_tasks: set[asyncio.Task[Any]] = attrs.field(factory=set)

    async def close(self) -> None:
        """Stop handlers (waiting up to the shutdown timeout), then release the stores."""
        await self.worker.stop(self.settings.shutdown_timeout)
        if self.api_tasks:
            await asyncio.wait(set(self.api_tasks), timeout=self.settings.shutdown_timeout)
        await self.queue.close()
        for store in [self.store, *self.custom_stores]:
            await store.close()

    def close_feeds(self) -> None:
        """End every open feed now, so shutdown does not wait out its timeout."""
        for feed in list(self.feeds):
            feed.close()


RUNTIME = web.AppKey("motia_sse.runtime", Runtime)


def open_store(settings: Settings) -> StreamStore:
    """The server's default store, as the settings choose."""
    if settings.store == "memory":
        return MemoryStore()
    return SqliteStore.open(settings.data_dir / "streams.sqlite3")


def build_runtime(settings: Settings, project: Project) -> Runtime:
    """Wire store, hub, streams, queue and worker for `project`."""
    store = open_store(settings)
    hub = Hub()
    streams: dict[str, Stream[Any]] = {}
    custom: list[StreamStore] = []
    for loaded in project.streams:
        base = loaded.config.base_config
        if base.storage_type == "custom" and base.factory is not None:
            custom.append(base.factory())
            streams[loaded.config.name] = Stream(loaded.config, custom[-1], hub,
                                                 shared_versions=False)
        else:
            streams[loaded.config.name] = Stream(loaded.config, store, hub)
    queue = MemoryQueue()
    accessor = Streams(streams)
    contexts = ContextFactory(accessor, Emitter(project, queue))
    worker = Worker(queue, {s.name: s for s in project.event_steps}, contexts,
                    settings.max_concurrent_handlers)
    return Runtime(settings, project, store, custom, hub, accessor, queue, contexts, worker,
                   Frame.retry(settings.retry_ms))
