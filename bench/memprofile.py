"""Where an idle feed's memory goes: the server in this process under tracemalloc, the
load client (`bench.client idle`) in its own, a snapshot diff once all feeds are open.

`python -m bench.memprofile --side motia|baseline --feeds 2000`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from bench import baseline
from bench.procs import BENCH_STEPS, REPO, python


def motia_app() -> tuple[web.Application, Callable[[], int]]:
    """motia_sse serving the bench steps from memory, feed limits raised."""
    from motia_sse import Settings, create_app
    from motia_sse.runtime import RUNTIME

    wanted: dict[str, Any] = {"steps_dir": BENCH_STEPS, "store": "memory",
                              "max_feeds": 100_000, "max_feeds_per_client": 100_000}
    known = attrs.fields_dict(Settings)
    app = create_app(Settings(**{k: v for k, v in wanted.items() if k in known}))
    return app, lambda: len(app[RUNTIME].feeds)


def baseline_app() -> tuple[web.Application, Callable[[], int]]:
    """The bare broadcaster."""
    app = baseline.create_app()
    return app, lambda: sum(len(s) for s in app[baseline.SUBSCRIBERS].values())


async def measure(side: str, feeds: int, top: int) -> dict[str, Any]:
    """Serve, let the client open `feeds` idle feeds, diff the heap."""
    app, count = motia_app() if side == "motia" else baseline_app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port: int = runner.addresses[0][1]
    tracemalloc.start(1)
    first = tracemalloc.take_snapshot()
    client = await asyncio.create_subprocess_exec(
        *python("-m", "bench.client", "idle", "--sub-ports", str(port), "--pids", "0",
                "--subscribers", str(feeds), "--settle", "3", "--no-rss"),
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(120):
            # The server's count of open feeds has no event to await: poll it.
            while count() < feeds:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        second = tracemalloc.take_snapshot()
    finally:
        await client.wait()
        await runner.cleanup()
    stats = second.compare_to(first, "lineno")
    grown = sum(s.size_diff for s in stats)
    return {"side": side, "feeds": feeds, "bytes_per_feed": grown / feeds, "top": [
        {"where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
         "bytes_per_feed": round(s.size_diff / feeds), "blocks_per_feed":
         round(s.count_diff / feeds, 2)} for s in stats[:top]]}


def _short(path: str) -> str:
    for marker in ("site-packages/", f"{REPO}/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main() -> int:
    """Print the heap growth per idle feed, by allocation site, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("motia", "baseline"), default="motia")
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.side, args.feeds, args.top))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
