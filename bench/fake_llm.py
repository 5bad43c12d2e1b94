"""The fake chat-completions server (`motia_sse.testing.FakeOpenAI`) as a process of its own."""

from __future__ import annotations

import argparse

from aiohttp import web

from motia_sse.testing import FakeOpenAI


def tokens(count: int) -> list[str]:
    """The chunks the server streams; the last one marks the full text (see `marker`)."""
    return [f"w{i:03d} " for i in range(count)]


def marker(count: int) -> bytes:
    """Bytes found in an item's JSON only once it holds the whole answer."""
    return f'{tokens(count)[-1]}"'.encode()


def main() -> None:
    """`python -m bench.fake_llm --port N --chunks 200 --delay 0`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds after each chunk")
    args = parser.parse_args()
    fake = FakeOpenAI(chunks=tokens(args.chunks), delay=args.delay)
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
