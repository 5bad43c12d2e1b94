"""JSON answers: every response and refusal the server writes itself has this shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from motia_sse.converter import to_json

# Every API answer carries the trace id of the handler run it came from.
TRACE_HEADER = "x-trace-id"
JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response encoded with the project's converter."""
    return web.Response(status=status, body=to_json(body),
                        headers={**JSON_HEADERS, **headers} if headers else JSON_HEADERS)



def error_response(status: int, error: str, details: list[str] | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """`{"error": ..., "details": [...]}`: every refusal the server gives has this shape."""
    return json_response(status, {"error": error, "details": details or []}, headers)
