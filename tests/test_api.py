"""API steps over a real socket: validation, errors, responses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.runtime import RUNTIME
from tests.conftest import ClientFactory, WriteSteps
from tests.polling import eventually
from tests.work_steps import NOTES_STREAM

CRASHING_STEP = '''
import attrs
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

@attrs.frozen
class Body:
    n: int

config = ApiRouteConfig(name="Divide", path="/divide/{by}", method="POST", body_schema=Body)

async def handler(req: ApiRequest[Body], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(status=200, body={"result": req.body.n // int(req.path_params["by"]),
                                         "query": req.query_params},
                       headers={"x-step": "divide"})
'''

DICT_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Plain", path="/plain", method="GET")

async def handler(req, ctx):
    return {"status": 201, "body": {"trace": ctx.trace_id}}
'''

BAD_DATA_STEP = '''
import attrs
from motia_sse import ApiRouteConfig, StreamConfig

config = ApiRouteConfig(name="BadData", path="/bad-data", method="POST")

async def handler(req, ctx):
    await ctx.streams.notes.set("g", "i", {"text": 5})
'''

SLOW_STEP = '''
import asyncio
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Slow", path="/slow/{n}", method="POST")

async def handler(req, ctx):
    n = req.path_params["n"]
    await ctx.streams.notes.set("slow", n, {"text": "started"})
    await asyncio.sleep(0.3)
    await ctx.streams.notes.set("slow", n, {"text": "finished"})
    return {"status": 200, "body": None}
'''

ID_FROM_BODY_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="SetNote", path="/notes", method="POST")

async def handler(req, ctx):
    await ctx.streams.notes.set("g", req.body["id"], {"text": "hi"})
    return {"status": 204, "body": None}
'''

BAD_RETURN_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="BadReturn", path="/bad-return", method="GET")

async def handler(req, ctx):
    return "not a response"
'''


@pytest.fixture(name="api_steps")
def _api_steps(write_steps: WriteSteps) -> Path:
    """A project of small API steps written for these tests."""
    return write_steps({
        "divide_step.py": CRASHING_STEP, "plain_step.py": DICT_STEP,
        "bad_return_step.py": BAD_RETURN_STEP, "bad_data_step.py": BAD_DATA_STEP,
        "notes_stream.py": NOTES_STREAM, "slow_step.py": SLOW_STEP,
        "set_note_step.py": ID_FROM_BODY_STEP}, "api_steps")


@pytest.fixture(name="custom_client")
async def _custom_client(api_steps: Path, make_client: ClientFactory) -> TestClient[Any, Any]:
    """Those steps, served as `dev` serves them."""
    return await make_client(Settings(steps_dir=api_steps, store="memory", dev=True))


@pytest.fixture(name="start_client")
async def _start_client(api_steps: Path, make_client: ClientFactory) -> TestClient[Any, Any]:
    """Those steps, served as `start` serves them."""
    return await make_client(Settings(steps_dir=api_steps, store="memory"))


async def test_post_returns_item_with_feed_address(client: TestClient[Any, Any]) -> None:
    """The seed's API step answers with the item, its id, `__motia` and the trace header."""
    response = await client.post("/jobs", json={"steps": 1, "delay": 0})
    assert response.status == 200
    trace_id = response.headers["x-trace-id"]
    body = await response.json()
    assert body == {
        "status": "queued", "done": 0, "total": 1, "id": "job",
        "__motia": {"type": "state-stream", "streamName": "progress", "groupId": trace_id,
                    "id": "job"},
    }


@pytest.mark.parametrize(
    ("payload", "error", "details"),
    [
        (b'{"message": ', "malformed JSON body", None),
        (b"", "invalid body", ["expected a JSON object, got an empty body @ $"]),
        (b"{}", "invalid body", ["required field missing @ $.message"]),
        (b'{"message": 42}', "invalid body", ["expected string, got integer @ $.message"]),
        (b'{"message": "hi", "extra": 1}', "invalid body", ["extra fields found (extra) @ $"]),
        (b'["hi"]', "invalid body", ["expected object, got array @ $"]),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    client: TestClient[Any, Any], payload: bytes, error: str, details: list[str] | None
) -> None:
    """Malformed JSON, missing, mistyped and extra fields: a 400 that says which and why."""
    response = await client.post("/open-ai", data=payload,
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"] == error
    if details is None:
        assert len(body["details"]) == 1
        assert "line 1" in body["details"][0]
    else:
        assert body["details"] == details


async def test_crashing_handler_is_500_with_trace_and_server_keeps_serving(
    custom_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises gives JSON 500 with the trace id, logs the traceback, and
    the next request is served."""
    with caplog.at_level(logging.ERROR):
        response = await custom_client.post("/divide/0", json={"n": 1})
    assert response.status == 500
    body = await response.json()
    assert body["trace_id"] == response.headers["x-trace-id"]
    assert body["error"] == "step 'Divide' failed"
    assert body["details"][0] == "ZeroDivisionError: integer division or modulo by zero"
    assert body["details"][1].endswith("divide_step.py:12"), "the line that raised"
    record = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError
    assert getattr(record, "trace_id", None) == body["trace_id"]

    again = await custom_client.post("/divide/4?x=1&y=2&y=3", json={"n": 9})
    assert again.status == 200
    assert again.headers["x-step"] == "divide"
    assert await again.json() == {"result": 2, "query": {"x": "1", "y": ["2", "3"]}}


async def test_a_failing_step_in_start_names_no_file(
    start_client: TestClient[Any, Any], api_steps: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Facing the internet, a 500 says which step and trace; the file, the line and the
    error stay in the server's log."""
    with caplog.at_level(logging.ERROR):
        response = await start_client.post("/divide/0", json={"n": 1})
    assert response.status == 500
    body = await response.json()
    trace_id = response.headers["x-trace-id"]
    assert body == {"error": "step 'Divide' failed", "trace_id": trace_id,
                    "details": [f"the server log has the error under trace {trace_id}"]}
    text = await response.text()
    assert str(api_steps) not in text
    assert "divide_step.py" not in text
    assert "ZeroDivisionError" not in text
    record = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert f"{api_steps / 'divide_step.py'}:12" in record.getMessage()
    assert getattr(record, "trace_id", None) == trace_id


@pytest.fixture(name="either_client", params=["dev", "start"])
async def _either_client(request: pytest.FixtureRequest, api_steps: Path,
                         make_client: ClientFactory) -> TestClient[Any, Any]:
    """Those steps, served as `dev` and as `start` serve them."""
    return await make_client(Settings(steps_dir=api_steps, store="memory",
                                      dev=request.param == "dev"))


async def test_a_bad_id_from_the_request_is_400_in_one_line(
    either_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A handler setting an item under an id taken from the body, which cannot be one:
    400 naming the id, one log line without a traceback, in either mode."""
    client = either_client
    with caplog.at_level(logging.INFO):
        response = await client.post("/notes", json={"id": "a/b"})
        long = await client.post("/notes", json={"id": "x" * 300})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid item id"
    assert body["details"] == ["must not contain '/' or control characters, nor be '.' or '..'"]
    assert body["trace_id"] == response.headers["x-trace-id"]
    assert long.status == 400
    assert (await long.json())["details"] == ["expected 1 to 256 characters, got 300"]
    records = [r for r in caplog.records if getattr(r, "step", None) == "SetNote"]
    assert len(records) == 2
    assert all(not r.exc_info and r.levelno == logging.INFO for r in records)
    assert "invalid item id" in records[0].getMessage()
    ok = await client.post("/notes", json={"id": "fine"})
    assert ok.status == 204


async def test_plain_dict_response(custom_client: TestClient[Any, Any]) -> None:
    """A handler may return {"status", "body"} instead of ApiResponse."""
    response = await custom_client.get("/plain")
    assert response.status == 201
    assert await response.json() == {"trace": response.headers["x-trace-id"]}


async def test_bad_return_value_is_clear_500(custom_client: TestClient[Any, Any]) -> None:
    """A handler returning something that is not a response: 500 naming what was expected."""
    response = await custom_client.get("/bad-return")
    assert response.status == 500
    assert "expected ApiResponse" in (await response.json())["details"][0]


async def test_unknown_route_and_method_are_json(client: TestClient[Any, Any]) -> None:
    """aiohttp's own 404 and 405 come back as JSON errors too."""
    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert await missing.json() == {"error": "Not Found", "details": ["GET /nowhere"]}
    wrong = await client.get("/open-ai")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "POST"
    assert (await wrong.json())["error"] == "Method Not Allowed"


async def test_bad_stream_data_in_a_handler_names_field_and_line(
    custom_client: TestClient[Any, Any]
) -> None:
    """A handler that sets data not fitting the stream: 500 naming the field and the line."""
    response = await custom_client.post("/bad-data")
    assert response.status == 500
    details = (await response.json())["details"]
    assert details[:2] == ["invalid data for stream 'notes'",
                           "expected string, got integer @ $.text"]
    assert details[2].endswith("bad_data_step.py:8")


async def test_client_hanging_up_does_not_cut_the_handler_off(
    custom_client: TestClient[Any, Any]
) -> None:
    """The handler of a request whose client has gone still runs to its end."""
    notes = custom_client.app[RUNTIME].streams["notes"]
    for n in range(3):
        with pytest.raises(TimeoutError):
            await custom_client.post(f"/slow/{n}", timeout=aiohttp.ClientTimeout(total=0.1))

    async def texts() -> list[str]:
        items = [await notes.get("slow", str(n)) for n in range(3)]
        return [getattr(item.data, "text", "?") if item else "-" for item in items]

    await eventually(texts, until=lambda now: now == ["finished"] * 3, within=5,
                     what="all three handlers finished")
