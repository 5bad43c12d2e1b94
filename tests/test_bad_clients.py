"""Clients that break HTTP or leave mid-request: a 400 or nothing, and one log line each."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from motia_sse.logs.output import setup_logging
from tests.conftest import EXAMPLE_STEPS, ServerProcess
from tests.polling import eventually

MakeServer = Callable[..., ServerProcess]

# What the barrage of issue 12 sent; aiohttp's parser refuses each before any route runs.
BAD_REQUESTS = {
    "header without a colon": b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    "Transfer-Encoding with Content-Length":
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    "Transfer-Encoding twice": b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                               b"\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    "100 KB header": b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: "
                     + b"a" * 100_000 + b"\r\n\r\n",
    "NUL in the path": b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": b"GET / HTTP/1.Z\r\nHost: x\r\n\r\n",
    "not HTTP": b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
}
UPLOAD = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Expect: 100-continue\r\nContent-Length: 20000000\r\n\r\n")
# The loggers setup_logging changes; a test that calls it puts them back.
LOGGERS = ["motia_sse", "aiohttp", "aiohttp.server"]


async def status_of(server: ServerProcess, request: bytes) -> int:
    """Send `request` as is on a new connection; the status of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        async with asyncio.timeout(10):
            return int((await reader.readuntil(b"\r\n")).split()[1])
    finally:
        writer.close()


async def output_after(server: ServerProcess, seen: int) -> str:
    """What the server writes next, once it has written something past `seen` characters."""
    return await eventually(lambda: server.output()[seen:], every=0.02,
                            what="more server output")


def serve(server_process: MakeServer, *args: str) -> ServerProcess:
    """The example steps in a server process."""
    return server_process("--steps", str(EXAMPLE_STEPS), "--store", "memory", *args).start()


async def test_bad_requests_are_json_lines_under_json_format(
        server_process: MakeServer) -> None:
    """Each malformed request is a 400 and one INFO record; stderr stays JSON throughout."""
    server = serve(server_process, "--log-format", "json")
    for name, request in BAD_REQUESTS.items():
        assert await status_of(server, request) == 400, name
    server.stop()
    records = [json.loads(line) for line in server.output().splitlines()]
    refused = [r for r in records if r["logger"] == "aiohttp.server"]
    assert [r["level"] for r in refused] == ["info"] * len(BAD_REQUESTS), refused
    assert all(r["msg"].startswith("bad request from 127.0.0.1: ") for r in refused), refused
    assert not [r for r in records if "exc" in r or "Traceback" in r["msg"]]


async def test_bad_request_is_one_text_line(server_process: MakeServer) -> None:
    """In text format, each malformed request adds one line saying what was wrong."""
    server = serve(server_process)
    for name, request in BAD_REQUESTS.items():
        seen = len(server.output())
        assert await status_of(server, request) == 400, name
        # aiohttp logs the refusal before it answers: the line is there already.
        lines = server.output()[seen:].splitlines()
        assert len(lines) == 1, (name, lines)
        assert lines[0].split(" ", 1)[1].startswith("INFO   bad request from 127.0.0.1: "), lines
    assert "Invalid header token: b'No colon here'" in server.output()


async def test_client_gone_mid_upload_is_one_line(server_process: MakeServer) -> None:
    """A client that hangs up after `100 Continue`, mid-body, is one INFO line, no traceback."""
    server = serve(server_process)
    seen = len(server.output())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(UPLOAD)
    async with asyncio.timeout(10):
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b'{"steps": ' + b" " * 65_536)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await output_after(server, seen)
    server.stop()
    written = server.output()[seen:].splitlines()
    assert len(written) == 1, written
    assert written[0].endswith("INFO   client 127.0.0.1 hung up during the body of POST /jobs")


@pytest.fixture(name="logging_restored")
def _logging_restored() -> Iterator[None]:
    """Let a test call setup_logging; the loggers it changes are put back afterwards."""
    saved = [(logger, logger.handlers[:], logger.filters[:], logger.level, logger.propagate)
             for logger in map(logging.getLogger, LOGGERS)]
    yield
    for logger, handlers, filters, level, propagate in saved:
        logger.handlers[:], logger.filters[:] = handlers, filters
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.usefixtures("logging_restored")
def test_aiohttp_errors_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A genuine failure inside aiohttp is still an ERROR with its traceback, in JSON."""
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    setup_logging("json")
    server = logging.getLogger("aiohttp.server")
    for exc in (RuntimeError("the server's own fault"), BadHttpMessage("Invalid header")):
        try:
            raise exc
        except Exception as raised:
            server.exception("Error handling request from %s", "127.0.0.1", exc_info=raised)
    failure, refusal = map(json.loads, stderr.getvalue().splitlines())
    assert failure["level"] == "error"
    assert failure["msg"] == "Error handling request from 127.0.0.1"
    assert failure["exc"].startswith("Traceback (most recent call last):")
    assert failure["exc"].endswith("RuntimeError: the server's own fault")
    assert refusal == {"time": refusal["time"], "level": "info", "logger": "aiohttp.server",
                       "msg": "bad request from 127.0.0.1: Invalid header"}
