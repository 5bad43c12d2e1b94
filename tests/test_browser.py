"""The workbench page and motia-stream.js in a real headless Chromium, against a real server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from motia_sse import Settings, StreamChannel, StreamEvent
from motia_sse.runtime import RUNTIME
from motia_sse.testing import FakeOpenAI
from tests.conftest import EXAMPLE_STEPS, ClientFactory, ServerProcess, WriteSteps
from tests.playwright_api import Browser, Page, expect
from tests.polling import eventually
from tests.test_flow import FILES as FLOW_FILES
from tests.test_workbench_settings import FILES as SETTINGS_FILES
from tests.workbench_page import run_start_job

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "workbench.png"
WAIT_MS = 10_000
ANSWER = ("Server-Sent Events push each new snapshot of a stream item to the browser as it "
          "happens: no polling, no WebSocket, and EventSource reconnects by itself.")
SET_ITEM_STEP = """
from progress_stream import JobProgress

from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="SetItem", path="/items/{group}/{id}", method="PUT",
                        body_schema=JobProgress)


async def handler(req: ApiRequest[JobProgress], ctx: FlowContext) -> ApiResponse:
    params = req.path_params
    return ApiResponse(200, await ctx.streams.progress.set(params["group"], params["id"], req.body))
"""



@pytest.fixture(name="page")
async def _page(browser: Browser) -> AsyncIterator[Page]:
    """A 1280x800 tab; the test fails on any uncaught error in the page."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    await page.close()
    assert errors == []


async def open_workbench(page: Page, client: TestClient[Any, Any], hash_: str = "") -> None:
    """Load the page and wait until it has read the steps."""
    await page.goto(str(client.make_url("/")) + hash_)
    await expect(page.locator(".view:not([hidden])")).to_be_visible(timeout=WAIT_MS)


async def test_openai_form_streams_the_answer_live(
    page: Page, client: TestClient[Any, Any], fake_openai: FakeOpenAI
) -> None:
    """Fill the OpenAI form, press Test: the response shows, and its item grows to the text."""
    fake_openai.chunks = re.findall(r"\S+\s*", ANSWER)
    fake_openai.delay = 0.03
    await open_workbench(page, client, "#/endpoints?step=OpenAiApi")
    panel = page.locator('.endpoint-panel[data-step="OpenAiApi"]')
    await panel.get_by_label("message").fill("Why SSE?")
    await panel.get_by_role("button", name="Test").click()

    response = panel.locator(".response")
    await expect(response).to_have_attribute("data-status", "200", timeout=WAIT_MS)
    trace_id = (await response.locator(".trace-id").inner_text()).strip()
    assert len(trace_id) == 32
    live = panel.locator(".live-item")
    await expect(live).to_have_attribute("data-group", trace_id)
    message = live.locator('dd[data-field="message"]')
    await expect(message).to_have_text(fake_openai.text.strip(), timeout=WAIT_MS)
    await expect(live.locator(".live-status")).to_have_text("live")
    updates = int(await live.get_attribute("data-updates") or 0)
    assert updates > 5, "the page shows the answer growing, not only its end"
    assert fake_openai.requests[0]["messages"] == [{"role": "system",
                                                    "content": "Why SSE?"}]
    await expect(page.locator("#feed-status")).to_have_class("pill feed open")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOT)


async def test_group_view_rows_appear_change_and_disappear(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """Watching a group: rows appear, update and disappear as items are set and deleted."""
    progress = client.app[RUNTIME].streams["progress"]
    await progress.set("board", "a-first", {"status": "queued", "done": 0, "total": 3})
    await open_workbench(page, client, "#/streams")
    await page.get_by_label("Stream").select_option("progress")
    await page.get_by_label("Group id").fill("board")
    await page.get_by_role("button", name="Watch").click()

    group = page.locator(".live-group")
    await expect(group.locator(".live-status")).to_have_text("live", timeout=WAIT_MS)
    await expect(group.locator("tbody tr")).to_have_count(1)
    await progress.set("board", "b-second", {"status": "running", "done": 1, "total": 3})
    row = group.locator('tr[data-id="b-second"]')
    await expect(row).to_contain_text("running", timeout=WAIT_MS)
    await expect(group.locator("tbody tr")).to_have_count(2)
    await progress.set("board", "b-second", {"status": "done", "done": 3, "total": 3})
    await expect(row).to_contain_text("done", timeout=WAIT_MS)
    await progress.delete("board", "b-second")
    await expect(row).to_have_count(0, timeout=WAIT_MS)
    await expect(group.locator('tr[data-id="a-first"]')).to_have_count(1)
    assert "#/streams?stream=progress&group=board" in page.url


async def test_item_view_follows_one_item_to_its_deletion(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """Watching one item by link: its fields update, and a delete says so."""
    progress = client.app[RUNTIME].streams["progress"]
    await progress.set("solo", "job", {"status": "running", "done": 1, "total": 2})
    await open_workbench(page, client, "#/streams?stream=progress&group=solo&id=job")
    item = page.locator(".live-item")
    await expect(item.locator('dd[data-field="status"]')).to_have_text("running",
                                                                      timeout=WAIT_MS)
    await progress.set("solo", "job", {"status": "done", "done": 2, "total": 2})
    await expect(item.locator('dd[data-field="done"]')).to_have_text("2", timeout=WAIT_MS)
    await progress.delete("solo", "job")
    await expect(item.locator(".live-status")).to_have_text("deleted", timeout=WAIT_MS)


async def test_server_errors_are_shown_in_the_page(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """A refused request shows the server's error and details, not only the console."""
    await open_workbench(page, client, "#/endpoints?step=StartJob")
    panel = page.locator('.endpoint-panel[data-step="StartJob"]')
    await panel.get_by_label("steps").fill("0")
    await panel.get_by_role("button", name="Test").click()
    box = panel.locator(".response .error-box")
    await expect(box).to_contain_text("invalid body", timeout=WAIT_MS)
    await expect(box).to_contain_text("steps must be 1..10000 @ $.steps")
    await expect(panel.locator(".response .status")).to_have_text("400 Bad Request")

    await panel.get_by_role("button", name="JSON").click()
    await panel.get_by_label("Request body as JSON").fill('{"steps": "many"')
    await panel.get_by_role("button", name="Test").click()
    await expect(box).to_contain_text("malformed JSON body", timeout=WAIT_MS)


async def test_refused_subscription_is_shown_in_the_page(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """A subscription the feed refuses (400) shows the server's reason where it was asked."""
    too_long = "x" * 300
    await open_workbench(page, client, f"#/streams?stream=progress&group=g&id={too_long}")
    box = page.locator(".live-item .error-box")
    await expect(box).to_contain_text("invalid item id", timeout=WAIT_MS)
    await expect(box).to_contain_text("HTTP 400")
    await expect(page.locator("#feed-status")).to_have_class("pill feed error")


async def test_client_multiplexes_every_subscription_on_one_connection(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """Three subscriptions share one EventSource; the last unsubscribe closes it."""
    progress = client.app[RUNTIME].streams["progress"]
    await progress.set("mux", "one", {"status": "a", "done": 0, "total": 1})
    await progress.set("mux", "two 2", {"status": "b", "done": 0, "total": 1})
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      const opened = [];
      const Original = window.EventSource;
      window.EventSource = class extends Original {
        constructor(url) { super(url); opened.push(this); }
      };
      window.opened = opened;
      const m = await import("/static/motia-stream.js");
      window.seen = {one: [], two: [], group: []};
      window.stops = [
        m.subscribeItem("progress", "mux", "one", (i) => seen.one.push(i && i.status)),
        m.subscribeItem("progress", "mux", "two 2", (i) => seen.two.push(i && i.status)),
        m.subscribeGroup("progress", "mux", (items) => seen.group.push(items.map((i) => i.id))),
      ];
    }""")
    await page.wait_for_function("seen.one.length && seen.two.length && seen.group.length",
                                 timeout=WAIT_MS)
    opened = await page.evaluate("opened.map((s) => [s.url, s.readyState])")
    assert len(opened) == 1, opened
    url, state = opened[0]
    assert state == 1
    assert url.endswith("/streams?delta=1&sub=progress%2Fmux&sub=progress%2Fmux%2Fone"
                        "&sub=progress%2Fmux%2Ftwo%25202")
    assert await page.evaluate("seen") == {"one": ["a"], "two": ["b"],
                                           "group": [["one", "two 2"]]}

    await progress.delete("mux", "one")
    await page.wait_for_function("seen.one.at(-1) === null && seen.group.length > 1",
                                 timeout=WAIT_MS)
    assert await page.evaluate("seen.group.at(-1)") == ["two 2"]
    await page.evaluate("stops.forEach((stop) => stop())")
    await page.wait_for_function("opened[0].readyState === 2", timeout=WAIT_MS)
    assert await page.evaluate("opened.length") == 1


async def test_client_drops_only_the_refused_subscription(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """One bad subscription gets the server's error; the others carry on, on one connection."""
    progress = client.app[RUNTIME].streams["progress"]
    await progress.set("mixed", "good", {"status": "first", "done": 0, "total": 1})
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      const m = await import("/static/motia-stream.js");
      window.seen = [];
      window.errors = [];
      m.subscribeItem("progress", "mixed", "good", (item) => seen.push(item && item.status));
      m.subscribeItem("nope", "mixed", "bad", () => {}, {onError: (e) => errors.push(
        {message: e.message, status: e.status, details: e.details, transient: e.transient})});
    }""")
    await page.wait_for_function("errors.length === 1 && seen.length === 1", timeout=WAIT_MS)
    assert await page.evaluate("errors") == [{
        "message": "no stream named 'nope'", "status": 404, "transient": False,
        "details": ["sub[0] = 'nope/mixed/bad': defined streams: openai, progress"]}]
    await progress.set("mixed", "good", {"status": "second", "done": 1, "total": 1})
    await page.wait_for_function("seen.at(-1) === 'second'", timeout=WAIT_MS)
    assert await page.evaluate("seen") == ["first", "second"]


async def test_client_hands_custom_events_to_on_event(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """Ephemeral events from `send` reach the subscription's `onEvent`: an item's event
    the item's and its group's, a whole group's event the group's only (as in Motia)."""
    progress = client.app[RUNTIME].streams["progress"]
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      const m = await import("/static/motia-stream.js");
      window.events = [];
      window.groupEvents = [];
      window.ready = false;
      m.defaultClient.addStatusListener((status) => { if (status === "open") ready = true; });
      m.subscribeItem("progress", "ev", "job", () => {}, {onEvent: (e) => events.push(e)});
      m.subscribeGroup("progress", "ev", () => {}, {onEvent: (e) => groupEvents.push(e.type)});
    }""")
    await page.wait_for_function("ready", timeout=WAIT_MS)
    await progress.send(StreamChannel("ev"), StreamEvent("room", None))
    await progress.send(StreamChannel("ev", "job"), StreamEvent("ping", {"n": 1}))
    await page.wait_for_function("events.length === 1 && groupEvents.length === 2",
                                 timeout=WAIT_MS)
    assert await page.evaluate("events") == [
        {"stream": "progress", "group": "ev", "id": "job", "type": "ping", "data": {"n": 1}}]
    assert await page.evaluate("groupEvents") == ["room", "ping"]


async def test_client_hands_each_event_type_to_its_own_handlers(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """`subscription.onEvent(type, fn)` hears that type only, with the data (and the event);
    the function it returns removes it; the `onEvent` option still hears every type."""
    progress = client.app[RUNTIME].streams["progress"]
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      const m = await import("/static/motia-stream.js");
      window.heard = {ping: [], pong: [], all: [], group: []};
      window.ready = false;
      m.defaultClient.addStatusListener((status) => { if (status === "open") ready = true; });
      const job = m.subscribeItem("progress", "types", "job", () => {},
                                  {onEvent: (e) => heard.all.push(e.type)});
      job.onEvent("ping", (data, event) => heard.ping.push([data, event.id]));
      window.stopPong = job.onEvent("pong", (data) => heard.pong.push(data));
      m.subscribeGroup("progress", "types", () => {}).onEvent("ping", (d) => heard.group.push(d));
    }""")
    await page.wait_for_function("ready", timeout=WAIT_MS)
    await progress.send(StreamChannel("types", "job"), StreamEvent("ping", {"n": 1}))
    await progress.send(StreamChannel("types", "job"), StreamEvent("pong", "first"))
    await page.wait_for_function("heard.all.length === 2", timeout=WAIT_MS)
    await page.evaluate("stopPong()")
    await progress.send(StreamChannel("types", "job"), StreamEvent("pong", "second"))
    await progress.send(StreamChannel("types", "job"), StreamEvent("ping", {"n": 2}))
    await page.wait_for_function("heard.all.length === 4", timeout=WAIT_MS)
    assert await page.evaluate("heard") == {
        "ping": [[{"n": 1}, "job"], [{"n": 2}, "job"]], "pong": ["first"],
        "all": ["ping", "pong", "pong", "ping"], "group": [{"n": 1}, {"n": 2}]}


async def test_client_sorts_a_group_by_a_field_or_a_function(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """`sortKey`: each subscriber gets the group in its own order, kept as rows change;
    numbers compare as numbers, rows without the key come last, ties keep server order."""
    progress = client.app[RUNTIME].streams["progress"]
    for id_, status, done in [("x", "b", 10), ("y", "a", 9), ("z", "c", 10)]:
        await progress.set("sorted", id_, {"status": status, "done": done, "total": 20})
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      const m = await import("/static/motia-stream.js");
      window.orders = {byDone: [], byStatus: [], asListed: []};
      const ids = (name) => (items) => orders[name].push(items.map((i) => i.id).join(""));
      m.subscribeGroup("progress", "sorted", ids("byDone"), {sortKey: "done"});
      m.subscribeGroup("progress", "sorted", ids("byStatus"), {
        sortKey: (i) => (i.status === "c" ? null : i.status)});
      m.subscribeGroup("progress", "sorted", ids("asListed"));
      try {
        m.subscribeGroup("progress", "sorted", () => {}, {sortKey: 3});
      } catch (err) { window.refused = err.message; }
    }""")
    await page.wait_for_function("orders.byStatus.length === 1", timeout=WAIT_MS)
    assert await page.evaluate("orders") == {"byDone": ["yxz"], "byStatus": ["yxz"],
                                             "asListed": ["xyz"]}
    assert "sortKey must be a field name or a function" in await page.evaluate("refused")
    await progress.set("sorted", "w", {"status": "0", "done": 1, "total": 20})
    await progress.set("sorted", "y", {"status": "d", "done": 11, "total": 20})
    await page.wait_for_function("orders.byStatus.length === 3", timeout=WAIT_MS)
    assert await page.evaluate("orders") == {
        "byDone": ["yxz", "wyxz", "wxzy"], "byStatus": ["yxz", "wyxz", "wxyz"],
        "asListed": ["xyz", "xyzw", "xyzw"]}


# Text that grows inside and around emoji (surrogate pairs, a skin-tone modifier), CJK and
# combining marks, and loses some too; the padding makes each delta smaller than the item.
PAD = "答" * 40 + " padding " * 10
GROWING = ["e", "e\u0301", "日e\u0301", "日本e\u0301👍🏽", "日本e\u0301x\u0302👍🏽語",
           "日本\u0301x\u0302👍🏽語", "🎉日本\u0301x\u0302👍🏽語", "🎉日本\u0301x\u0302👍語👍🏽",
           "🎉日本\u0301x\u0302👍語👍🏽\u0301",
           "🎉\U0001F468\u200d\U0001F469日\u0301x👍語👍🏽\u0301"]


async def test_client_applies_deltas_to_non_ascii_text(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """The client asks for deltas and applies them in UTF-16 units: an item and a group's
    row, growing around emoji, CJK and combining marks, end exactly as the server has them,
    step by step and after a burst the client reads as fast as it can, never showing a
    text the server did not have, never starting over."""
    progress = client.app[RUNTIME].streams["progress"]
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text)
            if message.text.startswith("motia-stream") else None)
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      window.deltas = 0;
      const Original = window.EventSource;
      window.EventSource = class extends Original {
        constructor(url, init) {
          super(url, init);
          for (const type of ["item-delta", "update-delta"]) {
            this.addEventListener(type, () => deltas++);
          }
        }
      };
      const m = await import("/static/motia-stream.js");
      window.item = null;
      window.row = null;
      window.shown = [];
      m.subscribeItem("progress", "grow", "answer", (i) => {
        item = i && i.status;
        shown.push(item);
      });
      m.subscribeGroup("progress", "grow", (rows) => {
        row = rows[0]?.status ?? null;
        shown.push(row);
      });
      window.ready = false;
      m.defaultClient.addStatusListener((status) => { if (status === "open") ready = true; });
    }""")
    await page.wait_for_function("ready", timeout=WAIT_MS)

    statuses: set[str] = set()

    async def set_status(text: str) -> str:
        statuses.add(text)
        await progress.set("grow", "answer", {"status": text, "done": 0, "total": 1})
        return text

    for status in [*(PAD + text for text in GROWING), *(text + PAD for text in GROWING)]:
        await set_status(status)
        await page.wait_for_function("([s]) => item === s && row === s", arg=[status],
                                     timeout=WAIT_MS)
    assert await page.evaluate("deltas") > 0
    for n in range(300):
        last = await set_status(PAD + "".join(GROWING[: n % len(GROWING) + 1]) + str(n))
    stored = await progress.get("grow", "answer")
    assert stored is not None
    assert stored.data.status == last
    await page.wait_for_function("([s]) => item === s && row === s", arg=[last], timeout=WAIT_MS)
    assert set(await page.evaluate("shown")) - statuses == {None}  # None: before the first set
    assert warnings == []


async def test_client_starts_over_from_snapshots_when_a_delta_cannot_apply(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """A delta for text the client does not hold (a server's broken promise, forged here)
    is never guessed at: the client says so, opens a fresh connection and converges."""
    progress = client.app[RUNTIME].streams["progress"]
    await progress.set("forged", "a", {"status": "one", "done": 0, "total": 1})
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text)
            if message.text.startswith("motia-stream") else None)
    await page.goto(str(client.make_url("/static/motia-stream.js")))
    await page.evaluate("""async () => {
      window.opened = [];
      const Original = window.EventSource;
      window.EventSource = class extends Original {
        constructor(url, init) { super(url, init); opened.push(this); }
      };
      const m = await import("/static/motia-stream.js");
      window.rows = [];
      m.subscribeGroup("progress", "forged", (items) => rows.push(items.map((i) => i.status)));
    }""")
    await page.wait_for_function("rows.length === 1", timeout=WAIT_MS)
    # After a sync the client holds no row's text: no delta can apply to it.
    await page.evaluate("""opened[0].dispatchEvent(new MessageEvent("update-delta", {data:
      JSON.stringify({stream: "progress", group: "forged", id: "a", base: 1, prefix: 0,
                      suffix: 0, insert: "{}"})}))""")
    # The fresh connection's sync, before anything changes.
    await page.wait_for_function("opened.length === 2 && rows.length === 2", timeout=WAIT_MS)
    await progress.set("forged", "a", {"status": "two", "done": 1, "total": 1})
    await page.wait_for_function("rows.at(-1)[0] === 'two'", timeout=WAIT_MS)
    assert await page.evaluate("opened[0].readyState") == 2
    assert await page.evaluate("rows") == [["one"], ["one"], ["two"]]
    assert warnings == ["motia-stream: a delta for progress/forged row a without its text; "
                        "reconnecting for fresh snapshots"]


async def test_client_reconnects_after_a_server_restart(
    page: Page, server_process: Callable[..., ServerProcess], tmp_path: Path,
    write_steps: WriteSteps
) -> None:
    """The server goes away and comes back: the feed says so, then resumes by itself."""
    steps = write_steps({"progress_stream.py": (EXAMPLE_STEPS / "progress_stream.py").read_text(),
                         "set_item_api_step.py": SET_ITEM_STEP})
    args = ("--steps", str(steps), "--data-dir", str(tmp_path / "data"), "--heartbeat", "0.5")
    first = server_process(*args)
    await asyncio.to_thread(first.start)
    # A fresh connection per request: the pooled one dies with the first server.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(first.url, connector=connector) as http:
        async def put(status: str) -> None:
            body = {"status": status, "done": 1, "total": 2}
            async with http.put("/items/g/job", json=body) as response:
                assert response.status == 200, await response.text()

        await put("before")
        await page.goto(f"{first.url}/static/motia-stream.js")
        await page.evaluate("""async () => {
          const m = await import("/static/motia-stream.js");
          window.statuses = [];
          window.seen = [];
          m.defaultClient.addStatusListener((status) => statuses.push(status));
          m.subscribeItem("progress", "g", "job", (item) => seen.push(item && item.status));
        }""")
        await page.wait_for_function("seen.includes('before')", timeout=WAIT_MS)
        await asyncio.to_thread(first.stop)
        await page.wait_for_function("statuses.at(-1) !== 'open'", timeout=WAIT_MS)
        second = server_process(*args, port=first.port)
        await asyncio.to_thread(second.start)
        await put("after")
        await page.wait_for_function("seen.at(-1) === 'after'", timeout=WAIT_MS)
        await page.wait_for_function("statuses.at(-1) === 'open'", timeout=WAIT_MS)
    assert await page.evaluate("seen") == ["before", "after"]


async def test_trace_link_follows_the_steps_logs_live(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """Test an endpoint, follow its trace id to the Logs view: the event step's line arrives."""
    await open_workbench(page, client, "#/endpoints?step=StartJob")
    response = await run_start_job(page, WAIT_MS)
    trace_id = (await response.locator(".trace-id").inner_text()).strip()
    await response.get_by_role("link", name=trace_id).click()

    assert page.url.endswith(f"#/logs?trace_id={trace_id}")
    logs = page.locator(".log-list")
    await expect(logs).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await expect(page.get_by_label("Trace id")).to_have_value(trace_id)
    line = logs.locator('.log-line[data-step="RunJob"]')
    await expect(line).to_contain_text("job finished", timeout=WAIT_MS)
    await expect(line.locator('[data-field="steps"]')).to_have_text("steps=3")
    await expect(logs.locator(".log-line")).to_have_count(1)
    assert await line.get_attribute("data-trace") == trace_id


FAILING_STEPS = {
    "fail_api_step.py": """
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Order", path="/orders", method="POST", emits=["ordered"])

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    ctx.logger.info("order taken")
    await ctx.emit("ordered", {"sku": "A-1"}, message_group_id="shelf-7")
    return ApiResponse(status=202, body={"trace": ctx.trace_id})
""",
    "fail_event_step.py": """
from typing import Any
from motia_sse import EventConfig, FlowContext

config = EventConfig(name="ShipOrder", subscribes=["ordered"])

async def handler(input: Any, ctx: FlowContext) -> None:
    raise RuntimeError(f"no stock for {input['sku']}")
""",
}


async def test_dead_letters_are_listed_and_lead_to_their_logs(
    page: Page, make_client: ClientFactory, write_steps: WriteSteps
) -> None:
    """An event that fails every attempt is listed; its trace link shows the tracebacks."""
    steps = write_steps(FAILING_STEPS, "failing")
    client = await make_client(Settings(steps_dir=steps, store="memory", max_attempts=2,
                                        retry_backoff=0.01, shutdown_timeout=2.0,
                                        workbench=True))
    await open_workbench(page, client, "#/logs")
    letters = page.locator(".dead-letters")
    await expect(letters).to_have_attribute("data-count", "0", timeout=WAIT_MS)
    await expect(letters).to_contain_text("None.")

    trace_id = (await (await client.post("/orders", json={})).json())["trace"]

    async def dead_letters() -> Any:
        return await (await client.get("/__motia/dead-letters")).json()

    await eventually(dead_letters, every=0.02, what="a dead letter")
    await letters.get_by_role("button", name="Refresh").click()
    row = letters.locator(f'tr[data-trace="{trace_id}"]')
    await expect(row).to_contain_text("ShipOrder", timeout=WAIT_MS)
    await expect(row).to_contain_text("RuntimeError: no stock for A-1")
    await expect(row).to_contain_text("shelf-7")  # its message group
    await expect(row).to_contain_text('{"sku":"A-1"}')

    await row.get_by_role("link", name=trace_id[:8]).click()
    lines = page.locator(f'.log-line[data-trace="{trace_id}"]')
    await expect(lines).to_have_count(3, timeout=WAIT_MS)
    await expect(lines.first).to_contain_text("order taken")
    failure = lines.nth(2)
    await expect(failure).to_contain_text("handler failed on event 'ordered'")
    await failure.locator("summary", has_text="traceback").click()
    await expect(failure.locator(".exception pre")).to_contain_text("RuntimeError: no stock")


async def test_refused_log_query_is_shown_in_the_page(
    page: Page, client: TestClient[Any, Any]
) -> None:
    """A log filter the server refuses shows its reason in the Logs view."""
    await open_workbench(page, client, f"#/logs?trace_id={'x' * 300}")
    box = page.locator(".log-list .error-box")
    await expect(box).to_contain_text("invalid log query (HTTP 400)", timeout=WAIT_MS)
    await expect(box).to_contain_text("trace_id: expected at most 256 characters, got 300")


@pytest.mark.parametrize("view", ["endpoints", "streams", "flows", "logs"])
async def test_narrow_window_has_no_sideways_scroll(
    browser: Browser, client: TestClient[Any, Any], view: str
) -> None:
    """On a phone-sized window each view fits its width."""
    page = await browser.new_page(viewport={"width": 390, "height": 800})
    try:
        await open_workbench(page, client, f"#/{view}")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
    finally:
        await page.close()


# A page on another origin: it imports motia-stream.js from the API server (falling back
# to a copy of its own, which a server without CORS leaves it), POSTs to /jobs, and
# follows an item through the client. `seen` records how each part went.
CLIENT_LIBRARY = Path(__file__).resolve().parent.parent / "static" / "motia-stream.js"
ELSEWHERE_PAGE = """<!doctype html>
<meta charset="utf-8"><title>a page elsewhere</title>
<script type="module">
  const params = new URLSearchParams(location.search);
  const api = params.get("api");
  const seen = window.seen = { updates: [] };
  let lib;
  try {
    lib = await import(`${api}/static/motia-stream.js`);
    seen.library = "server";
  } catch (err) {
    lib = await import("/motia-stream.js");
    seen.library = "copy";
  }
  let group = params.get("group");
  if (params.has("post")) {
    try {
      const res = await fetch(`${api}/jobs`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ steps: 3, delay: 0.05 }),
      });
      seen.status = res.status;
      group = seen.traceId = res.headers.get("x-trace-id");
    } catch (err) {
      seen.postError = String(err);
    }
  }
  const client = new lib.MotiaStreamClient({
    url: `${api}/streams`, withCredentials: params.has("credentials") });
  client.subscribeItem(params.get("stream"), group, params.get("id"),
    (item) => seen.updates.push(item),
    { onError: (err) => { seen.feedError = `${err.status || ""} ${err.message}`.trim(); } });
</script>
"""
INBOX_STREAM = """
import attrs

from motia_sse import StreamConfig


@attrs.frozen
class Note:
    text: str


def signed_in(sub, auth):
    return auth is not None


config = StreamConfig(name="inbox", schema=Note, can_access=signed_in)
"""
COOKIE_AUTH = """
async def authenticate(request):
    return {"user": "alice"} if request.cookies.get("session") == "alice-session" else None
"""


@pytest.fixture(name="elsewhere")
async def _elsewhere(aiohttp_server: Any) -> str:
    """A second server on 127.0.0.1 (another port: another origin) serving ELSEWHERE_PAGE
    and a copy of motia-stream.js; its origin."""
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=ELSEWHERE_PAGE, content_type="text/html")

    async def copy(_: web.Request) -> web.FileResponse:
        return web.FileResponse(CLIENT_LIBRARY)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/motia-stream.js", copy)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def open_elsewhere(page: Page, elsewhere: str, client: TestClient[Any, Any],
                         **params: str) -> None:
    """Open the page elsewhere, against `client`'s server, and wait for its script to run."""
    api = str(client.make_url("")).rstrip("/")
    await page.goto(f"{elsewhere}/?{urlencode({'api': api, **params})}")
    await page.wait_for_function("window.seen && seen.library", timeout=WAIT_MS)


async def test_page_elsewhere_is_refused_without_cors(
    page: Page, client: TestClient[Any, Any], elsewhere: str
) -> None:
    """No --cors-origin: the browser keeps the API's answer and the feed from another origin."""
    await client.app[RUNTIME].streams["progress"].set(
        "cors", "job", {"status": "done", "done": 1, "total": 1})
    await open_elsewhere(page, elsewhere, client, post="1", stream="progress", group="cors",
                         id="job")
    await page.wait_for_function("seen.postError && seen.feedError", timeout=WAIT_MS)
    seen = await page.evaluate("seen")
    assert seen["library"] == "copy"  # the import from the server was refused as well
    assert "Failed to fetch" in seen["postError"]
    assert seen["feedError"].startswith("cannot reach ")
    assert seen["updates"] == []


async def test_page_elsewhere_posts_and_follows_with_cors(
    page: Page, make_client: ClientFactory, settings: Settings, elsewhere: str
) -> None:
    """--cors-origin names the page's origin: the POST answers, the item arrives live."""
    client = await make_client(attrs.evolve(settings, cors_origins=(elsewhere,)))
    await open_elsewhere(page, elsewhere, client, post="1", stream="progress", id="job")
    await page.wait_for_function("seen.updates.at(-1)?.status === 'done'", timeout=WAIT_MS)
    seen = await page.evaluate("seen")
    assert seen["library"] == "server"
    assert (seen["status"], len(seen["traceId"])) == (200, 32)  # x-trace-id is exposed
    assert "postError" not in seen
    assert "feedError" not in seen
    assert [u["done"] for u in seen["updates"]][-1] == 3


async def test_page_elsewhere_sends_cookies_with_cors_credentials(
    browser: Browser, make_client: ClientFactory, settings: Settings, elsewhere: str,
    write_steps: WriteSteps
) -> None:
    """--cors-credentials: the client's withCredentials carries the user's cookie to the
    feed's authenticate; without it the feed is refused, with the server's reason."""
    steps = write_steps({"inbox_stream.py": INBOX_STREAM, "stream_auth.py": COOKIE_AUTH})
    client = await make_client(attrs.evolve(settings, steps_dir=steps, cors_origins=(elsewhere,),
                                            cors_credentials=True))
    await client.app[RUNTIME].streams["inbox"].set("alice", "hello", {"text": "hi"})
    context = await browser.new_context()
    await context.add_cookies([{"name": "session", "value": "alice-session",
                                "url": str(client.make_url("/"))}])
    try:
        page = await context.new_page()
        await open_elsewhere(page, elsewhere, client, stream="inbox", group="alice",
                             id="hello", credentials="1")
        await page.wait_for_function("seen.updates.length", timeout=WAIT_MS)
        assert await page.evaluate("seen.updates") == [{"text": "hi", "id": "hello"}]
        anonymous = await context.new_page()
        await open_elsewhere(anonymous, elsewhere, client, stream="inbox", group="alice",
                             id="hello")
        await anonymous.wait_for_function("seen.feedError", timeout=WAIT_MS)
        assert await anonymous.evaluate("seen.feedError") == "401 authentication required"
    finally:
        await context.close()


async def test_a_guarded_workbench_asks_for_its_token_then_works(
    page: Page, make_client: ClientFactory, tmp_path: Path
) -> None:
    """--workbench-token: the page is a form; a wrong token is refused, the right one opens
    the workbench, whose reads and live log feed then carry the cookie, none refused."""
    token = "a-workbench-token-for-the-test"
    client = await make_client(Settings(
        steps_dir=EXAMPLE_STEPS, store="memory", data_dir=tmp_path / ".motia",
        shutdown_timeout=2.0, workbench=True, workbench_token=token))
    refused: list[str] = []
    await page.goto(str(client.make_url("/")))
    await page.get_by_label("Token").fill("not-the-token")
    await page.get_by_role("button", name="Open the workbench").click()
    await expect(page.get_by_text("That is not the workbench token.")).to_be_visible()
    page.on("response", lambda r: refused.append(r.url) if r.status >= 400 else None)
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Open the workbench").click()
    await expect(page.locator(".view:not([hidden])")).to_be_visible(timeout=WAIT_MS)
    assert page.url == str(client.make_url("/"))
    await page.goto(str(client.make_url("/")) + "#/logs")
    logs = page.locator(".log-list")
    await expect(logs).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    job = await client.post("/jobs", json={"steps": 1, "delay": 0})
    trace = job.headers["x-trace-id"]
    line = logs.locator(f'.log-line[data-trace="{trace}"][data-step="RunJob"]')
    await expect(line).to_contain_text("job finished", timeout=WAIT_MS)
    assert refused == []


async def test_an_endpoint_shows_its_middleware(
    page: Page, write_steps: WriteSteps, make_client: ClientFactory
) -> None:
    """The Endpoints view names a route's middleware, outermost first, each with its
    file on hover; a Test the middleware refuses shows its answer."""
    steps = write_steps({
        "middleware.py": "async def audit(req, ctx, next):\n    return await next()\n"
                         "middleware = [audit]\n",
        "secret_step.py": "from motia_sse import ApiRouteConfig\n"
                          "async def require_token(req, ctx, next):\n"
                          "    return {'status': 401, 'body': {'error': 'unauthorized', "
                          "'details': ['send a token']}}\n"
                          "config = ApiRouteConfig(name='Secret', path='/secret', "
                          "middleware=[require_token])\n"
                          "async def handler(req, ctx):\n    return {'status': 200}\n"})
    client = await make_client(Settings(steps_dir=steps, store="memory", dev=True))
    await open_workbench(page, client, "#/endpoints?step=Secret")
    panel = page.locator('.endpoint-panel[data-step="Secret"]')
    chips = panel.locator(".chip.middleware")
    await expect(chips).to_have_text(["audit", "require_token"], timeout=WAIT_MS)
    await expect(chips.first).to_have_attribute("title", "middleware.py")
    await panel.get_by_role("button", name="Test").click()
    await expect(panel.locator(".response .status")).to_have_text("401 Unauthorized",
                                                                    timeout=WAIT_MS)
    await expect(panel.locator(".response .error-box")).to_contain_text("send a token")


async def test_flows_view_draws_cron_noop_and_labelled_edges_and_acts(
    page: Page, make_client: ClientFactory, settings: Settings, write_steps: WriteSteps
) -> None:
    """Flows: cron and noop cards, a labelled edge, dashed virtual and styled conditional
    edges; Run now and Emit answer with a trace link."""
    steps = write_steps(FLOW_FILES)
    client = await make_client(attrs.evolve(settings, steps_dir=steps, dev=True))
    await open_workbench(page, client, "#/flows?flow=ops")
    flow = page.locator('.card.flow[data-flow="ops"]')
    await expect(flow.locator(".step-card.cron .schedule")).to_have_text("0 3 * * *")
    await expect(flow.locator('.step-card.noop[data-step="HumanReview"]')).to_be_visible()
    edges = flow.locator("svg.edges path.edge")
    # Nightly -> OnChecked, Nightly -> HumanReview (conditional), HumanReview -> Approve.
    await expect(edges).to_have_count(3, timeout=WAIT_MS)
    await expect(flow.locator("svg.edges text.edge-label")).to_have_text(
        ["all good", "on failure", "approved"])
    await expect(flow.locator('path.edge.virtual[data-topic="reviewed"]')).to_have_count(1)
    await expect(flow.locator('path.edge.conditional[data-topic="alarm"]')).to_have_count(1)
    assert await flow.locator('path.edge[data-topic="alarm"]').evaluate(
        "p => getComputedStyle(p).strokeDasharray") != "none"
    assert await flow.locator('path.edge[data-topic="checked"]').evaluate(
        "p => getComputedStyle(p).strokeDasharray") == "none"
    colours = [await flow.locator(f'path.edge[data-topic="{topic}"]').evaluate(
        "p => getComputedStyle(p).stroke") for topic in ("checked", "alarm")]
    assert colours[0] != colours[1]

    await flow.get_by_role("button", name="Run now").click()
    started = flow.locator(".step-card.cron .action-result a.trace")
    await expect(started).to_be_visible(timeout=WAIT_MS)
    form = page.locator(".emit-form")
    await form.get_by_label("Data (JSON)").fill('{"count": "x"}')
    await form.get_by_role("button", name="Emit").click()
    await expect(form.locator(".error-box")).to_contain_text(
        "step 'OnChecked': expected integer, got string @ $.data.count", timeout=WAIT_MS)
    await form.get_by_label("Data (JSON)").fill('{"count": 5}')
    await form.get_by_role("button", name="Emit").click()
    await expect(form.locator(".action-result")).to_contain_text("Queued for OnChecked",
                                                                 timeout=WAIT_MS)
    await form.locator(".action-result a.trace").click()
    assert "#/logs?trace_id=" in page.url
    await expect(page.locator(".log-list")).to_have_attribute("data-state", "live",
                                                              timeout=WAIT_MS)


async def test_flows_view_shows_queue_settings_the_steps_own_marked(
    page: Page, make_client: ClientFactory, settings: Settings, write_steps: WriteSteps
) -> None:
    """An event step's card lists its attempts, back-off, timeout and concurrency: its own
    values bold with a "step" tag, the server's defaults plain; a cron card has no
    concurrency, and one attempt by default."""
    steps = write_steps(SETTINGS_FILES)
    client = await make_client(attrs.evolve(settings, steps_dir=steps, dev=True,
                                            handler_timeout=30.0))
    await open_workbench(page, client, "#/flows")
    card = page.locator('.step-card[data-step="Careful"] .queue-settings')
    await expect(card.locator("dt")).to_have_text(
        ["attempts", "back-off", "timeout", "concurrency"], timeout=WAIT_MS)
    await expect(card.locator("dd .value")).to_have_text(["2", "0.5 s, doubling", "0.5 s",
                                                          "1"])
    await expect(card.locator("dd.own")).to_have_count(3)
    for setting in ("max_attempts", "timeout", "concurrency"):
        own = card.locator(f'dd.own[data-setting="{setting}"]')
        await expect(own.locator(".chip.own")).to_have_text("step")
    backoff = card.locator('dd[data-setting="backoff"]')
    await expect(backoff).to_have_class("default")
    await expect(backoff.locator(".chip")).to_have_count(0)
    await expect(backoff).to_have_attribute("title", "server default (--retry-backoff)")
    weights = [await card.locator(f'dd[data-setting="{name}"] .value').evaluate(
        "v => getComputedStyle(v).fontWeight") for name in ("max_attempts", "backoff")]
    assert int(weights[0]) > int(weights[1])

    cron = page.locator('.step-card[data-step="Sweep"] .queue-settings')
    await expect(cron.locator("dt")).to_have_text(["attempts", "back-off", "timeout"])
    await expect(cron.locator("dd .value")).to_have_text(["1", "0.5 s, doubling", "30 s"])
    await expect(cron.locator("dd.own")).to_have_count(0)
    await expect(cron.locator('dd[data-setting="max_attempts"]')).to_have_attribute(
        "title", "cron default: the next tick is the retry")
