"""Shared fixtures: settings, an app on a real socket, a fake OpenAI, server processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from motia_sse import Settings, create_app
from motia_sse.http.app import server_options
from tests.fake_openai import FakeOpenAI
from tests.sse_parse import SseReader

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_STEPS = REPO / "steps"

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
OpenFeed = Callable[..., Awaitable[SseReader]]
WriteSteps = Callable[..., Path]


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
    """Example steps, memory store, short heartbeat."""
    return Settings(steps_dir=EXAMPLE_STEPS, store="memory", data_dir=tmp_path / ".motia",
                    heartbeat_interval=0.2, shutdown_timeout=2.0)


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


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define
class ServerProcess:
    """`python -m motia_sse start` as a real process on 127.0.0.1."""

    args: list[str]
    cwd: Path
    env: dict[str, str]
    port: int = attrs.Factory(free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        """Start and wait until the port accepts connections."""
        self.log = self.cwd / f"server-{self.port}.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "motia_sse", "start", "--host", "127.0.0.1",
                 "--port", str(self.port), *self.args],
                cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"server did not listen in {timeout}s: {self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the process by PID and wait for it; SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.kill(self.process.pid, sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout)

    def output(self) -> str:
        """What the server has logged so far."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


@pytest.fixture(name="server_process")
def _server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Make server processes that are stopped by PID at the end of the test."""
    started: list[ServerProcess] = []

    def make(*args: str, env: dict[str, str] | None = None, port: int | None = None,
             cwd: Path | None = None) -> ServerProcess:
        full_env = {**os.environ, **(env or {})}
        server = ServerProcess(list(args), cwd or tmp_path, full_env)
        if port is not None:
            server.port = port
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(signal.SIGKILL)


@attrs.define
class RedisServer:
    """A redis-server of the tests' own, on a free port, with nothing on disk."""

    workdir: Path
    port: int = attrs.Factory(free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, extra: list[str] | None = None) -> RedisServer:
        """Start and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (.ci/run installs it)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), *(extra or [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server did not start on {self.port}")

    def stop(self) -> None:
        """Stop by PID."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


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
