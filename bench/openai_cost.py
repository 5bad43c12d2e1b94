"""What the openai library costs to read a streamed chat completion, with no server of ours.

The (b) burst's floor: the fake model (bench/fake_llm.py) streams `--chunks` chunks, read
in this process by the openai client two ways, `--runs` times each (medians):

- `async for chunk in stream`, as the example step does (a pydantic model per chunk);
- the same client's `with_streaming_response`, its lines parsed with orjson.

    .venv/bin/python -m bench.openai_cost [--chunks 200] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import openai
import orjson

from bench.procs import fake_llm_server
from bench.scenarios import running

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "count"}]


async def by_chunk(client: openai.AsyncOpenAI) -> int:
    """Chunks with content, read as the example step reads them."""
    count = 0
    stream = await client.chat.completions.create(model="fake", messages=MESSAGES,
                                                  stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            count += 1
    return count


async def by_line(client: openai.AsyncOpenAI) -> int:
    """Chunks with content, read as raw SSE lines of the same client's response."""
    count = 0
    async with client.chat.completions.with_streaming_response.create(
            model="fake", messages=MESSAGES, stream=True) as response:
        async for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = orjson.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    count += 1
    return count


async def measure(port: int, runs: int, chunks: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU milliseconds of each way, after one warm-up read."""
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="test-key")
    ways: dict[str, Callable[[openai.AsyncOpenAI], Awaitable[int]]] = {
        "async for chunk in stream": by_chunk, "with_streaming_response + orjson": by_line}
    found = {}
    for name, way in ways.items():
        await way(client)
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            got = await asyncio.wait_for(way(client), 60)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            if got != chunks:
                raise RuntimeError(f"{name}: {got} chunks with content, not {chunks}")
        found[name] = (statistics.median(walls) * 1000, statistics.median(cpus) * 1000)
    await client.close()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openai_cost", description=__doc__)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as logs:
        fake = fake_llm_server("openai-cost-fake", Path(logs), args.chunks, 0.0)
        with running(fake):
            found = asyncio.run(measure(fake.port, args.runs, args.chunks))
    for name, (wall, cpu) in found.items():
        print(f"{name}: {wall:.1f} ms wall, {cpu:.1f} ms CPU for {args.chunks} chunks "
              f"({cpu * 1000 / args.chunks:.0f} µs CPU each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
