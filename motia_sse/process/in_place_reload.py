"""`motia-sse dev` reloads steps inside the running server, keeping its open feeds.

The watcher (`dev_watcher.py`) sends the server SIGHUP once the changed files load. The
server loads them again and swaps them in: API routes, event and cron handlers,
streams and access rules change; the store, the queue, the hub and every open feed
stay (a feed on a stream the new code no longer defines ends). A change that cannot
be swapped in (`Runtime.swap_blocker`) ends the server with `RESTART`, and the
watcher starts a fresh one; open feeds reconnect and resume with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence

import attrs
from aiohttp import web

from motia_sse.exceptions import LoadErrors
from motia_sse.http.cors import allow_cross_origin
from motia_sse.metrics.meters import Meters
from motia_sse.run.api_route import RouteHandler, route_handler
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.context import ContextFactory
from motia_sse.run.loader import LoadedStep, load_project
from motia_sse.runtime import RUNTIME

log = logging.getLogger("motia_sse")

# The exit status with which a server asks its watcher for a fresh process.
RESTART = 75


class ApiRoutes:
    """The API steps' routes behind one catch-all route, so that a reload can swap them."""

    def __init__(self, steps: Sequence[LoadedStep], contexts: ContextFactory,
                 meters: Meters | None = None) -> None:
        self._router = web.UrlDispatcher()
        self._meters = meters
        self._handlers: dict[web.AbstractRoute, RouteHandler] = {}
        self.replace(steps, contexts)

    def replace(self, steps: Sequence[LoadedStep], contexts: ContextFactory) -> None:
        """Serve `steps` from the next request on."""
        router = web.UrlDispatcher()
        handlers: dict[web.AbstractRoute, RouteHandler] = {}
        for step in steps:
            assert isinstance(step.config, ApiRouteConfig)
            handler = route_handler(step, contexts, show_where=True,  # dev's alone
                                    meters=self._meters)
            handlers[router.add_route(step.config.method.upper(), step.config.path,
                                      handler)] = handler
        router.freeze()
        self._router, self._handlers = router, handlers

    async def handle(self, request: web.Request) -> web.Response:
        """Route to the current steps; 404 and 405 as the app's own router gives them."""
        router, handlers = self._router, self._handlers
        match = await router.resolve(request)
        if match.http_exception is not None:
            raise match.http_exception
        return await handlers[match.route](request, dict(match))


@attrs.define
class Reloader:
    """What a reloadable server keeps to reload: its routes, and whether to restart."""

    routes: ApiRoutes
    restart: bool = False
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    _tasks: set[asyncio.Task[None]] = attrs.field(factory=set)

    async def reload(self, app: web.Application) -> None:
        """Load the steps folder again and swap it in, or ask for a restart."""
        async with self._lock:
            try:
                await self._reload(app)
            except Exception:
                log.exception("reloading failed: restarting the server")
                self._ask_for_restart()

    async def _reload(self, app: web.Application) -> None:
        runtime = app[RUNTIME]
        started = time.monotonic()
        try:
            project = load_project(runtime.settings.steps_dir)
        except LoadErrors as exc:
            log.error("not reloading; the running steps go on. Fix these first:\n%s",
                      exc.indented())
            return
        reason = runtime.swap_blocker(project)
        if reason is not None:
            log.info("%s: restarting the server", reason)
            self._ask_for_restart()
            return
        await runtime.swap(project)
        self.routes.replace(project.api_steps, runtime.contexts)
        steps = len(project.api_steps) + len(project.event_steps) + len(project.cron_steps)
        log.info("reloaded %d steps and %d streams in %.0f ms; %d open stream feeds kept",
                 steps, len(project.streams), (time.monotonic() - started) * 1000,
                 len(runtime.feeds))

    def _ask_for_restart(self) -> None:
        """End this server (gracefully, as on SIGTERM) with RESTART for the watcher."""
        self.restart = True
        os.kill(os.getpid(), signal.SIGTERM)

    def _on_sighup(self, app: web.Application) -> None:
        task = asyncio.create_task(self.reload(app), name="motia-sse-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def listen(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: reload on SIGHUP while the app runs."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup, app)
        yield
        loop.remove_signal_handler(signal.SIGHUP)
        for task in list(self._tasks):
            await task


RELOADER = web.AppKey("motia_sse.reloader", Reloader)


def make_reloadable(app: web.Application) -> None:
    """Serve the API steps through swappable routes and reload them on SIGHUP.

    Call after every other route is added: the catch-all route must come last."""
    runtime = app[RUNTIME]
    reloader = Reloader(ApiRoutes(runtime.project.api_steps, runtime.contexts,
                                  runtime.meters))
    app[RELOADER] = reloader
    catch_all = app.router.add_resource("/{path:.*}")
    # Its preflight route first: aiohttp-cors adds none beside an any-method route.
    allow_cross_origin(app, catch_all)
    catch_all.add_route("*", reloader.routes.handle)
    app.cleanup_ctx.append(reloader.listen)
