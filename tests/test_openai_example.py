"""The seed example end to end: POST /open-ai, the real openai client, the growing item."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse.testing import FakeOpenAI
from tests.conftest import OpenFeed
from tests.sse_parse import SseReader


async def start(client: TestClient[Any, Any], open_feed: OpenFeed,
                prompt: str = "Say hello") -> tuple[str, SseReader]:
    """POST the prompt and open the feed the response points at."""
    response = await client.post("/open-ai", json={"message": prompt})
    assert response.status == 200
    body = await response.json()
    trace_id = response.headers["x-trace-id"]
    assert body["__motia"] == {"type": "state-stream", "streamName": "openai",
                               "groupId": trace_id, "id": "message"}
    feed = await open_feed(str(client.make_url(f"/streams/openai/{trace_id}/message")))
    return trace_id, feed


async def test_message_grows_to_the_full_text(
    client: TestClient[Any, Any], fake_openai: FakeOpenAI, open_feed: OpenFeed
) -> None:
    """The feed shows the message growing chunk by chunk to exactly the streamed text."""
    fake_openai.chunks = [f"token{i} " for i in range(40)]
    fake_openai.delay = 0.005
    _, feed = await start(client, open_feed, "Count to forty")
    events = await feed.until(lambda e: e.json()["message"] == fake_openai.text, within=15)
    messages = [e.json()["message"] for e in events]
    assert all(fake_openai.text.startswith(m) for m in messages)
    assert len(set(messages)) > 5, "the browser sees the answer grow, not only the end"
    assert events[-1].json() == {"message": fake_openai.text, "error": None, "id": "message"}
    assert fake_openai.requests[0]["messages"] == [{"role": "system",
                                                    "content": "Count to forty"}]
    assert fake_openai.requests[0]["stream"] is True
    assert await feed.silent_for(0.3)


async def test_without_api_key_the_item_says_why(
    client: TestClient[Any, Any], fake_openai: FakeOpenAI, open_feed: OpenFeed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No OPENAI_API_KEY: the item gets an `error` instead of staying empty forever."""
    monkeypatch.delenv("OPENAI_API_KEY")
    _, feed = await start(client, open_feed)
    events = await feed.until(lambda e: e.json()["error"] is not None)
    assert "OPENAI_API_KEY" in events[-1].json()["error"]
    assert fake_openai.requests == []


async def test_rejected_key_is_reported_in_the_item(
    client: TestClient[Any, Any], fake_openai: FakeOpenAI, open_feed: OpenFeed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key the server refuses (401) ends as an error in the item, not a silent hang."""
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    _, feed = await start(client, open_feed)
    events = await feed.until(lambda e: e.json()["error"] is not None)
    assert "Incorrect API key" in events[-1].json()["error"]
    assert fake_openai.auth == ["Bearer wrong-key"]
