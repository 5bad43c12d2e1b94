"""What the workbench page reads: introspection endpoints and the static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from motia_sse.exceptions import Refused, UnknownStreamError, ValidationError
from motia_sse.http.access import StreamSubscription
from motia_sse.http.json_schema import JsonSchema, json_schema
from motia_sse.http.numbers import parse_count
from motia_sse.http.openapi import serve_openapi
from motia_sse.http.responses import error_response, json_response
from motia_sse.http.workbench_actions import add_actions
from motia_sse.http.workbench_guard import (
    Handler,
    add_login,
    guard,
    guard_page,
    workbench_served,
)
from motia_sse.http.workbench_logs import LOG_ENDPOINTS, keep_logs
from motia_sse.http.workbench_step_settings import queue_settings
from motia_sse.package_data import static_dir
from motia_sse.run.config import ApiRouteConfig, CronConfig, Emit, EventConfig, NoopConfig
from motia_sse.run.loader import LoadedNoop, LoadedStep, LoadedStream
from motia_sse.run.middleware import defined_in, middleware_name
from motia_sse.run.step_settings import StepDefaults
from motia_sse.runtime import RUNTIME
from motia_sse.settings import Settings
from motia_sse.streams.ids import check_id

STATIC_DIR = static_dir()
# The client library of users' own pages: served by `start` too, workbench or not.
CLIENT_LIBRARY = "motia-stream.js"


def add_workbench(app: web.Application, settings: Settings) -> None:
    """Serve `/static/motia-stream.js` (pages use it) always; if the workbench is on
    (workbench_guard.py), the page at `/`, `/__motia/*` and `/openapi.json`, behind its
    token if it has one, and keep the newest log records for it."""
    static = settings.static_dir or STATIC_DIR
    root = static.resolve() if static.is_dir() else None
    if root is not None:
        app.router.add_get(f"/static/{CLIENT_LIBRARY}", _library(root))
    if not workbench_served(settings):
        return
    token = settings.workbench_token
    keep_logs(app, settings)
    for path, handler in _ENDPOINTS.items():
        app.router.add_get(path, guard(handler, token))
    app.router.add_get("/openapi.json", guard(serve_openapi, token))
    add_actions(app, token)  # Run now, Emit
    add_login(app, token)
    if root is not None:
        app.router.add_get("/", guard_page(_page(root), token))
        app.router.add_get("/static/{path:.+}", guard(_static_files(root), token))


def _library(root: Path) -> Handler:
    async def library(_: web.Request) -> web.FileResponse:
        return web.FileResponse(root / CLIENT_LIBRARY, headers=_REVALIDATE)

    return library


def _page(root: Path) -> Handler:
    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "index.html", headers=_REVALIDATE)

    return page


def _static_files(root: Path) -> Handler:
    async def static_file(request: web.Request) -> web.FileResponse:
        try:
            path = (root / request.match_info["path"]).resolve()
            found = path.is_relative_to(root) and path.is_file()
        except (OSError, ValueError):  # a name too long, a NUL: it names no file
            found = False
        if not found:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_REVALIDATE)

    return static_file


# The page is a set of ES modules; a browser guessing freshness from Last-Modified
# would mix old and new modules after an upgrade. (Set per file, not by a
# response-prepare hook, which would run for every API answer and feed too.)
_REVALIDATE = {"Cache-Control": "no-cache"}


async def _steps(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    project = runtime.project
    defaults = StepDefaults.from_settings(runtime.settings)
    steps: list[LoadedStep | LoadedNoop] = [*project.api_steps, *project.event_steps,
                                            *project.cron_steps, *project.noop_steps]
    return json_response(200, [_describe(s, project.steps_dir, defaults) for s in steps])


async def _streams(request: web.Request) -> web.Response:
    project = request.app[RUNTIME].project
    return json_response(200, [_describe_stream(s, project.steps_dir) for s in project.streams])


async def _group(request: web.Request) -> web.Response:
    """Every item of one group, as a step would get them from `get_group`; refused to
    whoever the stream's access rules refuse its group feed, with the same answer."""
    runtime = request.app[RUNTIME]
    try:
        stream = runtime.streams[request.match_info["stream"]]
        group_id = check_id("group id", request.match_info["group"])
        await runtime.check_access(request, [StreamSubscription(stream.name, group_id)])
    except UnknownStreamError as exc:
        return error_response(404, exc.error, exc.details)
    except ValidationError as exc:
        return error_response(400, exc.error, exc.details)
    except Refused as exc:
        return error_response(exc.status, exc.error, exc.details)
    try:
        items = await stream.get_group(group_id)
    except ValidationError as exc:
        # The ids were fine, so it is the stored data that no longer fits the schema.
        return error_response(500, exc.error, exc.details)
    return json_response(200, items)


async def _dead_letters(request: web.Request) -> web.Response:
    """Events whose handler failed every attempt, newest first."""
    raw = request.query.get("limit", "100")
    limit = parse_count(raw)
    if limit is None or not 1 <= limit <= 1000:
        return error_response(400, "invalid limit", [f"limit: expected 1 to 1000, got {raw!r}"])
    letters = await request.app[RUNTIME].dead_letters(limit)
    return json_response(200, letters)


_ENDPOINTS: dict[str, Handler] = {
    "/__motia/steps": _steps,
    "/__motia/streams": _streams,
    "/__motia/streams/{stream}/groups/{group:[^/]+}": _group,
    "/__motia/dead-letters": _dead_letters,
    **LOG_ENDPOINTS,
}


def _describe(step: LoadedStep | LoadedNoop, steps_dir: Path,
              defaults: StepDefaults) -> dict[str, Any]:
    config = step.config
    about: dict[str, Any] = {
        "name": config.name,
        "file": _relative(step.path, steps_dir),
        "description": config.description,
        "emits": [] if isinstance(config, NoopConfig) else _emits(config.emits),
        "virtualEmits": _emits(config.virtual_emits),
        "virtualSubscribes": list(config.virtual_subscribes),
        "flows": list(config.flows),
    }
    if isinstance(config, ApiRouteConfig):
        about.update(
            type="api",
            method=config.method.upper(),
            path=config.path,
            queryParams=[{"name": q.name, "description": q.description}
                         for q in config.query_params],
            middleware=_middleware(step, steps_dir),
            bodySchema=_schema(config.body_schema),
            responseSchema={str(status): json_schema(kind)
                            for status, kind in sorted(config.response_schema.items())},
        )
    elif isinstance(config, EventConfig):
        about.update(type="event", subscribes=list(config.subscribes),
                     inputSchema=_schema(config.input),
                     settings=queue_settings(config, defaults))
    elif isinstance(config, CronConfig):
        about.update(type="cron", cron=config.cron, settings=queue_settings(config, defaults))
    else:
        about.update(type="noop")
    return about


def _emits(emits: tuple[Emit, ...]) -> list[dict[str, Any]]:
    return [{"topic": e.topic, "label": e.label, "conditional": e.conditional} for e in emits]


def _middleware(step: LoadedStep | LoadedNoop, steps_dir: Path) -> list[dict[str, Any]]:
    """What runs around an API step's handler, outermost first, and where it is written."""
    if not isinstance(step, LoadedStep):
        return []
    return [{"name": middleware_name(mw), "file": _relative(file, steps_dir) if
             (file := defined_in(mw)) else None} for mw in step.middleware]


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
