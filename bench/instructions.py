"""Instructions per API request under callgrind: motia_sse against the bare handler.

Wall-clock figures on this shared machine swing by a third between runs; callgrind
counts instructions, which do not depend on what else the machine is doing. Each
server runs under `valgrind --tool=callgrind` twice, answering `FEW` and then `MANY`
sequential keep-alive POSTs; the difference of the two totals, divided by
`MANY - FEW`, is the cost of one request with start-up and shutdown taken out.

`--fanout`: the same for one delivered event of the fan-out path: `FEEDS` item feeds
open while `FANOUT_FEW`, then `FANOUT_MANY` POSTs set the item (each POST's own cost
shared among the feeds it reaches).

    .venv/bin/python -m bench.instructions            # both servers, ~3 minutes
    .venv/bin/python -m bench.instructions --metrics  # motia_sse with /metrics on
    .venv/bin/python -m bench.instructions --fanout   # per delivered event, ~2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.procs import BENCH_STEPS, REPO
from motia_sse.testing import free_port

FEW, MANY = 200, 1200
BODY = b'{"n":1}'
FEEDS, FANOUT_FEW, FANOUT_MANY = 200, 20, 120
# (port, requests, deadline): drives one server through a workload.
Workload = Callable[[int, int, float], None]


def _command(side: str, port: int, extra: list[str]) -> list[str]:
    if side == "baseline":
        return [sys.executable, "-m", "bench.baseline", "--port", str(port)]
    return [sys.executable, "-m", "motia_sse", "start", "--host", "127.0.0.1",
            "--port", str(port), "--steps", str(BENCH_STEPS), "--store", "memory", *extra]


def _connected(port: int, deadline: float) -> http.client.HTTPConnection:
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.connect()
            return connection
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _post(port: int, count: int, deadline: float) -> None:
    connection = _connected(port, deadline)
    for _ in range(count):
        connection.request("POST", "/bench/noop", BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /bench/noop answered {response.status}")
    connection.close()


def _fanout(port: int, count: int, deadline: float) -> None:
    _connected(port, deadline).close()
    asyncio.run(_set_watched_item(port, count))


async def _set_watched_item(port: int, count: int) -> None:
    """`count` POSTs setting an item that FEEDS raw feeds watch; every tenth waits until
    each feed has it, so that no feed lags (and nothing is conflated)."""
    feeds = [await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
             for _ in range(FEEDS)]
    for feed, feed_writer in feeds:
        feed_writer.write(b"GET /streams/bench/g/i HTTP/1.1\r\nHost: bench\r\n\r\n")
        await feed.readuntil(b"\r\n\r\n")  # subscribed
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for seq in range(count):
        body = b'{"seq":%d,"t":0}' % seq
        writer.write(b"POST /bench/items/g/i HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        await reader.readuntil(b"\r\n\r\n")  # the answer's body is read with the next
        if seq % 10 == 9 or seq == count - 1:
            await asyncio.gather(*(_until(feed, seq) for feed, _ in feeds))
    for _, feed_writer in [*feeds, (reader, writer)]:
        feed_writer.close()


async def _until(feed: asyncio.StreamReader, seq: int) -> None:
    seen, token = b"", b'"seq":%d,' % seq
    while token not in seen:
        seen = seen[-100:] + await feed.read(1 << 16)


def instructions(side: str, count: int, workdir: Path, extra: list[str],
                 workload: Workload = _post) -> int:
    """Total instructions of one server process that went through `count` of `workload`;
    `extra`: more options of motia_sse's command line."""
    port = free_port()
    out = workdir / f"{side}-{count}.callgrind"
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         *_command(side, port, extra)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workload(port, count, time.monotonic() + 300)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(300)
    totals = re.search(r"^totals:\s+(\d+)", out.read_text(), re.MULTILINE)
    if totals is None:
        raise RuntimeError(f"no totals in {out}")
    return int(totals.group(1))


def per_request(side: str, workdir: Path, extra: list[str]) -> float:
    """Instructions per request, start-up and shutdown taken out."""
    return ((instructions(side, MANY, workdir, extra) - instructions(side, FEW, workdir, extra))
            / (MANY - FEW))


def per_delivery(side: str, workdir: Path, extra: list[str]) -> float:
    """Instructions per event delivered to a feed, start-up and shutdown taken out."""
    many = instructions(side, FANOUT_MANY, workdir, extra, _fanout)
    few = instructions(side, FANOUT_FEW, workdir, extra, _fanout)
    return (many - few) / ((FANOUT_MANY - FANOUT_FEW) * FEEDS)


def main() -> int:
    """Print instructions per request of both servers and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", action="store_true",
                        help="run motia_sse with --metrics (each answer counted and timed)")
    parser.add_argument("--fanout", action="store_true",
                        help=f"count one delivered event of the fan-out path ({FEEDS} feeds)")
    args = parser.parse_args()
    extra = ["--metrics"] if args.metrics else []
    measure, what = (per_delivery, "delivered event") if args.fanout else (per_request,
                                                                           "request")
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install -y valgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        found = {side: measure(side, Path(tmp), extra) for side in ("baseline", "motia")}
    ratio = found["motia"] / found["baseline"]
    print(f"instructions per {what}: motia_sse {found['motia']:,.0f}, "
          f"baseline {found['baseline']:,.0f}, ratio {ratio:.2f} "
          f"({what}s/s ratio at equal IPC: {1 / ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
