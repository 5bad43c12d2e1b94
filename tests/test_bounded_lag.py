"""A client that stalls and resumes is at most the feed's send buffer behind, not megabytes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.cli import parse_settings
from motia_sse.runtime import RUNTIME
from motia_sse.streams.feed import Feed
from tests.conftest import ClientFactory
from tests.raw_sse import READ_AHEAD, RawResponse, open_raw

SETS = 2000
TOKEN = "tok5 "  # 2,000 of them: a ~10 KB answer at the end


@attrs.frozen
class Lag:
    """What a stalled reader got before the final state, and what the server allowed."""

    stale_bytes: int
    bound: int
    final: str
    text: str


async def stall_through_a_stream(client: TestClient[Any, Any]) -> Lag:
    """Open a feed on a slow socket, stop reading while SETS sets grow the item, read on."""
    openai = client.app[RUNTIME].streams.openai
    await openai.set("lag", "message", {"message": ""})
    response = await open_raw(client.port or 0, "/streams/openai/lag/message",
                              receive_buffer=4096)
    assert (await response.next()).json()["message"] == ""
    feed = next(iter(client.app[RUNTIME].feeds))
    text, version = "", 0
    for n in range(SETS):
        text += TOKEN
        version = (await openai.set("lag", "message", {"message": text})).version
        if n % 20 == 0:
            await asyncio.sleep(0)  # let the socket move, as a busy server's loop would
    events = await response.until(lambda e: e.own_id == str(version), within=30)
    stale = sum(len(e.data.encode()) for e in events[:-1])
    final = events[-1].json()["message"]
    bound = _bound(feed, response, len(events[-1].data.encode()))
    await response.close()
    return Lag(stale, bound, final, text)


def _bound(feed: Feed, response: RawResponse, frame: int) -> int:
    """The bytes that may sit between a writer that conflates and a reader that stopped:
    the server's kernel buffer (as set: Linux doubles the setting), asyncio's write buffer
    up to its high-water mark plus the frame that crossed it, the frame conflation keeps,
    and the client's kernel buffer and read-ahead."""
    transport = feed._protocol.transport
    assert transport is not None
    send = transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    _, high_water = transport.get_write_buffer_limits()
    client_sock = response.writer.get_extra_info("socket")
    receive = client_sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return int(send + high_water + 2 * frame + receive + 2 * READ_AHEAD)


async def test_stalled_reader_is_at_most_the_send_buffer_behind(
        client: TestClient[Any, Any]) -> None:
    """With the default setting, a reader that stalls through 2,000 sets of a growing
    ~10 KB answer gets a few hundred KB of stale versions, then the final one."""
    lag = await stall_through_a_stream(client)
    assert lag.final == lag.text
    assert lag.stale_bytes <= lag.bound, lag
    assert lag.bound < 400_000, f"a few hundred KB, not megabytes: {lag}"


@pytest.mark.parametrize("size", [32 * 1024, 256 * 1024])
async def test_the_bound_follows_the_setting(make_client: ClientFactory, settings: Settings,
                                             size: int) -> None:
    """--feed-send-buffer sets the kernel buffer of every feed socket, and the lag with it."""
    client = await make_client(attrs.evolve(settings, feed_send_buffer=size))
    lag = await stall_through_a_stream(client)
    assert lag.final == lag.text
    assert lag.stale_bytes <= lag.bound, lag
    assert lag.bound >= 2 * size, "Linux doubles the setting; wmem_max allows it here"


async def test_unset_leaves_the_kernel_to_auto_tune(make_client: ClientFactory,
                                                    settings: Settings) -> None:
    """0 leaves the buffer alone: on loopback it grows, and so does the lag (what the
    setting is for)."""
    client = await make_client(attrs.evolve(settings, feed_send_buffer=0))
    lag = await stall_through_a_stream(client)
    assert lag.final == lag.text
    assert lag.stale_bytes > 400_000, lag


def test_the_flag_and_its_variable() -> None:
    """--feed-send-buffer takes bytes or k / m; MOTIA_FEED_SEND_BUFFER too; the flag wins."""
    assert parse_settings(["start"], {}).feed_send_buffer == 64 * 1024
    assert parse_settings(["start", "--feed-send-buffer", "128k"], {}).feed_send_buffer == (
        128 * 1024)
    env = {"MOTIA_FEED_SEND_BUFFER": "1m"}
    assert parse_settings(["start"], env).feed_send_buffer == 1024 * 1024
    assert parse_settings(["start", "--feed-send-buffer", "0"], env).feed_send_buffer == 0


@pytest.mark.parametrize("value", ["lots", "-1", "100"])
def test_a_bad_value_is_one_line(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A value that is not a size, or below the kernel's floor, is refused naming the flag."""
    with pytest.raises(SystemExit):
        parse_settings(["start", "--feed-send-buffer", value], {})
    err = capsys.readouterr().err
    assert "--feed-send-buffer" in err, err
    assert "expected" in err, err
