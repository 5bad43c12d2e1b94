"""SIGTERM under load: feeds end cleanly, running handlers finish, queued events are kept."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.conftest import RedisServer, ServerProcess, WriteSteps
from tests.polling import eventually
from tests.sse_parse import SseReader
from tests.work_steps import WORK_STEPS

MakeServer = Callable[..., ServerProcess]


async def cells(session: aiohttp.ClientSession, server: ServerProcess,
                group: str) -> list[dict[str, Any]]:
    """A cells group's items, from its feed's opening sync."""
    async with session.get(f"{server.url}/streams/cells/{group}") as response:
        items: list[dict[str, Any]] = (await SseReader(response).next()).json()
    return items


async def sigterm_mid_work(session: aiohttp.ClientSession, first: ServerProcess) -> list[bytes]:
    """Open feeds, emit three half-second jobs to a one-handler server, SIGTERM it while
    the first runs; return what each feed received, to its clean end."""
    feeds = [await session.get(f"{first.url}/streams/cells/runs/{n}") for n in range(20)]
    for n in (1, 2, 3):
        await session.post(f"{first.url}/work", json={"n": n, "mode": "nap"})
    await eventually(lambda: cells(session, first, "started"), every=0.02,
                     what="the first job started")
    assert first.stop(signal.SIGTERM) == 0, first.output()
    received = [await feed.content.read() for feed in feeds]
    for feed in feeds:
        feed.close()
    return received


async def runs_by_pid(session: aiohttp.ClientSession, server: ServerProcess) -> dict[int, int]:
    """Wait until the three jobs have run; the pid of the process that ran each."""
    runs = await eventually(lambda: cells(session, server, "runs"),
                            until=lambda runs: len(runs) >= 3, within=15, what="three runs")
    return {r["value"]: r["pid"] for r in runs}


async def test_sigterm_embedded(server_process: MakeServer, write_steps: WriteSteps) -> None:
    """Embedded: the running handler completes before exit; the queued two run after a
    restart; every feed ended with a proper end of stream."""
    steps = write_steps(WORK_STEPS)
    args = ("--steps", str(steps), "--max-handlers", "1", "--shutdown-timeout", "5")
    first = server_process(*args).start()
    async with aiohttp.ClientSession() as session:
        received = await sigterm_mid_work(session, first)
        assert all(r.startswith(b"retry: ") for r in received)
        second = server_process(*args, port=first.port).start()
        by_pid = await runs_by_pid(session, second)
    assert first.process is not None
    assert second.process is not None
    assert by_pid == {1: first.process.pid, 2: second.process.pid, 3: second.process.pid}


async def test_sigterm_on_redis_leaves_events_for_others(
    server_process: MakeServer, write_steps: WriteSteps, redis_server: RedisServer
) -> None:
    """Redis: the stopping process finishes its running handler and takes nothing more;
    another process handles the rest."""
    steps = write_steps(WORK_STEPS)
    args = ("--steps", str(steps), "--max-handlers", "1", "--shutdown-timeout", "5",
            "--redis", redis_server.url, "--redis-prefix", f"test-{uuid.uuid4().hex[:8]}")
    first = server_process(*args).start()
    async with aiohttp.ClientSession() as session:
        await sigterm_mid_work(session, first)
        other = server_process(*args).start()
        by_pid = await runs_by_pid(session, other)
    assert first.process is not None
    assert other.process is not None
    assert by_pid == {1: first.process.pid, 2: other.process.pid, 3: other.process.pid}
