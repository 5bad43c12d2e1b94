"""The command line: settings from flags and MOTIA_* variables, steps, new, dev reload."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from motia_sse.cli import parse_settings
from tests.conftest import EXAMPLE_STEPS, RedisServer, WriteSteps, free_port
from tests.polling import eventually
from tests.sse_parse import SseReader
from tests.work_steps import NOTES_STREAM, WORK_STEPS


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m motia_sse ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "motia_sse", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_flags_then_environment_then_defaults() -> None:
    """MOTIA_* variables set what flags do not; flags win; REDIS_URL is read too."""
    env = {"MOTIA_PORT": "4000", "MOTIA_MAX_FEEDS": "7", "MOTIA_STORE": "memory",
           "REDIS_URL": "redis://127.0.0.1:1/0", "MOTIA_HEARTBEAT": "2.5"}
    settings = parse_settings(["start", "--max-feeds", "9"], env)
    assert (settings.port, settings.max_feeds, settings.store) == (4000, 9, "memory")
    assert settings.redis_url == "redis://127.0.0.1:1/0"
    assert settings.heartbeat_interval == 2.5
    assert settings.host == "0.0.0.0"
    assert parse_settings(["dev"], {}).host == "localhost"
    assert parse_settings(["dev"], {}).port == 3000


def test_dev_is_dev_and_start_is_not() -> None:
    """`dev`, and the server dev's watcher runs, serve the step author; `start` does not."""
    assert parse_settings(["dev"], {}).dev
    assert parse_settings(["start", "--reload-in-place"], {}).dev
    assert not parse_settings(["start"], {}).dev


def in_use_line(done: subprocess.CompletedProcess[str], port: int) -> str:
    """The line (each worker's, with --workers) a command whose port is taken said."""
    assert "Traceback" not in done.stderr
    [line] = {x for x in done.stderr.splitlines() if x.startswith("motia-sse:")}
    assert line.startswith(f"motia-sse: cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use" in line.lower()
    assert line.endswith(f"another program uses port {port}: stop it, or serve on another "
                         "port with --port")
    return line


@pytest.mark.parametrize("command", [("start",), ("dev",), ("dev", "--no-reload")])
def test_a_port_in_use_is_one_clear_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Another program listens on the port: one line naming it and what to do, and the
    command ends (`dev` does not go on watching with nothing serving); 1 for `start`."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # run_cli's timeout fails the test if `dev` stays.
        done = run_cli(*command, "--host", "127.0.0.1", "--port", str(port), "--steps",
                       str(EXAMPLE_STEPS), "--store", "memory", cwd=tmp_path)
    in_use_line(done, port)
    assert done.returncode == 1


def test_workers_on_a_port_in_use_stop(tmp_path: Path, redis_server: RedisServer) -> None:
    """`start --workers 2` on a taken port: the line, exit 1, no workers started again."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("start", "--host", "127.0.0.1", "--port", str(port), "--steps",
                       str(EXAMPLE_STEPS), "--workers", "2", "--redis", redis_server.url,
                       "--redis-prefix", f"test-{port}", cwd=tmp_path)
    in_use_line(done, port)
    assert "starting another" not in done.stderr
    assert done.returncode == 1


def test_dev_without_steps_says_what_start_says(tmp_path: Path) -> None:
    """No steps folder: `dev` says what `start` says (which names it and what to do),
    exit 1, no traceback, and watches nothing."""
    said = []
    for command in ("start", "dev"):
        done = run_cli(command, "--port", str(free_port()), "--steps", "nowhere", cwd=tmp_path)
        assert done.returncode == 1
        said.append(done.stderr)
    assert said[0] == said[1] == (
        f"motia-sse: cannot load nowhere:\n  {tmp_path / 'nowhere'}: steps folder not found; "
        "name yours with --steps DIR, or make a project with `motia-sse new NAME`\n")


def test_workbench_flags_and_environment() -> None:
    """--workbench (or MOTIA_WORKBENCH=1) and --workbench-token (or its variable)."""
    token = "t0ken-of-twenty-chars"
    assert not parse_settings(["start"], {}).workbench
    assert parse_settings(["start", "--workbench"], {}).workbench
    assert parse_settings(["start"], {"MOTIA_WORKBENCH": "1"}).workbench
    assert parse_settings(["start"], {"MOTIA_WORKBENCH": "true"}).workbench
    assert not parse_settings(["start"], {"MOTIA_WORKBENCH": "0"}).workbench
    assert parse_settings(["start"], {}).workbench_token is None
    assert parse_settings(["start", "--workbench-token", token], {}).workbench_token == token
    assert parse_settings(["dev"], {"MOTIA_WORKBENCH_TOKEN": token}).workbench_token == token


@pytest.mark.parametrize(("args", "env", "error"), [
    (("--workbench-token", "short"), {},
     "argument --workbench-token: expected at least 16 characters, got 5"),
    ((), {"MOTIA_WORKBENCH_TOKEN": ""},
     "argument --workbench-token: expected at least 16 characters, got 0"),
    (("--workbench-token", "sixteen chars and a space"), {},
     "argument --workbench-token: may not hold ' '"),
    (("--workbench-token", 'a;b"cccccccccccccccc'), {},
     "argument --workbench-token: may not hold '\"', ';'"),
    ((), {"MOTIA_WORKBENCH": "maybe"},
     "argument --workbench: expected 1 or 0 (or true, false) from the environment, "
     "got 'maybe'"),
])
def test_bad_workbench_settings_are_one_clear_line(
        tmp_path: Path, args: tuple[str, ...], env: dict[str, str], error: str) -> None:
    """A bad token or switch stops `start` at once, naming the flag and the problem."""
    done = subprocess.run([sys.executable, "-m", "motia_sse", "start", "--steps",
                           str(EXAMPLE_STEPS), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, **env})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"motia-sse start: error: {error}")


def test_bad_environment_value_is_a_clear_error() -> None:
    """A MOTIA_* variable that is not a number fails like a bad flag, naming it."""
    with pytest.raises(SystemExit):
        parse_settings(["start"], {"MOTIA_PORT": "many"})


def test_version_and_help(tmp_path: Path) -> None:
    """--version names the version; every command has --help."""
    assert run_cli("--version", cwd=tmp_path).stdout.startswith("motia-sse 0.1.0")
    for command in ("dev", "start", "steps", "new"):
        done = run_cli(command, "--help", cwd=tmp_path)
        assert done.returncode == 0
        assert "usage: motia-sse " + command in done.stdout


def test_steps_lists_what_loaded(tmp_path: Path, write_steps: WriteSteps) -> None:
    """`steps` lists streams and steps with their files; a broken folder exits 1."""
    done = run_cli("steps", "--steps", str(EXAMPLE_STEPS), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:4] == ["api", "OpenAiApi", "POST", "/open-ai"] for line in lines)
    assert any(line.split()[:2] == ["event", "CallOpenAi"] and
               line.endswith("call_open_ai_step.py") for line in lines)
    assert any(line.split()[:2] == ["stream", "progress"] for line in lines)
    broken_steps = write_steps({"broken_step.py": "config = 1\n"})
    broken = run_cli("steps", "--steps", str(broken_steps), cwd=tmp_path)
    assert broken.returncode == 1
    assert "broken_step.py: expected `config = ApiRouteConfig(...)`" in broken.stderr


def test_new_project_works_at_once(tmp_path: Path) -> None:
    """`new NAME` makes a project whose Makefile and steps work; a second time refuses."""
    assert run_cli("new", "shop", cwd=tmp_path).returncode == 0
    project = tmp_path / "shop"
    assert {p.name for p in project.iterdir()} >= {"steps", "Makefile", "README.md"}
    # As with the virtualenv activated: the Makefile names no interpreter of this machine.
    assert sys.prefix not in (project / "Makefile").read_text()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    listed = subprocess.run(["make", "-s", "steps"], cwd=project, capture_output=True,
                            env={**os.environ, "PATH": path}, text=True, timeout=60,
                            check=False)
    assert listed.returncode == 0, listed.stderr
    assert "StartJob" in listed.stdout
    again = run_cli("new", "shop", cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr


STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Hello", path="/hello", method="GET")

async def handler(req, ctx):
    return {{"status": 200, "body": {{"says": "{word}"}}}}
'''


async def say(session: aiohttp.ClientSession, url: str) -> str | None:
    """What /hello says now, or None while nothing listens."""
    try:
        async with session.get(f"{url}/hello") as response:
            word: str = (await response.json())["says"]
            return word
    except aiohttp.ClientError:
        return None


async def wait_for_word(session: aiohttp.ClientSession, url: str, word: str) -> None:
    """Poll until /hello says `word`."""
    await eventually(lambda: say(session, url), until=lambda now: now == word, within=30,
                     what=f"/hello saying {word!r}")


async def refused(port: int) -> bool:
    """Whether nothing listens on `port` any more."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


@asynccontextmanager
async def running_dev(steps: Path) -> AsyncIterator[tuple[str, int]]:
    """`motia-sse dev` on the steps folder, memory store, a free port; its output goes to
    dev.log beside the folder. Yields the URL and port; SIGTERM ends it, and it must exit 0."""
    port = free_port()
    with (steps.parent / "dev.log").open("w") as log:
        dev = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "motia_sse", "dev", "--steps", str(steps), "--port",
            str(port), "--store", "memory", "--host", "127.0.0.1", cwd=steps.parent,
            stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            yield f"http://127.0.0.1:{port}", port
        finally:
            os.kill(dev.pid, signal.SIGTERM)
            assert await asyncio.wait_for(dev.wait(), 30) == 0


async def test_dev_reloads_on_change_and_keeps_serving_a_broken_edit(
    write_steps: WriteSteps
) -> None:
    """An edit is served at once; a broken edit keeps the running steps, printing the
    error; SIGTERM stops the watcher and its server."""
    steps = write_steps({"hello_step.py": STEP.format(word="one")})
    step = steps / "hello_step.py"
    async with running_dev(steps) as (url, port), aiohttp.ClientSession() as session:
        await wait_for_word(session, url, "one")
        step.write_text(STEP.format(word="two"))
        await wait_for_word(session, url, "two")
        step.write_text("config = (\n")
        await eventually(lambda: "not reloading" in (steps.parent / "dev.log").read_text(),
                         within=30, what="the broken edit refused")
        assert await say(session, url) == "two"
        assert "hello_step.py:1: import failed: SyntaxError" in (
            steps.parent / "dev.log").read_text()
        step.write_text(STEP.format(word="three"))
        await wait_for_word(session, url, "three")
    await eventually(lambda: refused(port), what="the child gone with its parent")


WRITE_STEP = '''
from motia_sse import ApiRouteConfig
from words import WORD

config = ApiRouteConfig(name="Write", path="/notes/{id}", method="POST")

async def handler(req, ctx):
    await ctx.streams.notes.set("g", req.path_params["id"], {"text": WORD})
    return {"status": 200, "body": {"wrote": WORD}}
'''


async def test_dev_started_on_broken_steps_serves_once_they_load(
    write_steps: WriteSteps
) -> None:
    """Steps that do not load at start: the errors are printed and the watcher waits; the
    edit that fixes them starts the server."""
    steps = write_steps({"hello_step.py": "config = (\n"})
    step = steps / "hello_step.py"
    async with running_dev(steps) as (url, _), aiohttp.ClientSession() as session:
        await eventually(lambda: "hello_step.py:1: import failed: SyntaxError" in (
            steps.parent / "dev.log").read_text(), within=30, what="the import error printed")
        assert await say(session, url) is None
        step.write_text(STEP.format(word="fixed"))
        await wait_for_word(session, url, "fixed")


PING_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name="Ping", path="/ping", method="GET")

async def handler(req, ctx):
    return {"status": 200, "body": "pong"}
'''

CUSTOM_STREAM = '''
import attrs
from motia_sse import BaseConfig, StreamConfig
from motia_sse.streams.memory_store import MemoryStore

@attrs.frozen
class Memo:
    text: str

config = StreamConfig(name="memos", schema=Memo,
                      base_config=BaseConfig(storage_type="custom", factory=MemoryStore))
'''


async def status_of(session: aiohttp.ClientSession, method: str, url: str) -> int | None:
    """The status of one request, or None while nothing listens."""
    try:
        async with session.request(method, url) as response:
            return response.status
    except aiohttp.ClientError:
        return None


async def test_dev_reloads_in_place_keeping_feeds_and_memory_items(
    tmp_path: Path, write_steps: WriteSteps
) -> None:
    """An edit (of a step, or of a helper module it imports) is swapped into the running
    server: routes come and go, the open feed gets the new code's writes on the same
    connection, and the memory store keeps its items. A change that cannot be swapped
    in (a custom store) restarts the server; the feed then ends and reconnects."""
    steps = write_steps({"notes_stream.py": NOTES_STREAM, "write_step.py": WRITE_STEP,
                         "words.py": 'WORD = "one"\n'})
    log_path = tmp_path / "dev.log"
    async with running_dev(steps) as (url, _), aiohttp.ClientSession() as session:
        await eventually(lambda: status_of(session, "POST", f"{url}/notes/a"),
                         until=lambda status: status == 200, within=30)
        response = await session.get(f"{url}/streams/notes/g/a")
        feed = SseReader(response)
        assert (await feed.next()).json()["text"] == "one"

        (steps / "words.py").write_text('WORD = "two"\n')
        (steps / "ping_step.py").write_text(PING_STEP)
        await eventually(lambda: status_of(session, "GET", f"{url}/ping"),
                         until=lambda status: status == 200, within=30)
        assert "1 open stream feeds kept" in log_path.read_text()
        async with session.post(f"{url}/notes/a") as wrote:
            assert await wrote.json() == {"wrote": "two"}
        assert (await feed.next()).json()["text"] == "two"  # the same connection
        async with session.post(f"{url}/notes/b") as wrote:
            assert wrote.status == 200

        (steps / "ping_step.py").unlink()
        await eventually(lambda: status_of(session, "GET", f"{url}/ping"),
                         until=lambda status: status == 404, within=30)
        async with session.get(f"{url}/ping") as gone:
            assert await gone.json() == {"error": "Not Found", "details": ["GET /ping"]}
        assert not response.closed
        async with session.get(f"{url}/streams/notes/g/b") as other:
            assert (await SseReader(other).next()).json()["text"] == "two"

        (steps / "memos_stream.py").write_text(CUSTOM_STREAM)
        with pytest.raises(EOFError):
            await feed.next(within=30)
        assert "has a custom store, opened at start: restarting the server" in (
            log_path.read_text())
        await eventually(lambda: status_of(session, "GET", f"{url}/streams/memos/g/x"),
                         until=lambda status: status == 200, within=30)


def test_workers_need_redis(tmp_path: Path) -> None:
    """--workers above 1 without Redis is refused with the reason."""
    done = run_cli("start", "--steps", str(EXAMPLE_STEPS), "--workers", "2",
                   "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 1
    assert "--workers above 1 needs --redis" in done.stderr


async def test_workers_share_the_port(tmp_path: Path, redis_server: RedisServer,
                                      write_steps: WriteSteps) -> None:
    """--workers 2: two processes answer on one port as one server; SIGTERM stops all."""
    steps = write_steps(WORK_STEPS)
    port = free_port()
    log = (tmp_path / "workers.log").open("w")
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "motia_sse", "start", "--steps", str(steps), "--port", str(port),
        "--host", "127.0.0.1", "--workers", "2", "--redis", redis_server.url,
        "--redis-prefix", f"test-{port}", cwd=tmp_path, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    pids: set[int] = set()

    async def two_pids_seen() -> bool:
        # A new connection each time, spread by the kernel.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                async with session.put(f"{url}/cells/w/{len(pids)}",
                                       json={"value": 1}) as response:
                    assert response.status == 200
                async with session.get(f"{url}/streams/cells/w/{len(pids)}") as feed:
                    pids.add((await SseReader(feed).next()).json()["pid"])
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
        return len(pids) >= 2

    try:
        await eventually(two_pids_seen, within=30, what="both workers answering")
    finally:
        os.kill(parent.pid, signal.SIGTERM)
        assert await asyncio.wait_for(parent.wait(), 30) == 0
        log.close()
    assert parent.pid not in pids
