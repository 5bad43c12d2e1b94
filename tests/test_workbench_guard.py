"""Production mode: `start` serves no workbench unless asked, behind its token if given;
introspection reads no stream data that the stream's feed would refuse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.runtime import RUNTIME
from motia_sse.testing import ServerProcess
from tests.conftest import EXAMPLE_STEPS, ClientFactory, WriteSteps
from tests.polling import eventually
from tests.test_access import AUTH, NEWS, STREAMS

TOKEN = "s3cret-workbench-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
# Everything the workbench serves, each answering 200 when it is served.
WORKBENCH = ["/", "/static/app.js", "/static/style.css", "/__motia/steps", "/__motia/streams",
             "/__motia/streams/progress/groups/g", "/__motia/logs",
             "/__motia/dead-letters", "/openapi.json"]


async def statuses(client: TestClient[Any, Any], **headers: str) -> dict[str, int]:
    """The status of each workbench URL."""
    found = {}
    for path in WORKBENCH:
        async with client.get(path, headers=headers, allow_redirects=False) as response:
            found[path] = response.status
    return found


@pytest.fixture(name="start_settings")
def _start_settings(settings: Settings) -> Settings:
    """`motia-sse start` as it comes: no --workbench."""
    return attrs.evolve(settings, dev=False, workbench=False)


async def test_start_serves_no_workbench(make_client: ClientFactory,
                                         start_settings: Settings) -> None:
    """`start`: 404 (JSON) for the page, its files, /__motia/* and /openapi.json."""
    client = await make_client(start_settings)
    assert await statuses(client) == dict.fromkeys(WORKBENCH, 404)
    response = await client.get("/__motia/logs")
    assert await response.json() == {"error": "Not Found", "details": ["GET /__motia/logs"]}
    assert (await client.get("/__motia/logs/feed")).status == 404


async def test_start_still_serves_the_client_library(make_client: ClientFactory,
                                                     start_settings: Settings) -> None:
    """motia-stream.js is what users' own pages import: `start` serves it, token or not."""
    for settings in (start_settings, attrs.evolve(start_settings, workbench=True,
                                                  workbench_token=TOKEN)):
        client = await make_client(settings)
        response = await client.get("/static/motia-stream.js")
        assert response.status == 200
        assert "export function subscribeItem" in await response.text()


async def test_dev_and_start_with_workbench_serve_it(make_client: ClientFactory,
                                                     start_settings: Settings) -> None:
    """`dev` serves the workbench as before; `start --workbench` does too."""
    for settings in (attrs.evolve(start_settings, dev=True),
                     attrs.evolve(start_settings, workbench=True)):
        client = await make_client(settings)
        assert await statuses(client) == dict.fromkeys(WORKBENCH, 200)


async def test_a_token_guards_every_part(make_client: ClientFactory,
                                         start_settings: Settings) -> None:
    """With --workbench-token: 401 without it or with a wrong one, 200 with the bearer."""
    client = await make_client(attrs.evolve(start_settings, workbench=True,
                                            workbench_token=TOKEN))
    assert await statuses(client) == dict.fromkeys(WORKBENCH, 401)
    assert await statuses(client, Authorization="Bearer wrong-token-wrong-token") == (
        dict.fromkeys(WORKBENCH, 401))
    assert await statuses(client, **BEARER) == dict.fromkeys(WORKBENCH, 200)
    refused = await client.get("/__motia/steps")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert (await refused.json())["error"] == "workbench token required"
    assert (await client.get("/__motia/logs/feed")).status == 401


async def test_the_page_asks_for_the_token_and_a_cookie_opens_it(
        make_client: ClientFactory, start_settings: Settings) -> None:
    """`/` without the token is a login form; the right token sets a cookie that opens
    the page, /__motia/* and the log feed (EventSource sends cookies, not headers)."""
    client = await make_client(attrs.evolve(start_settings, workbench=True,
                                            workbench_token=TOKEN))
    asked = await client.get("/")
    assert asked.status == 401
    assert asked.content_type == "text/html"
    assert '<form method="post" action="__motia/login">' in await asked.text()
    wrong = await client.post("/__motia/login", data={"token": "not-it"},
                              allow_redirects=False)
    assert wrong.status == 401
    assert '<form method="post" action="login">' in await wrong.text()
    assert not client.session.cookie_jar.filter_cookies(client.make_url("/"))
    right = await client.post("/__motia/login", data={"token": TOKEN}, allow_redirects=False)
    assert (right.status, right.headers["Location"]) == (303, "../")
    cookie = right.cookies["motia_workbench"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert await statuses(client) == dict.fromkeys(WORKBENCH, 200)
    async with client.get("/__motia/logs/feed") as feed:
        assert (feed.status, feed.content_type) == (200, "text/event-stream")


@pytest.fixture(name="private_steps")
def _private_steps(write_steps: WriteSteps) -> Callable[[Settings], Settings]:
    """Settings serving a private `inbox` stream (owners only) and a public `news` one."""
    steps = write_steps({"stream_auth.py": AUTH, "inbox_stream.py": STREAMS,
                         "news_stream.py": NEWS}, "private_steps")
    return lambda settings: attrs.evolve(settings, steps_dir=steps)


@pytest.mark.parametrize("mode", ["dev", "start --workbench", "start, token"])
async def test_the_group_endpoint_refuses_whom_the_feed_refuses(
        make_client: ClientFactory, start_settings: Settings,
        private_steps: Callable[[Settings], Settings], mode: str) -> None:
    """`/__motia/streams/<s>/groups/<g>` answers each caller as `/streams/<s>/<g>` does."""
    settings = private_steps(attrs.evolve(start_settings, dev=mode == "dev",
                                          workbench=mode != "dev",
                                          workbench_token=TOKEN if "token" in mode else None))
    client = await make_client(settings)
    await client.app[RUNTIME].streams.inbox.set("alice", "m1", {"text": "for alice"})
    await client.app[RUNTIME].streams.news.set("today", "h1", {"text": "public"})
    cookie = {"Cookie": f"motia_workbench={TOKEN}"} if "token" in mode else {}
    for stream, group, query in [("inbox", "alice", ""), ("inbox", "alice", "?token=bob-token"),
                                 ("inbox", "alice", "?token=boom"),
                                 ("inbox", "alice", "?token=alice-token"),
                                 ("news", "today", "")]:
        async with client.get(f"/streams/{stream}/{group}{query}") as feed:
            expected = feed.status, (await feed.json() if feed.status != 200 else None)
        async with client.get(f"/__motia/streams/{stream}/groups/{group}{query}",
                              headers=cookie) as read:
            body = await read.json()
            assert (read.status, body if read.status != 200 else None) == expected, query
    # What each answer is: the feed's own refusals, and the items to their owner.
    refused = await client.get("/__motia/streams/inbox/groups/alice?token=bob-token",
                               headers=cookie)
    assert (refused.status, await refused.json()) == (
        403, {"error": "access denied", "details": ["inbox/alice"]})
    allowed = await client.get("/__motia/streams/inbox/groups/alice?token=alice-token",
                               headers=cookie)
    assert [(i["id"], i["text"]) for i in await allowed.json()] == [("m1", "for alice")]


@pytest.mark.parametrize(("args", "line"), [
    ((), "workbench: off (--workbench serves it"),
    (("--workbench",), "workbench: on at that URL, unguarded"),
    (("--workbench", "--workbench-token", TOKEN),
     "workbench: on at that URL, guarded by --workbench-token"),
])
async def test_start_says_whether_the_workbench_is_on(
        server_process: Callable[..., ServerProcess], args: tuple[str, ...], line: str) -> None:
    """A `start` process logs one line saying whether the workbench is on, and guarded."""
    server = server_process("--steps", str(EXAMPLE_STEPS), "--store", "memory", *args).start()
    await eventually(lambda: line in server.output(), what=line)
    [said] = [x for x in server.output().splitlines() if "workbench:" in x]
    assert line in said
    async with aiohttp.ClientSession() as session, session.get(
            f"{server.url}/__motia/steps") as response:
        assert response.status == {0: 404, 1: 200, 3: 401}[len(args)]
