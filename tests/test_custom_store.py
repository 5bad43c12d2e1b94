"""`storage_type="custom"`: a user's own store class serves a stream like the default."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings
from motia_sse.runtime import RUNTIME
from tests.conftest import ClientFactory, OpenFeed, WriteSteps

STREAM = '''
import attrs
from motia_sse import BaseConfig, Change, StoredItem, StreamConfig
from motia_sse.streams.store import GroupSnapshot

WRITES = []

class DictStore:
    """A user's store: a dict, its own version counter, no tombstones."""

    def __init__(self):
        self.items = {}
        self.version = 1000

    async def get(self, stream, group_id, item_id):
        return self.items.get((stream, group_id, item_id))

    async def set(self, stream, group_id, item_id, data):
        self.version += 1
        kind = "update" if (stream, group_id, item_id) in self.items else "create"
        self.items[(stream, group_id, item_id)] = StoredItem(group_id, item_id, data, self.version)
        WRITES.append((group_id, item_id, data))
        return Change(stream, group_id, item_id, kind, self.version, data)

    async def delete(self, stream, group_id, item_id):
        if self.items.pop((stream, group_id, item_id), None) is None:
            return None
        self.version += 1
        return Change(stream, group_id, item_id, "delete", self.version, None)

    async def get_group(self, stream, group_id):
        items = [i for (s, g, _), i in sorted(self.items.items()) if (s, g) == (stream, group_id)]
        return GroupSnapshot(items, self.version)

    async def close(self):
        pass

@attrs.frozen
class Note:
    text: str

config = StreamConfig(name="notes", schema=Note,
                      base_config=BaseConfig(storage_type="custom", factory=DictStore))
'''


@pytest.fixture(name="notes_client")
async def _notes_client(write_steps: WriteSteps, make_client: ClientFactory
                        ) -> TestClient[Any, Any]:
    """A project whose only stream keeps its items in the user's DictStore."""
    steps = write_steps({"notes_stream.py": STREAM}, "custom_steps")
    return await make_client(Settings(steps_dir=steps, store="memory"))


async def test_custom_store_serves_the_stream(
    notes_client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """Writes go to the user's store; item, group and multiplexed feeds serve them."""
    import sys

    notes = notes_client.app[RUNTIME].streams.notes
    item = await notes.set("g", "n1", {"text": "hello"})
    assert item.version == 1001
    assert sys.modules["notes_stream"].WRITES == [("g", "n1", {"text": "hello"})]
    single = await open_feed(str(notes_client.make_url("/streams/notes/g/n1")))
    assert (await single.next()).json() == {"text": "hello", "id": "n1"}
    group = await open_feed(str(notes_client.make_url("/streams/notes/g")))
    assert (await group.next()).json() == [{"text": "hello", "id": "n1"}]
    mux_url = str(notes_client.make_url("/streams")) + "?sub=notes%2Fg%2Fn1"
    mux = await open_feed(mux_url)
    first = await mux.next()
    assert first.event == "item"
    assert first.id is None, "a custom store's versions must not move the shared mark"

    await notes.set("g", "n1", {"text": "again"})
    assert (await single.next()).json()["text"] == "again"
    assert (await group.next()).event == "update"
    assert (await mux.next()).json()["data"]["text"] == "again"

    # Its versions are not the server store's: a multiplexed resume resends it.
    resumed = await open_feed(mux_url, **{"Last-Event-ID": "999999999999"})
    assert (await resumed.next()).json()["data"]["text"] == "again"


async def test_delete_on_a_store_that_does_not_report_it(
    notes_client: TestClient[Any, Any], open_feed: OpenFeed
) -> None:
    """A custom store whose delete returns a Change without `previous` (written before it
    existed) still gives `delete` the removed item, read just before deleting it."""
    notes = notes_client.app[RUNTIME].streams.notes
    await notes.set("g", "n1", {"text": "bye"})
    feed = await open_feed(str(notes_client.make_url("/streams/notes/g/n1")))
    await feed.next()
    removed = await notes.delete("g", "n1")
    assert removed is not None
    assert (removed.id, removed.data.text) == ("n1", "bye")
    delete = await feed.next()
    assert (delete.event, delete.id) == ("delete", str(removed.version))
    assert await notes.delete("g", "n1") is None
