"""The load client, run as a process of its own: `python -m bench.client <scenario> ...`.

Raw asyncio sockets to 127.0.0.1 only. Feeds count events by counting `data:` in what
they receive and never parse an event; only where latency is wanted do they read the
send stamp (`"t":<ns>`, CLOCK_MONOTONIC, which is system-wide on Linux) out of the bytes.
Every wait is bounded by a deadline and every loop by a count. The result is one JSON
object on the last line of stdout; CPU time of this process and of the servers
(`--pids`, read from /proc) covers the measured window only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from array import array
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

from bench.fake_llm import marker as token_marker
from bench.procs import cpu_seconds, machine_cpu_seconds, rss_kib

HOST = "127.0.0.1"
DATA = b"data:"
STAMP = b'"t":'
ESCAPED_STAMP = b'\\"t\\":'
FIN = b'"fin":true'
T = TypeVar("T")


def raise_file_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit; return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def get_request(path: str, port: int) -> bytes:
    """An HTTP/1.1 GET for an event stream."""
    return (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n").encode()


def post_request(path: str, port: int, body: bytes, extra: str = "") -> bytes:
    """An HTTP/1.1 keep-alive POST of a JSON body."""
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body


class Feeds:
    """What all feeds of one run share: counters, latencies, who has finished."""

    def __init__(self, want: int, end_marker: bytes, stamps: bool) -> None:
        self.want = want
        self.end_marker = end_marker
        self.stamps = stamps
        self.latencies_ns = array("q")
        self.finished = 0
        self.last_finish_ns = 0
        self.all_finished = asyncio.Event()
        self.lost = 0

    def finish(self, now: int) -> None:
        """One more feed has seen the end marker."""
        self.finished += 1
        self.last_finish_ns = now
        if self.finished >= self.want:
            self.all_finished.set()


# Bytes a feed reads at a time, into a buffer of its own: no bytes object per read.
READ_SIZE = 64 * 1024


class Feed(asyncio.BufferedProtocol):
    """One SSE connection: counts `data:` lines; notes when the end marker shows up.

    The socket is read into one buffer per feed (a BufferedProtocol), scanned in place:
    a client that copies and allocates per read cannot keep up with 1,000 snapshot feeds
    of a growing 10 KB answer, and the server then conflates what it would have sent."""

    def __init__(self, feeds: Feeds, request: bytes, ready_on: bytes, probe: bool) -> None:
        self.feeds = feeds
        self.request = request
        self.ready_on = ready_on
        # A probe reads the send stamps: latency is sampled on a spread of feeds.
        self.probe = probe and feeds.stamps
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.events = 0
        self.done_ns = 0
        self.bytes = 0
        self._keep = max(len(feeds.end_marker), len(DATA), len(ready_on)) - 1
        self._buffer = bytearray(READ_SIZE + self._keep)
        self._view = memoryview(self._buffer)
        # The last bytes of the previous read, kept at the buffer's start: a marker may
        # be split between two reads.
        self._tail = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view[self._tail:]

    def buffer_updated(self, nbytes: int) -> None:
        now = time.monotonic_ns()
        buf, tail = self._buffer, self._tail
        end = tail + nbytes
        self.bytes += nbytes
        # The tail was counted last time: count what ends in the new bytes only.
        self.events += buf.count(DATA, 0, end) - buf.count(DATA, 0, tail)
        feeds = self.feeds
        if self.probe:
            _read_stamps(buf, tail, end, now, feeds.latencies_ns)
        if not self.done_ns and buf.find(feeds.end_marker, 0, end) >= 0:
            self.done_ns = now
            feeds.finish(now)
        if not self.ready.done():
            if self.bytes == nbytes and not buf.startswith(b"HTTP/1.1 200"):
                self.ready.set_exception(
                    ConnectionError(f"feed refused: {bytes(buf[:min(end, 300)])!r}"))
            elif buf.find(self.ready_on, 0, end) >= 0:
                self.ready.set_result(None)
        keep = min(self._keep, end)
        buf[:keep] = buf[end - keep:end]
        self._tail = keep

    def connection_lost(self, exc: Exception | None) -> None:
        self.feeds.lost += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"feed closed before ready: {exc}"))

    def close(self) -> None:
        """Hang up."""
        if self.transport is not None:
            self.transport.close()


def _read_stamps(data: bytearray, start: int, stop: int, now: int, out: array[int]) -> None:
    """Append now - t for each complete `"t":<ns>,` in `data[start:stop]` (a split one is
    skipped), or `\\"t\\":<ns>,` inside a delta frame's inserted text (bench/answer.py)."""
    for stamp in (STAMP, ESCAPED_STAMP):
        at = data.find(stamp, start, stop)
        while at >= 0:
            begin = at + len(stamp)
            end = data.find(b",", begin, stop)
            if end < 0:
                break
            sent = int(data[begin:end])
            if sent:  # 0: the item as created before the run
                out.append(now - sent)
            at = data.find(stamp, end, stop)


async def bounded(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await with a deadline; TimeoutError names what did not happen."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {seconds:.0f}s") from None


async def open_feeds(feeds: Feeds, targets: Sequence[tuple[int, str]], ready_on: bytes,
                     wait_s: float, probes: int = 200, concurrency: int = 100) -> list[Feed]:
    """Connect one feed per (port, path), at most `concurrency` still waiting at once
    (aiohttp listens with a backlog of 128), and wait until each is ready. Every
    len/`probes`-th feed is a probe that reads send stamps."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    opened: list[Feed] = []
    stride = max(1, -(-len(targets) // probes))

    async def one(index: int, port: int, path: str) -> None:
        async with gate:
            _, feed = await loop.create_connection(
                lambda: Feed(feeds, get_request(path, port), ready_on, index % stride == 0),
                HOST, port)
            opened.append(feed)
            await feed.ready

    tasks = [asyncio.ensure_future(one(i, port, path)) for i, (port, path) in enumerate(targets)]
    try:
        await bounded(asyncio.gather(*tasks), wait_s, f"opening {len(targets)} feeds")
    except BaseException:
        for task in tasks:
            task.cancel()
        for feed in opened:
            feed.close()
        raise
    return opened


class Connection:
    """One keep-alive HTTP/1.1 connection for requests one after another."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()

    async def post(self, path: str, body: bytes, extra: str = "") -> tuple[int, bytes, bytes]:
        """Send a POST; return status, raw headers and body (Content-Length framed)."""
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(post_request(path, self.port, body, extra))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, head, await self.reader.readexactly(length)


def header(head: bytes, name: bytes) -> str:
    """One header's value from raw response headers ('' if absent)."""
    for line in head.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    return ""


class Window:
    """CPU seconds of this process and of `pids` over a measured stretch of time."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.start_ns = time.monotonic_ns()
        self._cpu = _own_cpu()
        self._servers = [cpu_seconds(p) for p in self.pids]
        self._machine = machine_cpu_seconds()

    def close(self, end_ns: int | None = None) -> dict[str, Any]:
        """Wall seconds, CPU seconds used since the window opened, and the CPU that
        other processes of the machine used meanwhile (cores)."""
        now = time.monotonic_ns()
        wall = ((end_ns or now) - self.start_ns) / 1e9
        servers = [cpu_seconds(p) - c for p, c in zip(self.pids, self._servers, strict=True)]
        own = _own_cpu() - self._cpu
        tasks, interrupts = (b - a for a, b in zip(self._machine, machine_cpu_seconds(),
                                                   strict=True))
        span = max(1e-9, (now - self.start_ns) / 1e9)
        return {"wall_s": wall, "client_cpu_s": own, "server_cpu_s": servers,
                "others_cores": max(0.0, (tasks - own - sum(servers)) / span),
                "softirq_cores": interrupts / span}


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (nan if none)."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def tick(seq: int, sent_ns: int, fin: bool = False) -> bytes:
    """The body of one update (bench/steps/bench_stream.py: Tick)."""
    return b'{"seq":%d,"t":%d,"fin":%s}' % (seq, sent_ns, b"true" if fin else b"false")


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    """C feeds on one item, U updates POSTed one after another: events/s, latency."""
    ports: list[int] = args.sub_ports
    group, item = args.group, "item"
    post_path = f"/bench/items/{group}/{item}"
    async with Connection(args.post_port) as poster:
        status, _, body = await poster.post(post_path, tick(-1, 0))
        if status != 200:
            raise RuntimeError(f"creating the item: {status} {body[:300]!r}")
        if args.warmup:
            await _warm_fanout(poster, ports, args.timeout)
        feeds = Feeds(args.subscribers, FIN, stamps=True)
        targets = [(ports[i % len(ports)], f"/streams/bench/{group}/{item}")
                   for i in range(args.subscribers)]
        opening = time.monotonic_ns()
        opened = await open_feeds(feeds, targets, DATA, args.timeout)
        connect_s = (time.monotonic_ns() - opening) / 1e9
        window = Window(args.pids)
        post_ns = array("q")
        for seq in range(args.updates):
            sent = time.monotonic_ns()
            status, _, body = await bounded(
                poster.post(post_path, tick(seq, sent, seq == args.updates - 1)),
                args.timeout, f"POST {seq}")
            post_ns.append(time.monotonic_ns() - sent)
            if status != 200:
                raise RuntimeError(f"update {seq}: {status} {body[:300]!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feeds.all_finished.wait(), args.timeout)
        cpu = window.close(feeds.last_finish_ns or None)
    for feed in opened:
        feed.close()
    delivered = sum(f.events for f in opened) - len(opened)  # less each feed's snapshot
    latencies = sorted(feeds.latencies_ns)
    posts = sorted(post_ns)
    return {
        "subscribers": len(opened), "updates": args.updates, "delivered": delivered,
        "expected": len(opened) * args.updates, "finished": feeds.finished,
        "lost": feeds.lost, "connect_s": connect_s,
        "events_per_s": delivered / cpu["wall_s"] if cpu["wall_s"] > 0 else 0.0,
        "latency_samples": len(latencies),
        "p50_ms": percentile(latencies, 50) / 1e6, "p99_ms": percentile(latencies, 99) / 1e6,
        "max_ms": (latencies[-1] / 1e6) if latencies else float("nan"),
        "post_p50_ms": percentile(posts, 50) / 1e6, **cpu,
    }


async def _warm_fanout(poster: Connection, ports: Sequence[int], wait_s: float) -> None:
    """A small untimed round on another item, so that the timed one finds warm code."""
    path = "/bench/items/warmup/item"
    await poster.post(path, tick(-1, 0))
    feeds = Feeds(10, FIN, stamps=False)
    opened = await open_feeds(feeds, [(ports[i % len(ports)], "/streams/bench/warmup/item")
                                      for i in range(10)], DATA, wait_s)
    for seq in range(20):
        await poster.post(path, tick(seq, time.monotonic_ns(), seq == 19))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(feeds.all_finished.wait(), wait_s)
    for feed in opened:
        feed.close()


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    """N idle feeds (one group each): the server's RSS growth per connection."""
    server = args.pids[0]
    port = args.sub_ports[0]
    feeds = Feeds(0, b"\x00never", stamps=False)
    warm = await open_feeds(feeds, [(port, f"/streams/bench/warm-{i}/item")
                                    for i in range(100)], b"\r\n\r\n", args.timeout)
    for feed in warm:
        feed.close()
    await asyncio.sleep(args.settle)
    before = rss_kib(server) if args.rss else 0
    window = Window(args.pids)
    opened = await open_feeds(feeds, [(port, f"/streams/bench/idle-{i}/item")
                                      for i in range(args.subscribers)], b"\r\n\r\n",
                              args.timeout)
    cpu = window.close()
    await asyncio.sleep(args.settle)
    after = rss_kib(server) if args.rss else 0
    open_now = sum(1 for f in opened if f.transport is not None and not f.transport.is_closing())
    for feed in opened:
        feed.close()
    return {
        "subscribers": len(opened), "open_at_end": open_now, "rss_before_kib": before,
        "rss_after_kib": after, "rss_per_feed_kib": (after - before) / max(1, len(opened)),
        "connect_per_s": len(opened) / cpu["wall_s"], **cpu,
    }


async def tokens(args: argparse.Namespace) -> dict[str, Any]:
    """The seed's OpenAI flow against the fake server, and the fake server alone."""
    end = token_marker(args.chunks)
    await _fake_alone(args.fake_port, args.timeout)  # warm up both sides
    await _watched_answer(args, end, 1)
    fake_window = Window(args.pids)
    fake_s = await _fake_alone(args.fake_port, args.timeout)
    fake_cpu = fake_window.close()
    window = Window(args.pids)
    result = await _watched_answer(args, end, args.subscribers)
    return {"fake_s": fake_s, "fake_server_cpu_s": fake_cpu["server_cpu_s"],
            "fake_client_cpu_s": fake_cpu["client_cpu_s"], **result, **window.close()}


async def _fake_alone(port: int, wait_s: float) -> float:
    """Seconds from sending a streaming chat completion request to `data: [DONE]`."""
    body = json.dumps({"model": "fake", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = post_request("/v1/chat/completions", port, body,
                           "Authorization: Bearer test-key\r\nConnection: close\r\n")
    start = time.monotonic_ns()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        tail = b""
        while True:
            data = await bounded(reader.read(65536), wait_s, "the fake server's stream")
            if not data:
                raise ConnectionError("the fake server closed before [DONE]")
            if b"data: [DONE]" in tail + data:
                return (time.monotonic_ns() - start) / 1e9
            tail = data[-16:]
    finally:
        writer.close()


async def _watched_answer(args: argparse.Namespace, end: bytes, watchers: int
                          ) -> dict[str, Any]:
    """POST /open-ai, open `watchers` feeds on its message: seconds to the full text."""
    start = time.monotonic_ns()
    async with Connection(args.post_port) as api:
        status, head, body = await api.post("/open-ai", b'{"message": "count"}')
    if status != 200:
        raise RuntimeError(f"POST /open-ai: {status} {body[:300]!r}")
    trace = header(head, b"x-trace-id")
    posted = time.monotonic_ns()
    feeds = Feeds(watchers, end, stamps=False)
    opened = await open_feeds(feeds, [(args.post_port, f"/streams/openai/{trace}/message")]
                              * watchers, DATA, args.timeout)
    connected = time.monotonic_ns()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(feeds.all_finished.wait(), args.timeout)
    for feed in opened:
        feed.close()
    done = sorted(f.done_ns - start for f in opened if f.done_ns)
    if len(done) < watchers:
        raise RuntimeError(f"only {len(done)} of {watchers} watchers got the full text")
    return {"watchers": watchers, "post_s": (posted - start) / 1e9,
            "connect_s": (connected - posted) / 1e9, "motia_s": done[-1] / 1e9,
            "motia_first_watcher_s": done[0] / 1e9,
            "events_per_watcher": sum(f.events for f in opened) / watchers}


async def api(args: argparse.Namespace) -> dict[str, Any]:
    """Requests/s of a POST over N keep-alive connections (used when wrk is missing)."""
    body = b'{"n":1}'
    count = [0]
    deadline = time.monotonic() + args.duration

    async def worker() -> None:
        async with Connection(args.post_port) as conn:
            for _ in range(10_000_000):
                if time.monotonic() >= deadline:
                    return
                status, _, _ = await bounded(conn.post(args.path, body), args.timeout, "POST")
                if status != 200:
                    raise RuntimeError(f"POST {args.path}: {status}")
                count[0] += 1

    window = Window(args.pids)
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    cpu = window.close()
    return {"requests": count[0], "requests_per_s": count[0] / cpu["wall_s"], **cpu}


async def answer(args: argparse.Namespace) -> dict[str, Any]:
    """(b) at scale: bench/answer.py (imported here, as it builds on this module)."""
    from bench.answer import answer as run

    return await run(args)


SCENARIOS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]] = {
    "fanout": fanout, "idle": idle, "tokens": tokens, "api": api, "answer": answer}


def _ports(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The client's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--sub-ports", type=_ports, default=[], help="feed ports, round robin")
    parser.add_argument("--post-port", type=int, default=0)
    parser.add_argument("--fake-port", type=int, default=0)
    parser.add_argument("--pids", type=_ports, default=[], help="server PIDs to measure")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--group", default="fanout")
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--path", default="/bench/noop")
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--warmup", action="store_true")
    parser.add_argument("--delta", action="store_true", help="answer: feeds ask for deltas")
    parser.add_argument("--mux", action="store_true",
                        help="answer: multiplexed feeds (/streams?sub=...), as motia-stream.js "
                             "opens, instead of item feeds")
    parser.add_argument("--streamed", action="store_true",
                        help="answer: one POST, an event step streams the model's chunks")
    parser.add_argument("--no-rss", dest="rss", action="store_false",
                        help="idle: do not read the server's RSS (bench.memprofile)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the client's event loop (uvloop, if installed, is cheaper)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of every wait")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one scenario; print its result as JSON."""
    args = parse_args(argv)
    limit = raise_file_limit()
    if args.subscribers + 200 > limit:
        print(f"RLIMIT_NOFILE is {limit}: too low for {args.subscribers} feeds", file=sys.stderr)
        return 2
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    loop = "asyncio"
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("uvloop is not installed; the client uses asyncio's own loop", file=sys.stderr)
        else:
            factory, loop = uvloop.new_event_loop, "uvloop"
    with asyncio.Runner(loop_factory=factory) as runner:
        result: dict[str, Any] = runner.run(SCENARIOS[args.scenario](args))
    print(json.dumps({**result, "client_loop": loop}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
