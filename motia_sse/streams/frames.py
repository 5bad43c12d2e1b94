"""SSE events encoded once, as bytes ready for every subscriber's socket."""

from __future__ import annotations

from typing import Any

import attrs
import orjson


@attrs.frozen
class Frame:
    """One SSE event, plain and as an HTTP/1.1 chunk, shared by all its subscribers."""

    raw: bytes
    chunk: bytes
    # The change's version; 0 for events that are not stored (custom events).
    version: int
    # "create", "update" or "delete" for changes; conflation keeps a pending create.
    kind: str = ""

    @classmethod
    def encode(cls, data: Any, *, event: str | None = None, event_id: str | None = None,
               version: int = 0, kind: str = "") -> Frame:
        """Encode `data` as JSON on one `data:` line (orjson never emits a newline)."""
        head = b""
        if event_id is not None:
            head += b"id: " + event_id.encode() + b"\n"
        if event is not None:
            head += b"event: " + event.encode() + b"\n"
        return cls.of(head + b"data: " + orjson.dumps(data) + b"\n\n", version, kind)

    @classmethod
    def retry(cls, milliseconds: int) -> Frame:
        """The reconnection delay, sent once at the start of a feed."""
        return cls.of(f"retry: {milliseconds}\n\n".encode())

    @classmethod
    def heartbeat(cls) -> Frame:
        """A comment, which clients ignore: keeps idle connections (and proxies) open,
        and gives the kernel something whose acknowledgement shows the peer is there."""
        return cls.of(b": ping\n\n")

    @classmethod
    def of(cls, raw: bytes, version: int = 0, kind: str = "") -> Frame:
        """Wrap already-encoded SSE bytes."""
        return cls(raw, b"%x\r\n%b\r\n" % (len(raw), raw), version, kind)
