"""A local server speaking OpenAI's streaming chat-completions protocol."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import attrs
from aiohttp import web


@attrs.define
class FakeOpenAI:
    """Streams `chunks` as chat.completion.chunk events, then `data: [DONE]`."""

    chunks: list[str] = attrs.Factory(lambda: ["Hello", ",", " world", "!"])
    delay: float = 0.0
    requests: list[dict[str, Any]] = attrs.Factory(list)
    auth: list[str] = attrs.Factory(list)

    @property
    def text(self) -> str:
        """The full answer, as the client should assemble it."""
        return "".join(self.chunks)

    def app(self) -> web.Application:
        """An aiohttp app serving POST /v1/chat/completions."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        return app

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer test-key":
            return web.json_response(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                           "param": None, "code": "invalid_api_key"}}, status=401)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        created = int(time.time())
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": c} for c in self.chunks]
        for index, delta in enumerate([*deltas, {}]):
            finish = "stop" if index == len(deltas) else None
            chunk = {
                "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": created,
                "model": body.get("model"), "system_fingerprint": "fp_test",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.delay:
                await asyncio.sleep(self.delay)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
