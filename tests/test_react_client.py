"""motia-stream-react.js bundled by esbuild with React into a page, served by a real server
process, in a real Chromium: hooks that follow an item, a sorted group and custom events."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests import npm_packages
from tests.conftest import REPO, ServerProcess, WriteSteps
from tests.playwright_api import IN_CI, Browser, Page, expect

WAIT_MS = 10_000
STEPS = {
    "notes_stream.py": """
import attrs

from motia_sse import StreamConfig


@attrs.frozen
class Note:
    text: str
    rank: int = 0


config = StreamConfig(name="notes", schema=Note)
""",
    "set_note_api_step.py": """
from notes_stream import Note

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="SetNote", path="/notes/{group}/{id}", method="PUT", body_schema=Note)


async def handler(req: ApiRequest[Note], ctx: FlowContext) -> ApiResponse:
    params = req.path_params
    return ApiResponse(200, await ctx.streams.notes.set(params["group"], params["id"], req.body))
""",
    "typing_api_step.py": """
from typing import Any

from motia_sse import (ApiRequest, ApiResponse, ApiRouteConfig, FlowContext, StreamChannel,
                       StreamEvent)

config = ApiRouteConfig(name="Typing", path="/notes/{group}/{id}/typing", method="POST")


async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    channel = StreamChannel(req.path_params["group"], req.path_params["id"])
    await ctx.streams.notes.send(channel, StreamEvent("typing", req.body))
    return ApiResponse(202, {})
""",
    # The page a user's own server would serve: the HTML and the bundle esbuild made.
    "page_api_step.py": """
from typing import Any

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Page", path="/app", method="GET")
PAGE = '<!doctype html><div id="root"></div><script type="module" src="/app.js"></script>'


async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(200, PAGE, {"Content-Type": "text/html; charset=utf-8"})
""",
    "bundle_api_step.py": """
from pathlib import Path
from typing import Any

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Bundle", path="/app.js", method="GET")
BUNDLE = Path(__file__).with_name("app.js")


async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    return ApiResponse(200, BUNDLE.read_text(), {"Content-Type": "text/javascript"})
""",
}
# One hook of each kind, positional and in Motia's object form, under one provider.
PAGE_JSX = """
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { MotiaStreamProvider, useStreamEventHandler, useStreamGroup, useStreamItem }
  from MODULE;

function Answer() {
  const { data, event } = useStreamItem("notes", "chat", "answer");
  const [typing, setTyping] = useState([]);
  useStreamEventHandler(
    { event, type: "typing", listener: (who) => setTyping((seen) => [...seen, who.name]) }, []);
  return (<>
    <p id="answer">{data ? data.text : "(nothing yet)"}</p>
    <p id="typing">{typing.join(",")}</p>
  </>);
}

function Board() {
  const { data } = useStreamGroup({ streamName: "notes", groupId: "board", sortKey: "rank" });
  return <ol id="board">{data.map((note) => <li key={note.id}>{note.id}:{note.text}</li>)}</ol>;
}

// StrictMode, as most apps have it in development: every effect runs, is cleaned up (the
// provider closes its client) and runs again.
const url = new URL("/streams", location.href).href;
createRoot(document.getElementById("root")).render(
  <StrictMode>
    <MotiaStreamProvider url={url}><Answer /><Board /></MotiaStreamProvider>
  </StrictMode>);
"""


@pytest.fixture(name="npm_folder", scope="session")
def _npm_folder() -> Path:
    """react, react-dom and esbuild from the npm registry, installed once into a cache."""
    try:
        return npm_packages.install()
    except npm_packages.NpmUnavailable as error:
        if IN_CI:
            pytest.fail(str(error))
        pytest.skip(str(error))


def bundle(npm_folder: Path, work: Path, entry_source: str) -> Path:
    """esbuild's one-file ES module of `entry_source` (JSX); bare imports come from the cache."""
    entry = work / "page.jsx"
    entry.write_text(entry_source)
    out = work / "app.js"
    command = [str(npm_folder / "node_modules" / ".bin" / "esbuild"), str(entry), "--bundle",
               "--format=esm", "--jsx=automatic", "--minify", f"--outfile={out}",
               # React's development build: StrictMode's double effects happen only there.
               '--define:process.env.NODE_ENV="development"', "--log-level=warning"]
    # NODE_PATH: our module lives in static/, far from any node_modules of its own.
    env = {**os.environ, "NODE_PATH": str(npm_folder / "node_modules")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(name="site")
async def _site(npm_folder: Path, write_steps: WriteSteps, tmp_path: Path,
                server_process: Callable[..., ServerProcess]) -> ServerProcess:
    """The steps above and the bundled page, served by `motia-sse start`."""
    steps = write_steps(STEPS)
    module = json.dumps(str(REPO / "static" / "motia-stream-react.js"))
    await asyncio.to_thread(bundle, npm_folder, steps, PAGE_JSX.replace("MODULE", module))
    server = server_process("--steps", str(steps), "--data-dir", str(tmp_path / "data"))
    await asyncio.to_thread(server.start)
    return server


@pytest.fixture(name="page")
async def _page(browser: Browser) -> AsyncIterator[Page]:
    """A tab that fails the test on any uncaught error or React warning, and counts the
    EventSources opened."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The browser's own "Failed to load resource" is the favicon nobody serves.
    page.on("console", lambda message: errors.append(message.text) if message.type in
            ("error", "warning") and not message.text.startswith("Failed to load") else None)
    await page.add_init_script("""
      window.opened = [];
      const Original = window.EventSource;
      window.EventSource = class extends Original {
        constructor(url, init) { super(url, init); opened.push(url); }
      };
    """)
    yield page
    await page.close()
    assert errors == []


async def test_react_page_follows_an_item_a_sorted_group_and_events(
    site: ServerProcess, page: Page
) -> None:
    """A bundled React page: the item grows, the group stays sorted by rank as it changes,
    the typing events arrive, all on one connection and nothing fetched from elsewhere."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    async with aiohttp.ClientSession(site.url) as http:
        async def put(group: str, id_: str, text: str, rank: int = 0) -> None:
            async with http.put(f"/notes/{group}/{id_}", json={"text": text, "rank": rank}) as r:
                assert r.status == 200, await r.text()

        await put("board", "b", "second", 2)
        await put("board", "a", "third", 3)
        await page.goto(f"{site.url}/app")
        board = page.locator("#board li")
        await expect(board).to_have_text(["b:second", "a:third"], timeout=WAIT_MS)
        answer = page.locator("#answer")
        await expect(answer).to_have_text("(nothing yet)")

        for text in ("Un", "Un café", "Un café ☕ 好"):
            await put("chat", "answer", text)
            await expect(answer).to_have_text(text, timeout=WAIT_MS)
        await put("board", "c", "first", 1)
        await expect(board).to_have_text(["c:first", "b:second", "a:third"], timeout=WAIT_MS)
        await put("board", "a", "now first", 0)
        await expect(board).to_have_text(["a:now first", "c:first", "b:second"],
                                         timeout=WAIT_MS)
        for name in ("ann", "bo"):
            async with http.post("/notes/chat/answer/typing", json={"name": name}) as r:
                assert r.status == 202, await r.text()
        await expect(page.locator("#typing")).to_have_text("ann,bo", timeout=WAIT_MS)

    opened = await page.evaluate("opened")
    assert len(opened) == 1, opened
    assert all(url.startswith(site.url) for url in requested), requested
