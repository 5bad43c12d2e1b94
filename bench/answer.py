"""(b) at scale, the client side: one answer of N tokens of ~5 characters watched by C
feeds, with delta frames (`delta=1`) or whole snapshots. Run by `bench.client answer`.

Streamed (`--streamed`, the seed's case): one POST starts an event step that reads a chat
completion from the fake model server as fast as it sends and sets the item per chunk
(bench/steps/stream_answer_step.py). Otherwise each token is POSTed, one after another,
as fast as the server takes them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from array import array
from typing import Any

import orjson

from bench.client import Connection, Feeds, Window, bounded, open_feeds, percentile

# The last token: a feed has the whole answer once it has read it, delta or snapshot.
END = b"END!!"


def token(n: int) -> str:
    """The n-th token: ~5 characters, as an LLM's."""
    return f"w{n:03d} "[-5:]


async def answer(args: argparse.Namespace) -> dict[str, Any]:
    """Bytes per watcher, server CPU per token, events/s, set-to-receipt latency."""
    path = f"/bench/answers/{args.group}/item"
    async with Connection(args.post_port) as poster:
        status, _, body = await poster.post(path, _body("", 0, -1, False))
        if status != 200:
            raise RuntimeError(f"creating the answer: {status} {body[:300]!r}")
        feeds = Feeds(args.subscribers, END, stamps=True)
        query = "delta=1" if args.delta else ""
        feed = (f"/streams?sub=answer/{args.group}/item&{query}" if args.mux else
                f"/streams/answer/{args.group}/item?{query}")
        targets = [(args.sub_ports[i % len(args.sub_ports)], feed.rstrip("?&"))
                   for i in range(args.subscribers)]
        opened = await open_feeds(feeds, targets, b"data:", args.timeout)
        read_before = sum(f.bytes for f in opened)
        window = Window(args.pids)
        post_ns = array("q")
        if args.streamed:
            status, _, body = await poster.post(f"/bench/stream-answer/{args.group}", b"{}")
            if status != 202:
                raise RuntimeError(f"starting the answer: {status} {body[:300]!r}")
        else:
            await _post_tokens(poster, path, args, post_ns)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feeds.all_finished.wait(), args.timeout)
        cpu = window.close(feeds.last_finish_ns or None)
    for feed in opened:
        feed.close()
    delivered = sum(f.events for f in opened) - len(opened)
    latencies = sorted(feeds.latencies_ns)
    # The motia_sse server's CPU; the fake model server's (streamed), if measured, apart.
    server_cpu = cpu["server_cpu_s"][0]
    return {
        "subscribers": len(opened), "tokens": args.updates, "delta": args.delta,
        "streamed": args.streamed, "finished": feeds.finished, "delivered": delivered,
        "bytes_per_watcher": (sum(f.bytes for f in opened) - read_before) / len(opened),
        "server_cpu_per_token_ms": server_cpu / args.updates * 1000,
        "events_per_s": delivered / cpu["wall_s"] if cpu["wall_s"] > 0 else 0.0,
        "latency_samples": len(latencies),
        "p50_ms": percentile(latencies, 50) / 1e6, "p99_ms": percentile(latencies, 99) / 1e6,
        "post_p50_ms": percentile(sorted(post_ns), 50) / 1e6 if post_ns else float("nan"),
        **cpu,
    }


async def _post_tokens(poster: Connection, path: str, args: argparse.Namespace,
                       post_ns: array[int]) -> None:
    """POST the growing answer, a token more each time, one after another."""
    text = ""
    for n in range(args.updates):
        last = n == args.updates - 1
        text += END.decode() if last else token(n)
        sent = time.monotonic_ns()
        status, _, body = await bounded(poster.post(path, _body(text, sent, n, last)),
                                        args.timeout, f"POST {n}")
        post_ns.append(time.monotonic_ns() - sent)
        if status != 200:
            raise RuntimeError(f"token {n}: {status} {body[:300]!r}")


def _body(text: str, sent: int, seq: int, fin: bool) -> bytes:
    return orjson.dumps({"text": text, "t": sent, "seq": seq, "fin": fin})
