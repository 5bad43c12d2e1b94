"""A handler's answer on the wire: a `str` or `bytes` body as it is, anything else as JSON.

The handler's own Content-Type wins, whatever case its name is written in; without one,
a str is `text/plain; charset=utf-8`, bytes `application/octet-stream`, the rest JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from motia_sse.converter import to_json
from motia_sse.http.responses import JSON_HEADERS

TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}
BYTES_HEADERS = {"Content-Type": "application/octet-stream"}


def encode_answer(body: Any, headers: Mapping[str, str]) -> tuple[bytes, Mapping[str, str]]:
    """The bytes of `body` and the headers to send them with: `headers`, with a
    Content-Type unless they have one. A str is encoded in the charset the handler's
    Content-Type names, else in utf-8 (which a text/* type then says)."""
    if isinstance(body, str):
        return _text(body, headers)
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), _with_type(headers, BYTES_HEADERS)
    return to_json(body), _with_type(headers, JSON_HEADERS)


def default_type(kind: Any) -> str:
    """The Content-Type a body of class `kind` is sent with when the handler names none."""
    if kind is str:
        return TEXT_HEADERS["Content-Type"]
    if kind is bytes:
        return BYTES_HEADERS["Content-Type"]
    return JSON_HEADERS["Content-Type"]


def _with_type(headers: Mapping[str, str], default: Mapping[str, str]) -> Mapping[str, str]:
    if not headers:  # the common case: no headers of the handler's own
        return default
    if _content_type_key(headers) is not None:
        return headers
    return {**default, **headers}


def _text(body: str, headers: Mapping[str, str]) -> tuple[bytes, Mapping[str, str]]:
    key = _content_type_key(headers) if headers else None
    if key is None:
        return body.encode(), {**TEXT_HEADERS, **headers}
    content_type = headers[key]
    charset = _charset(content_type)
    if charset is not None:
        return body.encode(charset), headers  # an unknown charset fails the step, naming it
    if content_type.lstrip().lower().startswith("text/"):
        # Without a charset a browser guesses (windows-1252 for text/html); say what
        # the bytes are, as aiohttp's own text responses do.
        return body.encode(), {**headers, key: f"{content_type}; charset=utf-8"}
    return body.encode(), headers


def _content_type_key(headers: Mapping[str, str]) -> str | None:
    return next((k for k in headers if k.lower() == "content-type"), None)


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
