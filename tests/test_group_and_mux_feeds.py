"""The group feed and the multiplexed feed: sync, changes, resume, limits."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.runtime import RUNTIME
from motia_sse.streams.stream import StreamChannel, StreamEvent
from tests.conftest import ClientFactory, OpenFeed


def job(done: int, total: int = 9, status: str = "running") -> dict[str, Any]:
    """Data for the example `progress` stream."""
    return {"status": status, "done": done, "total": total}


def streams(client: TestClient[Any, Any]) -> Any:
    """The app's `ctx.streams`."""
    return client.app[RUNTIME].streams


def mux_url(client: TestClient[Any, Any], *subs: str) -> str:
    """The multiplexed feed URL for `subs`, each `stream/group[/id]` with encoded parts."""
    query = "&".join("sub=" + quote(s, safe="") for s in subs)
    return str(client.make_url("/streams")) + "?" + query


async def test_group_feed_syncs_then_follows(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """`sync` with every item first, then create / update / delete with versions."""
    progress = streams(client).progress
    await progress.set("team", "b", job(1))
    a = await progress.set("team", "a", job(2))
    feed = await open_feed(str(client.make_url("/streams/progress/team")))
    sync = await feed.next()
    assert (sync.event, sync.id) == ("sync", str(a.version))
    assert sync.json() == [{**job(1), "id": "b"}, {**job(2), "id": "a"}], "oldest first"

    c = await progress.set("team", "c", job(3))
    b = await progress.set("team", "b", job(4))
    await progress.delete("team", "a")
    created, updated, deleted = await feed.next(), await feed.next(), await feed.next()
    assert (created.event, created.id, created.json()) == ("create", str(c.version),
                                                           {**job(3), "id": "c"})
    assert (updated.event, updated.id, updated.json()) == ("update", str(b.version),
                                                           {**job(4), "id": "b"})
    assert (deleted.event, deleted.json()) == ("delete", {"id": "a"})
    assert int(deleted.id or 0) > b.version
    # Other groups are not this feed's business.
    await progress.set("elsewhere", "x", job(1))
    assert await feed.silent_for(0.3)

    # The feed's view and get_group agree.
    view = {row["id"]: row for row in sync.json()}
    view.pop("a")
    view.update({"c": created.json(), "b": updated.json()})
    stored = await progress.get_group("team")
    assert [(i.id, i.data.done) for i in stored] == [(k, view[k]["done"]) for k in sorted(view)]


async def test_group_feed_resume(client: TestClient[Any, Any], open_feed: OpenFeed) -> None:
    """Reconnect with Last-Event-ID: nothing if the group did not change, else one sync."""
    progress = streams(client).progress
    await progress.set("crew", "a", job(1))
    url = str(client.make_url("/streams/progress/crew"))
    first = await (await open_feed(url)).next()
    assert first.id is not None

    unchanged = await open_feed(url, **{"Last-Event-ID": first.id})
    assert await unchanged.silent_for(0.3)

    await progress.delete("crew", "a")
    await progress.set("crew", "b", job(2))
    changed = await open_feed(url, **{"Last-Event-ID": first.id})
    sync = await changed.next()
    assert sync.event == "sync"
    assert sync.json() == [{**job(2), "id": "b"}]
    assert await changed.silent_for(0.3)


async def test_empty_group_syncs_empty(client: TestClient[Any, Any], open_feed: OpenFeed) -> None:
    """A group with no items yet opens with an empty sync, then sees its first create."""
    feed = await open_feed(str(client.make_url("/streams/progress/nobody")))
    sync = await feed.next()
    assert (sync.event, sync.json(), sync.id) == ("sync", [], None)
    await streams(client).progress.set("nobody", "first", job(0))
    assert (await feed.next()).event == "create"


async def test_multiplexed_feed_names_every_event(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """Items and groups of two streams on one connection; each event says what it is."""
    s = streams(client)
    await s.progress.set("g", "job", job(1))
    await s.openai.set("t", "message", {"message": "hi"})
    feed = await open_feed(mux_url(client, "progress/g/job", "openai/t", "progress/g/none"))
    absent = await feed.next()
    assert (absent.event, absent.id, absent.json()) == (
        "item-delete", None, {"stream": "progress", "group": "g", "id": "none"})
    opening = [await feed.next(), await feed.next()]
    assert {(e.event, e.data) for e in opening} == {
        ("item", '{"stream":"progress","group":"g","id":"job","data":'
                 '{"status":"running","done":1,"total":9,"id":"job"}}'),
        ("sync", '{"stream":"openai","group":"t","items":[{"message":"hi","error":null,'
                 '"id":"message"}]}'),
    }
    assert opening[0].id is not None
    assert opening[1].id is not None
    assert int(opening[0].id) < int(opening[1].id), "initial state goes out in version order"

    await s.openai.set("t", "other", {"message": "yo"})
    await s.progress.delete("g", "job")
    await s.progress.set("g", "none", job(5))
    events = [await feed.next() for _ in range(3)]
    assert [(e.event, e.json()["stream"], e.json()["group"], e.json()["id"]) for e in events] == [
        ("create", "openai", "t", "other"),
        ("item-delete", "progress", "g", "job"),
        ("item", "progress", "g", "none"),
    ]
    assert events[0].json()["data"] == {"message": "yo", "error": None, "id": "other"}

    await s.progress.send(StreamChannel("g", "job"), StreamEvent("ping", [1]))
    custom = await feed.next()
    assert (custom.event, custom.json()) == ("event", {"stream": "progress", "group": "g",
                                                       "id": "job", "type": "ping", "data": [1]})
    assert await feed.silent_for(0.3)


async def test_custom_events_go_where_motia_sends_them(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """An item's event reaches its item's feeds and its group's; a group's event reaches
    the group's feeds only, as in Motia; a connection watching both gets each once."""
    s = streams(client)
    await s.progress.set("r", "job", job(1))
    item = await open_feed(str(client.make_url("/streams/progress/r/job")))
    group = await open_feed(str(client.make_url("/streams/progress/r")))
    both = await open_feed(mux_url(client, "progress/r/job", "progress/r", "progress/r/other"))
    await item.next()
    await group.next()
    assert {(await both.next()).event for _ in range(3)} == {"item", "item-delete", "sync"}

    await s.progress.send(StreamChannel("r"), StreamEvent("room", 1))
    await s.progress.send(StreamChannel("r", "job"), StreamEvent("job", 2))
    await s.progress.send(StreamChannel("r", "other"), StreamEvent("other", 3))
    assert [(await item.next()).json()["type"]] == ["job"]
    assert [(await group.next()).json()["type"] for _ in range(3)] == ["room", "job", "other"]
    assert [(await both.next()).json()["id"] for _ in range(3)] == [None, "job", "other"]
    for feed in (item, group, both):
        assert await feed.silent_for(0.3)


async def test_multiplexed_resume_sends_only_what_changed(
    client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """Reconnect with the last id seen: only subscriptions that changed since are sent."""
    s = streams(client)
    await s.progress.set("g", "a", job(1))
    await s.progress.set("g", "b", job(1))
    await s.openai.set("t", "message", {"message": "hi"})
    subs = ("progress/g/a", "progress/g/b", "openai/t", "progress/g/never")
    feed = await open_feed(mux_url(client, *subs))
    seen = [await feed.next() for _ in range(4)]
    assert (seen[0].event, seen[0].json()["id"]) == ("item-delete", "never"), \
        "a fresh connection learns at once that an item is not there"
    assert await feed.silent_for(0.3)
    last = seen[-1].id
    assert last is not None

    quiet = await open_feed(mux_url(client, *subs), **{"Last-Event-ID": last})
    assert await quiet.silent_for(0.3)

    b = await s.progress.set("g", "b", job(2))
    await s.openai.delete("t", "message")
    await s.progress.delete("g", "a")
    resumed = await open_feed(mux_url(client, *subs), **{"Last-Event-ID": last})
    got = [await resumed.next() for _ in range(3)]
    assert [(e.event, e.json().get("id")) for e in got] == [
        ("item", "b"), ("sync", None), ("item-delete", "a")], "in version order"
    assert got[0].json()["data"]["done"] == 2
    assert got[0].id == str(b.version)
    assert got[1].json()["items"] == []
    assert await resumed.silent_for(0.3)

    # Resuming from the newest id sends nothing more, deletes included.
    again = await open_feed(mux_url(client, *subs), **{"Last-Event-ID": got[-1].id or ""})
    assert await again.silent_for(0.3)


async def test_multiplexed_feed_refusals(make_client: ClientFactory, settings: Settings) -> None:
    """No subs, too many, malformed, unknown stream, bad id: clear 4xx JSON."""
    client = await make_client(Settings(steps_dir=settings.steps_dir, store="memory",
                                        max_subscriptions=3))
    cases = [
        ("/streams", 400, "no subscriptions"),
        ("/streams?sub=progress/a&sub=progress/b&sub=progress/c&sub=progress/d", 400,
         "too many subscriptions"),
        ("/streams?sub=progress", 400, "invalid subscription"),
        ("/streams?sub=progress/a/b/c", 400, "invalid subscription"),
        ("/streams?sub=nope/a", 404, "no stream named 'nope'"),
        ("/streams?sub=progress/a&sub=progress/%252E%252E", 400, "invalid group id"),
    ]
    for path, status, error in cases:
        response = await client.get(path)
        assert response.status == status, path
        body = await response.json()
        assert body["error"] == error, path
        assert body["details"], path
    too_many = await client.get(cases[1][0])
    assert (await too_many.json())["details"] == ["got 4, the limit is 3 (max_subscriptions)"]
    bad_id = await client.get(cases[-1][0])
    assert (await bad_id.json())["details"][0].startswith("sub[1] = 'progress/%2E%2E': ")


async def test_encoded_ids_round_trip(client: TestClient[Any, Any], open_feed: OpenFeed) -> None:
    """Ids with spaces, colons and non-ASCII reach the same item through URL encoding."""
    group, item = "team one: ü", "job #1?&"
    await streams(client).progress.set(group, item, job(1))
    single = await open_feed(str(client.make_url("/streams/progress/")) +
                             f"{quote(group, safe='')}/{quote(item, safe='')}")
    assert (await single.next()).json()["id"] == item
    mux = await open_feed(mux_url(client, f"progress/{quote(group, safe='')}/"
                                          f"{quote(item, safe='')}"))
    event = (await mux.next()).json()
    assert (event["group"], event["id"]) == (group, item)


async def test_bad_ids_are_400(client: TestClient[Any, Any]) -> None:
    """Too long or control characters: 400 JSON naming the limit."""
    long = await client.get("/streams/progress/" + "x" * 300 + "/a")
    assert long.status == 400
    assert (await long.json())["details"] == ["expected 1 to 256 characters, got 300"]
    control = await client.get("/streams/progress/a%01b")
    assert control.status == 400
    assert (await control.json())["error"] == "invalid group id"
