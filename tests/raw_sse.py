"""An SSE client on a bare socket, independent of aiohttp's client, for checking the wire.

`SseParser` implements the event-stream interpretation of the WHATWG HTML standard
(section 9.2.6): CRLF, LF and CR line ends; comments; `data`, `event`, `id` and `retry`
fields; multi-line data joined with LF; the last event ID persisting across events; an
event dispatched only on a blank line and only if it has data.

`open_raw` speaks HTTP/1.1 (or HTTP/1.0) over `asyncio.open_connection` and decodes
`Transfer-Encoding: chunked` itself, strictly: a malformed chunk is a `ProtocolError`.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import socket
from collections.abc import Callable
from typing import Any

import attrs

from tests.sse_parse import silent

LF, CR = "\n", "\r"
# The StreamReader limit of a slow client (open_raw's receive_buffer); it reads up to
# twice this ahead.
READ_AHEAD = 1024


class ProtocolError(Exception):
    """The server's bytes break HTTP/1.1 framing."""


@attrs.frozen
class RawEvent:
    """One dispatched event, with the fields a browser's MessageEvent carries."""

    event: str
    data: str
    # The source's last event ID when the event was dispatched (persists across events).
    last_event_id: str
    # The `id:` field of this event's own block, if it had one.
    own_id: str | None

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


@attrs.define
class SseParser:
    """Incremental text/event-stream parser; feed it bytes in any split."""

    last_event_id: str = ""
    retry: int | None = None
    comments: list[str] = attrs.Factory(list)
    _decoder: codecs.IncrementalDecoder = attrs.Factory(
        lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    _line: list[str] = attrs.Factory(list)
    _after_cr: bool = False
    _started: bool = False
    _data: list[str] = attrs.Factory(list)
    _event: str = ""
    _id_buffer: str = ""
    _own_id: str | None = None

    def feed(self, raw: bytes) -> list[RawEvent]:
        """Consume bytes; return the events they complete, in order."""
        text = self._decoder.decode(raw)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        events: list[RawEvent] = []
        for char in text:
            if self._after_cr:
                self._after_cr = False
                if char == LF:
                    continue  # the LF of a CRLF
            if char in (CR, LF):
                self._after_cr = char == CR
                line, self._line = "".join(self._line), []
                event = self._process(line)
                if event is not None:
                    events.append(event)
            else:
                self._line.append(char)
        return events

    def _process(self, line: str) -> RawEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
                self._own_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            self.retry = int(value)
        return None  # other field names are ignored

    def _dispatch(self) -> RawEvent | None:
        self.last_event_id = self._id_buffer
        data, event, own_id = self._data, self._event, self._own_id
        self._data, self._event, self._own_id = [], "", None
        if not data:
            return None
        return RawEvent(event or "message", LF.join(data), self.last_event_id, own_id)


@attrs.define
class RawResponse:
    """An HTTP response read off the socket by hand; its body read as SSE."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    parser: SseParser = attrs.Factory(SseParser)
    # The payload of every chunk received, in order (chunked responses only).
    chunks: list[bytes] = attrs.Factory(list)
    # The body as decoded from its transfer coding.
    body: bytearray = attrs.Factory(bytearray)
    # True once the body is complete: the last chunk, or EOF for a close-delimited body.
    ended: bool = False
    # True if the server closed the connection (EOF on the socket).
    eof: bool = False
    _events: list[RawEvent] = attrs.Factory(list)
    _chunk_size: int | None = None

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), None if absent; a header sent
        more than once is a `ProtocolError`."""
        values = self.header_all(name)
        if len(values) > 1:
            raise ProtocolError(f"header {name!r} sent {len(values)} times: {values}")
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def chunked(self) -> bool:
        """Whether the body is sent with Transfer-Encoding: chunked."""
        codings = ",".join(self.header_all("Transfer-Encoding")).lower()
        return codings.split(",")[-1].strip() == "chunked" if codings else False

    async def read_piece(self) -> bytes:
        """The next piece of the body: one chunk's payload, or whatever the socket has;
        b"" once the body has ended."""
        if self.ended:
            return b""
        piece = await (self._read_chunk() if self.chunked else self._read_plain())
        self.body += piece
        return piece

    async def _read_plain(self) -> bytes:
        length = self.header("Content-Length")
        if length is not None:
            remaining = int(length) - len(self.body)
            piece = await self.reader.read(min(remaining, 65536)) if remaining else b""
            if remaining and not piece:
                raise ProtocolError(f"connection closed {remaining} bytes before the end")
            self.ended = len(self.body) + len(piece) >= int(length)
            return piece
        piece = await self.reader.read(65536)
        if not piece:
            self.ended = self.eof = True
        return piece

    async def _read_chunk(self) -> bytes:
        # The size is kept across calls, so a timeout while waiting for the payload
        # loses nothing (StreamReader reads consume no data when cancelled).
        if self._chunk_size is None:
            size_line = await self._read_line("chunk size")
            size_text = size_line.split(b";", 1)[0].strip()
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise ProtocolError(f"bad chunk size line {size_line!r}")
            self._chunk_size = int(size_text, 16)
        size = self._chunk_size
        if size == 0:
            while await self._read_line("trailer"):
                pass
            self.ended = True
            return b""
        try:
            framed = await self.reader.readexactly(size + 2)
        except asyncio.IncompleteReadError as exc:
            self.eof = True
            raise ProtocolError(f"connection closed inside a {size}-byte chunk") from exc
        self._chunk_size = None
        payload, end = framed[:size], framed[size:]
        if end != b"\r\n":
            raise ProtocolError(f"chunk of {size} bytes not followed by CRLF but {end!r}")
        self.chunks.append(payload)
        return payload

    async def _read_line(self, what: str) -> bytes:
        line = await self.reader.readline()
        if not line.endswith(b"\r\n"):
            self.eof = not line or not line.endswith(b"\n")
            raise ProtocolError(f"{what} line not ended by CRLF: {line!r}")
        return line[:-2]

    async def next(self, within: float = 5.0) -> RawEvent:
        """The next event; TimeoutError if none within `within` s, EOFError at the end."""
        async with asyncio.timeout(within):
            while not self._events:
                piece = await self.read_piece()
                if not piece and self.ended:
                    raise EOFError("feed ended")
                self._events += self.parser.feed(piece)
            return self._events.pop(0)

    async def until(self, predicate: Callable[[RawEvent], bool],
                    within: float = 5.0) -> list[RawEvent]:
        """Read events until one satisfies `predicate`; return all read."""
        seen: list[RawEvent] = []
        async with asyncio.timeout(within):
            while not seen or not predicate(seen[-1]):
                seen.append(await self.next(within))
        return seen

    async def silent_for(self, seconds: float) -> bool:
        """True if no event arrives within `seconds` (comments do not count)."""
        return await silent(self.next, seconds)

    async def read_to_end(self, within: float = 5.0) -> list[RawEvent]:
        """Read until the body ends; return the events on the way."""
        events: list[RawEvent] = []
        try:
            while True:
                events.append(await self.next(within))
        except EOFError:
            return events

    async def close(self) -> None:
        """Hang up."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def open_raw(port: int, path: str, *, last_event_id: str | None = None,
                   http_version: str = "1.1", headers: dict[str, str] | None = None,
                   host: str = "127.0.0.1", within: float = 5.0,
                   receive_buffer: int | None = None) -> RawResponse:
    """GET `path` and read the status line and headers; the body is left to read.

    `receive_buffer`: a slow client's socket, its SO_RCVBUF that many bytes and its
    reader taking at most ~2 KB ahead of what the test reads, so that a client that
    stops reading soon leaves what follows in the server's buffers."""
    if receive_buffer is None:
        reader, writer = await asyncio.open_connection(host, port)
    else:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=READ_AHEAD)
    lines = [f"GET {path} HTTP/{http_version}", f"Host: {host}:{port}",
             "Accept: text/event-stream", "Cache-Control: no-cache"]
    if last_event_id is not None:
        lines.append(f"Last-Event-ID: {last_event_id}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        async with asyncio.timeout(within):
            status_line = await reader.readline()
            head: list[bytes] = []
            while (line := await reader.readline()) not in (b"\r\n", b""):
                head.append(line)
    except BaseException:
        writer.close()
        raise
    if not status_line.endswith(b"\r\n") or line != b"\r\n":
        writer.close()
        raise ProtocolError(f"incomplete response head: {status_line!r} {head!r}")
    version, _, rest = status_line.decode("latin-1").rstrip("\r\n").partition(" ")
    status, _, reason = rest.partition(" ")
    parsed: list[tuple[str, str]] = []
    for raw in head:
        name, colon, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
        if not colon or not name or name != name.strip():
            writer.close()
            raise ProtocolError(f"malformed header line {raw!r}")
        parsed.append((name, value.strip()))
    return RawResponse(reader, writer, version, int(status), reason, parsed)
