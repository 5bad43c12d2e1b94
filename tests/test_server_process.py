"""The real command line: a server process, SQLite that survives restarts, clean stops."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import EXAMPLE_STEPS, ServerProcess
from tests.sse_parse import SseReader

MakeServer = Callable[..., ServerProcess]


async def run_job(session: aiohttp.ClientSession, server: ServerProcess) -> tuple[str, str]:
    """Start a short job and follow its feed to the end; return (trace id, final event id)."""
    response = await session.post(f"{server.url}/jobs", json={"steps": 3, "delay": 0.01})
    assert response.status == 200, await response.text()
    trace = response.headers["x-trace-id"]
    async with session.get(f"{server.url}/streams/progress/{trace}/job") as feed:
        events = await SseReader(feed).until(lambda e: e.json()["status"] == "done")
    assert events[-1].id is not None
    return trace, events[-1].id


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
async def test_sqlite_items_survive_a_restart(
    server_process: MakeServer, tmp_path: Path, stop_signal: int
) -> None:
    """Items set before a stop (clean or SIGKILL) are served, same version, after restart."""
    server = server_process("--steps", str(EXAMPLE_STEPS)).start()
    async with aiohttp.ClientSession() as session:
        trace, version = await run_job(session, server)
        server.stop(stop_signal)
        assert (tmp_path / ".motia" / "streams.sqlite3").exists()

        again = server_process("--steps", str(EXAMPLE_STEPS), port=server.port).start()
        async with session.get(f"{again.url}/streams/progress/{trace}/job") as feed:
            snapshot = await SseReader(feed).next()
        assert snapshot.id == version
        assert snapshot.json() == {"status": "done", "done": 3, "total": 3, "id": "job"}
        # Versions keep growing after a restart: a new change is never mistaken for old.
        _, newer = await run_job(session, again)
        assert int(newer) > int(version)


async def test_sigterm_with_open_feeds_stops_promptly(server_process: MakeServer) -> None:
    """Open feeds are closed on shutdown instead of holding the process for a timeout."""
    server = server_process("--steps", str(EXAMPLE_STEPS), "--store", "memory").start()
    async with aiohttp.ClientSession() as session:
        feeds = [await session.get(f"{server.url}/streams/progress/g/{i}") for i in range(5)]
        began = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        took = time.monotonic() - began
        for feed in feeds:
            assert await feed.content.read() == b"retry: 2000\n\n"
            feed.close()
    # Far below aiohttp's 60 s shutdown timeout; the bound is loose for a loaded machine.
    assert took < 10, server.output()


async def test_python_dash_m_and_startup_log(server_process: MakeServer) -> None:
    """`python -m motia_sse start` serves and says what it loaded."""
    server = server_process("--steps", str(EXAMPLE_STEPS), "--store", "memory").start()
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{server.url}/jobs", json={"steps": 1, "delay": 0})
        assert response.status == 200
    server.stop()
    log = server.output()
    assert f"http://127.0.0.1:{server.port}" in log
    assert "route  POST   /open-ai" in log
    assert "stream /streams/progress/<group>/<id>" in log
