"""What the workbench does besides reading: run a cron step now, emit an event by hand.

Served where the workbench is (workbench_guard.py: `dev`, or `start --workbench`) and
behind its token. Both take a JSON body only: a page on another site can POST a form or
text/plain to localhost without asking, but `application/json` needs a CORS preflight,
which the workbench never grants, so no other site can run a step through these.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson
from aiohttp import web

from motia_sse.converter import structure
from motia_sse.exceptions import Refused, ValidationError
from motia_sse.http.responses import error_response, json_response
from motia_sse.http.workbench_guard import guard
from motia_sse.run.context import new_trace_id
from motia_sse.run.loader import LoadedStep
from motia_sse.runtime import RUNTIME

RUN_CRON_PATH = "/__motia/cron/{step}/run"
EMIT_PATH = "/__motia/emit"


def add_actions(app: web.Application, token: str | None) -> None:
    """`POST /__motia/cron/<step>/run` and `POST /__motia/emit`, behind `token`."""
    app.router.add_post(RUN_CRON_PATH, guard(_run_cron, token))
    app.router.add_post(EMIT_PATH, guard(_emit, token))


@attrs.frozen
class EmitRequest:
    """The body of `POST /__motia/emit`."""

    topic: str
    data: Any = None
    message_group_id: str | None = None


async def _run_cron(request: web.Request) -> web.Response:
    """Run a cron step's handler once now, beside its schedule: 202 with its trace id."""
    try:
        await _json_body(request)
    except (ValidationError, Refused) as exc:
        return _refusal(exc)
    runtime = request.app[RUNTIME]
    name = request.match_info["step"]
    trace_id = runtime.run_cron_now(name)
    if trace_id is None:
        known = ", ".join(s.name for s in runtime.project.cron_steps) or "none"
        return error_response(404, f"no cron step named {name!r}", [f"cron steps: {known}"])
    return json_response(202, {"traceId": trace_id, "step": name})


async def _emit(request: web.Request) -> web.Response:
    """Queue `data` on `topic` for its subscribers, as a step's emit would: 202 with the
    new trace id and the steps it reached; 400 if no step subscribes or data does not
    fit a subscriber's input."""
    runtime = request.app[RUNTIME]
    try:
        body = structure(await _json_body(request), EmitRequest, "emit request")
        _check(body, runtime.project.subscribers(body.topic), runtime.project.event_steps)
    except (ValidationError, Refused) as exc:
        return _refusal(exc)
    trace_id = new_trace_id()
    reached = await runtime.contexts.emitter.deliver(trace_id, body.topic, body.data,
                                                     body.message_group_id)
    return json_response(202, {"traceId": trace_id, "topic": body.topic, "steps": reached})


def _check(body: EmitRequest, subscribers: list[LoadedStep],
           event_steps: list[LoadedStep]) -> None:
    """Raise ValidationError unless `body` reaches a step and fits each one's input."""
    if body.message_group_id == "":
        raise ValidationError("invalid emit request", [
            "message_group_id: expected a non-empty string or null @ $.message_group_id"])
    if not subscribers:
        heard = sorted({t for s in event_steps for t in getattr(s.config, "subscribes", ())})
        raise ValidationError(f"no step subscribes to topic {body.topic!r}",
                              [f"topics with subscribers: {', '.join(heard) or 'none'}"])
    details = []
    for step in subscribers:
        schema = getattr(step.config, "input", None)
        try:
            if schema is not None:
                structure(body.data, schema, f"input for step {step.name!r}")
        except ValidationError as exc:
            details += [f"step {step.name!r}: {detail.replace('@ $', '@ $.data', 1)}"
                        for detail in exc.details]
    if details:
        raise ValidationError(f"invalid data for topic {body.topic!r}", details)


async def _json_body(request: web.Request) -> Any:
    """The request's JSON ({} when empty); Refused (415) unless the request says it is
    JSON, ValidationError if it is not."""
    if request.content_type != "application/json":
        raise Refused(415, "unsupported content type", [
            f"expected application/json, got {request.content_type or 'none'}"])
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ValidationError("invalid JSON body", [str(exc)]) from None


def _refusal(exc: ValidationError | Refused) -> web.Response:
    return error_response(exc.status if isinstance(exc, Refused) else 400, exc.error,
                          exc.details)
