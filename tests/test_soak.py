"""Soak: hundreds of feeds come and go, slow readers, updates, deletes, failing handlers.

Bounded in time and count; traffic only to 127.0.0.1; the server is stopped by PID."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.conftest import ServerProcess, WriteSteps
from tests.sse_parse import SseReader
from tests.work_steps import WORK_STEPS

MakeServer = Callable[..., ServerProcess]
pytestmark = pytest.mark.soak

GROUPS = [f"g{n}" for n in range(8)]
ITEMS = [f"i{n}" for n in range(12)]
CHURN_SECONDS = 40.0
CHURNERS = 150
WATCHERS = 60


def proc_status(pid: int) -> tuple[int, int]:
    """Open file descriptors and resident memory (KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("VmRSS:"))
    return fds, rss


def random_path(rng: random.Random) -> str:
    """An item, group or multiplexed feed over the soak's keys."""
    kind = rng.random()
    if kind < 0.4:
        return f"/streams/cells/{rng.choice(GROUPS)}/{rng.choice(ITEMS)}"
    if kind < 0.7:
        return f"/streams/cells/{rng.choice(GROUPS)}"
    subs = {f"cells/{rng.choice(GROUPS)}" + (f"/{rng.choice(ITEMS)}" if rng.random() < 0.5
                                              else "") for _ in range(rng.randint(1, 6))}
    return "/streams?" + "&".join("sub=" + quote(s, safe="") for s in subs)


async def churn(port: int, rng: random.Random, deadline: float) -> int:
    """Connect, read a while (or stall with a tiny buffer), hang up; repeat until the end."""
    connections = 0
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        except OSError:
            sock.close()
            await asyncio.sleep(0.1)
            continue
        connections += 1
        writer.write(f"GET {random_path(rng)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        stall = rng.random() < 0.3
        until = min(deadline, loop.time() + rng.uniform(0.05, 2.0))
        try:
            while loop.time() < until:
                if stall:
                    await asyncio.sleep(until - loop.time())
                elif not await asyncio.wait_for(reader.read(65536), until - loop.time()):
                    break
        except (TimeoutError, OSError):
            pass
        writer.transport.abort() if rng.random() < 0.5 else writer.close()
    return connections


class Watcher:
    """A client that stays connected to one item feed and keeps what it last saw."""

    def __init__(self, group: str, item: str) -> None:
        self.group, self.item = group, item
        self.last: dict[str, Any] | None = None
        self.events = 0

    async def watch(self, session: aiohttp.ClientSession, url: str) -> None:
        """Follow the item until cancelled."""
        async with session.get(f"{url}/streams/cells/{self.group}/{self.item}") as response:
            reader = SseReader(response)
            while True:
                event = await reader.next(within=3600)
                self.events += 1
                self.last = None if event.event == "delete" else event.json()


async def write_load(session: aiohttp.ClientSession, url: str, rng: random.Random,
                     deadline: float, truth: dict[tuple[str, str], int | None]) -> int:
    """Sets, deletes and failing events until the deadline; `truth` keeps the last word."""
    loop = asyncio.get_running_loop()
    writes = 0
    while loop.time() < deadline:
        group, item = rng.choice(GROUPS), rng.choice(ITEMS)
        roll = rng.random()
        if roll < 0.15:
            async with session.delete(f"{url}/cells/{group}/{item}") as response:
                assert response.status == 200
            truth[(group, item)] = None
        elif roll < 0.18:
            async with session.post(f"{url}/work", json={"n": writes, "mode": "fail"}) as r:
                assert r.status == 202
        else:
            value = rng.randint(0, 1_000_000)
            async with session.put(f"{url}/cells/{group}/{item}",
                                   json={"value": value}) as response:
                assert response.status == 200, await response.text()
            truth[(group, item)] = value
        writes += 1
        await asyncio.sleep(0.002)
    return writes


async def store_state(session: aiohttp.ClientSession, url: str) -> dict[tuple[str, str], int]:
    """Every item of every group, read from fresh group feeds."""
    state = {}
    for group in GROUPS:
        async with session.get(f"{url}/streams/cells/{group}") as response:
            for row in (await SseReader(response).next()).json():
                state[(group, row["id"])] = row["value"]
    return state


async def test_soak(server_process: MakeServer, write_steps: WriteSteps) -> None:
    """After the churn: files and memory near the start, watchers equal the store, and
    the store holds exactly the writers' last word on every key."""
    steps = write_steps(WORK_STEPS)
    server = server_process("--steps", str(steps), "--retry-backoff", "0.01",
                            "--heartbeat", "1", "--max-feeds-per-client", "10000").start()
    assert server.process is not None
    pid, rng = server.process.pid, random.Random(7)
    truth: dict[tuple[str, str], int | None] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await write_load(session, server.url, rng, asyncio.get_running_loop().time() + 1, truth)
        await asyncio.sleep(0.5)
        start_fds, start_rss = proc_status(pid)

        watchers = [Watcher(rng.choice(GROUPS), rng.choice(ITEMS)) for _ in range(WATCHERS)]
        watching = [asyncio.create_task(w.watch(session, server.url)) for w in watchers]
        deadline = asyncio.get_running_loop().time() + CHURN_SECONDS
        churners = [churn(server.port, random.Random(n), deadline) for n in range(CHURNERS)]
        results = await asyncio.gather(write_load(session, server.url, rng, deadline, truth),
                                       *churners)
        writes, connections = results[0], sum(results[1:])
        await asyncio.sleep(2.0)  # let the last writes reach everyone

        stored = await store_state(session, server.url)
        expected = {key: value for key, value in truth.items() if value is not None}
        assert stored == expected, "the store holds exactly the last write of every key"
        for watcher in watchers:
            seen = None if watcher.last is None else watcher.last["value"]
            assert seen == stored.get((watcher.group, watcher.item)), (
                f"watcher of {watcher.group}/{watcher.item} ended on {watcher.last}")
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
    dead = [line for line in server.output().splitlines() if "handler failed" in line]

    await asyncio.sleep(2.0)  # the server notices the last hang-ups
    end_fds, end_rss = proc_status(pid)
    print(f"soak: {writes} writes, {connections} churned connections, {len(dead)} handler "
          f"failures; fds {start_fds} -> {end_fds}; RSS {start_rss} -> {end_rss} KiB")
    assert writes > 1000
    assert connections > CHURNERS * 10
    assert end_fds <= start_fds + 5, "no file descriptors left behind"
    assert end_rss <= start_rss + 40 * 1024, "memory back near where it started"
    output = server.output()
    for sign in ("Error handling request", "Exception in callback", "never retrieved",
                 "Unclosed", "cannot settle"):
        assert sign not in output, f"unexpected {sign!r} in the server log"
