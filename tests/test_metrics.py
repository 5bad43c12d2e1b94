"""/metrics over real sockets: each family a user looks at, scraped as Prometheus reads it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from motia_sse import Settings, create_app
from motia_sse.cli import parse_settings
from motia_sse.metrics.merge import merge
from motia_sse.process.in_place_reload import RELOADER
from motia_sse.runtime import RUNTIME
from motia_sse.testing.processes import accepts_connections
from tests.conftest import ClientFactory, RedisServer, ServerProcess, WriteSteps, free_port
from tests.polling import eventually
from tests.sse_parse import SseReader
from tests.test_conflation import stalled_connection
from tests.work_steps import NOTES_STREAM, WORK_STEPS

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

TICK = '''
from motia_sse import CronConfig, FlowContext

config = CronConfig(name="Tick", cron="* * * * * *")

async def handler(ctx: FlowContext) -> None:
    pass
'''
CELLS = "/cells/{group}/{id}"


def parse(text: str) -> Samples:
    """Every sample of an exposition by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 if the exposition lacks it."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: TestClient[Any, Any]) -> Samples:
    """GET /metrics, as Prometheus does."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(await response.text())


@pytest.fixture(name="metrics_settings")
def _metrics_settings(write_steps: WriteSteps, tmp_path: Path) -> Settings:
    """Cells, work that may fail, a cron tick; metrics on, a heartbeat that stays out of it."""
    steps = write_steps({**WORK_STEPS, "notes_stream.py": NOTES_STREAM, "tick_step.py": TICK},
                        "metrics_steps")
    return Settings(steps_dir=steps, store="memory", data_dir=tmp_path / ".motia",
                    metrics=True, heartbeat_interval=60, shutdown_timeout=2,
                    max_attempts=2, retry_backoff=0.01)


@pytest.fixture(name="client")
async def _client(make_client: ClientFactory, metrics_settings: Settings
                  ) -> TestClient[Any, Any]:
    """The metrics project served on a real socket."""
    return await make_client(metrics_settings)


async def test_feeds_open_by_kind_and_what_they_write(client: TestClient[Any, Any]) -> None:
    """An item feed's frames and bytes, counted exactly; group and multiplexed feeds by kind."""
    assert (await client.put("/cells/g/a", json={"value": 1})).status == 200
    feed = await client.get("/streams/cells/g/a")
    body = b""
    while body.count(b"\n\n") < 2:  # the retry line, the snapshot
        body += await feed.content.readany()
    samples = await scrape(client)
    assert value(samples, "motia_feeds_open", kind="item") == 1
    assert value(samples, "motia_feed_frames_written_total") == 2
    assert value(samples, "motia_feed_bytes_written_total") == len(body)

    group = await client.get("/streams/cells/g")
    mux = await client.get("/streams?sub=cells/g/a&sub=cells/g")
    await client.put("/cells/g/a", json={"value": 2})
    while body.count(b"\n\n") < 3:
        body += await feed.content.readany()
    # item: retry, snapshot, update; group: retry, sync, update; multiplexed: retry, the
    # item, the group's sync, and the update twice (as the item, and in the group).
    samples = await eventually(lambda: scrape(client), what="three feeds counted", until=lambda s:
                               value(s, "motia_feed_frames_written_total") == 11)
    assert {kind: value(samples, "motia_feeds_open", kind=kind)
            for kind in ("item", "group", "multiplexed", "logs")} == {
        "item": 1, "group": 1, "multiplexed": 1, "logs": 0}
    assert value(samples, "motia_feed_subscriptions") == 4
    assert value(samples, "motia_feeds_lagging") == 0

    for response in (feed, group, mux):
        response.close()
    samples = await eventually(lambda: scrape(client), what="the feeds gone", until=lambda s:
                               value(s, "motia_feeds_open", kind="item") == 0)
    assert value(samples, "motia_feed_frames_written_total") == 11, "ended feeds still count"


async def test_a_lagging_feed_is_counted_and_conflated(client: TestClient[Any, Any]) -> None:
    """A client that stops reading shows as lagging, and what it missed as conflated; once
    it reads again, the frames and bytes counted are exactly those it got."""
    notes = client.app[RUNTIME].streams.notes
    await notes.set("slow", "a", {"text": "start"})
    reader, writer = await stalled_connection(client.port or 0, "/streams/notes/slow/a")
    await eventually(lambda: scrape(client), what="the feed open", until=lambda s:
                     value(s, "motia_feeds_open", kind="item") == 1)
    for n in range(3000):
        last = await notes.set("slow", "a", {"text": f"{n}:{'x' * 4000}"})
        if n % 50 == 0:
            await asyncio.sleep(0)  # let the socket move, as a real server's loop would
    samples = await scrape(client)
    assert value(samples, "motia_feeds_lagging") == 1
    assert value(samples, "motia_feed_frames_conflated_total") > 1000

    raw = b""
    async with asyncio.timeout(30):
        while f"id: {last.version}\n".encode() not in raw or not raw.endswith(b"\n\n\r\n"):
            raw += await reader.read(1 << 20)
    body = dechunk(raw.split(b"\r\n\r\n", 1)[1])
    samples = await eventually(lambda: scrape(client), what="caught up", until=lambda s:
                               value(s, "motia_feeds_lagging") == 0)
    assert value(samples, "motia_feed_frames_written_total") == body.count(b"\n\n")
    assert value(samples, "motia_feed_bytes_written_total") == len(body)
    writer.close()
    samples = await eventually(lambda: scrape(client), what="the feed gone", until=lambda s:
                               value(s, "motia_feeds_open", kind="item") == 0)
    assert value(samples, "motia_feed_frames_conflated_total") > 1000, "kept once it ended"
    assert value(samples, "motia_feed_frames_written_total") == body.count(b"\n\n")


def dechunk(raw: bytes) -> bytes:
    """The payload of complete HTTP/1.1 chunks."""
    out = b""
    while raw:
        size, _, rest = raw.partition(b"\r\n")
        length = int(size, 16)
        out, raw = out + rest[:length], rest[length + 2:]
    return out


async def test_refused_feeds_are_counted_by_reason(
        make_client: ClientFactory, metrics_settings: Settings) -> None:
    """An unknown stream, a multiplexed feed with no subscriptions, one feed too many."""
    client = await make_client(attrs.evolve(metrics_settings, max_feeds_per_client=1))
    assert (await client.get("/streams/nope/g")).status == 404
    assert (await client.get("/streams")).status == 400
    held = await client.get("/streams/cells/g")
    assert held.status == 200
    assert (await client.get("/streams/cells/g")).status == 429
    samples = await scrape(client)
    assert {reason: value(samples, "motia_feeds_refused_total", reason=reason)
            for reason in ("not_found", "invalid", "max_feeds_per_client", "max_feeds")} == {
        "not_found": 1, "invalid": 1, "max_feeds_per_client": 1, "max_feeds": 0}
    held.close()


async def test_api_requests_by_route_and_status(client: TestClient[Any, Any]) -> None:
    """Answers by route pattern and status, and their durations in one histogram per route."""
    for n in range(2):
        assert (await client.put(f"/cells/g/{n}", json={"value": n})).status == 200
    assert (await client.put("/cells/g/x", json={"value": "x"})).status == 400
    samples = await scrape(client)
    route = {"method": "PUT", "route": CELLS}
    assert value(samples, "motia_api_requests_total", **route, status="200") == 2
    assert value(samples, "motia_api_requests_total", **route, status="400") == 1
    assert value(samples, "motia_api_request_duration_seconds_count", **route) == 3
    assert value(samples, "motia_api_request_duration_seconds_bucket", **route, le="+Inf") == 3
    assert 0 < value(samples, "motia_api_request_duration_seconds_sum", **route) < 3


async def test_dev_counts_the_routes_it_reloads(
        make_client: ClientFactory, metrics_settings: Settings) -> None:
    """dev serves the API steps through swappable routes: those are counted too, and a
    reload keeps the counts."""
    settings = attrs.evolve(metrics_settings, dev=True)
    client = await make_client(settings, create_app(settings, reloadable=True))
    assert (await client.put("/cells/g/a", json={"value": 1})).status == 200
    await client.app[RELOADER].reload(client.app)
    assert (await client.put("/cells/g/a", json={"value": 2})).status == 200
    samples = await scrape(client)
    assert value(samples, "motia_api_requests_total", method="PUT", route=CELLS,
                 status="200") == 2
    assert (await client.get("/readyz")).status == 200


async def test_events_queued_retried_and_dead_lettered(client: TestClient[Any, Any]) -> None:
    """A handler that always fails: queued once, retried once, then dead-lettered;
    a handler that succeeds is queued and timed."""
    assert (await client.post("/work", json={"n": 1, "mode": "fail"})).status == 202
    assert (await client.post("/work", json={"n": 2})).status == 202
    samples = await eventually(lambda: scrape(client), what="a dead letter", until=lambda s:
                               value(s, "motia_events_dead_lettered_total", step="DoWork") == 1
                               and value(s, "motia_handler_duration_seconds_count",
                                         kind="event", step="DoWork") == 3)
    assert value(samples, "motia_events_queued_total", step="DoWork") == 2
    assert value(samples, "motia_events_retried_total", step="DoWork") == 1
    assert value(samples, "motia_events_in_flight") == 0
    assert value(samples, "motia_api_requests_total", method="POST", route="/work",
                 status="202") == 2


async def test_cron_runs_are_counted(client: TestClient[Any, Any]) -> None:
    """Each tick of a cron step counts as a run, with its duration."""
    samples = await eventually(lambda: scrape(client), what="a cron run", until=lambda s:
                               value(s, "motia_cron_runs_total", step="Tick", outcome="ok") >= 1)
    runs = value(samples, "motia_cron_runs_total", step="Tick", outcome="ok")
    assert value(samples, "motia_handler_duration_seconds_count",
                 kind="cron", step="Tick") >= runs
    assert value(samples, "motia_cron_runs_total", step="Tick", outcome="failed") == 0


def test_metrics_are_on_in_dev_and_asked_for_in_start() -> None:
    """dev serves /metrics; start only with --metrics or MOTIA_METRICS=1."""
    assert parse_settings(["dev"], {}).metrics
    assert parse_settings(["start", "--reload-in-place"], {}).metrics, "dev's server"
    assert not parse_settings(["start"], {}).metrics
    assert parse_settings(["start", "--metrics"], {}).metrics
    assert parse_settings(["start"], {"MOTIA_METRICS": "1"}).metrics
    assert not parse_settings(["start"], {"MOTIA_METRICS": "0"}).metrics


def test_start_without_metrics_has_no_metrics(
        server_process: Callable[..., ServerProcess], write_steps: WriteSteps) -> None:
    """`start` without --metrics: /metrics is a 404 like any unknown path."""
    steps = write_steps(WORK_STEPS)
    server = server_process("--steps", str(steps), "--store", "memory").start()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.url}/metrics", timeout=10)
    assert refused.value.code == 404
    refused.value.close()
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as health:
        assert health.status == 200


def test_merge_adds_up_every_sample() -> None:
    """Counters, gauges and histogram buckets of two workers add up, labels kept apart."""
    one = ('# HELP a_total A\n# TYPE a_total counter\na_total{s="x"} 1.0\n'
           '# HELP h H\n# TYPE h histogram\nh_bucket{le="1.0"} 1.0\nh_bucket{le="+Inf"} 2.0\n'
           'h_count 2.0\nh_sum 3.5\n')
    two = ('# HELP a_total A\n# TYPE a_total counter\na_total{s="x"} 2.0\na_total{s="y"} 5.0\n'
           '# HELP h H\n# TYPE h histogram\nh_bucket{le="1.0"} 0.0\nh_bucket{le="+Inf"} 1.0\n'
           'h_count 1.0\nh_sum 4.0\n')
    merged = parse(merge([one, two]).decode())
    assert value(merged, "a_total", s="x") == 3
    assert value(merged, "a_total", s="y") == 5
    assert value(merged, "h_bucket", le="1.0") == 1
    assert value(merged, "h_bucket", le="+Inf") == 3
    assert (value(merged, "h_count"), value(merged, "h_sum")) == (3, 7.5)


async def test_one_scrape_sees_every_worker(tmp_path: Path, redis_server: RedisServer,
                                            write_steps: WriteSteps) -> None:
    """start --workers 2 --metrics: whichever worker a scrape reaches, it counts the
    requests both answered."""
    steps = write_steps(WORK_STEPS)
    port = free_port()
    log = (tmp_path / "workers.log").open("w")
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "motia_sse", "start", "--steps", str(steps), "--port", str(port),
        "--host", "127.0.0.1", "--workers", "2", "--redis", redis_server.url, "--metrics",
        "--redis-prefix", f"test-{port}", cwd=tmp_path, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    pids: set[int] = set()
    answered = 0

    async def fresh(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        # A new connection each time, spread by the kernel over the workers.
        connector = aiohttp.TCPConnector(force_close=True)
        async with (aiohttp.ClientSession(connector=connector) as session,
                    session.request(method, f"{url}{path}", **kwargs) as response):
            body = await response.text()
            return response.status, body

    async def both_answered() -> bool:
        nonlocal answered
        status, _ = await fresh("PUT", f"/cells/w/{answered}", json={"value": 1})
        assert status == 200
        answered += 1
        async with (aiohttp.ClientSession() as session,
                    session.get(f"{url}/streams/cells/w/{answered - 1}") as feed):
            pids.add((await SseReader(feed).next()).json()["pid"])
        return len(pids) >= 2

    try:
        await eventually(lambda: accepts_connections(port), within=30, what="listening")
        await eventually(both_answered, within=30, what="both workers answering")
        for _ in range(6):  # whichever worker answers, it adds up both
            status, text = await fresh("GET", "/metrics")
            assert status == 200
            samples = parse(text)
            assert value(samples, "motia_server_processes") == 2
            assert value(samples, "motia_api_requests_total", method="PUT", route=CELLS,
                         status="200") == answered
    finally:
        os.kill(parent.pid, signal.SIGTERM)
        assert await asyncio.wait_for(parent.wait(), 30) == 0
        log.close()


async def test_delta_frames_are_counted(client: TestClient[Any, Any]) -> None:
    """A delta feed of a growing note: each change after the first it holds is a delta,
    written one by one (a change per loop turn) or joined in a turn's shared batch; the
    count says how many, and the bytes written are the deltas', not the snapshots'."""
    notes = client.app[RUNTIME].streams.notes
    text = "Once upon a time, " * 8
    await notes.set("g", "story", {"text": text})
    feed = await client.get("/streams/notes/g/story?delta=1")
    body = b""
    while body.count(b"\n\n") < 2:  # the retry line, the snapshot
        body += await feed.content.readany()
    await eventually(lambda: client.app[RUNTIME].hub.subscriber_count == 1, what="subscribed")
    for n in range(3):  # one change per turn: whole (the feed holds no version yet), 2 deltas
        text += f"t{n} "
        await notes.set("g", "story", {"text": text})
        await asyncio.sleep(0.01)
    for n in range(5):  # one turn: the first at once, four in a shared batch
        text += f"u{n} "
        await notes.set("g", "story", {"text": text})
    while body.count(b"\n\n") < 2 + 8:
        body += await feed.content.readany()
    assert body.count(b"event: delta\n") == 7
    samples = await scrape(client)
    assert value(samples, "motia_feed_deltas_written_total") == 7
    assert value(samples, "motia_feed_frames_written_total") == 10
    assert value(samples, "motia_feed_bytes_written_total") == len(body)
    feed.close()
