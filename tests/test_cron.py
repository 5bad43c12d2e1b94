"""Cron steps: on schedule in one process; once per tick across processes on Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from motia_sse import Settings
from motia_sse.exceptions import LoadErrors
from motia_sse.run.loader import load_project
from motia_sse.runtime import RUNTIME
from tests.conftest import ClientFactory, RedisServer, ServerProcess, WriteSteps
from tests.polling import eventually
from tests.sse_parse import SseReader

MakeServer = Callable[..., ServerProcess]

STREAM = '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Tick:
    second: int
    pid: int

config = StreamConfig(name="ticks", schema=Tick)
'''

CRON = '''
import os
import time
from motia_sse import CronConfig, FlowContext
from ticks_stream import Tick

config = CronConfig(name="EverySecond", cron="* * * * * *", flows=["clock"])

async def handler(ctx: FlowContext) -> None:
    second, pid = int(time.time()), os.getpid()
    await ctx.streams.ticks.set("all", f"{second}-{pid}", Tick(second=second, pid=pid))
    ctx.logger.info("tick", second=second)
'''


@pytest.fixture(name="cron_steps")
def _cron_steps(write_steps: WriteSteps) -> Path:
    """A project with one cron step that records each run."""
    return write_steps({"ticks_stream.py": STREAM, "every_second_step.py": CRON}, "cron_steps")


async def test_cron_runs_on_schedule(cron_steps: Path, make_client: ClientFactory) -> None:
    """A cron step runs once per tick, each run with its own trace."""
    client = await make_client(Settings(steps_dir=cron_steps, store="memory"))
    ticks = client.app[RUNTIME].streams.ticks
    runs = await eventually(lambda: ticks.get_group("all"), until=lambda runs: len(runs) >= 3,
                            every=0.1, what="three runs")
    seconds = [r.data.second for r in runs]
    assert len(set(seconds)) == len(seconds), "one run per tick"


async def test_cron_ticks_once_across_processes(
    cron_steps: Path, server_process: MakeServer, redis_server: RedisServer
) -> None:
    """Two processes on one Redis: every tick runs in exactly one of them."""
    args = ("--steps", str(cron_steps), "--redis", redis_server.url,
            "--redis-prefix", f"test-{uuid.uuid4().hex[:8]}")
    first, *_ = [server_process(*args).start() for _ in range(2)]
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(4.5)
        async with session.get(f"{first.url}/streams/ticks/all") as response:
            runs: list[dict[str, Any]] = (await SseReader(response).next()).json()
    seconds = [r["second"] for r in runs]
    assert len(seconds) >= 3
    assert len(set(seconds)) == len(seconds), f"a tick ran twice: {sorted(seconds)}"
    assert "cron   EverySecond  (* * * * * *)" in first.output()


def test_cron_mistakes_are_load_errors(write_steps: WriteSteps) -> None:
    """A bad expression or a handler taking the wrong arguments stops the load."""
    steps = write_steps({
        "bad_cron_step.py": "from motia_sse import CronConfig\n"
                            "config = CronConfig(name='Bad', cron='every day')\n"
                            "async def handler(ctx):\n    pass\n",
        "arity_cron_step.py": "from motia_sse import CronConfig\n"
                              "config = CronConfig(name='Arity', cron='0 * * * *')\n"
                              "async def handler(input, ctx):\n    pass\n"})
    with pytest.raises(LoadErrors) as info:
        load_project(steps)
    assert sorted((Path(e.path).name, e.message) for e in info.value.errors) == [
        ("arity_cron_step.py:3", "handler must take one argument (ctx), found (input, ctx)"),
        ("bad_cron_step.py", "cron 'every day' is not a cron expression; expected five fields "
                             "(minute hour day month weekday), e.g. '*/5 * * * *', or six "
                             "with seconds last"),
    ]


async def test_cron_failure_is_logged_and_schedule_goes_on(
    cron_steps: Path, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A cron handler that raises is logged with its traceback; the next tick still runs."""
    (cron_steps / "every_second_step.py").write_text(CRON.replace(
        "    second, pid", "    if int(time.time()) % 2:\n        raise RuntimeError('odd')\n"
        "    second, pid"))
    client = await make_client(Settings(steps_dir=cron_steps, store="memory"))
    ticks = client.app[RUNTIME].streams.ticks
    await eventually(lambda: ticks.get_group("all"), until=lambda runs: len(runs) >= 2,
                     every=0.1, what="two runs")
    assert any("cron handler failed" in r.getMessage() for r in caplog.records)
