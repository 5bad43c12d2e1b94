"""The parts one server shares between its routes, its feeds and its worker."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import attrs
from aiohttp import web

from motia_sse.backend import Backend, open_backend
from motia_sse.exceptions import Refused
from motia_sse.http.access import AccessControl
from motia_sse.run.context import ContextFactory, Emitter, Streams
from motia_sse.run.cron import CronScheduler
from motia_sse.run.event_worker import Worker
from motia_sse.run.loader import LoadedStep, Project
from motia_sse.run.state import State
from motia_sse.settings import Settings
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Hub
from motia_sse.streams.store import StreamStore
from motia_sse.streams.stream import Stream
from motia_sse.tasks import cancel_and_wait


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
    cron: CronScheduler
    retry_frame: Frame
    feeds: set[Feed]
    access: AccessControl
    # Every feed open now, stream and log feeds alike: what the limits count.
    feeds_by_client: Counter[str] = attrs.field(factory=Counter)
    open_feeds: int = 0
    heartbeat: asyncio.Task[None] | None = None

    def admit_feed(self, client: str) -> None:
        """Raise Refused if one more feed, from `client`, would pass a limit."""
        if self.open_feeds >= self.settings.max_feeds:
            raise Refused(503, "too many open feeds", [
                f"the server holds {self.open_feeds} feeds, its limit (max_feeds)"])
        held, limit = self.feeds_by_client[client], self.settings.max_feeds_per_client
        if held >= limit:
            raise Refused(429, "too many feeds from this address", [
                f"{client} holds {held} feeds, the limit is {limit} (max_feeds_per_client)"])

    def add_feed(self, feed: Feed, client: str) -> None:
        """Track an open stream feed, to count it and to close it on shutdown."""
        self.feeds.add(feed)
        self.hold_feed(client)

    def remove_feed(self, feed: Feed, client: str) -> None:
        """Forget a stream feed that has ended."""
        self.feeds.discard(feed)
        self.release_feed(client)

    def hold_feed(self, client: str) -> None:
        """Count one more open feed from `client` (a log feed counts only this way)."""
        self.open_feeds += 1
        self.feeds_by_client[client] += 1

    def release_feed(self, client: str) -> None:
        """Count a feed from `client` that has ended."""
        self.open_feeds -= 1
        self.feeds_by_client[client] -= 1
        if not self.feeds_by_client[client]:
            del self.feeds_by_client[client]

    async def start(self) -> None:
        """Connect the backend, then start taking events and sending heartbeats."""
        await self.backend.start()
        self.worker.start()
        self.cron.start()
        self.heartbeat = asyncio.create_task(self._beat(), name="motia-sse-heartbeat")

    async def _beat(self) -> None:
        """One timer for every feed, not a task each (see Feed.heartbeat)."""
        frame = Frame.heartbeat()
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            for feed in list(self.feeds):
                feed.heartbeat(frame)

    async def close(self) -> None:
        """Stop handlers (waiting up to the shutdown timeout), then release everything."""
        await cancel_and_wait(self.heartbeat)
        await self.cron.stop(self.settings.shutdown_timeout)
        await self.worker.stop(self.settings.shutdown_timeout)
        for store in self.custom_stores:
            await store.close()
        await self.backend.close()

    def swap_blocker(self, project: Project) -> str | None:
        """Why `project` cannot replace the running one in place, or None if it can."""
        for loaded in (*self.project.streams, *project.streams):
            if loaded.config.base_config.storage_type == "custom":
                return f"stream {loaded.config.name!r} has a custom store, opened at start"
        if self.backend.redis is not None and (
                sorted(_event_steps(self.project)) != sorted(_event_steps(project))):
            return "the event steps changed; their Redis consumer groups are made at start"
        return None

    async def swap(self, project: Project) -> None:
        """Serve `project` from now on, keeping the store, the queue and the open feeds.

        Running handlers finish with the code they started with. Feeds of a stream that
        `project` no longer defines end (a reconnect gets the 404 that explains it)."""
        assert self.swap_blocker(project) is None
        streams = _streams(self.settings, project, self.backend, [])
        contexts = ContextFactory(streams, self.contexts.state,
                                  Emitter(project, self.backend.queue))
        self.worker.replace(_event_steps(project), contexts)
        await self.cron.stop(self.settings.shutdown_timeout)
        self.cron = CronScheduler(project.cron_steps, contexts, self.backend.claim_tick)
        self.cron.start()
        gone = set(self.streams.names()) - set(streams.names())
        self.project, self.streams, self.contexts = project, streams, contexts
        self.access = _access(project)
        close_all(self.hub.feeds_on(gone))

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
    custom: list[StreamStore] = []
    accessor = _streams(settings, project, backend, custom)
    contexts = ContextFactory(accessor, State(backend.store), Emitter(project, backend.queue))
    worker = Worker(backend.queue, _event_steps(project), contexts,
                    settings.max_concurrent_handlers)
    cron = CronScheduler(project.cron_steps, contexts, backend.claim_tick)
    return Runtime(settings, project, backend, custom, hub, accessor, contexts, worker, cron,
                   Frame.retry(settings.retry_ms), feeds, _access(project))


def _streams(settings: Settings, project: Project, backend: Backend,
             custom: list[StreamStore]) -> Streams:
    """`ctx.streams` for `project`; opens each custom store into `custom`."""
    streams: dict[str, Stream[Any]] = {}
    for loaded in project.streams:
        base = loaded.config.base_config
        if base.storage_type == "custom" and base.factory is not None:
            custom.append(base.factory())
            streams[loaded.config.name] = Stream(loaded.config, custom[-1], backend.fanout,
                                                 shared_versions=False,
                                                 max_id_length=settings.max_id_length)
        else:
            streams[loaded.config.name] = Stream(loaded.config, backend.store, backend.fanout,
                                                 max_id_length=settings.max_id_length)
    return Streams(streams)


def _event_steps(project: Project) -> dict[str, LoadedStep]:
    return {s.name: s for s in project.event_steps}


def _access(project: Project) -> AccessControl:
    rules = {s.config.name: s.config.can_access for s in project.streams if s.config.can_access}
    return AccessControl(project.authenticate, rules)
