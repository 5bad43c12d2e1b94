"""Per-step queue settings: max_attempts, backoff, concurrency and timeout of a step."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.exceptions import LoadErrors
from motia_sse.run.loader import load_project
from tests.conftest import ClientFactory, RedisServer, WriteSteps
from tests.polling import eventually

MakeSettings = Callable[..., Settings]

EMIT = '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Emit", path="/emit/{topic}", method="POST",
                        emits=["doomed", "flaky", "hang", "serial", "free"])

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    await ctx.emit(req.path_params["topic"], req.body)
    return ApiResponse(status=202, body={"trace": ctx.trace_id})
'''

# A helper of the steps folder: what the handlers saw, read back by the tests.
SEEN = '''
import asyncio
import time

CALLS = []          # (step, trace id, time.monotonic())
CANCELLED = []      # step of each handler run cut off by its timeout
RUNNING = {}        # step -> handlers running now
PEAK = {}           # step -> most handlers running at once
SERIAL_RUNNING = asyncio.Event()
RELEASE_SERIAL = asyncio.Event()

def call(step, trace):
    """Record a call; how many calls the step has had in this trace."""
    CALLS.append((step, trace, time.monotonic()))
    return sum(1 for s, t, _ in CALLS if (s, t) == (step, trace))
'''


def step(name: str, config: str, body: str) -> str:
    """A step file: `config` is the EventConfig's arguments, `body` the handler's."""
    return f'''
import asyncio
from typing import Any
from motia_sse import CronConfig, EventConfig, FlowContext
import seen

config = {config}

async def handler({"" if "CronConfig" in config else "input: Any, "}ctx: FlowContext) -> None:
    calls = seen.call({name!r}, ctx.trace_id)
{body}
'''


def event_step(name: str, topic: str, body: str, settings: str = "") -> dict[str, str]:
    """`<name>_step.py`: an EventConfig step on `topic`, with `settings` ("timeout=30")."""
    extra = f", {settings}" if settings else ""
    config = f'EventConfig(name="{name}", subscribes=["{topic}"]{extra})'
    return {f"{name.lower()}_step.py": step(name, config, body)}


def with_emit(*steps: dict[str, str]) -> dict[str, str]:
    """A steps folder of `steps`, the Emit route and `seen.py`."""
    files = {"emit_step.py": EMIT, "seen.py": SEEN}
    for each in steps:
        files.update(each)
    return files


HANG = '''
    try:
        await asyncio.Event().wait()  # never set: only a timeout ends this
    except asyncio.CancelledError:
        seen.CANCELLED.append(config.name)
        raise
'''
ALWAYS_FAILS = '''
    raise RuntimeError(f"attempt {calls} failed")
'''
FIRST_FAILS = '''
    if calls == 1:
        raise RuntimeError("the first attempt fails")
'''
TRACK = '''
    seen.RUNNING[config.name] = seen.RUNNING.get(config.name, 0) + 1
    seen.PEAK[config.name] = max(seen.PEAK.get(config.name, 0), seen.RUNNING[config.name])
    try:
{}
    finally:
        seen.RUNNING[config.name] -= 1
'''
# The first Serial handler waits until Free has run beside it; the others go straight on.
SERIAL = TRACK.format('''        seen.SERIAL_RUNNING.set()
        await seen.RELEASE_SERIAL.wait()''')
FREE = TRACK.format('''        await seen.SERIAL_RUNNING.wait()
        seen.RELEASE_SERIAL.set()''')


def seen() -> Any:
    """The steps folder's `seen` module, as the loaded handlers use it."""
    return sys.modules["seen"]


def calls(step_name: str) -> list[float]:
    """When the step's handler was called, in order."""
    return [at for name, _, at in seen().CALLS if name == step_name]


@pytest.fixture(name="make_settings", params=["memory", "sqlite", "redis"])
def _make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> MakeSettings:
    """Settings for steps on one of the three queues; retries 3 times, 10 ms apart."""

    def make(steps: Path, **changes: Any) -> Settings:
        settings = Settings(steps_dir=steps, store="memory", data_dir=tmp_path / ".motia",
                            dev=True, max_attempts=3, retry_backoff=0.01,
                            shutdown_timeout=1.0)
        if request.param == "sqlite":
            settings = attrs.evolve(settings, store="sqlite")
        elif request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            # A short visibility timeout makes the queue look for due retries often.
            settings = attrs.evolve(settings, redis_url=server.url,
                                    redis_prefix=f"test-{uuid.uuid4().hex[:12]}",
                                    visibility_timeout=0.4)
        return attrs.evolve(settings, **changes)

    return make


async def emit(client: TestClient[Any, Any], topic: str, data: Any = None) -> str:
    """Emit `topic` through the API step; the trace id."""
    response = await client.post(f"/emit/{topic}", json=data or {})
    assert response.status == 202
    trace: str = (await response.json())["trace"]
    return trace


async def dead_letters(client: TestClient[Any, Any], count: int) -> list[dict[str, Any]]:
    """Wait for `count` dead letters; them, the oldest first."""

    async def read() -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = await (await client.get("/__motia/dead-letters")).json()
        return letters

    letters = await eventually(read, until=lambda got: len(got) >= count,
                               what=f"{count} dead letter(s)")
    return list(reversed(letters))


async def test_step_max_attempts_overrides_the_global_default(
    write_steps: WriteSteps, make_client: ClientFactory, make_settings: MakeSettings
) -> None:
    """max_attempts=2 dead-letters after two tries; a step without it gets the flag's 3."""
    steps = write_steps(with_emit(
        event_step("Twice", "doomed", ALWAYS_FAILS, "max_attempts=2"),
        event_step("Thrice", "doomed", ALWAYS_FAILS)))
    client = await make_client(make_settings(steps))
    trace = await emit(client, "doomed")
    letters = await dead_letters(client, 2)
    got = {letter["step"]: (letter["attempts"], letter["error"], letter["trace_id"])
           for letter in letters}
    assert got == {"Twice": (2, "RuntimeError: attempt 2 failed", trace),
                   "Thrice": (3, "RuntimeError: attempt 3 failed", trace)}
    assert (len(calls("Twice")), len(calls("Thrice"))) == (2, 3)


async def test_step_backoff_spaces_its_retries(
    write_steps: WriteSteps, make_client: ClientFactory, make_settings: MakeSettings
) -> None:
    """A step's own backoff delays its retry; another step's retry does not wait for it."""
    steps = write_steps(with_emit(
        event_step("Patient", "flaky", FIRST_FAILS, "backoff=1.0"),
        event_step("Eager", "flaky", FIRST_FAILS, "backoff=0")))
    client = await make_client(make_settings(steps, retry_backoff=0.01))
    await emit(client, "flaky")
    await eventually(lambda: len(calls("Patient")) == 2, what="Patient's retry")
    (patient_first, patient_retry), (_, eager_retry) = calls("Patient"), calls("Eager")
    assert patient_retry >= patient_first + 1.0
    assert eager_retry < patient_retry


@pytest.mark.parametrize("where", ["step", "flag"])
async def test_handler_past_its_timeout_is_cancelled_retried_and_dead_lettered(
    where: str, write_steps: WriteSteps, make_client: ClientFactory, tmp_path: Path,
    caplog: pytest.LogCaptureFixture
) -> None:
    """A hung handler is cut off after its timeout (the step's, or --handler-timeout),
    logged with its step and trace, retried, then dead-lettered as timed out."""
    own = ", timeout=0.2" if where == "step" else ""
    steps = write_steps(with_emit(event_step("Hang", "hang", HANG, f"max_attempts=2{own}")))
    client = await make_client(Settings(
        steps_dir=steps, store="memory", dev=True, retry_backoff=0.01, shutdown_timeout=1.0,
        handler_timeout=0.2 if where == "flag" else None))
    with caplog.at_level(logging.ERROR, logger="motia_sse.steps"):
        trace = await emit(client, "hang")
        [letter] = await dead_letters(client, 1)
    assert (letter["step"], letter["attempts"]) == ("Hang", 2)
    assert letter["error"] == "HandlerTimeout: timed out after 0.2s"
    assert seen().CANCELLED == ["Hang", "Hang"]
    lines = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert len(lines) == 2
    for record in lines:
        assert (getattr(record, "step", None), getattr(record, "trace_id", None)) == (
            "Hang", trace)
        assert record.getMessage().startswith(
            "handler failed on event 'hang': timed out after 0.2s, cancelled at ")
        assert "hang_step.py:" in record.getMessage()
        assert not record.exc_info  # no traceback: the line it was at says it all
    assert [getattr(r, "fields", {})["attempt"] for r in lines] == [1, 2]


async def test_a_steps_own_timeout_beats_the_flag(
    write_steps: WriteSteps, make_client: ClientFactory
) -> None:
    """A step with timeout=30 finishes a run that the flag's 0.1 s would cut off."""
    steps = write_steps(with_emit(event_step("Slow", "hang", '''
    await asyncio.sleep(0.3)
    seen.CANCELLED.append("finished")  # not cancelled: the list names what ended how
''', "timeout=30")))
    client = await make_client(Settings(steps_dir=steps, store="memory", dev=True,
                                        handler_timeout=0.1))
    await emit(client, "hang")
    await eventually(lambda: seen().CANCELLED == ["finished"], what="the slow run finished")
    assert len(calls("Slow")) == 1


async def test_step_concurrency_limits_only_that_step(
    write_steps: WriteSteps, make_client: ClientFactory
) -> None:
    """concurrency=1 runs that step's events one at a time while another step runs."""
    steps = write_steps(with_emit(event_step("Serial", "serial", SERIAL, "concurrency=1"),
                                  event_step("Free", "free", FREE)))
    client = await make_client(Settings(steps_dir=steps, store="memory", dev=True,
                                        max_concurrent_handlers=8))
    for _ in range(5):
        await emit(client, "serial")
    await emit(client, "free")
    await eventually(lambda: len(calls("Serial")) == 5 and not seen().RUNNING["Serial"],
                     what="five Serial runs done")
    assert seen().PEAK == {"Serial": 1, "Free": 1}
    # Free started while the first Serial run was waiting for it: they overlapped.
    assert calls("Free")[0] < calls("Serial")[1]


BURST = '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Burst", path="/burst/{topic}/{count}", method="POST",
                        emits=["backlog", "other"])

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    for n in range(int(req.path_params["count"])):
        await ctx.emit(req.path_params["topic"], {"n": n})
    return ApiResponse(status=202, body={})
'''
# The backlog's first run waits (up to 10 s) for Other to run beside it.
BACKLOG = TRACK.format('''        if calls == 1:
            try:
                await asyncio.wait_for(seen.RELEASE_SERIAL.wait(), 10)
            except TimeoutError:
                pass
        await asyncio.sleep(0.01)''')


async def test_a_limited_steps_backlog_does_not_starve_the_others(
    write_steps: WriteSteps, make_client: ClientFactory, make_settings: MakeSettings
) -> None:
    """50 queued events of a concurrency=1 step, then, once it runs, one of another step,
    with four handler slots: the other step's event runs beside the backlog's first, as
    events waiting for their step's turn stay queued instead of filling the slots."""
    steps = write_steps({"burst_step.py": BURST, "seen.py": SEEN,
                         **event_step("Backlog", "backlog", BACKLOG, "concurrency=1"),
                         **event_step("Other", "other", "    seen.RELEASE_SERIAL.set()")})
    client = await make_client(make_settings(steps, max_concurrent_handlers=4))
    assert (await client.post("/burst/backlog/50")).status == 202
    await eventually(lambda: calls("Backlog"), what="the backlog started")
    assert (await client.post("/burst/other/1")).status == 202
    await eventually(lambda: len(calls("Backlog")) == 50, within=30,
                     what="the backlog handled")
    order = [name for name, _, _ in seen().CALLS]
    assert order.count("Other") == 1
    assert order.index("Other") == 1, order  # while the backlog's first waited for it
    assert seen().PEAK["Backlog"] == 1


async def test_cron_step_timeout_and_attempts(
    write_steps: WriteSteps, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A cron tick that hangs is cut off at its timeout and tried again, in its trace."""
    steps = write_steps({"seen.py": SEEN, "tick_step.py": step(
        "Tick", 'CronConfig(name="Tick", cron="* * * * * *", timeout=0.2, max_attempts=2, '
                "backoff=0.01)", '''
    if calls == 1:
        await asyncio.Event().wait()  # the first attempt hangs
''')})
    with caplog.at_level(logging.ERROR, logger="motia_sse.steps"):
        await make_client(Settings(steps_dir=steps, store="memory"))
        await eventually(lambda: len(calls("Tick")) >= 2, what="the tick's second attempt")
    [first, second, *_] = [trace for name, trace, _ in seen().CALLS]
    assert first == second
    [line] = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert line.getMessage().startswith("cron handler failed: timed out after 0.2s")
    assert getattr(line, "trace_id", None) == first


@pytest.mark.parametrize(("setting", "expected"), [
    ("max_attempts=0", "max_attempts must be a whole number >= 1"),
    ("max_attempts=True", "max_attempts must be a whole number >= 1"),
    ("concurrency=1.5", "concurrency must be a whole number >= 1"),
    ("backoff=-1", "backoff must be a number of seconds >= 0"),
    ("timeout=0", "timeout must be a number of seconds > 0"),
    ("timeout=float('inf')", "timeout must be a number of seconds > 0"),
    ("timeout='5'", "timeout must be a number of seconds > 0"),
])
def test_bad_settings_are_load_errors(write_steps: WriteSteps, setting: str,
                                      expected: str) -> None:
    """A bad per-step setting stops the load, naming the file, the field and the rule."""
    steps = write_steps({"seen.py": SEEN, **event_step("Bad", "x", "    pass", setting)})
    with pytest.raises(LoadErrors) as caught:
        load_project(steps)
    [error] = caught.value.errors
    assert "bad_step.py" in error.path
    assert expected in error.message


def test_bad_cron_setting_is_a_load_error(write_steps: WriteSteps) -> None:
    """Cron steps check their settings the same way."""
    steps = write_steps({"seen.py": SEEN, "bad_step.py": step(
        "Bad", 'CronConfig(name="Bad", cron="* * * * *", max_attempts=-2)', "    pass")})
    with pytest.raises(LoadErrors, match=r"bad_step.py.*max_attempts must be a whole number"):
        load_project(steps)
