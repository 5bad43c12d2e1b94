"""A real nginx in front of a server process on a sub-path, as a deployment has it: the
workbench in Chromium, live feeds, and per-client limits by forwarded address."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import EXAMPLE_STEPS, ServerProcess, free_port
from tests.playwright_api import IN_CI, Browser, Request, Response, expect
from tests.sse_parse import SseReader
from tests.workbench_page import run_start_job

WAIT_MS = 10_000
PREFIX = "/motia"
PER_CLIENT = 5
CROWD = 250

# The edge proxy of a deployment: it strips the prefix, appends the address it saw to
# X-Forwarded-For (the app trusts this proxy, so it takes the nearest address that is
# not a trusted proxy: here the one the test's "load balancer" at 127.0.0.1 forwarded
# for), names the prefix, and passes feeds on as they come (proxy_buffering off).
NGINX_CONF = """
daemon off;
master_process off;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/ {{
            proxy_pass http://127.0.0.1:{app_port}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Prefix {prefix};
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """Debian's nginx; missing, it fails the run in CI and skips elsewhere."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        message = "nginx is not installed (.ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(name="app_server")
def _app_server(server_process: Callable[..., ServerProcess]) -> ServerProcess:
    """The example steps served by `start`, trusting the proxy on 127.0.0.1."""
    return server_process(
        "--steps", str(EXAMPLE_STEPS), "--store", "memory", "--forwarded-allow-ips",
        "127.0.0.1", "--max-feeds-per-client", str(PER_CLIENT), "--shutdown-timeout", "1",
        env={"MOTIA_WORKBENCH": "1"}).start()


@pytest.fixture(name="nginx")
def _nginx(tmp_path: Path, app_server: ServerProcess) -> Iterator[str]:
    """nginx on a free port of 127.0.0.1 serving the app under PREFIX; its base URL.
    Its config, pid file, logs and temp files are under tmp_path; stopped by PID."""
    binary = nginx_binary()
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    port = free_port()
    # As root, nginx would run as nobody, who may not enter tmp_path.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, prefix=PREFIX, user=user,
                                      app_port=app_server.port))
    server = ServerProcess([binary, "-p", str(workdir), "-e", str(workdir / "error.log"),
                            "-c", str(conf)], log=workdir / "nginx.out", port=port)
    server.start()
    yield f"{server.url}{PREFIX}"
    server.stop(signal.SIGTERM)
    errors = (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
    assert "[error]" not in errors, errors
    assert "[crit]" not in errors, errors



async def test_the_workbench_works_under_the_prefix(browser: Browser, nginx: str) -> None:
    """At /motia/ the page loads, tests an endpoint, watches its item live and follows the
    trace to its logs, with no request failed or refused on the way."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda request: requested.append(request.url))

    def failed(request: Request) -> None:
        problems.append(f"{request.method} {request.url}: {request.failure}")

    def answered(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.request.method} {response.url}: {response.status}")

    page.on("requestfailed", failed)
    page.on("response", answered)
    await page.goto(f"{nginx}/#/endpoints?step=StartJob")
    response = await run_start_job(page, WAIT_MS)
    live = page.locator('.endpoint-panel[data-step="StartJob"] .live-item')
    await expect(live.locator('dd[data-field="done"]')).to_have_text("3", timeout=WAIT_MS)
    await expect(page.locator("#feed-status")).to_have_class("pill feed open")
    trace_id = (await response.locator(".trace-id").inner_text()).strip()
    await response.get_by_role("link", name=trace_id).click()
    line = page.locator('.log-list .log-line[data-step="RunJob"]')
    await expect(line).to_contain_text("job finished", timeout=WAIT_MS)
    for view in ("Streams", "Flows"):
        await page.get_by_role("link", name=view, exact=True).click()
        await expect(page.locator(".view:not([hidden])")).to_have_count(1)
    origin = nginx.removesuffix(PREFIX)
    assert all(url.startswith(f"{nginx}/") for url in requested if url.startswith(origin))
    for path in ("/static/app.js", "/__motia/steps", "/jobs", "/streams?",
                 "/__motia/logs/feed?"):
        assert any(url.startswith(nginx + path) for url in requested), (path, requested)
    await page.close()  # closing ends the feeds: a failure from here on is no fault
    assert problems == []


async def test_a_feed_is_live_through_nginx(nginx: str, app_server: ServerProcess) -> None:
    """Each change of an item reaches the feed as it happens, not when the feed ends;
    /openapi.json names the prefix nginx sent; the server said whom it trusts."""
    assert ("client addresses and root path from the forwarding headers of 127.0.0.1/32"
            in app_server.output())
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{nginx}/openapi.json") as answer:
            assert (await answer.json())["servers"] == [{"url": PREFIX}]
        async with session.post(f"{nginx}/jobs", json={"steps": 4, "delay": 0.4}) as answer:
            assert answer.status == 200, await answer.text()
            group = (await answer.json())["__motia"]["groupId"]
        async with session.get(f"{nginx}/streams/progress/{group}/job") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "text/event-stream"
            feed = SseReader(answer)
            arrived: dict[int, float] = {}
            async with asyncio.timeout(15):
                while 4 not in arrived:
                    event = await feed.next(within=5)
                    arrived[event.json()["done"]] = time.monotonic()
    # The job takes 0.4 s a step: events that came in one burst would be buffered.
    assert arrived[4] - min(arrived.values()) > 0.6, arrived


async def test_many_clients_behind_one_proxy_are_not_one_client(nginx: str) -> None:
    """250 feeds from 250 forwarded addresses all open through one nginx address, past a
    per-client limit of 5; the 6th feed of one address is still refused."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.post(f"{nginx}/jobs", json={"steps": 100, "delay": 0.2}) as answer:
            group = (await answer.json())["__motia"]["groupId"]
        url = f"{nginx}/streams/progress/{group}/job"

        async def open_feed(n: int) -> aiohttp.ClientResponse:
            # As an outer load balancer at 127.0.0.1 would forward for client n.
            forwarded = f"10.{n // 250}.{n % 250}.1"
            return await session.get(url, headers={"X-Forwarded-For": forwarded})

        feeds: list[aiohttp.ClientResponse] = []
        try:
            async with asyncio.timeout(60):
                feeds = list(await asyncio.gather(*(open_feed(n) for n in range(CROWD))))
                assert [r.status for r in feeds] == [200] * CROWD
                # Each feed is live: its snapshot, then the job's next step.
                await asyncio.gather(*(_two_events(SseReader(r)) for r in feeds))
                same = [await open_feed(7) for _ in range(PER_CLIENT)]
                feeds += same
                assert [r.status for r in same[:-1]] == [200] * (PER_CLIENT - 1)
                refused = same[-1]
                assert refused.status == 429
                assert (await refused.json())["details"] == [
                    f"10.0.7.1 holds {PER_CLIENT} feeds, the limit is {PER_CLIENT} "
                    "(max_feeds_per_client)"]
        finally:
            for response in feeds:
                response.close()


async def _two_events(feed: SseReader) -> Any:
    first = (await feed.next(within=30)).json()["done"]
    second = (await feed.next(within=30)).json()["done"]
    assert second > first
