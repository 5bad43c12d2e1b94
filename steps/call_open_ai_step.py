"""Stream a chat completion into the trace's message item, chunk by chunk."""

import os

import openai
from open_ai_api_step import Prompt
from open_ai_stream import OpenAiMessage

from motia_sse import EventConfig, FlowContext

# Read once at import; the openai client itself reads OPENAI_API_KEY and OPENAI_BASE_URL.
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

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
        client = openai.AsyncOpenAI()
        async with client:
            chunks = await client.chat.completions.create(
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
