"""Event steps: emit, input validation, failures, concurrency, shutdown."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.runtime import RUNTIME
from tests.conftest import ClientFactory, WriteSteps
from tests.polling import eventually

STEPS = {
    "work_stream.py": '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Result:
    value: int
    trace: str

config = StreamConfig(name="results", schema=Result)
''',
    "emit_step.py": '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Emit", path="/emit/{topic}", method="POST",
                        emits=["work", "undeclared-elsewhere"])

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    await ctx.emit(req.path_params["topic"], req.body)
    return ApiResponse(status=202, body={"trace": ctx.trace_id})
''',
    "work_step.py": '''
import asyncio
import attrs
from motia_sse import EventConfig, FlowContext
from work_stream import Result

@attrs.frozen
class Work:
    value: int
    sleep: float = 0.0
    fail: bool = False

RUNNING = []
PEAK = [0]
FINISHED = []

config = EventConfig(name="DoWork", subscribes=["work"], input=Work)

async def handler(input: Work, ctx: FlowContext) -> None:
    RUNNING.append(input.value)
    PEAK[0] = max(PEAK[0], len(RUNNING))
    try:
        await asyncio.sleep(input.sleep)
        if input.fail:
            raise RuntimeError(f"work {input.value} failed")
        await ctx.streams.results.set("all", str(input.value),
                                      Result(value=input.value, trace=ctx.trace_id))
        FINISHED.append(input.value)
    finally:
        RUNNING.remove(input.value)
''',
}


def work_module() -> Any:
    """The loaded `work_step` module, to read what its handler recorded."""
    import sys

    return sys.modules["work_step"]


@pytest.fixture(name="work_client")
async def _work_client(write_steps: WriteSteps, make_client: ClientFactory
                       ) -> TestClient[Any, Any]:
    """A project with one emitting API step and one event step, two handlers at once,
    served as `dev` serves it."""
    steps = write_steps(STEPS, "event_steps")
    return await make_client(Settings(steps_dir=steps, store="memory", retry_backoff=0.01,
                                      max_concurrent_handlers=2, shutdown_timeout=5, dev=True))


async def test_event_runs_with_the_emitters_trace(work_client: TestClient[Any, Any]) -> None:
    """An emitted event runs the subscriber with its input typed and the same trace id."""
    response = await work_client.post("/emit/work", json={"value": 7})
    assert response.status == 202
    trace = (await response.json())["trace"]
    results = work_client.app[RUNTIME].streams.results
    await eventually(lambda: 7 in work_module().FINISHED, what="event 7 finished")
    item = await results.get("all", "7")
    assert item is not None
    assert (item.data.value, item.data.trace) == (7, trace)


async def test_bad_input_is_dropped_naming_the_field(
    work_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """An event that does not fit the input schema is logged with the field, then dropped."""
    with caplog.at_level(logging.ERROR):
        await work_client.post("/emit/work", json={"value": "seven"})
        await eventually(lambda: any("dropped event" in r.getMessage() for r in caplog.records),
                         what="'dropped event' logged")
    record = next(r for r in caplog.records if "dropped event" in r.getMessage())
    assert "input for step 'DoWork'" in record.getMessage()
    assert getattr(record, "fields", {})["details"] == ["expected integer, got string @ $.value"]
    assert work_module().FINISHED == []


async def test_failing_handler_is_logged_and_worker_goes_on(
    work_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises is logged with its traceback; the next event still runs."""
    with caplog.at_level(logging.ERROR):
        await work_client.post("/emit/work", json={"value": 1, "fail": True})
        await work_client.post("/emit/work", json={"value": 2})
        await eventually(lambda: 2 in work_module().FINISHED, what="event 2 finished")
    failure = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert failure.exc_info is not None
    assert "work 1 failed" in str(failure.exc_info[1])


async def test_failing_handler_retries_then_dead_letters(
    work_client: TestClient[Any, Any]
) -> None:
    """A handler that always fails is tried max_attempts times, then listed as dead."""
    await work_client.post("/emit/work", json={"value": 4, "fail": True})

    async def dead_letters() -> Any:
        return await (await work_client.get("/__motia/dead-letters")).json()

    [letter] = await eventually(dead_letters, what="a dead letter")
    assert (letter["step"], letter["topic"], letter["data"]) == (
        "DoWork", "work", {"value": 4, "fail": True})
    assert (letter["attempts"], letter["error"]) == (3, "RuntimeError: work 4 failed")
    bad = await work_client.get("/__motia/dead-letters?limit=0")
    assert bad.status == 400


async def test_concurrency_is_bounded(work_client: TestClient[Any, Any]) -> None:
    """With max_concurrent_handlers=2, never more than two handlers run at once."""
    for value in range(6):
        await work_client.post("/emit/work", json={"value": value, "sleep": 0.05})
    await eventually(lambda: len(work_module().FINISHED) == 6, what="six events finished")
    assert work_module().PEAK[0] == 2


async def test_undeclared_topic_is_refused(work_client: TestClient[Any, Any]) -> None:
    """Emitting a topic missing from the step's `emits` fails loudly, naming both."""
    response = await work_client.post("/emit/surprise", json={})
    assert response.status == 500
    detail = (await response.json())["details"][0]
    assert "'Emit' emitted 'surprise'" in detail


async def test_shutdown_waits_for_running_handlers(work_client: TestClient[Any, Any]) -> None:
    """Closing the app lets a running handler finish within the shutdown timeout."""
    await work_client.post("/emit/work", json={"value": 9, "sleep": 0.3})
    await eventually(lambda: 9 in work_module().RUNNING, what="event 9 running")
    await work_client.app[RUNTIME].close()
    assert 9 in work_module().FINISHED
