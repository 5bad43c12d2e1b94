"""The workbench's logs: the newest records kept per app, `/__motia/logs` and its live feed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from motia_sse.exceptions import Refused, ValidationError
from motia_sse.http.disconnect import on_disconnect
from motia_sse.http.numbers import parse_count
from motia_sse.http.responses import error_response, json_response
from motia_sse.http.workbench_guard import Handler
from motia_sse.logs.buffer import LOG_BUFFER, LogBuffer
from motia_sse.logs.capture import capture, release
from motia_sse.logs.entry import LogEntry
from motia_sse.logs.subscription import LEVELS, LogQuery
from motia_sse.runtime import RUNTIME
from motia_sse.settings import Settings

LOG_PARAMS = ("trace_id", "step", "level", "limit", "after")
MAX_LOG_LIMIT = 5000
DEFAULT_LOG_LIMIT = 200


def keep_logs(app: web.Application, settings: Settings) -> None:
    """Keep the newest log records for this app's workbench, and end its log feeds on
    shutdown."""
    app[LOG_BUFFER] = LogBuffer(settings.log_buffer_size, settings.log_buffer_bytes)
    app.cleanup_ctx.append(_capture_logs)
    app.on_shutdown.append(_end_log_feeds)


async def _capture_logs(app: web.Application) -> AsyncIterator[None]:
    # Per app, not per process: tests run many apps, one after another.
    handler = capture(app[LOG_BUFFER])
    yield
    release(handler)


async def _end_log_feeds(app: web.Application) -> None:
    app[LOG_BUFFER].close_subscriptions()


async def _logs(request: web.Request) -> web.Response:
    """Recent log records, oldest first, filtered by trace id, step and level."""
    try:
        query, limit, after = _log_query(request)
    except ValidationError as exc:
        return error_response(400, exc.error, exc.details)
    entries = request.app[LOG_BUFFER].recent(query, limit, after)
    return json_response(200, [entry.to_json() for entry in entries])


async def _log_feed(request: web.Request) -> web.StreamResponse:
    """`event: log` per record: the recent matching ones, then each new one.

    A log feed counts with the stream feeds against max_feeds and max_feeds_per_client."""
    feeds = request.app[RUNTIME].feeds
    client = request.remote or "unknown"  # as the stream feeds count it
    try:
        feeds.admit(client)
        query, limit, after = _log_query(request)
    except Refused as exc:
        return error_response(exc.status, exc.error, exc.details, {"Retry-After": "5"})
    except ValidationError as exc:
        return error_response(400, exc.error, exc.details)
    feeds.hold(client)
    try:
        return await _serve_logs(request, query, limit, after)
    finally:
        feeds.release(client)


async def _serve_logs(request: web.Request, query: LogQuery, limit: int,
                      after: int | None) -> web.StreamResponse:
    buffer = request.app[LOG_BUFFER]
    response = EventSourceResponse(
        ping_interval=request.app[RUNTIME].settings.heartbeat_interval)
    await response.prepare(request)
    # A reconnect: only what the browser has not got. An id that is no seq is ignored.
    last_seen = parse_count(response.last_event_id or "")
    if last_seen is not None:
        after = last_seen
    backlog, subscription = buffer.subscribe(query, limit, after)
    try:
        with on_disconnect(request, subscription.close):
            async with response:
                await _send_logs(response, 0, backlog)
                while (batch := await subscription.next_batch()) is not None:
                    await _send_logs(response, *batch)
    except (ConnectionError, TimeoutError):
        pass  # the client went away, or stopped reading for send_timeout
    finally:
        buffer.unsubscribe(subscription)
    return response


async def _send_logs(response: EventSourceResponse, dropped: int,
                     entries: list[LogEntry]) -> None:
    """One write for a batch of records, of events each encoded once for all feeds.

    `send` would format every event again for every feed. A client that stops reading
    is cut by the kernel after aiohttp-sse's send timeout (it sets TCP_USER_TIMEOUT),
    and the write raises ConnectionResetError."""
    frames = [b"event: dropped\ndata: %b\n\n" % orjson.dumps({"dropped": dropped})
              ] if dropped else []
    frames += [entry.frame for entry in entries]
    await response.write(b"".join(frames))


def _log_query(request: web.Request) -> tuple[LogQuery, int, int | None]:
    """The filters of `/__motia/logs` and its feed; every problem at once."""
    params = request.query
    problems = [f"unknown parameter {key!r}; expected {', '.join(LOG_PARAMS)}"
                for key in params if key not in LOG_PARAMS]
    texts: dict[str, str | None] = {}
    for key in ("trace_id", "step"):
        value = params.get(key) or None
        if value is not None and len(value) > 256:
            problems.append(f"{key}: expected at most 256 characters, got {len(value)}")
        texts[key] = value
    level = params.get("level") or None
    if level is not None and level.lower() not in LEVELS:
        problems.append(f"level: expected one of debug, info, warning, error, critical, "
                        f"got {level!r}")
    raw_limit = params.get("limit") or str(DEFAULT_LOG_LIMIT)
    limit = parse_count(raw_limit)
    if limit is None or not 1 <= limit <= MAX_LOG_LIMIT:
        problems.append(f"limit: expected 1 to {MAX_LOG_LIMIT}, got {raw_limit!r}")
    raw_after = params.get("after") or None
    after = None if raw_after is None else parse_count(raw_after)
    if raw_after is not None and after is None:
        problems.append(f"after: expected the seq of a record, got {raw_after!r}")
    if problems or limit is None:
        raise ValidationError("invalid log query", problems)
    query = LogQuery(trace_id=texts["trace_id"], step=texts["step"],
                     min_level=LEVELS[level.lower()] if level else 0)
    return query, limit, after


LOG_ENDPOINTS: dict[str, Handler] = {
    "/__motia/logs": _logs,
    "/__motia/logs/feed": _log_feed,
}
