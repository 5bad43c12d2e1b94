"""The store protocol, the same on every store: versions, kinds, groups, tombstones,
what a delete removed (also as a step sees it)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from motia_sse import Settings
from motia_sse.streams.memory_store import MemoryStore
from motia_sse.streams.redis_store import RedisStore
from motia_sse.streams.sqlite_store import SqliteStore
from motia_sse.streams.store import StreamStore
from tests.conftest import ClientFactory, OpenFeed, RedisServer, WriteSteps


@pytest.fixture(name="store", params=["memory", "sqlite", "redis"])
async def _store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StreamStore]:
    """Each store kind, fresh."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        redis = Redis.from_url(server.url)
        yield RedisStore(redis, request.getfixturevalue("redis_prefix"))
        await redis.aclose()
        return
    store: StreamStore = (MemoryStore() if request.param == "memory"
                          else SqliteStore.open(tmp_path / "s.sqlite3"))
    yield store
    await store.close()


@pytest.fixture(name="redis_prefix")
def _redis_prefix() -> str:
    """The Redis store's key prefix, this test's own."""
    return f"test-{uuid.uuid4().hex}"


async def test_versions_kinds_and_groups(store: StreamStore) -> None:
    """Every change gets a greater version; create vs update; groups hold live items."""
    a = await store.set("s", "g", "a", {"n": 1})
    b = await store.set("s", "g", "b", {"n": 2})
    a2 = await store.set("s", "g", "a", {"n": 3})
    other = await store.set("s", "h", "a", {"n": 4})
    assert [c.kind for c in (a, b, a2, other)] == ["create", "create", "update", "create"]
    assert a.version < b.version < a2.version < other.version
    group = await store.get_group("s", "g")
    assert [(i.id, i.data, i.version) for i in group.items] == [
        ("a", {"n": 3}, a2.version), ("b", {"n": 2}, b.version)]
    assert group.version == a2.version
    assert (await store.get_group("s", "none")).version == 0


async def test_delete_leaves_a_tombstone(store: StreamStore) -> None:
    """A delete is versioned, leaves a tombstone, bumps the group; set again is a create."""
    await store.set("s", "g", "a", {"n": 1})
    deleted = await store.delete("s", "g", "a")
    assert deleted is not None
    assert (deleted.kind, deleted.data, deleted.previous) == ("delete", None, {"n": 1})
    assert getattr(store, "reports_previous", False), "what it deleted comes with the delete"
    tombstone = await store.get("s", "g", "a")
    assert tombstone is not None
    assert tombstone.deleted
    assert tombstone.version == deleted.version
    group = await store.get_group("s", "g")
    assert (group.items, group.version) == ([], deleted.version)
    assert await store.delete("s", "g", "a") is None
    assert await store.get("s", "g", "never") is None
    again = await store.set("s", "g", "a", {"n": 2})
    assert again.kind == "create"
    assert again.version > deleted.version


async def test_groups_list_items_in_creation_order(store: StreamStore) -> None:
    """Oldest first, as Motia lists a group: an update keeps an item's place, one deleted
    and set again is new; not the ids' order."""
    for item_id in ("m-9", "m-10", "a", "z"):
        await store.set("s", "chat", item_id, {"text": item_id})
    await store.set("s", "chat", "m-9", {"text": "edited"})
    await store.delete("s", "chat", "a")
    await store.set("s", "chat", "a", {"text": "again"})
    await store.set("s", "other", "0", {"text": "elsewhere"})
    group = await store.get_group("s", "chat")
    assert [(i.id, i.data) for i in group.items] == [
        ("m-9", {"text": "edited"}), ("m-10", {"text": "m-10"}), ("z", {"text": "z"}),
        ("a", {"text": "again"})]


async def test_items_written_before_creation_order_keep_working(
        tmp_path: Path, redis_server: RedisServer, redis_prefix: str) -> None:
    """A SQLite file or a Redis written by an earlier version (no creation recorded): its
    items list by their last change and keep their place when updated."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript('''
        CREATE TABLE stream_items (stream TEXT NOT NULL, group_id TEXT NOT NULL,
            item_id TEXT NOT NULL, data TEXT, version INTEGER NOT NULL,
            PRIMARY KEY (stream, group_id, item_id)) WITHOUT ROWID;
        CREATE TABLE stream_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO stream_meta VALUES ('version', 7);
        INSERT INTO stream_items VALUES ('s', 'g', 'b', '{"n":1}', 5),
                                        ('s', 'g', 'a', '{"n":2}', 6);
    ''')
    old.commit()
    old.close()
    async with Redis.from_url(redis_server.url) as redis:
        await redis.hset(f"{redis_prefix}:items:s:g", mapping={"b": '5|{"n":1}', "a": '6|{"n":2}'})
        await redis.set(f"{redis_prefix}:version", 7)
        stores: list[StreamStore] = [SqliteStore.open(path), RedisStore(redis, redis_prefix)]
        for store in stores:
            assert [i.id for i in (await store.get_group("s", "g")).items] == ["b", "a"]
            await store.set("s", "g", "b", {"n": 3})
            await store.set("s", "g", "c", {"n": 4})
            group = await store.get_group("s", "g")
            assert [(i.id, i.data) for i in group.items] == [
                ("b", {"n": 3}), ("a", {"n": 2}), ("c", {"n": 4})]
            deleted = await store.delete("s", "g", "a")
            assert deleted is not None
            assert deleted.previous == {"n": 2}
        await stores[0].close()


async def test_sqlite_keeps_items_and_versions_across_reopen(tmp_path: Path) -> None:
    """Closing and reopening the file keeps items, tombstones and the version counter."""
    path = tmp_path / "s.sqlite3"
    first = SqliteStore.open(path)
    await first.set("s", "g", "a", {"n": 1})
    gone = await first.set("s", "g", "b", {"n": 2})
    deleted = await first.delete("s", "g", "b")
    await first.close()
    second = SqliteStore.open(path)
    item = await second.get("s", "g", "a")
    assert item is not None
    assert item.data == {"n": 1}
    tombstone = await second.get("s", "g", "b")
    assert tombstone is not None
    assert tombstone.deleted
    assert deleted is not None
    assert (await second.get_group("s", "g")).version == deleted.version
    assert (await second.set("s", "g", "c", {})).version > deleted.version > gone.version
    await second.close()


@pytest.fixture(name="lose_everything")
def _lose_everything(request: pytest.FixtureRequest,
                     tmp_path: Path) -> Callable[[StreamStore], Awaitable[StreamStore]]:
    """A store's next life after losing its data, as each kind can lose it."""

    async def lose(store: StreamStore) -> StreamStore:
        if isinstance(store, MemoryStore):  # a new process
            await store.close()
            return MemoryStore()
        if isinstance(store, SqliteStore):  # the data folder deleted between two runs
            await store.close()
            return _reopen_deleted(tmp_path / "s.sqlite3")
        assert isinstance(store, RedisStore)  # a Redis without persistence restarted
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = request.getfixturevalue("redis_prefix")
        async with Redis.from_url(server.url) as redis:
            await redis.delete(*await redis.keys(f"{prefix}:*"))
        return store

    return lose


async def test_versions_never_go_back_after_data_loss(
        store: StreamStore, lose_everything: Callable[[StreamStore], Awaitable[StreamStore]]
) -> None:
    """A store that lost its data counts on above every version it gave out before, and
    says its history starts after them: a client's old mark is never taken as current."""
    before = [await store.set("s", "g", "x", {"n": n}) for n in range(5)]
    before.append(await store.set("s", "g", "y", {"n": 9}))
    assert await _history_start(store) <= before[0].version
    after = await lose_everything(store)
    assert await _history_start(after) > before[-1].version  # nothing known yet
    fresh = await after.set("s", "g", "x", {"n": 10})
    assert fresh.version > before[-1].version
    assert before[-1].version < await _history_start(after) <= fresh.version
    assert (await after.get_group("s", "g")).version == fresh.version
    await after.close()


def _reopen_deleted(path: Path) -> SqliteStore:
    for leftover in path.parent.glob(f"{path.name}*"):  # the WAL and its index too
        leftover.unlink()
    return SqliteStore.open(path)


async def _history_start(store: StreamStore) -> int:
    known = getattr(store, "history_start", None)
    assert known is not None, f"{type(store).__name__} has no history_start"
    start: int = await known()
    return start


DELETE_STEPS = {
    "note_stream.py": '''
import attrs
from motia_sse import StreamConfig

@attrs.frozen
class Note:
    text: str
    stars: int = 0

config = StreamConfig(name="notes", schema=Note)
''',
    "note_api_step.py": '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Note", path="/notes/{group}/{id}", method="POST")

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    item = await ctx.streams.notes.set(req.path_params["group"], req.path_params["id"], req.body)
    return ApiResponse(status=200, body=item)
''',
    "forget_api_step.py": '''
from typing import Any
from motia_sse import ApiRequest, ApiResponse, ApiRouteConfig, FlowContext

config = ApiRouteConfig(name="Forget", path="/notes/{group}/{id}", method="DELETE")

async def handler(req: ApiRequest[Any], ctx: FlowContext) -> ApiResponse:
    gone = await ctx.streams.notes.delete(req.path_params["group"], req.path_params["id"])
    if gone is None:
        return ApiResponse(status=404, body={"error": "no such note"})
    # Typed as the stream's schema, as get() returns it.
    return ApiResponse(status=200, body={"text": gone.data.text, "item": gone})
''',
}


@pytest.fixture(name="notes_client", params=["memory", "sqlite", "redis"])
async def _notes_client(request: pytest.FixtureRequest, write_steps: WriteSteps,
                        make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    """A project whose API steps set and delete notes, on each store."""
    steps = write_steps(DELETE_STEPS, "delete_steps")
    chosen = attrs.evolve(settings, steps_dir=steps, store=request.param)
    if request.param == "redis":
        chosen = attrs.evolve(request.getfixturevalue("redis_settings"), steps_dir=steps)
    return await make_client(chosen)


async def test_delete_returns_what_it_deleted_to_a_step(
        notes_client: TestClient[Any, Any], open_feed: OpenFeed) -> None:
    """A step's `delete` returns the item it removed, typed, as Motia's does; None after."""
    assert (await notes_client.post("/notes/g/a", json={"text": "hi", "stars": 2})).status == 200
    feed = await open_feed(str(notes_client.make_url("/streams/notes/g/a")))
    assert (await feed.next()).json() == {"text": "hi", "stars": 2, "id": "a"}
    response = await notes_client.delete("/notes/g/a")
    assert response.status == 200, await response.text()
    assert await response.json() == {"text": "hi", "item": {
        "text": "hi", "stars": 2, "id": "a",
        "__motia": {"type": "state-stream", "streamName": "notes", "groupId": "g", "id": "a"}}}
    assert ((await feed.next()).event) == "delete"
    again = await notes_client.delete("/notes/g/a")
    assert (again.status, await again.json()) == (404, {"error": "no such note"})
    assert (await notes_client.delete("/notes/g/never")).status == 404
