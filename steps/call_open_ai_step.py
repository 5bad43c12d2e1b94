"""Stream a chat completion into the trace's message item, chunk by chunk."""

import os

import openai
from open_ai_api_step import Prompt
from open_ai_stream import OpenAiMessage

from motia_sse import EventConfig, FlowContext

# Read once at import; the openai client itself reads OPENAI_API_KEY and OPENAI_BASE_URL.
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

# One client per key and address: making one costs an SSL context, per prompt too much.
_clients: dict[tuple[str | None, str | None], openai.AsyncOpenAI] = {}


def client() -> openai.AsyncOpenAI:
    """The client for the current environment; OpenAIError if there is no API key."""
    key = (os.environ.get("OPENAI_API_KEY"), os.environ.get("OPENAI_BASE_URL"))
    if key not in _clients:
        _clients[key] = openai.AsyncOpenAI()
    return _clients[key]

config = EventConfig(
    name="CallOpenAi",
    description="Stream the model's answer into the openai stream",
    subscribes=["openai-prompt"],
    input=Prompt,
    flows=["open-ai"],
)


async def handler(input: Prompt, ctx: FlowContext) -> None:
    messages: list[str] = []
    try:
        chunks = await client().chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": input.message}],
            stream=True,
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                messages.append(chunk.choices[0].delta.content)
                await ctx.streams.openai.set(
                    ctx.trace_id, "message", OpenAiMessage(message="".join(messages))
                )
    except openai.OpenAIError as exc:
        # Tell whoever watches the feed, instead of leaving an empty message forever.
        ctx.logger.error("OpenAI call failed", error=str(exc))
        await ctx.streams.openai.set(
            ctx.trace_id, "message", OpenAiMessage(message="".join(messages), error=str(exc))
        )
        return
    ctx.logger.info("OpenAI response complete", characters=sum(map(len, messages)))
