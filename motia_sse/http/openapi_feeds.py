"""The stream feeds in `/openapi.json`: their URLs, parameters, events and refusals."""

from __future__ import annotations

from motia_sse.http.json_schema import JsonSchema
from motia_sse.run.loader import Project
from motia_sse.settings import Settings

FEED_TAG = "streams"
# What motia_sse.streams.ids.check_id accepts. `(?![\s\S])` is the end of the string in both
# ECMA-262 and Python, whose `$` would also match before a final newline.
_ID_PATTERN = r"^(?!\.\.?(?![\s\S]))[^/\u0000-\u001f\u007f]+(?![\s\S])"


def json_content(schema: JsonSchema | None) -> JsonSchema:
    """A JSON body of `schema` (anything if None), as OpenAPI's `content` says it."""
    return {"application/json": {"schema": schema if schema is not None else {}}}


def feed_paths(project: Project, settings: Settings) -> dict[str, JsonSchema]:
    """The three feed URLs, with the ids and subscriptions they accept and their refusals."""
    streams = sorted(s.config.name for s in project.streams)
    stream: JsonSchema = {"type": "string"}
    if streams:
        stream["enum"] = streams
    stream_param = _path_param("stream", "A stream's name", stream)
    group = _path_param("group", "The group id", _id_schema(settings))
    item = _path_param("item", "The item id", _id_schema(settings))
    sub = {"name": "sub", "in": "query", "required": True, "style": "form", "explode": True,
           "description": "`<stream>/<group>` or `<stream>/<group>/<id>`, each part "
                          "URL-encoded, then the whole value encoded as a query value",
           "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                      "maxItems": settings.max_subscriptions}}
    errors = _feed_errors(any(s.config.can_access is not None for s in project.streams))
    return {
        "/streams": {"get": _feed_operation(
            "motia_sse.multiplexed_feed", "Many items and groups on one connection",
            [sub], "`item`, `item-delete`, `sync`, `create`, `update`, `delete` and `event` "
            "events, each naming its stream, group and id", errors)},
        "/streams/{stream}/{group}": {"get": _feed_operation(
            "motia_sse.group_feed", "One group's items",
            [stream_param, group], "`sync` with every item, then `create`, `update`, "
            "`delete`, and custom `event`s", errors)},
        "/streams/{stream}/{group}/{item}": {"get": _feed_operation(
            "motia_sse.item_feed", "One item",
            [stream_param, group, item], "The item's snapshot, one `message` per change, "
            "`delete`, and custom `event`s", errors)},
    }


def _feed_errors(guarded: bool) -> dict[str, str]:
    errors = {"400": "A malformed id or subscription",
              "404": "No stream of that name",
              "429": "Too many feeds open from this address (max_feeds_per_client)",
              "503": "Too many feeds open (max_feeds)"}
    if guarded:  # only streams with `can_access` refuse anyone
        errors["401"] = "A stream's `can_access` refused a request that `authenticate` found " \
                        "no one in, or `authenticate` raised"
        errors["403"] = "A stream's `can_access` refused this auth context"
    return dict(sorted(errors.items()))


def _feed_operation(operation_id: str, summary: str, params: list[JsonSchema],
                    events: str, errors: dict[str, str]) -> JsonSchema:
    last_event_id = {"name": "Last-Event-ID", "in": "header", "required": False,
                     "description": "The last `id:` the client received; on reconnect the "
                                    "feed sends only what changed since",
                     "schema": {"type": "string"}}
    delta = {"name": "delta", "in": "query", "required": False,
             "description": "1: a change to an item the client holds comes as a splice of "
                            "the text it last received (README, Delta frames); 0 or absent: "
                            "whole items",
             "schema": {"type": "integer", "enum": [0, 1], "default": 0}}
    responses: JsonSchema = {"200": {
        "description": events, "content": {"text/event-stream": {"schema": {"type": "string"}}}}}
    for status, description in errors.items():
        responses[status] = {"description": description,
                             "content": json_content({"$ref": "#/components/schemas/Error"})}
        if status in ("429", "503"):
            responses[status]["headers"] = {"Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"}}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [FEED_TAG],
        "parameters": [*params, delta, last_event_id],
        "responses": responses,
    }


def _path_param(name: str, description: str, schema: JsonSchema) -> JsonSchema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


def _id_schema(settings: Settings) -> JsonSchema:
    return {"type": "string", "minLength": 1, "maxLength": settings.max_id_length,
            "pattern": _ID_PATTERN}
