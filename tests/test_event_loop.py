"""`--loop auto|asyncio|uvloop`: servers run on uvloop when installed, and say so."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import uvloop

from motia_sse.cli import parse_settings
from motia_sse.process.event_loop import new_event_loop, resolve_loop
from tests.conftest import EXAMPLE_STEPS, ServerProcess, loop_of
from tests.sse_parse import SseReader

MakeServer = Callable[..., ServerProcess]


async def test_the_tests_here_run_on_both_loops(request: pytest.FixtureRequest) -> None:
    """This module is in conftest's BOTH_LOOPS: each test runs on asyncio's and uvloop's."""
    running = asyncio.get_running_loop()
    assert isinstance(running, uvloop.Loop) == (loop_of(request) == "uvloop")


def test_auto_takes_uvloop_when_installed() -> None:
    """auto resolves to uvloop here (the test extra installs it); asyncio stays asyncio."""
    assert resolve_loop("auto") == "uvloop"
    assert resolve_loop("asyncio") == "asyncio"
    loop = new_event_loop("asyncio")
    assert not isinstance(loop, uvloop.Loop)
    loop.close()


def test_an_unknown_loop_is_refused() -> None:
    """--loop takes auto, asyncio or uvloop."""
    with pytest.raises(SystemExit):
        parse_settings(["start", "--loop", "trio"], {})


async def test_a_server_process_runs_on_the_tests_loop(server_process: MakeServer,
                                                       request: pytest.FixtureRequest) -> None:
    """server_process passes the test's loop to `start`; its first line names it, and a
    feed there gets the item and its changes."""
    server = server_process("--steps", str(EXAMPLE_STEPS), "--store", "memory").start()
    assert server.log is not None
    loop = loop_of(request)
    assert f"loop: {loop})" in server.log.read_text()
    async with aiohttp.ClientSession() as session:
        answer = await session.post(f"{server.url}/jobs", json={"steps": 2, "delay": 0.01})
        trace = answer.headers["x-trace-id"]
        async with session.get(f"{server.url}/streams/progress/{trace}/job") as feed:
            events = await SseReader(feed).until(lambda e: e.json()["status"] == "done")
    assert events[-1].json()["done"] == 2

def test_uvloop_when_not_installed_is_one_line(tmp_path: Path) -> None:
    """--loop uvloop without uvloop: a one-line error naming the extra, exit 1."""
    hidden = tmp_path / "hide"
    (hidden / "uvloop").mkdir(parents=True)
    (hidden / "uvloop" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    result = subprocess.run(
        [sys.executable, "-m", "motia_sse", "start", "--steps", str(EXAMPLE_STEPS),
         "--store", "memory", "--loop", "uvloop"],
        env={"PYTHONPATH": str(hidden), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "uvloop is not installed" in lines[0]
    assert "motia_sse[speed]" in lines[0]
