"""Reloading steps inside a running server (`motia-sse dev`), feeds kept open.

The watcher process and SIGHUP are covered in test_cli.py; here the reload runs in the
test's own server, so that every part it swaps can be looked at."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings, create_app
from motia_sse.process.in_place_reload import RELOADER
from motia_sse.run.loader import load_project
from motia_sse.runtime import RUNTIME, Runtime
from tests.conftest import ClientFactory, OpenFeed, WriteSteps
from tests.polling import eventually
from tests.work_steps import NOTES_STREAM

MEMOS_STREAM = NOTES_STREAM.replace("notes", "memos").replace("Note", "Memo")

EMIT_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Emit", path="/emit/{n}", method="POST", emits=["ping"])

async def handler(req, ctx):
    await ctx.emit("ping", {"n": req.path_params["n"]})
    return {"status": 202, "body": None}
'''

ON_PING_STEP = '''
from motia_sse import EventConfig

config = EventConfig(name="OnPing", subscribes=["ping"])

async def handler(input, ctx):
    await ctx.streams.notes.set("g", input["n"], {{"text": "{version}"}})
'''

HELLO_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Hello", path="/hello", method="GET")

async def handler(req, ctx):
    return {"status": 200, "body": "hello"}
'''

TICK_STEP = '''
from motia_sse import CronConfig

config = CronConfig(name="Tick", cron="* * * * * *")

async def handler(ctx):
    await ctx.streams.notes.set("cron", "tick", {"text": "ticked"})
'''


@pytest.fixture(name="steps")
def _steps(write_steps: WriteSteps) -> Path:
    return write_steps({"notes_stream.py": NOTES_STREAM, "memos_stream.py": MEMOS_STREAM,
                        "emit_step.py": EMIT_STEP,
                        "on_ping_step.py": ON_PING_STEP.format(version="v1")})


@pytest.fixture(name="dev_client")
async def _dev_client(make_client: ClientFactory, steps: Path, tmp_path: Path
                      ) -> TestClient[Any, Any]:
    settings = Settings(steps_dir=steps, store="memory", data_dir=tmp_path / ".motia",
                        heartbeat_interval=60, workbench=True)
    return await make_client(settings, create_app(settings, reloadable=True))


async def reload(client: TestClient[Any, Any]) -> None:
    """What the server does on SIGHUP."""
    await client.app[RELOADER].reload(client.app)


async def note(client: TestClient[Any, Any], group: str, item: str) -> str | None:
    """The text of a note, or None."""
    found = await client.app[RUNTIME].streams["notes"].get(group, item)
    return None if found is None else str(found.data.text)


async def wait_for_note(client: TestClient[Any, Any], group: str, item: str, text: str) -> None:
    """Poll until the note says `text`."""
    await eventually(lambda: note(client, group, item), until=lambda now: now == text,
                     every=0.02, what=f"note {group}/{item} saying {text!r}")


async def test_reload_swaps_steps_and_keeps_feeds(
    dev_client: TestClient[Any, Any], steps: Path, open_feed: OpenFeed
) -> None:
    """New routes, event handlers and cron steps take over; the notes feed stays on its
    connection and gets the new handler's write; the memos feed, whose stream is gone,
    ends; the workbench and the OpenAPI document describe the new steps."""
    assert (await dev_client.post("/emit/1")).status == 202
    await wait_for_note(dev_client, "g", "1", "v1")
    notes = await open_feed(str(dev_client.make_url("/streams/notes/g/1")))
    assert (await notes.next()).json()["text"] == "v1"
    memos = await open_feed(str(dev_client.make_url("/streams/memos/g/x")))
    assert (await dev_client.get("/hello")).status == 404

    (steps / "on_ping_step.py").write_text(ON_PING_STEP.format(version="v2"))
    (steps / "hello_step.py").write_text(HELLO_STEP)
    (steps / "tick_step.py").write_text(TICK_STEP)
    (steps / "memos_stream.py").unlink()
    await reload(dev_client)

    with pytest.raises(EOFError):
        await memos.next()
    assert (await dev_client.post("/emit/1")).status == 202
    assert (await notes.next()).json()["text"] == "v2"  # the same connection
    hello = await dev_client.get("/hello")
    assert (hello.status, await hello.text()) == (200, "hello")
    await wait_for_note(dev_client, "cron", "tick", "ticked")
    described = await (await dev_client.get("/__motia/steps")).json()
    assert {s["name"] for s in described} == {"Emit", "OnPing", "Hello", "Tick"}
    assert "/hello" in (await (await dev_client.get("/openapi.json")).json())["paths"]
    gone = await dev_client.get("/streams/memos/g/x")
    assert (gone.status, (await gone.json())["error"]) == (404, "no stream named 'memos'")

    (steps / "hello_step.py").unlink()
    await reload(dev_client)
    missing = await dev_client.get("/hello")
    assert (missing.status, await missing.json()) == (
        404, {"error": "Not Found", "details": ["GET /hello"]})
    wrong = await dev_client.get("/emit/1")
    assert (wrong.status, wrong.headers["Allow"]) == (405, "POST")


async def test_a_broken_edit_keeps_the_running_steps(
    dev_client: TestClient[Any, Any], steps: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that does not load is reported with its line; the old steps go on."""
    (steps / "on_ping_step.py").write_text("config = (\n")
    with caplog.at_level(logging.ERROR, logger="motia_sse"):
        await reload(dev_client)
    assert "not reloading" in caplog.text
    assert "on_ping_step.py:1: import failed: SyntaxError" in caplog.text
    assert (await dev_client.post("/emit/2")).status == 202
    await wait_for_note(dev_client, "g", "2", "v1")


async def test_helper_modules_are_imported_again(
    dev_client: TestClient[Any, Any], steps: Path
) -> None:
    """A module of the steps folder that a step imports is read again on reload."""
    (steps / "words.py").write_text('WORD = "first"\n')
    (steps / "word_step.py").write_text(HELLO_STEP.replace('"hello"', "WORD").replace(
        "from motia_sse", "from words import WORD\nfrom motia_sse"))
    await reload(dev_client)
    assert await (await dev_client.get("/hello")).text() == "first"
    (steps / "words.py").write_text('WORD = "second"\n')
    await reload(dev_client)
    assert await (await dev_client.get("/hello")).text() == "second"


async def test_a_swap_that_fails_asks_for_a_fresh_process(
    dev_client: TestClient[Any, Any], steps: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    """Anything going wrong while swapping is logged, and the server ends itself, as on
    SIGTERM, with RESTART: the watcher starts a fresh one."""
    signals: list[int] = []

    async def broken_swap(runtime: Runtime, project: object) -> None:
        raise RuntimeError("swap broke")

    monkeypatch.setattr(Runtime, "swap", broken_swap)
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append(sig))
    await reload(dev_client)
    assert signals == [signal.SIGTERM]
    assert dev_client.app[RELOADER].restart
    assert "reloading failed: restarting the server" in caplog.text
    assert "RuntimeError: swap broke" in caplog.text


async def test_on_redis_a_new_event_step_asks_for_a_fresh_process(
    make_client: ClientFactory, steps: Path, redis_settings: Settings,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On Redis each event step has a consumer group made at start: adding one restarts
    the server rather than leave its events unread. Editing one reloads in place."""
    settings = attrs.evolve(redis_settings, steps_dir=steps)
    client = await make_client(settings, create_app(settings, reloadable=True))
    signals: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append(sig))
    (steps / "on_ping_step.py").write_text(ON_PING_STEP.format(version="v2"))
    await reload(client)
    assert signals == []
    (steps / "also_step.py").write_text(ON_PING_STEP.format(version="v3").replace(
        'name="OnPing"', 'name="AlsoOnPing"'))
    with caplog.at_level(logging.INFO, logger="motia_sse"):
        await reload(client)
    assert signals == [signal.SIGTERM]
    assert ("the event steps changed; their Redis consumer groups are made at start: "
            "restarting the server") in caplog.text


def test_reloading_keeps_installed_packages_under_the_folder(
    tmp_path: Path, write_steps: WriteSteps
) -> None:
    """`--steps .` beside a virtualenv: files in hidden folders and installed packages are
    not steps, and an installed package a step imports is not imported again by a reload
    (two of each class would break isinstance), while the folder's own helpers are."""
    site = ".venv/lib/site-packages"
    steps = write_steps({
        f"{site}/vendored_lib.py": "VALUE = 1\n",
        f"{site}/vendored_stream.py": "raise ImportError('not a step')\n",
        ".git/old_step.py": "raise ImportError('not a step')\n",
        "helper_words.py": 'WORD = "x"\n',
        "use_step.py": f'''
import sys
sys.path.insert(0, {str(tmp_path / "project" / site)!r})
import vendored_lib
import helper_words
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Use", path="/use", method="GET")

async def handler(req, ctx):
    return {{"status": 200, "body": helper_words.WORD}}
'''}, "project")
    assert [s.name for s in load_project(steps).api_steps] == ["Use"]
    vendored, helper = sys.modules["vendored_lib"], sys.modules["helper_words"]
    load_project(steps)
    assert sys.modules["vendored_lib"] is vendored
    assert sys.modules["helper_words"] is not helper
