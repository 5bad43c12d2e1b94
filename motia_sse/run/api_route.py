"""API steps as aiohttp routes: validate the request, run the handler, encode the answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs
import orjson
from aiohttp import web

from motia_sse.backend import is_outage
from motia_sse.exceptions import InvalidId, Refused, ValidationError
from motia_sse.http.responses import JSON_HEADERS, TRACE_HEADER, error_response
from motia_sse.metrics.meters import Meters
from motia_sse.run.bodies import UnreadableBody, read_body
from motia_sse.run.config import ApiRouteConfig
from motia_sse.run.context import ContextFactory, FlowContext, new_trace_id
from motia_sse.run.handler_call import log_failure
from motia_sse.run.loader import LoadedStep
from motia_sse.run.middleware import compose
from motia_sse.run.response_body import encode_answer
from motia_sse.run.tracebacks import describe

B = TypeVar("B")


@attrs.frozen
class ApiRequest(Generic[B]):
    """What an API step's handler receives as `req`: `body` parsed by Content-Type
    (motia_sse.run.bodies), `raw_body` the bytes as they came (a webhook's signature
    is over these), `extra` what middleware put there for the handler."""

    body: B
    path_params: dict[str, str] = attrs.Factory(dict)
    query_params: dict[str, str | list[str]] = attrs.Factory(dict)
    headers: Mapping[str, str] = attrs.Factory(dict)
    raw_body: bytes = b""
    # What middleware found out for the handler (the user a token names, say): the one
    # mutable part of a request, shared by its middleware and handler.
    extra: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class ApiResponse:
    """What an API step's handler returns: a str or bytes body is sent as it is, any other
    (attrs instances too) as JSON; a Content-Type in `headers` wins over the default."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)


class RouteHandler(Protocol):
    """An API step's aiohttp handler; path parameters from the router's match unless given
    (in_place_reload.py routes with a router of its own)."""

    def __call__(self, request: web.Request,
                 path_params: Mapping[str, str] | None = None) -> Awaitable[web.Response]: ...


def route_handler(step: LoadedStep, contexts: ContextFactory,
                  show_where: bool = False, meters: Meters | None = None) -> RouteHandler:
    """The aiohttp handler serving one API step.

    `show_where` (dev): a failure's answer names the file and line that raised, which
    the log always does; facing the internet, the answer names the step and trace.
    `meters` (metrics on): each answer is counted by status and timed."""
    config = step.config
    assert isinstance(config, ApiRouteConfig)
    if step.middleware:
        # `_call` runs the chain where it would run the handler; a route without
        # middleware keeps its direct call, with no frame more per request.
        step = attrs.evolve(step, handler=compose(step.middleware, step.handler, as_response))

    async def handle(request: web.Request,
                     path_params: Mapping[str, str] | None = None) -> web.Response:
        trace_id = new_trace_id()
        headers = {TRACE_HEADER: trace_id}
        try:
            body, raw_body = await read_body(request, config.body_schema)
        except ValidationError as exc:
            refusal = error_response(400, exc.error, exc.details, headers)
            if isinstance(exc, UnreadableBody):
                refusal.force_close()  # the connection's framing is lost with its body
            return refusal
        except Refused as exc:
            return error_response(exc.status, exc.error, exc.details, headers)
        req = ApiRequest(
            body=body,
            path_params=dict(request.match_info if path_params is None else path_params),
            query_params=_query(request),
            headers=request.headers,
            raw_body=raw_body,
        )
        # Run inline: the server does not cancel handlers when a client hangs up
        # (motia_sse.http.disconnect), so none is cut off between two writes.
        status, body, extra = await _call(step, req, contexts(step, trace_id), show_where)
        return web.Response(status=status, body=body, headers={**extra, **headers})

    if meters is None:
        return handle
    meter = meters.route(config.method.upper(), config.path)

    async def counted(request: web.Request,
                      path_params: Mapping[str, str] | None = None) -> web.Response:
        started = time.perf_counter()
        response = await handle(request, path_params)
        meter.observe(response.status, started)
        return response

    return counted


async def _call(step: LoadedStep, req: ApiRequest[Any], ctx: FlowContext,
                show_where: bool) -> tuple[int, bytes, Mapping[str, str]]:
    """Run the handler and encode its answer; a failure becomes a logged 4xx or 5xx."""
    try:
        status, body, headers = _unpack(await step.handler(req, ctx))
        return status, *encode_answer(body, headers)
    except InvalidId as exc:  # an id the handler took from the request, almost always
        ctx.logger.info(f"refused: {exc}")
        return _failure(400, exc.error, exc.details, ctx)
    except Exception as exc:
        if is_outage(exc):  # redis-py has retried already: the store is down, not the step
            ctx.logger.warning(f"store unavailable: {describe(exc)}")
            return _failure(503, "store unavailable", ["the store cannot be reached now; "
                                                       "try again shortly"],
                            ctx, {"Retry-After": "5"})
        where = log_failure(step, ctx, exc)
        if not show_where:
            return _failure(500, f"step {step.name!r} failed",
                            [f"the server log has the error under trace {ctx.trace_id}"], ctx)
        details = ([exc.error, *exc.details] if isinstance(exc, ValidationError)
                   else [describe(exc)])
        return _failure(500, f"step {step.name!r} failed", [*details, f"at {where}"], ctx)


def _failure(status: int, error: str, details: list[str], ctx: FlowContext,
             headers: Mapping[str, str] | None = None) -> tuple[int, bytes, Mapping[str, str]]:
    body = {"error": error, "details": details, "trace_id": ctx.trace_id}
    return status, orjson.dumps(body), {**JSON_HEADERS, **headers} if headers else JSON_HEADERS


def _unpack(result: Any) -> tuple[int, Any, Mapping[str, str]]:
    if not isinstance(result, ApiResponse):
        result = as_response(result)
    return result.status, result.body, result.headers


def as_response(result: Any, who: str = "handler") -> ApiResponse:
    """What a handler or middleware (`who`) returned, as an ApiResponse: it may return
    one or the dict form; anything else is a TypeError saying so."""
    if isinstance(result, ApiResponse):
        return result
    if isinstance(result, Mapping) and "status" in result:
        return ApiResponse(int(result["status"]), result.get("body"),
                           dict(result.get("headers") or {}))
    raise TypeError(f"{who} returned {type(result).__name__}; expected ApiResponse "
                    "or a dict with 'status' and 'body'")


def _query(request: web.Request) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    if not request.query_string:
        return query
    for key in request.query:
        values = request.query.getall(key)
        query[key] = values[0] if len(values) == 1 else values
    return query
