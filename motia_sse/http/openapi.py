"""`GET /openapi.json`: OpenAPI 3.1 for the API steps and the stream feeds."""

from __future__ import annotations

import http
import importlib.metadata
import re
from typing import Any

from aiohttp import web

from motia_sse.http.json_schema import JsonSchema
from motia_sse.http.openapi_feeds import FEED_TAG, feed_paths, json_content
from motia_sse.http.openapi_schemas import ERROR_SCHEMAS, Schemas, count_uses
from motia_sse.http.proxy import root_path
from motia_sse.http.responses import TRACE_HEADER, json_response
from motia_sse.run.bodies import accepted_types
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.loader import Project
from motia_sse.run.middleware import middleware_name
from motia_sse.run.response_body import default_type
from motia_sse.run.route_paths import PARAM
from motia_sse.runtime import RUNTIME
from motia_sse.settings import Settings

OPENAPI_VERSION = "3.1.0"
_BODY_METHODS = ("post", "put", "patch")
_JSON = "application/json"


def add_openapi(app: web.Application) -> None:
    """Serve the project's OpenAPI document at `GET /openapi.json`."""
    app.router.add_get("/openapi.json", serve_openapi)


async def serve_openapi(request: web.Request) -> web.Response:
    """`GET /openapi.json`: the document of the project being served now."""
    runtime = request.app[RUNTIME]
    return json_response(200, openapi_document(runtime.project, runtime.settings,
                                               root_path(request, runtime.settings)))


def openapi_document(project: Project, settings: Settings,
                     root: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `project`'s API steps and of the feeds; with a
    proxy's `root` path ("/motia"), its `servers` say the paths are under it."""
    routes = [s.config for s in project.api_steps if isinstance(s.config, ApiRouteConfig)]
    schemas = Schemas(count_uses(routes))
    paths: dict[str, dict[str, Any]] = {}
    for config in routes:
        template, path_params = _path_template(config.path)
        paths.setdefault(template, {})[config.method.lower()] = _operation(
            config, path_params, schemas, settings)
    _name_middleware(paths, project)
    paths.update(feed_paths(project, settings))
    flows = sorted({flow for config in routes for flow in config.flows})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "motia_sse", "version": _version(),
                 "description": "The API steps of this project and its stream feeds."},
        **({"servers": [{"url": root}]} if root else {}),
        "tags": [{"name": flow} for flow in flows if flow != FEED_TAG]
        + [{"name": FEED_TAG, "description": "Server-Sent Event feeds of stream items"}],
        "paths": paths,
        "components": {"schemas": {**ERROR_SCHEMAS, **schemas.components},
                       "headers": _HEADERS},
    }


def _name_middleware(paths: dict[str, dict[str, Any]], project: Project) -> None:
    """`x-middleware` on each operation that has some: the names, outermost first."""
    for step in project.api_steps:
        if step.middleware and isinstance(step.config, ApiRouteConfig):
            operation = paths[_path_template(step.config.path)[0]][step.config.method.lower()]
            operation["x-middleware"] = [middleware_name(mw) for mw in step.middleware]


def _version() -> str:
    try:
        return importlib.metadata.version("motia_sse")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "0"


def _path_template(path: str) -> tuple[str, list[JsonSchema]]:
    """`/users/{id:\\d+}` -> (`/users/{id}`, its path parameters)."""
    params: list[JsonSchema] = []

    def replace(match: re.Match[str]) -> str:
        schema: JsonSchema = {"type": "string"}
        if match["regex"]:
            schema["pattern"] = f"^(?:{match['regex']})$"
        params.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
        return "{" + match["name"] + "}"

    return PARAM.sub(replace, path), params


def _operation(config: ApiRouteConfig, path_params: list[JsonSchema],
               schemas: Schemas, settings: Settings) -> JsonSchema:
    description = config.description.strip()
    summary = description.splitlines()[0] if description else config.name
    operation: JsonSchema = {"operationId": config.name, "summary": summary}
    if description != summary:
        operation["description"] = description
    if config.flows:
        operation["tags"] = list(config.flows)
    queries = {q.name: {"name": q.name, "in": "query", "required": False,
                        "description": q.description, "schema": {"type": "string"}}
               for q in config.query_params}
    if parameters := path_params + list(queries.values()):
        operation["parameters"] = parameters
    takes_body = config.body_schema is not None or config.method.lower() in _BODY_METHODS
    if config.body_schema is not None:
        body = schemas.of(config.body_schema, response=False)
        operation["requestBody"] = {"required": True, "content": {
            media: {"schema": body} for media in accepted_types(config.body_schema)}}
    elif takes_body:
        operation["requestBody"] = {"required": False, "content": json_content({})}
    operation["responses"] = _responses(config, schemas, takes_body, settings)
    return operation


def _responses(config: ApiRouteConfig, schemas: Schemas, takes_body: bool,
               settings: Settings) -> JsonSchema:
    declared = {str(status): schemas.of(kind, response=True)
                for status, kind in config.response_schema.items()}
    errors = {"500": ("#/components/schemas/StepFailure",
                      "The handler raised; the traceback is in the server's log"),
              "400": ("#/components/schemas/Error",
                      "An id the handler took from the request cannot be one")}
    if takes_body:
        errors["400"] = ("#/components/schemas/Error", "The body is not JSON, or does not fit "
                         "the body schema, or an id taken from it cannot be one")
    if config.body_schema is not None:
        errors["415"] = ("#/components/schemas/Error",
                         "The Content-Type is not one of those the request body lists")
    if settings.redis_url:
        errors["503"] = ("#/components/schemas/StepFailure",
                         "Redis cannot be reached now; try again after Retry-After")
    responses: JsonSchema = {}
    for status in declared.keys() | errors.keys():
        description = _reason(status)
        content: JsonSchema = {}
        if status in declared:  # a str answer is text/plain, bytes octet-stream
            kind = config.response_schema[int(status)]
            content[default_type(kind)] = {"schema": declared[status]}
        if status in errors:
            ref, description = errors[status]
            answer = content.get(_JSON, {}).get("schema")
            content.update(json_content({"$ref": ref} if answer is None
                                        else {"anyOf": [answer, {"$ref": ref}]}))
        responses[status] = {"description": description, "headers": _TRACE_ID,
                             "content": content}
    if takes_body and "413" not in responses:
        # aiohttp's own refusal, before the step runs: no trace id.
        responses["413"] = {"description": f"The body is larger than {settings.max_body_size} "
                                           "bytes (max_body_size)",
                            "content": json_content({"$ref": "#/components/schemas/Error"})}
    if not declared:
        responses["default"] = {"description": "What the handler returns",
                                "headers": _TRACE_ID, "content": json_content({})}
    return dict(sorted(responses.items()))


def _reason(status: str) -> str:
    try:
        return http.HTTPStatus(int(status)).phrase
    except ValueError:
        return f"Status {status}"


_HEADERS: dict[str, JsonSchema] = {
    "TraceId": {"description": "The trace id of the request; it is in the server's log lines",
                "schema": {"type": "string"}},
}
_TRACE_ID = {TRACE_HEADER: {"$ref": "#/components/headers/TraceId"}}
