"""Access control for feeds: `stream_auth.py`'s authenticate and a stream's can_access."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.exceptions import LoadErrors
from motia_sse.run.loader import load_project
from motia_sse.runtime import RUNTIME
from tests.conftest import ClientFactory, OpenFeed, WriteSteps

AUTH = '''
TOKENS = {"alice-token": {"user": "alice"}, "bob-token": {"user": "bob"}}

async def authenticate(request):
    token = (request.query.get("token") or request.cookies.get("token")
             or request.headers.get("Authorization", "").removeprefix("Bearer "))
    if token == "boom":
        raise ValueError("token store unreachable")
    return TOKENS.get(token)
'''

STREAMS = '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Message:
    text: str

def owner_only(sub, auth):
    if sub.group_id == "explode":
        raise RuntimeError("rule bug")
    return auth is not None and sub.group_id == auth["user"]

config = StreamConfig(name="inbox", schema=Message, can_access=owner_only)
'''

NEWS = '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Headline:
    text: str

config = StreamConfig(name="news", schema=Headline)
'''


@pytest.fixture(name="private_client")
async def _private_client(write_steps: WriteSteps, make_client: ClientFactory
                          ) -> TestClient[Any, Any]:
    """A project with a private `inbox` stream, a public `news` one, and an auth hook."""
    steps = write_steps({"stream_auth.py": AUTH, "inbox_stream.py": STREAMS,
                         "news_stream.py": NEWS}, "private_steps")
    client = await make_client(Settings(steps_dir=steps, store="memory"))
    streams = client.app[RUNTIME].streams
    await streams.inbox.set("alice", "m1", {"text": "for alice"})
    await streams.inbox.set("bob", "m1", {"text": "for bob"})
    await streams.news.set("today", "h1", {"text": "public"})
    return client


async def refusal(client: TestClient[Any, Any], path: str,
                  **headers: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a refused feed request."""
    response = await client.get(path, headers=headers)
    body: dict[str, Any] = await response.json()
    return response.status, body


async def test_private_stream_refuses_without_token(private_client: TestClient[Any, Any]) -> None:
    """No credentials: 401, naming the subscription."""
    assert await refusal(private_client, "/streams/inbox/alice/m1") == (
        401, {"error": "authentication required", "details": ["inbox/alice/m1"]})
    assert await refusal(private_client, "/streams/inbox/alice") == (
        401, {"error": "authentication required", "details": ["inbox/alice"]})


async def test_other_users_group_is_403(private_client: TestClient[Any, Any]) -> None:
    """A valid token for another user: 403."""
    assert await refusal(private_client, "/streams/inbox/alice/m1?token=bob-token") == (
        403, {"error": "access denied", "details": ["inbox/alice/m1"]})


@pytest.mark.parametrize("how", ["query", "cookie", "header"])
async def test_owner_is_let_in(private_client: TestClient[Any, Any], open_feed: OpenFeed,
                               how: str) -> None:
    """The owner gets the feed, with the token in the query, a cookie or a header."""
    url = str(private_client.make_url("/streams/inbox/alice/m1"))
    headers = {"cookie": {"Cookie": "token=alice-token"},
               "header": {"Authorization": "Bearer alice-token"}}.get(how, {})
    feed = await open_feed(url + ("?token=alice-token" if how == "query" else ""), **headers)
    assert (await feed.next()).json() == {"text": "for alice", "id": "m1"}


async def test_raising_hooks_refuse(private_client: TestClient[Any, Any]) -> None:
    """An authenticate that raises is a 401; a can_access that raises is a 403."""
    assert await refusal(private_client, "/streams/inbox/alice?token=boom") == (
        401, {"error": "authentication failed",
              "details": ["ValueError: token store unreachable"]})
    assert await refusal(private_client, "/streams/inbox/explode?token=alice-token") == (
        403, {"error": "access denied", "details": ["inbox/explode"]})


async def test_multiplexed_feed_is_refused_whole(private_client: TestClient[Any, Any],
                                                 open_feed: OpenFeed) -> None:
    """One refused subscription refuses the connection, and the refusal names it."""
    path = "/streams?sub=inbox/alice/m1&sub=news/today&sub=inbox/bob&token=alice-token"
    assert await refusal(private_client, path) == (
        403, {"error": "access denied", "details": ["inbox/bob"]})
    allowed = await open_feed(str(private_client.make_url(
        "/streams?sub=inbox/alice/m1&sub=news/today&token=alice-token")))
    events = {(await allowed.next()).event, (await allowed.next()).event}
    assert events == {"item", "sync"}


async def test_public_stream_needs_no_token(private_client: TestClient[Any, Any],
                                            open_feed: OpenFeed) -> None:
    """Streams without can_access stay open to all, auth hook or not."""
    feed = await open_feed(str(private_client.make_url("/streams/news/today/h1")))
    assert (await feed.next()).json()["text"] == "public"


def test_auth_file_mistakes_are_load_errors(write_steps: WriteSteps) -> None:
    """Two stream_auth.py files, or a hook with the wrong shape, stop the load."""
    steps = write_steps({"stream_auth.py": "def authenticate(request, extra): pass\n",
                         "sub/stream_auth.py": "authenticate = 3\n"})
    with pytest.raises(LoadErrors) as info:
        load_project(steps)
    messages = [e.message for e in info.value.errors]
    assert all(m.startswith("only one stream_auth.py per project") for m in messages)
    (steps / "sub" / "stream_auth.py").unlink()
    with pytest.raises(LoadErrors) as info:
        load_project(steps)
    assert [e.message for e in info.value.errors] == [
        "authenticate must take one argument (request)"]
