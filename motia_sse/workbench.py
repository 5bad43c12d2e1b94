"""What the workbench page reads: introspection endpoints and the static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from motia_sse.api import error_response, json_response
from motia_sse.config import ApiRouteConfig, EventConfig, Settings
from motia_sse.converter import unstructure
from motia_sse.exceptions import UnknownStreamError, ValidationError
from motia_sse.ids import check_id
from motia_sse.json_schema import JsonSchema, json_schema
from motia_sse.loader import LoadedStep, LoadedStream
from motia_sse.runtime import RUNTIME

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def add_workbench(app: web.Application, settings: Settings) -> None:
    """Serve `/__motia/*` and the page at `/`."""
    static = settings.static_dir or STATIC_DIR
    app.router.add_get("/__motia/steps", _steps)
    app.router.add_get("/__motia/streams", _streams)
    app.router.add_get("/__motia/streams/{stream}/groups/{group}", _group)
    app.router.add_get("/__motia/dead-letters", _dead_letters)
    if static.is_dir():
        index = static / "index.html"

        async def page(_: web.Request) -> web.FileResponse:
            return web.FileResponse(index)

        app.router.add_get("/", page)
        app.router.add_static("/static", static)
        app.on_response_prepare.append(_revalidate_static)


async def _revalidate_static(request: web.Request, response: web.StreamResponse) -> None:
    # The page is a set of ES modules; a browser guessing freshness from
    # Last-Modified would mix old and new modules after an upgrade.
    if request.path == "/" or request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-cache")


async def _steps(request: web.Request) -> web.Response:
    project = request.app[RUNTIME].project
    steps = project.api_steps + project.event_steps
    return json_response(200, [_describe(s, project.steps_dir) for s in steps])


async def _streams(request: web.Request) -> web.Response:
    project = request.app[RUNTIME].project
    return json_response(200, [_describe_stream(s, project.steps_dir) for s in project.streams])


async def _group(request: web.Request) -> web.Response:
    """Every item of one group, as a step would get them from `get_group`."""
    try:
        stream = request.app[RUNTIME].streams[request.match_info["stream"]]
        group_id = check_id("group id", request.match_info["group"])
    except UnknownStreamError as exc:
        return error_response(404, exc.error, exc.details)
    except ValidationError as exc:
        return error_response(400, exc.error, exc.details)
    try:
        items = await stream.get_group(group_id)
    except ValidationError as exc:
        # The ids were fine, so it is the stored data that no longer fits the schema.
        return error_response(500, exc.error, exc.details)
    return json_response(200, unstructure(items))


async def _dead_letters(request: web.Request) -> web.Response:
    """Events whose handler failed every attempt, newest first."""
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        return error_response(400, "invalid limit", [f"expected 1 to 1000, got {raw!r}"])
    letters = await request.app[RUNTIME].backend.queue.dead_letters(int(raw))
    return json_response(200, unstructure(letters))


def _describe(step: LoadedStep, steps_dir: Path) -> dict[str, Any]:
    config = step.config
    about: dict[str, Any] = {
        "name": config.name,
        "file": _relative(step.path, steps_dir),
        "description": config.description,
        "emits": list(config.emits),
        "flows": list(config.flows),
    }
    if isinstance(config, ApiRouteConfig):
        about.update(
            type="api",
            method=config.method.upper(),
            path=config.path,
            queryParams=[{"name": q.name, "description": q.description}
                         for q in config.query_params],
            bodySchema=_schema(config.body_schema),
            responseSchema={str(status): json_schema(kind)
                            for status, kind in sorted(config.response_schema.items())},
        )
    elif isinstance(config, EventConfig):
        about.update(type="event", subscribes=list(config.subscribes),
                     inputSchema=_schema(config.input))
    return about


def _describe_stream(stream: LoadedStream, steps_dir: Path) -> dict[str, Any]:
    return {
        "name": stream.config.name,
        "file": _relative(stream.path, steps_dir),
        "storageType": stream.config.base_config.storage_type,
        "schema": json_schema(stream.config.schema),
    }


def _schema(kind: type[Any] | None) -> JsonSchema | None:
    return None if kind is None else json_schema(kind)


def _relative(path: Path, steps_dir: Path) -> str:
    # Relative to the steps folder: what the developer sees in their editor's tree.
    try:
        return str(path.relative_to(steps_dir))
    except ValueError:
        return str(path)
