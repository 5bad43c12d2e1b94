"""SSE events encoded once, as bytes ready for every subscriber's socket."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
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
        return cls.of(_head(event, event_id) + b"data: " + orjson.dumps(data) + b"\n\n",
                      version, kind)

    @classmethod
    def lines(cls, lines: Iterable[bytes], *, event: str | None = None,
              event_id: str | None = None, version: int = 0, kind: str = "") -> Frame:
        """Already-encoded JSON texts, one `data:` line each: a client's `event.data` is
        them joined by newlines."""
        body = b"".join(b"data: " + line + b"\n" for line in lines)
        return cls.of(_head(event, event_id) + body + b"\n", version, kind)

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


@attrs.frozen
class TextFrame(Frame):
    """For delta feeds: an event that gives the client an item's text (a snapshot), or
    takes it away (a delete), with the delta a feed may write instead.

    `key` names the item as the hub's offers do: (kind, stream, group, item). `delta`,
    if not None, turns the text of version `base` into this one."""

    key: Hashable = None
    base: int = 0
    delta: Frame | None = None

    @classmethod
    def of_frame(cls, frame: Frame, key: Hashable, base: int = 0,
                 delta: Frame | None = None) -> TextFrame:
        """`frame`'s bytes, with what a delta feed needs to choose."""
        return cls(frame.raw, frame.chunk, frame.version, frame.kind, key, base, delta)


def _head(event: str | None, event_id: str | None) -> bytes:
    head = b""
    if event_id is not None:
        head += b"id: " + event_id.encode() + b"\n"
    if event is not None:
        head += b"event: " + event.encode() + b"\n"
    return head
