"""Shared fixtures: settings, an app on a real socket, a fake OpenAI, server processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import attrs
import pytest
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from motia_sse import Settings, create_app, testing
from motia_sse.http.app import server_options
from motia_sse.testing import FakeOpenAI, start_argv

# Tests import these from here.
from motia_sse.testing import ServerProcess as ServerProcess
from motia_sse.testing import free_port as free_port
from tests.sse_parse import SseReader

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_STEPS = REPO / "steps"

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
OpenFeed = Callable[..., Awaitable[SseReader]]
WriteSteps = Callable[..., Path]


# The modules whose tests run on both event loops: they exercise the feed path's direct
# transport writes, its back-pressure and conflation, and disconnect watching, where
# uvloop's transports differ from asyncio's (`--loop`, motia_sse/process/event_loop.py).
BOTH_LOOPS = frozenset({"test_item_feed.py", "test_conflation.py", "test_bounded_lag.py",
                        "test_bad_clients.py", "test_delta_feeds.py", "test_event_loop.py",
                        "test_write_batching.py"})
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, LoopFactory]:
    """asyncio's loop for every test; uvloop's as well for the modules in BOTH_LOOPS
    (each of their tests runs twice, with ids [asyncio] and [uvloop])."""
    if item.path.name in BOTH_LOOPS:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def loop_of(request: pytest.FixtureRequest) -> str | None:
    """The loop a test in BOTH_LOOPS runs on ("asyncio" or "uvloop"); None elsewhere."""
    callspec = getattr(request.node, "callspec", None)
    factory = None if callspec is None else callspec.params.get("_asyncio_loop_factory")
    if request.node.path.name not in BOTH_LOOPS or factory is None:
        return None
    return "uvloop" if factory is uvloop.new_event_loop else "asyncio"


@pytest.fixture(name="write_steps")
def _write_steps(tmp_path: Path) -> WriteSteps:
    """Write files {name: source} as they are into a folder under tmp_path; return it."""

    def write(files: dict[str, str], folder: str = "steps") -> Path:
        steps = tmp_path / folder
        steps.mkdir(parents=True, exist_ok=True)
        for name, source in files.items():
            (steps / name).parent.mkdir(parents=True, exist_ok=True)  # "sub/x_step.py"
            (steps / name).write_text(source)
        return steps

    return write


@pytest.fixture(name="settings")
def _settings(tmp_path: Path) -> Settings:
    """Example steps, memory store, short heartbeat; `start`'s mode, with the workbench on
    (as `--workbench`), which most tests read (test_workbench_guard.py turns it off)."""
    return Settings(steps_dir=EXAMPLE_STEPS, store="memory", data_dir=tmp_path / ".motia",
                    heartbeat_interval=0.2, shutdown_timeout=2.0, workbench=True)


@pytest.fixture(name="make_client")
def _make_client(aiohttp_client: Any) -> ClientFactory:
    """Start an app for the given settings on 127.0.0.1 and return a client for it."""

    async def make(settings: Settings, app: web.Application | None = None
                   ) -> TestClient[Any, Any]:
        server = ServerAsDeployed(app or create_app(settings), settings)
        client: TestClient[Any, Any] = await aiohttp_client(server)
        return client

    return make


class ServerAsDeployed(TestServer):
    """A TestServer with the options `motia-sse start` uses.

    aiohttp's TestServer cancels handlers when a client hangs up; the real server
    does not, and feeds must notice a client leaving without it."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        super().__init__(app, host="127.0.0.1")
        self._options = server_options(settings)

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**{**kwargs, **self._options})


@pytest.fixture(name="client")
async def _client(make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """The example steps served on a real socket."""
    return await make_client(settings)


@pytest.fixture(name="fake_openai")
async def _fake_openai(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """A chat-completions server on 127.0.0.1; the real openai client is pointed at it."""
    fake = FakeOpenAI()
    server: TestServer = await aiohttp_server(fake.app())
    monkeypatch.setenv("OPENAI_BASE_URL", str(server.make_url("/v1")))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    return fake


@pytest.fixture(name="open_feed")
async def _open_feed() -> AsyncIterator[Callable[..., Awaitable[SseReader]]]:
    """Open SSE feeds with a plain aiohttp client; closes them at the end."""
    session = aiohttp.ClientSession()
    opened: list[aiohttp.ClientResponse] = []

    async def open_feed(url: str, **headers: str) -> SseReader:
        response = await session.get(url, headers=headers)
        opened.append(response)
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        return SseReader(response)

    yield open_feed
    for response in opened:
        response.close()
    await session.close()


@pytest.fixture(name="server_process")
def _server_process(tmp_path: Path, request: pytest.FixtureRequest
                    ) -> Iterator[Callable[..., ServerProcess]]:
    """Make server processes that are stopped by PID at the end of the test; in a module
    that runs on both loops, the server runs on the test's (`--loop`)."""
    started: list[ServerProcess] = []
    loop = loop_of(request)

    def make(*args: str, env: dict[str, str] | None = None, port: int | None = None,
             cwd: Path | None = None) -> ServerProcess:
        port = free_port() if port is None else port
        cwd = cwd or tmp_path
        if loop is not None:
            args = (*args, "--loop", loop)
        server = ServerProcess(start_argv(*args), cwd, env={**os.environ, **(env or {})},
                               log=cwd / f"server-{port}.log", port=port)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(signal.SIGKILL)


class RedisServer(testing.RedisServer):
    """motia_sse.testing's; a test that starts one is skipped where redis-server is not
    installed, and fails on CI, which installs it."""

    def start(self, timeout: float = 10.0, extra: Sequence[str] = ()) -> Self:
        """Start, with `extra` options, and wait until it answers PING."""
        if shutil.which("redis-server") is None:
            message = "redis-server is not installed (.ci/run installs it)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        return super().start(timeout, extra)


@pytest.fixture(name="redis_server", scope="session")
def _redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by key prefix."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(name="redis_settings")
def _redis_settings(redis_server: RedisServer, settings: Settings) -> Settings:
    """The example steps on Redis, under a prefix of this test's own."""
    return attrs.evolve(settings, redis_url=redis_server.url,
                        redis_prefix=f"test-{uuid.uuid4().hex[:12]}")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-gpu"]


@pytest.fixture(name="chromium")
def _chromium() -> Path:
    """Debian's Chromium; missing, it fails the run in CI and skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(name="browser")
async def _browser(chromium: Path) -> AsyncIterator[Browser]:
    """A headless Chromium for the test, closed after it."""
    from playwright.async_api import async_playwright  # only browser tests need it

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
