"""What a stream name, group id or item id may be: safe in a URL, a key and a file."""

from __future__ import annotations

import re

from motia_sse.exceptions import InvalidId

MAX_ID_LENGTH = 256
# Anything printable but the path separator: ids round-trip through URL-encoding.
_ID = re.compile(r"[^/\x00-\x1f\x7f]+")
# A leading "__" is the server's own (state lives in "__state").
_STREAM_NAME = re.compile(r"(?!__)[A-Za-z_][A-Za-z0-9_]*")


def check_id(what: str, value: object, max_length: int = MAX_ID_LENGTH) -> str:
    """Return `value` if it can be a group or item id, else raise InvalidId."""
    if not isinstance(value, str):
        raise InvalidId(f"invalid {what}", [f"expected string, got {type(value).__name__}"])
    if not value or len(value) > max_length:
        raise InvalidId(
            f"invalid {what}", [f"expected 1 to {max_length} characters, got {len(value)}"]
        )
    if not _ID.fullmatch(value) or value in (".", ".."):
        raise InvalidId(
            f"invalid {what}", ["must not contain '/' or control characters, nor be '.' or '..'"]
        )
    return value


def is_stream_name(value: str) -> bool:
    """Whether `value` can name a stream: it becomes an attribute of `ctx.streams`."""
    return bool(_STREAM_NAME.fullmatch(value))
