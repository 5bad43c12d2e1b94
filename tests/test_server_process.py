"""The real command line: a server process, SQLite that survives restarts, clean stops."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import EXAMPLE_STEPS, ServerProcess, WriteSteps
from tests.polling import eventually
from tests.sse_parse import SseReader
from tests.work_steps import WORK_STEPS

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
        # The job's event is acked just after its last set; until then a kill means it
        # runs again after the restart (at least once), which is not this test's point.
        queue = sqlite3.connect(tmp_path / ".motia" / "queue.sqlite3")
        await eventually(lambda: queue.execute("SELECT COUNT(*) FROM queue").fetchone()[0] == 0,
                         every=0.02, what="the queue empty")
        queue.close()
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


async def test_embedded_queue_survives_sigkill(server_process: MakeServer,
                                              write_steps: WriteSteps) -> None:
    """Events whose handlers were running when the server was SIGKILLed run after restart."""
    steps = write_steps(WORK_STEPS, "work_steps")
    doomed = server_process("--steps", str(steps), env={"SLOW_WORKER": "1"}).start()
    async with aiohttp.ClientSession() as session:
        for n in (1, 2):
            response = await session.post(f"{doomed.url}/work", json={"n": n, "mode": "slow"})
            assert response.status == 202
        await eventually(lambda: group(session, doomed, "started"),
                         until=lambda started: len(started) >= 2, what="both jobs started")
        doomed.stop(signal.SIGKILL)

        again = server_process("--steps", str(steps), port=doomed.port).start()
        runs = await eventually(lambda: group(session, again, "runs"),
                                until=lambda runs: len(runs) >= 2, within=15,
                                what="both jobs run after the restart")
    assert sorted(r["value"] for r in runs) == [1, 2]


async def test_embedded_failures_retry_then_dead_letter(server_process: MakeServer,
                                                        write_steps: WriteSteps) -> None:
    """On the default store a failing handler is retried, then dead-lettered, durably."""
    steps = write_steps(WORK_STEPS, "work_steps")
    server = server_process("--steps", str(steps), "--retry-backoff", "0.05",
                            "--workbench").start()
    async with aiohttp.ClientSession() as session:
        await session.post(f"{server.url}/work", json={"n": 3, "mode": "fail"})

        async def dead_letters() -> Any:
            return await (await session.get(f"{server.url}/__motia/dead-letters")).json()

        dead = await eventually(dead_letters, what="a dead letter")
        server.stop(signal.SIGKILL)
        again = server_process("--steps", str(steps), "--workbench", port=server.port).start()
        kept = await (await session.get(f"{again.url}/__motia/dead-letters")).json()
    assert kept == dead
    assert [(d["attempts"], d["error"]) for d in kept] == [(3, "RuntimeError: work 3 always fails")]
    assert server.output().count("handler failed") == 3


async def group(session: aiohttp.ClientSession, server: ServerProcess,
                name: str) -> list[dict[str, Any]]:
    """A cells group's items, from its feed's opening sync."""
    async with session.get(f"{server.url}/streams/cells/{name}") as response:
        items: list[dict[str, Any]] = (await SseReader(response).next()).json()
    return items
