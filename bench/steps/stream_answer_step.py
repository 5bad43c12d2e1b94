"""Stream a chat completion into a bench answer, one `set` per chunk, as the seed's OpenAI
step does (`OPENAI_BASE_URL`: the fake server, bench/fake_llm.py); then a last set whose
text ends in the marker the load client waits for (bench/answer.py: END)."""

import os
import time

import openai
from answer_stream import Answer
from stream_answer_api_step import AnswerPrompt

from motia_sse import EventConfig, FlowContext

END = "END!!"
# One client per process: making one costs an SSL context.
_clients: list[openai.AsyncOpenAI] = []

config = EventConfig(
    name="StreamAnswerTokens",
    description="Set the answer once per chunk of the model's stream",
    subscribes=["bench-answer"],
    input=AnswerPrompt,
    flows=["bench"],
)


def client() -> openai.AsyncOpenAI:
    """The process's client, made on first use."""
    if not _clients:
        _clients.append(openai.AsyncOpenAI())
    return _clients[0]


async def handler(input: AnswerPrompt, ctx: FlowContext) -> None:
    chunks = await client().chat.completions.create(
        model=os.environ.get("OPENAI_MODEL", "fake"),
        messages=[{"role": "user", "content": "count"}], stream=True)
    text, seq = "", 0
    async for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            # The stamp is taken at the set: latency is set-to-receipt.
            await ctx.streams.answer.set(input.group, "item",
                                         Answer(text, time.monotonic_ns(), seq))
            seq += 1
    await ctx.streams.answer.set(input.group, "item",
                                 Answer(text + END, time.monotonic_ns(), seq, fin=True))
