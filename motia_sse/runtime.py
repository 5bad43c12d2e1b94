"""The parts one server shares between its routes, its feeds and its worker."""

from __future__ import annotations

from typing import Any

import attrs
from aiohttp import web

from motia_sse.backend import Backend, open_backend
from motia_sse.http.access import AccessControl, StreamSubscription
from motia_sse.metrics.counted_queue import CountedQueue
from motia_sse.metrics.meters import Meters
from motia_sse.queue.base import DeadLetter
from motia_sse.run.context import ContextFactory, Emitter, Streams
from motia_sse.run.cron import CronScheduler
from motia_sse.run.event_worker import Worker
from motia_sse.run.loader import LoadedStep, Project
from motia_sse.run.state import State
from motia_sse.run.step_settings import StepDefaults
from motia_sse.settings import Settings
from motia_sse.streams.feed_room import FeedRoom
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Hub
from motia_sse.streams.store import StreamStore
from motia_sse.streams.stream import Stream


@attrs.define
class Runtime:
    """One server's state; built by `build_runtime`, kept under `RUNTIME` in the app."""

    settings: Settings
    project: Project
    _backend: Backend
    _custom_stores: list[StreamStore]
    hub: Hub
    streams: Streams
    contexts: ContextFactory
    _worker: Worker
    _cron: CronScheduler
    retry_frame: Frame
    # Every feed open now: admitted, counted, sent the heartbeat, closed from here.
    feeds: FeedRoom
    _access: AccessControl
    # What `/metrics` reports beyond the feeds; None with metrics off.
    meters: Meters | None = None

    async def start(self) -> None:
        """Connect the backend, then start taking events and sending heartbeats."""
        await self._backend.start()
        self._worker.start()
        self._cron.start()
        self.feeds.start()

    async def close(self) -> None:
        """Stop handlers (waiting up to the shutdown timeout), then release everything."""
        await self.feeds.stop()
        await self._cron.stop(self.settings.shutdown_timeout)
        await self._worker.stop(self.settings.shutdown_timeout)
        for store in self._custom_stores:
            await store.close()
        await self._backend.close()

    async def check_access(self, request: web.Request,
                           subs: list[StreamSubscription]) -> Any:
        """The request's auth context under the current access rules, or raise Refused."""
        return await self._access.check(request, subs)

    def run_cron_now(self, name: str) -> str | None:
        """Run cron step `name` once now; its trace id, or None if there is no such step."""
        return self._cron.run_now(name)

    @property
    def events_in_flight(self) -> int:
        """Event handlers running now."""
        return self._worker.running

    async def ready(self) -> str | None:
        """Why the store (or Redis) does not answer now, or None if it does."""
        return await self._backend.ready()

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Events whose handler failed every attempt, newest first."""
        return await self._backend.queue.dead_letters(limit)

    def close_feeds(self) -> None:
        """End every open stream feed now; their clients reconnect (or, on shutdown, go)."""
        self.feeds.close_all()

    def swap_blocker(self, project: Project) -> str | None:
        """Why `project` cannot replace the running one in place, or None if it can."""
        for loaded in (*self.project.streams, *project.streams):
            if loaded.config.base_config.storage_type == "custom":
                return f"stream {loaded.config.name!r} has a custom store, opened at start"
        if self._backend.redis is not None and (
                sorted(_event_steps(self.project)) != sorted(_event_steps(project))):
            return "the event steps changed; their Redis consumer groups are made at start"
        return None

    async def swap(self, project: Project) -> None:
        """Serve `project` from now on, keeping the store, the queue and the open feeds.

        Running handlers finish with the code they started with. Feeds of a stream that
        `project` no longer defines end (a reconnect gets the 404 that explains it)."""
        assert self.swap_blocker(project) is None
        streams = _streams(self.settings, project, self._backend, [])
        contexts = ContextFactory(streams, self.contexts.state,
                                  Emitter(project, self._backend.queue))
        self._worker.replace(_event_steps(project), contexts)
        await self._cron.stop(self.settings.shutdown_timeout)
        self._cron = CronScheduler(project.cron_steps, contexts, self._backend.claim_tick,
                                   self.meters, StepDefaults.from_settings(self.settings))
        self._cron.start()
        gone = set(self.streams.names()) - set(streams.names())
        self.project, self.streams, self.contexts = project, streams, contexts
        self._access = _access(project)
        self.feeds.close_on(gone)


RUNTIME = web.AppKey("motia_sse.runtime", Runtime)


def build_runtime(settings: Settings, project: Project) -> Runtime:
    """Wire backend, hub, streams and worker for `project`."""
    hub = Hub()
    feeds = FeedRoom(hub, settings.max_feeds, settings.max_feeds_per_client,
                     settings.heartbeat_interval)
    backend = open_backend(settings, hub, [s.name for s in project.event_steps],
                           feeds.close_all)
    meters = Meters() if settings.metrics else None
    if meters is not None:
        backend.queue = CountedQueue(backend.queue, meters, settings.max_attempts)
    custom: list[StreamStore] = []
    accessor = _streams(settings, project, backend, custom)
    contexts = ContextFactory(accessor, State(backend.store), Emitter(project, backend.queue))
    defaults = StepDefaults.from_settings(settings)
    worker = Worker(backend.queue, _event_steps(project), contexts,
                    settings.max_concurrent_handlers, meters, defaults)
    cron = CronScheduler(project.cron_steps, contexts, backend.claim_tick, meters, defaults)
    return Runtime(settings, project, backend, custom, hub, accessor, contexts, worker, cron,
                   Frame.retry(settings.retry_ms), feeds, _access(project), meters)


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
