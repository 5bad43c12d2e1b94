"""Ordered events: `emit(..., message_group_id=...)` runs a group's events one at a time,
in emit order, per subscribing step, on every queue and across processes."""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from motia_sse.queue.base import Delivery, EventQueue, RetryPolicy
from motia_sse.queue.memory import MemoryQueue
from motia_sse.queue.redis_queue import RedisQueue
from motia_sse.queue.sqlite_queue import SqliteQueue
from tests.conftest import RedisServer, ServerProcess, WriteSteps
from tests.polling import eventually
from tests.queue_taking import take_within

FAST = RetryPolicy(max_attempts=3, backoff=0.05)
MakeServer = Callable[..., ServerProcess]
Record = dict[str, Any]

# The API step emits `count` events over `groups` groups: event i is seq i // groups of
# group "g<i % groups>". `fail` ("g3/4": n) makes that event fail its first n tries;
# `gate_seq` makes each group's event of that seq wait for the file `gate` to exist, and
# `hold_seq` makes it take `hold` seconds.
EMIT_STEP = '''
import attrs
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

@attrs.frozen
class Batch:
    count: int
    groups: int
    fail: dict[str, int] = attrs.field(factory=dict)
    gate_seq: int = -1
    hold_seq: int = -1
    hold: float = 0.0

config = ApiRouteConfig(name="EmitOrdered", path="/ordered", method="POST",
                        emits=["ordered"], body_schema=Batch)

async def handler(req: ApiRequest[Batch], ctx: FlowContext) -> ApiResponse:
    batch = req.body
    for i in range(batch.count):
        group, seq = f"g{i % batch.groups}", i // batch.groups
        await ctx.emit("ordered", {"group": group, "seq": seq,
                                   "fail_times": batch.fail.get(f"{group}/{seq}", 0),
                                   "gated": seq == batch.gate_seq,
                                   "hold": batch.hold if seq == batch.hold_seq else 0.0},
                       message_group_id=group)
    return ApiResponse(status=202, body={"emitted": batch.count})
'''

# One line per handler start and per end (with its span and whether it raised).
RECORD_STEP = '''
import asyncio, json, os, random, time
import attrs
from motia_sse import EventConfig, FlowContext

@attrs.frozen
class Ordered:
    group: str
    seq: int
    fail_times: int = 0
    gated: bool = False
    hold: float = 0.0

config = EventConfig(name={name!r}, subscribes=["ordered"], input=Ordered)
LOG = {log!r}
GATE = {gate!r}
TRIES = {{}}

def write(**record):
    with open(LOG, "a") as out:  # one short write per line: appends do not interleave
        out.write(json.dumps({{**record, "pid": os.getpid()}}) + "\\n")

async def handler(input: Ordered, ctx: FlowContext) -> None:
    start = time.time()
    write(phase="start", group=input.group, seq=input.seq)
    key = (input.group, input.seq)
    TRIES[key] = TRIES.get(key, 0) + 1
    for _ in range(3000 if input.gated else 0):  # at most 30 s
        if os.path.exists(GATE):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(input.hold + random.uniform(0, 0.02))
    failed = TRIES[key] <= input.fail_times
    write(phase="end", group=input.group, seq=input.seq, start=start, end=time.time(),
          failed=failed)
    if failed:
        raise RuntimeError(f"{{input.group}}/{{input.seq}} fails try {{TRIES[key]}}")
'''


def project(write_steps: WriteSteps, tmp_path: Path, names: tuple[str, ...] = ("Record",)
            ) -> tuple[Path, dict[str, Path]]:
    """Steps: the emitting API step and one recording event step per name; their logs."""
    logs = {name: tmp_path / f"{name}.jsonl" for name in names}
    files = {"emit_ordered_step.py": EMIT_STEP}
    for name, log in logs.items():
        source = RECORD_STEP.format(name=name, log=str(log), gate=str(tmp_path / "gate"))
        files[f"{name.lower()}_step.py"] = source
    return write_steps(files, "ordered_steps"), logs


def records(log: Path, phase: str = "end") -> list[Record]:
    """The log's records of one phase, in the order they were written."""
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in lines if r["phase"] == phase]


def done(log: Path) -> set[tuple[str, int]]:
    """(group, seq) of every event whose handler succeeded."""
    return {(r["group"], r["seq"]) for r in records(log) if not r["failed"]}


def check_groups(ends: list[Record], groups: int, per_group: int) -> None:
    """Per group: successes in exact seq order (a re-run of the same event may repeat it),
    every run after the previous one ended."""
    by_group: dict[str, list[Record]] = defaultdict(list)
    for record in sorted(ends, key=lambda r: r["start"]):
        by_group[record["group"]].append(record)
    assert sorted(by_group) == sorted(f"g{n}" for n in range(groups))
    for group, runs in by_group.items():
        succeeded = [seq for seq, _ in itertools.groupby(r["seq"] for r in runs
                                                          if not r["failed"])]
        assert succeeded == list(range(per_group)), group
        for before, after in itertools.pairwise(runs):
            assert before["end"] <= after["start"], (group, before, after)


def groups_overlap(ends: list[Record]) -> bool:
    """Whether runs of two different groups were ever under way at the same time."""
    runs = sorted(ends, key=lambda r: r["start"])
    return any(a["group"] != b["group"] and b["start"] < a["end"]
               for a, b in itertools.combinations(runs, 2))


async def all_done(log: Path, count: int) -> None:
    """Wait (up to a minute) until `count` events have succeeded into `log`."""
    await eventually(lambda: len(done(log)) == count, within=60, every=0.05,
                     what=f"{count} events handled into {log.name}")


async def emit(server: ServerProcess, **batch: Any) -> None:
    """POST the batch to the API step, which emits it."""
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{server.url}/ordered", json=batch)
        assert response.status == 202, await response.text()


@pytest.fixture(name="queue_args", params=["memory", "sqlite", "redis"])
def _queue_args(request: pytest.FixtureRequest) -> list[str]:
    """Server flags for each queue: in process, SQLite, Redis (a prefix per test)."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return ["--redis", server.url, "--redis-prefix", f"test-{uuid.uuid4().hex[:10]}"]
    return ["--store", request.param]


async def test_each_group_in_order_groups_in_parallel(
        write_steps: WriteSteps, tmp_path: Path, server_process: MakeServer,
        queue_args: list[str]) -> None:
    """200 events over 10 groups, two subscribing steps: per step and group, exact emit
    order and never two at once; groups (and the two steps) run side by side."""
    steps, logs = project(write_steps, tmp_path, ("Record", "Audit"))
    server = server_process("--steps", str(steps), *queue_args).start()
    await emit(server, count=200, groups=10)
    for log in logs.values():
        await all_done(log, 200)
    for log in logs.values():
        ends = records(log)
        check_groups(ends, groups=10, per_group=20)
        assert groups_overlap(ends)
        assert len(ends) == 200  # nothing ran twice


async def test_a_failing_event_holds_its_group(
        write_steps: WriteSteps, tmp_path: Path, server_process: MakeServer,
        queue_args: list[str]) -> None:
    """g3/4 fails twice then succeeds, g5/2 fails every try: each holds its group's later
    events until it succeeds or is dead-lettered; the other groups go on meanwhile."""
    steps, logs = project(write_steps, tmp_path)
    server = server_process("--steps", str(steps), "--retry-backoff", "0.1",
                            "--max-attempts", "3", "--workbench", *queue_args).start()
    await emit(server, count=200, groups=10, fail={"g3/4": 2, "g5/2": 99})
    log = logs["Record"]
    await all_done(log, 199)  # every event but the dead one
    ends = sorted(records(log), key=lambda r: r["start"])
    for group, seq, tries in (("g3", 4, 3), ("g5", 2, 3)):
        runs = [r for r in ends if r["group"] == group]
        assert [(r["seq"], r["failed"]) for r in runs[seq:seq + tries]] == (
            [(seq, True)] * 2 + [(seq, group == "g5")])
        first_failure, last_try = runs[seq], runs[seq + tries - 1]
        # Back-off kept: 0.1 s, then 0.2 s, between the tries.
        assert last_try["start"] - first_failure["end"] >= 0.3
        assert any(r["group"] != group and first_failure["end"] < r["start"] < last_try["start"]
                   for r in ends), "other groups wait for the held one"
    by_group = {g: [r["seq"] for r in ends if r["group"] == g and not r["failed"]]
                for g in ("g3", "g5")}
    assert by_group == {"g3": list(range(20)), "g5": [0, 1, *range(3, 20)]}
    for group in {r["group"] for r in ends}:
        runs = [r for r in ends if r["group"] == group]
        for before, after in itertools.pairwise(runs):
            assert before["end"] <= after["start"], (group, before, after)
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{server.url}/__motia/dead-letters")
        [dead] = await response.json()
    assert (dead["data"]["group"], dead["data"]["seq"], dead["attempts"]) == ("g5", 2, 3)
    assert dead["group"] == "g5"  # the message group it was emitted with


async def test_two_processes_one_killed_midway(
        write_steps: WriteSteps, tmp_path: Path, server_process: MakeServer,
        redis_server: RedisServer) -> None:
    """Two servers on one Redis; each group's seq 10 waits at a gate, and a process holding
    some of them is killed there: the other takes those groups over once the claims
    expire, and every group still runs 0..19 in order, none lost."""
    steps, logs = project(write_steps, tmp_path)
    log, gate = logs["Record"], tmp_path / "gate"
    args = ["--steps", str(steps), "--redis", redis_server.url, "--redis-prefix",
            f"test-{uuid.uuid4().hex[:10]}", "--visibility-timeout", "4"]
    servers = [server_process(*args).start(), server_process(*args).start()]
    await emit(servers[0], count=200, groups=10, gate_seq=10)

    def at_gate() -> list[Record]:
        return [r for r in records(log, "start") if r["seq"] == 10]

    held = await eventually(at_gate, until=lambda rs: len(rs) == 10, within=30,
                            what="every group at its gate")
    assert len({r["pid"] for r in records(log)}) == 2, "both processes took events"
    doomed = next(s for s in servers if s.pid == held[0]["pid"])
    survivor = next(s for s in servers if s is not doomed)
    doomed.stop(signal.SIGKILL)
    gate.touch()
    await all_done(log, 200)
    ends = records(log)
    check_groups(ends, groups=10, per_group=20)
    taken_over = {r["group"] for r in held if r["pid"] == doomed.pid}
    assert {r["group"] for r in ends if r["seq"] == 10 and r["pid"] == survivor.pid} \
        >= taken_over
    assert groups_overlap(ends)


async def test_a_long_handler_keeps_its_claim(
        write_steps: WriteSteps, tmp_path: Path, server_process: MakeServer,
        redis_server: RedisServer) -> None:
    """Two servers on one Redis with a 1 s visibility timeout: a grouped handler taking
    3 s renews its claim while it runs, so no process takes it over; it runs once, and
    its group's next events run after it, in order."""
    steps, logs = project(write_steps, tmp_path)
    log = logs["Record"]
    args = ["--steps", str(steps), "--redis", redis_server.url, "--redis-prefix",
            f"test-{uuid.uuid4().hex[:10]}", "--visibility-timeout", "1"]
    servers = [server_process(*args).start(), server_process(*args).start()]
    await emit(servers[0], count=3, groups=1, hold_seq=0, hold=3.0)
    await all_done(log, 3)
    assert [r["seq"] for r in records(log, "start")] == [0, 1, 2]
    check_groups(records(log), groups=1, per_group=3)


# The queues themselves: what each backend hands out, and when.

@pytest.fixture(name="queue", params=["memory", "sqlite", "redis"])
async def _queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventQueue]:
    """One queue of each kind, with fast retries."""
    if request.param == "memory":
        yield MemoryQueue(FAST)
        return
    if request.param == "sqlite":
        queue = SqliteQueue.open(tmp_path / "q.sqlite3", FAST)
        yield queue
        await queue.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis = Redis.from_url(server.url)
    yield RedisQueue(redis, f"test-{uuid.uuid4().hex[:10]}", ["Step", "Other"], FAST)
    await redis.aclose()


def event(n: int, group: str | None = "a", step: str = "Step") -> Delivery:
    """Event `n` of a group (or none) for a step."""
    return Delivery(step, "topic", {"n": n}, f"trace-{n}", group=group)


async def take(queue: EventQueue, within: float = 5.0) -> Delivery | None:
    """The next delivery, or None if none comes within `within` seconds."""
    return await take_within(queue, within)


async def test_a_group_waits_for_its_head(queue: EventQueue) -> None:
    """A group's next event is handed out only once the one before is acked; other
    groups, the same group for another step, and ungrouped events are not held."""
    for delivery in (event(1), event(2), event(3, "b"), event(4, None), event(5, "a", "Other")):
        await queue.put(delivery)
    first = [await take(queue) for _ in range(4)]
    assert sorted(d.data["n"] for d in first if d) == [1, 3, 4, 5]
    assert await take(queue, 0.5) is None  # 2 waits for 1
    [one] = [d for d in first if d and d.data["n"] == 1]
    await queue.ack(one)
    second = await take(queue)
    assert second is not None
    assert (second.data, second.group, second.trace_id) == ({"n": 2}, "a", "trace-2")


async def test_a_retry_keeps_its_place(queue: EventQueue) -> None:
    """A failed event is retried before its group's next; dead-lettered, it lets it go."""
    for n in range(3):
        await queue.put(event(n))
    for attempt in (1, 2, 3):
        delivery = await take(queue)
        assert delivery is not None
        assert (delivery.data, delivery.attempt) == ({"n": 0}, attempt)
        await queue.fail(delivery, "boom")
    [dead] = await queue.dead_letters()
    assert dead.data == {"n": 0}
    nxt = await take(queue)
    assert nxt is not None
    assert nxt.data == {"n": 1}


async def test_late_settle_of_a_taken_over_event(redis_server: RedisServer) -> None:
    """A handler that outlives the visibility timeout: another process re-runs its event;
    the late one's ack pops nothing more, and the group goes on in order, once each."""
    redis = Redis.from_url(redis_server.url)
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    slow = RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout=0.4)
    other = RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout=0.4)
    for n in range(3):
        await slow.put(event(n))
    late = await take(slow)
    rerun = await take(other, 10)  # claimed once `late` has been idle too long
    assert late is not None
    assert rerun is not None
    assert late.data == rerun.data == {"n": 0}
    await slow.ack(late)
    await other.fail(rerun, "too late")  # its retry is stale: event 0 is done
    got = []
    for _ in range(2):
        delivery = await take(other, 10)
        assert delivery is not None
        got.append(delivery.data["n"])
        await other.ack(delivery)
    assert got == [1, 2]
    assert await take(other, 1.5) is None
    assert await take(slow, 0.5) is None
    await redis.aclose()


async def test_a_renewed_claim_is_not_taken_over(redis_server: RedisServer) -> None:
    """extend() keeps a held event (grouped or not) from being claimed by another process
    past the visibility timeout; once renewals stop it is taken over as before, and a
    late extend() does not take it back."""
    redis = Redis.from_url(redis_server.url)
    try:
        await renewals_hold_the_claim(redis, f"test-{uuid.uuid4().hex[:10]}")
    finally:
        await redis.aclose()


async def renewals_hold_the_claim(redis: Redis, prefix: str) -> None:
    """The checks of test_a_renewed_claim_is_not_taken_over. Each take by the other process
    ends well inside the timeout of the extend before it (0.3 s of a 1 s timeout), so a
    loaded machine's scheduling delays do not expire a renewed claim."""
    slow = RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout=1.0, consumer="slow")
    other = RedisQueue(redis, prefix, ["Step"], FAST, visibility_timeout=1.0,
                       consumer="other")
    for group in ("a", None):
        await slow.put(event(0, group))
        held = await take(slow)
        assert held is not None
        for _ in range(5):  # 1.5 s in all: half as long again as the visibility timeout
            await slow.extend(held)
            assert await take(other, 0.3) is None
        rerun = await take(other, 10)
        assert rerun is not None
        assert rerun.data == held.data
        await slow.extend(held)
        [pending] = await redis.xpending_range(f"{prefix}:queue:Step", "workers", "-", "+", 10)
        assert pending["consumer"] == b"other"
        await other.ack(rerun)


async def test_a_queue_file_of_an_earlier_version(tmp_path: Path) -> None:
    """A queue file written before message groups opens, keeps its events and takes
    grouped ones."""
    path = tmp_path / "q.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, step TEXT NOT NULL,
            topic TEXT NOT NULL, data TEXT NOT NULL, trace_id TEXT NOT NULL,
            attempt INTEGER NOT NULL, available_at REAL NOT NULL,
            taken INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX queue_ready ON queue (taken, available_at, id);
        INSERT INTO queue (step, topic, data, trace_id, attempt, available_at, taken)
            VALUES ('Step', 'topic', '{"n": 0}', 'trace-0', 1, 0, 1);
    """)
    old.close()
    queue = SqliteQueue.open(path, FAST)
    await queue.put(event(1))
    await queue.put(event(2))
    got = [await take(queue) for _ in range(2)]
    assert [(d.data["n"], d.group) for d in got if d] == [(0, None), (1, "a")]
    assert await take(queue, 0.3) is None
    await queue.close()
