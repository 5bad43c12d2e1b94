"""`create_app(settings)`: the aiohttp application serving a project's steps and streams."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from motia_sse.http.cors import add_cors
from motia_sse.http.feeds import group_feed, item_feed, multiplexed_feed
from motia_sse.http.health import add_health
from motia_sse.http.metrics import add_metrics
from motia_sse.http.proxy import trust_proxies
from motia_sse.http.responses import error_response
from motia_sse.http.workbench import add_workbench
from motia_sse.process.in_place_reload import make_reloadable
from motia_sse.run.api_route import route_handler
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.loader import Project, load_project
from motia_sse.runtime import RUNTIME, build_runtime
from motia_sse.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: Settings, project: Project | None = None,
               reloadable: bool = False) -> web.Application:
    """Load the steps (unless given), then build the app; LoadErrors if a file is broken.

    `reloadable` (`motia-sse dev`): reload the steps in place on SIGHUP (in_place_reload.py)."""
    project = project or load_project(settings.steps_dir)
    app = web.Application(middlewares=[_json_errors], client_max_size=settings.max_body_size)
    trust_proxies(app, settings)  # inside _json_errors: a malformed X-Forwarded-For is JSON
    runtime = build_runtime(settings, project)
    app[RUNTIME] = runtime
    if not reloadable:
        for step in project.api_steps:
            assert isinstance(step.config, ApiRouteConfig)
            app.router.add_route(step.config.method.upper(), step.config.path,
                                 route_handler(step, runtime.contexts, settings.dev,
                                               runtime.meters))
    app.router.add_get("/streams", multiplexed_feed)
    # Ids may hold braces, which aiohttp's default segment pattern refuses.
    app.router.add_get("/streams/{stream}/{group:[^/]+}", group_feed)
    app.router.add_get("/streams/{stream}/{group:[^/]+}/{item:[^/]+}", item_feed)
    add_health(app)  # always: /healthz, /readyz
    add_metrics(app)  # /metrics: always in dev, if asked in start
    # The page, /__motia/* and /openapi.json: always in dev, if asked in start.
    add_workbench(app, settings)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_feeds)
    add_cors(app, settings)  # after the routes it covers, before dev's catch-all
    if reloadable:
        make_reloadable(app)
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """How aiohttp serves the app, in `motia-sse start` and in the tests alike.

    Handlers are not cancelled when a client hangs up (aiohttp's default): an API step
    runs to its end, and feeds notice a client leaving by themselves (disconnect.py)."""
    return {"handler_cancellation": False, "access_log": None,
            "shutdown_timeout": settings.shutdown_timeout,
            "max_line_size": settings.max_header_size,
            "max_field_size": settings.max_header_size}


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.start()
    yield
    await runtime.close()


async def _close_feeds(app: web.Application) -> None:
    app[RUNTIME].close_feeds()


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (404, 405, 413, ...) as JSON, like every other error here."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        details = [f"{request.method} {request.path}"]
        return error_response(exc.status, exc.reason, details, headers=_allow(exc))


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
