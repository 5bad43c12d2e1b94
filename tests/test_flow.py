"""The whole flow: noop steps, virtual edges, emit labels, Run now, Emit, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.exceptions import LoadErrors, UndeclaredEmitError
from motia_sse.queue.memory import MemoryQueue
from motia_sse.run.config import Emit, EventConfig
from motia_sse.run.context import Emitter
from motia_sse.run.loader import load_project
from tests.conftest import ClientFactory, ServerProcess, WriteSteps
from tests.polling import eventually

NOTES_STREAM = '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Note:
    text: str

config = StreamConfig(name="notes", schema=Note)
'''

NIGHTLY_STEP = '''
from motia_sse import CronConfig, FlowContext

config = CronConfig(
    name="Nightly", cron="0 3 * * *", flows=["ops"],
    emits=[{"topic": "checked", "label": "all good"},
           {"topic": "alarm", "label": "on failure", "conditional": True}],
)

async def handler(ctx: FlowContext) -> None:
    await ctx.emit("checked", {"count": 1})
'''

ON_CHECKED_STEP = '''
import attrs
from motia_sse import EventConfig, FlowContext

@attrs.frozen
class Checked:
    count: int

config = EventConfig(name="OnChecked", subscribes=["checked"], input=Checked, flows=["ops"])

async def handler(input: Checked, ctx: FlowContext) -> None:
    await ctx.streams.notes.set(ctx.trace_id, "checked", {"text": f"count {input.count}"})
'''

REVIEW_STEP = '''
from motia_sse import NoopConfig

config = NoopConfig(
    name="HumanReview", description="someone looks at the alarm", flows=["ops"],
    virtual_subscribes=["alarm"], virtual_emits=[{"topic": "reviewed", "label": "approved"}],
)
'''

APPROVE_STEP = '''
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Approve", path="/approve", method="POST", flows=["ops"],
                        virtual_subscribes=["reviewed"])

async def handler(req: ApiRequest[None], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(status=200, body={"ok": True})
'''

FILES = {"notes_stream.py": NOTES_STREAM, "nightly_step.py": NIGHTLY_STEP,
         "on_checked_step.py": ON_CHECKED_STEP, "review_step.py": REVIEW_STEP,
         "approve_step.py": APPROVE_STEP}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(name="flow_steps")
def _flow_steps(write_steps: WriteSteps) -> Path:
    return write_steps(FILES)


@pytest.fixture(name="flow_settings")
def _flow_settings(flow_steps: Path, settings: Settings) -> Settings:
    """The flow project in `dev`."""
    return attrs.evolve(settings, steps_dir=flow_steps, dev=True, workbench=False)


@pytest.fixture(name="flow_client")
async def _flow_client(make_client: ClientFactory, flow_settings: Settings
                       ) -> TestClient[Any, Any]:
    return await make_client(flow_settings)


async def note(client: TestClient[Any, Any], trace_id: str) -> Any:
    """The note OnChecked wrote in this trace, once it is there."""
    async def read() -> Any:
        items = await (await client.get(f"/__motia/streams/notes/groups/{trace_id}")).json()
        return items[0]["text"] if items else None

    return await eventually(read, what=f"a note in trace {trace_id}")


async def test_steps_list_cron_and_noop_with_labels_and_virtual_edges(
        flow_client: TestClient[Any, Any]) -> None:
    """`/__motia/steps`: cron and noop steps too, emits as {topic, label, conditional}."""
    steps = {s["name"]: s for s in await (await flow_client.get("/__motia/steps")).json()}
    assert set(steps) == {"Nightly", "OnChecked", "HumanReview", "Approve"}
    assert steps["Nightly"] == {
        "name": "Nightly", "type": "cron", "cron": "0 3 * * *", "file": "nightly_step.py",
        "description": "", "flows": ["ops"], "virtualEmits": [], "virtualSubscribes": [],
        "emits": [{"topic": "checked", "label": "all good", "conditional": False},
                  {"topic": "alarm", "label": "on failure", "conditional": True}],
        "settings": {"max_attempts": 1, "backoff": 0.5, "timeout": None, "concurrency": None,
                     "own": []},
    }
    assert steps["HumanReview"] == {
        "name": "HumanReview", "type": "noop", "file": "review_step.py",
        "description": "someone looks at the alarm", "flows": ["ops"], "emits": [],
        "virtualSubscribes": ["alarm"],
        "virtualEmits": [{"topic": "reviewed", "label": "approved", "conditional": False}],
    }
    assert steps["Approve"]["virtualSubscribes"] == ["reviewed"]


def test_virtual_subscribers_silence_the_unheard_topic_warning(
        write_steps: WriteSteps) -> None:
    """A topic heard only virtually is no typo; one nobody hears, really or not, is."""
    steps = write_steps({**FILES, "review_step.py": REVIEW_STEP.replace('"alarm"', '"alrm"')})
    project = load_project(steps)
    assert [w.split(": ", 1)[1] for w in project.warnings] == [
        "step 'Nightly' emits 'alarm', but no step subscribes to it"]
    assert [w.split(": ", 1)[1] for w in load_project(write_steps(FILES, "ok")).warnings] == []


@pytest.mark.parametrize(("source", "message"), [
    ("from motia_sse import NoopConfig\nconfig = NoopConfig(name='N')\n"
     "async def handler(input, ctx):\n    pass\n",
     "a NoopConfig step has no handler (nothing runs it); remove `handler`, or make it an "
     "EventConfig step"),
    ("from motia_sse import EventConfig\nconfig = EventConfig(name='E', subscribes=['a'], "
     "emits=[{'topic': 'b', 'lable': 'x'}])\nasync def handler(input, ctx):\n    pass\n",
     "import failed: TypeError: emits entry {'topic': 'b', 'lable': 'x'}: expected a topic, "
     "Emit(...) or {'topic': str, 'label': str (optional), 'conditional': bool (optional)}"),
    ("from motia_sse import EventConfig\nconfig = EventConfig(name='E', subscribes=['a'], "
     "emits='b')\nasync def handler(input, ctx):\n    pass\n",
     "import failed: TypeError: emits must be a list of topics, got 'b'; write ['b']"),
], ids=["noop-with-handler", "misspelt-key", "bare-string"])
def test_bad_noop_or_emits_is_a_load_error(write_steps: WriteSteps, source: str,
                                           message: str) -> None:
    """A noop with a handler, or an emits entry of the wrong shape, names the file."""
    steps = write_steps({"bad_step.py": source})
    with pytest.raises(LoadErrors) as caught:
        load_project(steps)
    [error] = caught.value.errors
    assert (Path(error.path.split(":")[0]).name, error.message) == ("bad_step.py", message)


async def test_emit_checks_topics_not_labels_nor_virtual_emits(flow_steps: Path) -> None:
    """`ctx.emit` routes a labelled topic; a virtual-only topic is undeclared."""
    project = load_project(flow_steps)
    queue = MemoryQueue()
    emitter = Emitter(project, queue)
    [nightly] = project.cron_steps
    await emitter.emit(nightly, "t1", "checked", {"count": 1})
    assert (await queue.get()).step == "OnChecked"
    [review] = project.noop_steps
    virtual_only = attrs.evolve(nightly, config=EventConfig(
        name="X", subscribes=["a"], virtual_emits=[Emit("reviewed")]))
    with pytest.raises(UndeclaredEmitError, match="declared: none"):
        await emitter.emit(virtual_only, "t2", "reviewed", {})
    assert review.config.virtual_emits == (Emit("reviewed", "approved"),)


async def test_run_now_runs_a_cron_step_in_a_new_trace(
        flow_client: TestClient[Any, Any]) -> None:
    """Run now: 202 with a fresh trace id; the handler's emit carries it onward."""
    response = await flow_client.post("/__motia/cron/Nightly/run", json={})
    assert response.status == 202
    answer = await response.json()
    assert answer["step"] == "Nightly"
    assert len(answer["traceId"]) == 32
    assert await note(flow_client, answer["traceId"]) == "count 1"
    again = await (await flow_client.post("/__motia/cron/Nightly/run", json={})).json()
    assert again["traceId"] != answer["traceId"]


async def test_run_now_refusals(flow_client: TestClient[Any, Any]) -> None:
    """An unknown or non-cron step is a 404 naming the cron steps; a form POST is a 415."""
    missing = await flow_client.post("/__motia/cron/OnChecked/run", json={})
    assert (missing.status, await missing.json()) == (404, {
        "error": "no cron step named 'OnChecked'", "details": ["cron steps: Nightly"]})
    form = await flow_client.post("/__motia/cron/Nightly/run", data={"a": "1"})
    assert (form.status, await form.json()) == (415, {
        "error": "unsupported content type",
        "details": ["expected application/json, got application/x-www-form-urlencoded"]})


async def test_emit_queues_to_the_subscribers(flow_client: TestClient[Any, Any]) -> None:
    """Emit: 202 with the trace id and the steps reached, which then run with it."""
    response = await flow_client.post("/__motia/emit", json={
        "topic": "checked", "data": {"count": 7}, "message_group_id": "night-1"})
    assert response.status == 202
    answer = await response.json()
    assert (answer["topic"], answer["steps"]) == ("checked", ["OnChecked"])
    assert await note(flow_client, answer["traceId"]) == "count 7"


@pytest.mark.parametrize(("body", "error", "details"), [
    ({"topic": "nobody", "data": {}}, "no step subscribes to topic 'nobody'",
     ["topics with subscribers: checked"]),
    ({"topic": "checked", "data": {"count": "7"}}, "invalid data for topic 'checked'",
     ["step 'OnChecked': expected integer, got string @ $.data.count"]),
    ({"topic": "checked", "data": []}, "invalid data for topic 'checked'",
     ["step 'OnChecked': expected object, got array @ $.data"]),
    ({"data": {}}, "invalid emit request", ["required field missing @ $.topic"]),
    ({"topic": "checked", "data": {"count": 1}, "message_group_id": ""},
     "invalid emit request",
     ["message_group_id: expected a non-empty string or null @ $.message_group_id"]),
    ({"topic": "checked", "group": "g"}, "invalid emit request",
     ["extra fields found (group) @ $"]),
], ids=["unknown-topic", "wrong-type", "not-object", "no-topic", "empty-group", "extra"])
async def test_emit_refusals_are_400_naming_the_field(
        flow_client: TestClient[Any, Any], body: Any, error: str, details: list[str]) -> None:
    """A topic nobody hears, or data that fits no subscriber's input, is a 400."""
    response = await flow_client.post("/__motia/emit", json=body)
    assert (response.status, await response.json()) == (400, {"error": error,
                                                              "details": details})


async def test_emit_body_must_be_json(flow_client: TestClient[Any, Any]) -> None:
    """Broken JSON is a 400; text/plain (which a page elsewhere may send) is a 415."""
    broken = await flow_client.post("/__motia/emit", data="{", headers=JSON)
    assert (broken.status, (await broken.json())["error"]) == (400, "invalid JSON body")
    text = await flow_client.post("/__motia/emit", data='{"topic": "checked"}',
                                  headers={"Content-Type": "text/plain"})
    assert text.status == 415


async def test_actions_are_refused_in_start_without_the_workbench(
        make_client: ClientFactory, flow_settings: Settings) -> None:
    """`start` serves neither endpoint unless --workbench; with a token, they need it."""
    start = await make_client(attrs.evolve(flow_settings, dev=False, workbench=False))
    for path in ("/__motia/emit", "/__motia/cron/Nightly/run"):
        response = await start.post(path, json={"topic": "checked", "data": {"count": 1}})
        assert response.status == 404, path
    token = "t" * 20
    guarded = await make_client(attrs.evolve(flow_settings, workbench_token=token))
    refused = await guarded.post("/__motia/cron/Nightly/run", json={})
    assert refused.status == 401
    allowed = await guarded.post("/__motia/cron/Nightly/run", json={},
                                 headers={"Authorization": f"Bearer {token}"})
    assert allowed.status == 202


def motia(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m motia_sse ARGS`, its output captured."""
    return subprocess.run([sys.executable, "-m", "motia_sse", *args], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture(name="flow_server")
def _flow_server(server_process: Any, flow_steps: Path) -> ServerProcess:
    """The flow project served by `start --workbench` in a process of its own."""
    server: ServerProcess = server_process("--steps", str(flow_steps), "--store", "memory",
                                           "--workbench", "--workbench-token", "s" * 20)
    return server.start()


async def test_cli_emit_prints_the_trace_id(flow_server: ServerProcess,
                                            make_client: ClientFactory) -> None:
    """`motia-sse emit TOPIC JSON` queues the event and prints its trace id."""
    done = motia("emit", "checked", '{"count": 3}', "--url", flow_server.url,
                 "--workbench-token", "s" * 20, "--message-group-id", "g")
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip()
    assert len(trace_id) == 32
    assert done.stderr == "emitted 'checked' to OnChecked\n"
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + "s" * 20}) as http:
        async def read() -> Any:
            url = f"{flow_server.url}/__motia/streams/notes/groups/{trace_id}"
            async with http.get(url) as response:
                return await response.json()

        assert (await eventually(read))[0]["text"] == "count 3"


@pytest.mark.parametrize(("args", "expected"), [
    (["nobody", "{}"], "answered 400: no step subscribes to topic 'nobody'; topics with "
                       "subscribers: checked"),
    (["checked", '{"count": "x"}'], "answered 400: invalid data for topic 'checked'; step "
                                    "'OnChecked': expected integer, got string @ $.data.count"),
], ids=["unknown-topic", "bad-data"])
def test_cli_emit_refusal_is_one_line(flow_server: ServerProcess, args: list[str],
                                      expected: str) -> None:
    """A 4xx answer is one line on stderr naming the problem, and exit status 1."""
    done = motia("emit", *args, "--url", flow_server.url, "--workbench-token", "s" * 20)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"motia-sse emit: {flow_server.url}/__motia/emit {expected}\n")


def test_cli_emit_without_token_or_server(flow_server: ServerProcess) -> None:
    """No token: the server's 401 in one line; nothing listening: one line saying so."""
    refused = motia("emit", "checked", "{}", "--url", flow_server.url)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"motia-sse emit: {flow_server.url}/__motia/emit "
                                     "answered 401: workbench token required; ")
    gone = motia("emit", "checked", "{}", "--url", "http://127.0.0.1:9")
    assert gone.returncode == 1
    assert gone.stderr.count("\n") == 1
    assert gone.stderr.startswith("motia-sse emit: cannot reach http://127.0.0.1:9 (")


async def test_cli_openapi_writes_what_the_server_serves(
        flow_server: ServerProcess, flow_steps: Path, tmp_path: Path) -> None:
    """`motia-sse openapi -o FILE` writes the document /openapi.json serves."""
    out = tmp_path / "openapi.json"
    done = motia("openapi", "--steps", str(flow_steps), "-o", str(out))
    assert done.returncode == 0, done.stderr
    async with aiohttp.ClientSession() as http, http.get(
            f"{flow_server.url}/openapi.json",
            headers={"Authorization": "Bearer " + "s" * 20}) as response:
        served = await response.json()
    assert json.loads(out.read_text()) == served
    assert "/approve" in served["paths"]
    printed = motia("openapi", "--steps", str(flow_steps))
    assert json.loads(printed.stdout) == served


def test_cli_openapi_names_a_broken_step(write_steps: WriteSteps) -> None:
    """A steps folder that does not load: its errors, exit status 1, nothing written."""
    steps = write_steps({"bad_step.py": "config = 1\n"})
    done = motia("openapi", "--steps", str(steps))
    assert (done.returncode, done.stdout) == (1, "")
    assert "bad_step.py: expected `config = ApiRouteConfig(...)`" in done.stderr
