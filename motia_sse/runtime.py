"""The parts one server shares between its routes, its feeds and its worker."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
from aiohttp import web

from motia_sse.access import AccessControl
from motia_sse.backend import Backend, open_backend
from motia_sse.config import Settings
from motia_sse.context import ContextFactory, Emitter, Streams
from motia_sse.loader import Project
from motia_sse.queue.worker import Worker
from motia_sse.state import State
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Hub
from motia_sse.streams.store import StreamStore
from motia_sse.streams.stream import Stream


@attrs.define
class Runtime:
    """One server's state; built by `build_runtime`, kept under `RUNTIME` in the app."""

    settings: Settings
    project: Project
    backend: Backend
    custom_stores: list[StreamStore]
    hub: Hub
    streams: Streams
    contexts: ContextFactory
    worker: Worker
    retry_frame: Frame
    feeds: set[Feed]
    access: AccessControl
    api_tasks: set[asyncio.Task[Any]] = attrs.field(factory=set)

    async def start(self) -> None:
        """Connect the backend, then start taking events."""
        await self.backend.start()
        self.worker.start()

    async def close(self) -> None:
        """Stop handlers (waiting up to the shutdown timeout), then release everything."""
        await self.worker.stop(self.settings.shutdown_timeout)
        if self.api_tasks:
            await asyncio.wait(set(self.api_tasks), timeout=self.settings.shutdown_timeout)
        for store in self.custom_stores:
            await store.close()
        await self.backend.close()

    def close_feeds(self) -> None:
        """End every open feed now; their clients reconnect (or, on shutdown, go)."""
        close_all(self.feeds)


def close_all(feeds: set[Feed]) -> None:
    """End every feed in `feeds`."""
    for feed in list(feeds):
        feed.close()


RUNTIME = web.AppKey("motia_sse.runtime", Runtime)


def build_runtime(settings: Settings, project: Project) -> Runtime:
    """Wire backend, hub, streams and worker for `project`."""
    hub = Hub()
    feeds: set[Feed] = set()
    backend = open_backend(settings, hub, [s.name for s in project.event_steps],
                           lambda: close_all(feeds))
    streams: dict[str, Stream[Any]] = {}
    custom: list[StreamStore] = []
    for loaded in project.streams:
        base = loaded.config.base_config
        if base.storage_type == "custom" and base.factory is not None:
            custom.append(base.factory())
            streams[loaded.config.name] = Stream(loaded.config, custom[-1], backend.fanout,
                                                 shared_versions=False)
        else:
            streams[loaded.config.name] = Stream(loaded.config, backend.store, backend.fanout)
    accessor = Streams(streams)
    contexts = ContextFactory(accessor, State(backend.store), Emitter(project, backend.queue))
    worker = Worker(backend.queue, {s.name: s for s in project.event_steps}, contexts,
                    settings.max_concurrent_handlers)
    rules = {s.config.name: s.config.can_access for s in project.streams if s.config.can_access}
    return Runtime(settings, project, backend, custom, hub, accessor, contexts, worker,
                   Frame.retry(settings.retry_ms), feeds,
                   AccessControl(project.authenticate, rules))
