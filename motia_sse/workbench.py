"""What the workbench page reads: introspection endpoints and the static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from motia_sse.api import json_response
from motia_sse.config import ApiRouteConfig, EventConfig, Settings
from motia_sse.loader import LoadedStep
from motia_sse.runtime import RUNTIME

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def add_workbench(app: web.Application, settings: Settings) -> None:
    """Serve `/__motia/*` and the page at `/`."""
    static = settings.static_dir or STATIC_DIR
    app.router.add_get("/__motia/steps", _steps)
    app.router.add_get("/__motia/streams", _streams)
    if static.is_dir():
        index = static / "index.html"

        async def page(_: web.Request) -> web.FileResponse:
            return web.FileResponse(index)

        app.router.add_get("/", page)
        app.router.add_static("/static", static)


async def _steps(request: web.Request) -> web.Response:
    project = request.app[RUNTIME].project
    return json_response(200, [_describe(s) for s in project.api_steps + project.event_steps])


async def _streams(request: web.Request) -> web.Response:
    return json_response(200, request.app[RUNTIME].streams.names())


def _describe(step: LoadedStep) -> dict[str, Any]:
    config = step.config
    about: dict[str, Any] = {
        "name": config.name,
        "file": str(step.path),
        "description": config.description,
        "emits": list(config.emits),
        "flows": list(config.flows),
    }
    if isinstance(config, ApiRouteConfig):
        about.update(type="api", method=config.method.upper(), path=config.path)
    elif isinstance(config, EventConfig):
        about.update(type="event", subscribes=list(config.subscribes))
    return about
