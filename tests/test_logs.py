"""Recent logs in the workbench API: by trace id, step and level, and followed live."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import attrs
import orjson
import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.logs.buffer import LOG_BUFFER, LogBuffer
from motia_sse.logs.entry import LogEntry
from motia_sse.logs.output import JsonFormatter
from motia_sse.logs.step_logger import STEP_LOGGER
from motia_sse.logs.subscription import LogQuery, LogSubscription
from tests.conftest import ClientFactory, OpenFeed, WriteSteps
from tests.polling import eventually
from tests.raw_sse import open_raw

STEPS = {
    "log_greet_api_step.py": '''
import asyncio
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Greet", path="/greet", method="POST", emits=["greeted"])

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    if req.body.get("crash"):
        raise RuntimeError("no greeting today")
    ctx.logger.info("greeting", name=req.body["name"], times=2)
    ctx.logger.debug("not kept: below INFO")
    await ctx.emit("greeted", req.body)
    return ApiResponse(status=200, body={"ok": True})
''',
    "log_greeted_step.py": '''
import asyncio
from typing import Any
from motia_sse import EventConfig, FlowContext

config = EventConfig(name="Greeted", subscribes=["greeted"])

async def handler(input: Any, ctx: FlowContext) -> None:
    await asyncio.to_thread(ctx.logger.warning, "greeted from a thread", name=input["name"])
''',
}


@pytest.fixture(name="log_settings")
def _log_settings(write_steps: WriteSteps) -> Settings:
    """A project whose API step logs and emits to an event step that logs too."""
    return Settings(steps_dir=write_steps(STEPS, "log_steps"), store="memory",
                    heartbeat_interval=0.2, shutdown_timeout=2.0, workbench=True)


@pytest.fixture(name="log_client")
async def _log_client(make_client: ClientFactory, log_settings: Settings) -> TestClient[Any, Any]:
    """That project on a real socket."""
    return await make_client(log_settings)


async def greet(client: TestClient[Any, Any], name: str, **extra: Any) -> str:
    """POST /greet; the trace id."""
    response = await client.post("/greet", json={"name": name, **extra})
    return response.headers["x-trace-id"]


async def logs(client: TestClient[Any, Any], query: str = "", count: int | None = None,
               within: float = 5.0) -> list[dict[str, Any]]:
    """GET /__motia/logs?query, polled until it has `count` records."""

    async def fetch() -> list[dict[str, Any]]:
        response = await client.get(f"/__motia/logs?{query}")
        assert response.status == 200, await response.text()
        found: list[dict[str, Any]] = await response.json()
        return found

    return await eventually(fetch, until=lambda found: count is None or len(found) >= count,
                            within=within, every=0.02, what=f"{count} records for {query!r}")


async def test_records_of_one_trace_from_both_steps(log_client: TestClient[Any, Any]) -> None:
    """The API step's and the event step's records, oldest first, with step and fields."""
    trace = await greet(log_client, "Ada")
    other = await greet(log_client, "Bob")
    found = await logs(log_client, f"trace_id={trace}", count=2)
    assert [(r["step"], r["level"], r["message"], r["fields"]) for r in found] == [
        ("Greet", "info", "greeting", {"name": "Ada", "times": 2}),
        ("Greeted", "warning", "greeted from a thread", {"name": "Ada"}),
    ]
    first = found[0]
    assert (first["trace_id"], first["logger"], first["exception"]) == (trace, STEP_LOGGER, None)
    assert abs(first["time"] - time.time()) < 10
    assert first["seq"] < found[1]["seq"]
    assert {r["trace_id"] for r in await logs(log_client, f"trace_id={other}", count=2)} == {other}


async def test_filters_by_step_and_level(log_client: TestClient[Any, Any]) -> None:
    """`step` matches exactly, `level` keeps that level and above, `limit` keeps the newest."""
    for name in ("a", "b", "c"):
        await greet(log_client, name)
    greeted = await logs(log_client, "step=Greeted", count=3)
    assert [r["fields"]["name"] for r in greeted] == ["a", "b", "c"]
    warnings = await logs(log_client, "level=WARNING&limit=2", count=2)
    assert [(r["step"], r["fields"]["name"]) for r in warnings] == [("Greeted", "b"),
                                                                     ("Greeted", "c")]
    assert await logs(log_client, "step=Greet&level=error") == []


async def test_handler_failure_carries_its_traceback(log_client: TestClient[Any, Any]) -> None:
    """A handler that raises leaves an error record with the exception text."""
    trace = await greet(log_client, "x", crash=True)
    [record] = await logs(log_client, f"trace_id={trace}", count=1)
    assert record["level"] == "error"
    assert "handler failed" in record["message"]
    assert "Traceback" in record["exception"]
    assert "RuntimeError: no greeting today" in record["exception"]


async def test_feed_sends_recent_records_then_new_ones(
    log_client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """The feed replays the matching records it has, then each new one as it is logged."""
    await greet(log_client, "early")
    await logs(log_client, "step=Greeted", count=1)
    feed = await open_feed(str(log_client.make_url("/__motia/logs/feed?step=Greeted")))
    first = await feed.next()
    assert first.event == "log"
    assert first.json()["fields"] == {"name": "early"}
    assert first.id == str(first.json()["seq"])
    await greet(log_client, "late")
    second = await feed.next()
    assert (second.event, second.json()["fields"]) == ("log", {"name": "late"})
    assert second.json()["seq"] > first.json()["seq"]


async def test_feed_resumes_after_the_last_event_id(
    log_client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """A reconnect with Last-Event-ID (or `after=`) gets only the records it has not seen."""
    for name in ("one", "two"):
        await greet(log_client, name)
    one, two = await logs(log_client, "step=Greeted", count=2)
    url = str(log_client.make_url("/__motia/logs/feed?step=Greeted"))
    resumed = await open_feed(url, **{"Last-Event-ID": str(one["seq"])})
    assert (await resumed.next()).json() == two
    assert await resumed.silent_for(0.3)
    after = await open_feed(f"{url}&after={one['seq']}")
    assert (await after.next()).json() == two


async def test_feeds_end_at_shutdown_without_waiting(
    log_client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """Closing the app ends open log feeds at once; it does not wait out a timeout."""
    feed = await open_feed(str(log_client.make_url("/__motia/logs/feed")))
    buffer = log_client.app[LOG_BUFFER]
    started = time.monotonic()
    await log_client.close()
    assert time.monotonic() - started < 1.5
    with pytest.raises(EOFError):
        await feed.next(within=2)
    assert buffer.subscribers == 0


async def test_a_client_that_hangs_up_ends_its_log_feed(
    make_client: ClientFactory, log_settings: Settings, open_feed: OpenFeed
) -> None:
    """The feed's subscription goes as soon as its client does, not at the next ping."""
    log_client = await make_client(attrs.evolve(log_settings, heartbeat_interval=60))
    buffer = log_client.app[LOG_BUFFER]
    feed = await open_feed(str(log_client.make_url("/__motia/logs/feed?step=Nobody")))
    assert buffer.subscribers == 1
    feed.response.close()
    await eventually(lambda: buffer.subscribers == 0, every=0.01, what="no subscriber left")


async def test_a_record_is_encoded_once_for_all_its_feeds(
    log_client: TestClient[Any, Any], open_feed: OpenFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing one record to many log feeds makes its JSON once, not once per feed."""
    url = str(log_client.make_url("/__motia/logs/feed?step=Greet"))
    feeds = [await open_feed(url) for _ in range(5)]
    name = f"once-{uuid.uuid4().hex}"
    dumps, encoded = orjson.dumps, []

    def counted(*args: Any, **kwargs: Any) -> bytes:
        made = dumps(*args, **kwargs)
        if b'"message":"greeting"' in made and name.encode() in made:
            encoded.append(made)
        return made

    monkeypatch.setattr(orjson, "dumps", counted)
    await greet(log_client, name)
    for feed in feeds:
        assert (await feed.next()).json()["fields"] == {"name": name, "times": 2}
    assert len(encoded) == 1


@pytest.mark.parametrize(("query", "detail"), [
    ("level=loud", "level: expected one of debug, info, warning, error, critical, got 'loud'"),
    ("limit=0", "limit: expected 1 to 5000, got '0'"),
    ("limit=5001", "limit: expected 1 to 5000, got '5001'"),
    ("limit=ten", "limit: expected 1 to 5000, got 'ten'"),
    ("limit=\u00b2", "limit: expected 1 to 5000, got '\u00b2'"),
    ("after=-1", "after: expected the seq of a record, got '-1'"),
    ("after=\u00b2", "after: expected the seq of a record, got '\u00b2'"),
    ("trace=abc", "unknown parameter 'trace'; expected trace_id, step, level, limit, after"),
    (f"trace_id={'x' * 257}", "trace_id: expected at most 256 characters, got 257"),
])
@pytest.mark.parametrize("path", ["/__motia/logs", "/__motia/logs/feed"])
async def test_bad_parameters_are_400(
    log_client: TestClient[Any, Any], path: str, query: str, detail: str
) -> None:
    """A filter the server cannot read is a JSON 400 naming the parameter and what it wants."""
    response = await log_client.get(f"{path}?{query}")
    assert response.status == 400
    assert await response.json() == {"error": "invalid log query", "details": [detail]}


@pytest.mark.parametrize("last_event_id", ["\u00b2", "9" * 5000], ids=["superscript", "long"])
async def test_feed_ignores_a_last_event_id_that_is_no_seq(
    log_client: TestClient[Any, Any], last_event_id: str
) -> None:
    """A Last-Event-ID that cannot be a seq is as if absent: the backlog, and the feed
    stays open."""
    await greet(log_client, "kept")
    await logs(log_client, "step=Greeted", count=1)
    assert log_client.port is not None
    feed = await open_raw(log_client.port, "/__motia/logs/feed?step=Greeted",
                          last_event_id=last_event_id)
    try:
        assert feed.status == 200
        first = await feed.next()
        assert (first.event, first.json()["fields"]) == ("log", {"name": "kept"})
        assert await feed.silent_for(0.3)
        await greet(log_client, "later")
        assert (await feed.next()).json()["fields"] == {"name": "later"}
    finally:
        await feed.close()


async def test_app_buffer_keeps_only_the_newest(
    make_client: ClientFactory, log_settings: Settings
) -> None:
    """A full buffer forgets its oldest records."""
    client = await make_client(attrs.evolve(log_settings, log_buffer_size=3))
    for name in ("a", "b", "c", "d"):
        await logs(client, "trace_id=" + await greet(client, name), count=2)
    kept = await logs(client)
    assert [(r["fields"]["name"], r["level"]) for r in kept] == [
        ("c", "warning"), ("d", "info"), ("d", "warning")]
    assert len(client.app[LOG_BUFFER]) == 3


async def test_buffer_is_bounded_in_bytes_and_cuts_long_fields(
    make_client: ClientFactory, log_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Records with 1 MB fields: the buffer keeps them cut short, within log_buffer_bytes;
    the log output gets each record whole."""
    bound = 256 * 1024
    client = await make_client(attrs.evolve(log_settings, log_buffer_bytes=bound,
                                            max_body_size=2 * 1024 * 1024))
    buffer = client.app[LOG_BUFFER]
    big = "x" * 1_000_000
    with caplog.at_level(logging.INFO):
        for n in range(20):
            trace = await greet(client, f"{n:02}{big}")
            await logs(client, f"trace_id={trace}", count=2)
            assert buffer.size <= bound
        kept = await logs(client, f"trace_id={trace}", count=2)
    assert 2 < len(buffer) < 40, "old records were dropped for the bytes, not the count"
    for record in kept:
        name = record["fields"]["name"]
        assert name.startswith("19xxx")
        assert name.endswith("\u2026 (truncated, 1000002 bytes)")
        assert len(name) < 20_000
    output = [JsonFormatter().format(r) for r in caplog.records
              if getattr(r, "trace_id", None) == trace]
    assert len(output) == 2
    assert all(f"19{big}" in line for line in output)


def test_long_message_fields_and_exception_are_cut_in_the_buffer_only() -> None:
    """Message, each field and the exception text are cut, saying how long they were;
    the record itself, which the log output formats, is untouched."""
    made = record("m" * 100_000)
    fields = {"rows": list(range(30_000)), "small": {"a": [1, 2]}, "text": "\u00e9" * 50_000}
    made.fields = fields
    try:
        raise RuntimeError("e" * 100_000)
    except RuntimeError:
        made.exc_info = sys.exc_info()
    kept = LogBuffer().add(made)
    assert kept.message.startswith("mmm")
    assert kept.message.endswith("m\u2026 (truncated, 100000 bytes)")
    assert kept.fields["small"] == {"a": [1, 2]}
    rows = kept.fields["rows"]
    assert rows.startswith("[0,1,2,")
    assert rows.endswith(f"\u2026 (truncated, {len(orjson.dumps(list(range(30_000))))} bytes)")
    assert kept.fields["text"].endswith("\u2026 (truncated, 100000 bytes)")
    assert kept.exception is not None
    assert kept.exception.startswith("Traceback")
    assert re.search(r"e\u2026 \(truncated, \d+ bytes\)$", kept.exception)
    assert kept.size < 80_000
    assert made.getMessage() == "m" * 100_000
    assert len(fields["text"]) == 50_000
    assert "e" * 100_000 in JsonFormatter().format(made)


def test_buffer_is_bounded_and_filters() -> None:
    """Capacity bounds the buffer; `recent` filters and keeps the newest `limit`."""
    buffer = LogBuffer(capacity=5)
    for n in range(12):
        buffer.add(record(f"m{n}", trace_id="t" if n % 2 else "u", level=logging.INFO + n % 3))
    assert len(buffer) == 5
    assert [e.message for e in buffer.recent(LogQuery(), 100)] == [f"m{n}" for n in range(7, 12)]
    assert [e.message for e in buffer.recent(LogQuery(trace_id="t"), 2)] == ["m9", "m11"]
    assert [e.message for e in buffer.recent(LogQuery(min_level=logging.INFO + 2), 9)] == ["m8",
                                                                                         "m11"]


async def test_lagging_subscriber_drops_its_oldest() -> None:
    """A subscriber's queue is bounded: the oldest go, and it is told how many."""
    subscription = LogSubscription(LogQuery(), limit=2)
    for n in range(5):
        subscription.offer(entry(n))
    batch = await subscription.next_batch()
    assert batch is not None
    dropped, entries = batch
    assert (dropped, [e.seq for e in entries]) == (3, [3, 4])
    subscription.close()
    assert await subscription.next_batch() is None


async def test_steps_info_is_kept_without_reaching_other_handlers(
    log_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """With logging left at WARNING, steps' INFO records are kept, and printed nowhere else."""
    def shown() -> list[str]:
        return [r.getMessage() for r in caplog.records if getattr(r, "trace_id", None) == trace]

    with caplog.at_level(logging.WARNING):
        trace = await greet(log_client, "quiet")
        found = await logs(log_client, f"trace_id={trace}", count=2)
        # The thread's record reaches caplog after the buffer.
        await eventually(shown, every=0.01, what="the thread's record in caplog")
    assert [r["level"] for r in found] == ["info", "warning"]
    assert shown() == ["greeted from a thread"]


async def test_closing_the_last_app_restores_the_steps_logger(
    make_client: ClientFactory, log_settings: Settings
) -> None:
    """The steps logger's level and filters are as they were once no app is capturing."""
    steps = logging.getLogger(STEP_LOGGER)
    before = (steps.level, list(steps.filters))
    first = await make_client(log_settings)
    second = await make_client(log_settings)
    await first.close()
    assert steps.isEnabledFor(logging.INFO)
    await second.close()
    assert (steps.level, list(steps.filters)) == before


def record(message: str, trace_id: str | None = None, level: int = logging.INFO,
           ) -> logging.LogRecord:
    """A record as StepLogger makes them."""
    made = logging.LogRecord(STEP_LOGGER, level, __file__, 1, message, None, None)
    made.step, made.trace_id, made.fields = "S", trace_id, {}
    return made


def entry(seq: int) -> LogEntry:
    """A bare entry numbered `seq`."""
    return LogEntry(seq=seq, time=0.0, levelno=logging.INFO, level="info", logger="x",
                    message="m", step=None, trace_id=None, fields={}, exception=None)
