"""Stream items in Redis, shared by every server process.

Each group is a hash `<prefix>:items:<stream>:<group>` of item id ->
"<version>:<created>|<json>" (`created`: the version that created the item, by which a
group lists its items; "<version>|" is a tombstone, as is the whole value written before
`created` was kept); `<prefix>:gv:<stream>:<group>` holds the group's version
and `<prefix>:version` the one counter all versions come from. A Lua script writes the
item, bumps the counters and publishes the change in one step, so every process sees
changes in version order and none can be missed between a write and its announcement.

A Redis without persistence restarts empty. The counter, when missing, starts again
at Redis's clock in microseconds, so versions never go back below what clients saw;
`<prefix>:history` keeps the first version of that life: a client's mark below it
was given out by a Redis that has forgotten its items.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import orjson
from redis.asyncio import Redis

from motia_sse.streams.store import (
    NO_HISTORY,
    Change,
    ChangeKind,
    GroupSnapshot,
    JsonObject,
    StoredItem,
)

# Bumps the version counter, first seeding it (and the history mark) from the clock if
# Redis has lost it. TIME's parts are strings: seconds, then microseconds. The version
# is returned as a string: Lua would print a number this large as 1.7e+15.
_NEXT_VERSION = """
local function next_version()
  if redis.call('EXISTS', KEYS[3]) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', KEYS[3], now[1] .. string.format('%06d', tonumber(now[2])))
    redis.call('SET', KEYS[4], redis.call('INCR', KEYS[3]))
    return redis.call('GET', KEYS[4])
  end
  return string.format('%d', redis.call('INCR', KEYS[3]))
end
"""

_SET = _NEXT_VERSION + """
local version = next_version()
local old = redis.call('HGET', KEYS[1], ARGV[1])
local kind = 'create'
local created = version
if old and string.sub(old, -1) ~= '|' then
  kind = 'update'
  created = string.match(old, '^%d+:(%d+)|') or string.match(old, '^(%d+)|')
end
redis.call('HSET', KEYS[1], ARGV[1], version .. ':' .. created .. '|' .. ARGV[2])
redis.call('SET', KEYS[2], version)
redis.call('PUBLISH', ARGV[3],
    ARGV[4] .. ',"v":' .. version .. ',"k":"' .. kind .. '","d":' .. ARGV[2] .. '}')
return {version, kind}
"""

_DELETE = _NEXT_VERSION + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if (not old) or string.sub(old, -1) == '|' then return false end
local version = next_version()
redis.call('HSET', KEYS[1], ARGV[1], version .. '|')
redis.call('SET', KEYS[2], version)
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"v":' .. version .. ',"k":"delete","d":null}')
return {version, old}
"""


def changes_channel(prefix: str) -> str:
    """The pub/sub channel every committed change is announced on."""
    return f"{prefix}:changes"


def decode_change(message: bytes) -> tuple[Change, bool]:
    """A change as the store's script announced it, and whether its version is shared."""
    m = orjson.loads(message)
    return Change(m["s"], m["g"], m["i"], m["k"], m["v"], m["d"]), m["x"]


def encode_change(change: Change, shared: bool) -> bytes:
    """The same announcement, for changes of custom stores published from Python."""
    return orjson.dumps({"s": change.stream, "g": change.group_id, "i": change.id,
                         "x": shared, "v": change.version, "k": change.kind, "d": change.data})


def _parse(group_id: str, item_id: str, value: bytes | str) -> tuple[StoredItem, int]:
    """The item a hash value holds, and the version that created it."""
    # The connection returns bytes (no decode_responses); redis-py's types allow str.
    raw = value.encode() if isinstance(value, str) else value
    versions, _, data = raw.partition(b"|")
    version, _, created = versions.partition(b":")
    item = StoredItem(group_id, item_id, orjson.loads(data) if data else None, int(version))
    return item, int(created or version)


@attrs.define
class RedisStore:
    """Items, versions and change announcements in one Redis."""

    _redis: Redis
    _prefix: str = "motia"
    announces_changes: bool = True
    reports_previous: ClassVar[bool] = True
    _set: Any = attrs.field(init=False)
    _delete: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._set = self._redis.register_script(_SET)
        self._delete = self._redis.register_script(_DELETE)

    def _keys(self, stream: str, group_id: str) -> list[str]:
        # Stream names are identifiers (no ':'), so these keys cannot collide.
        return [f"{self._prefix}:items:{stream}:{group_id}",
                f"{self._prefix}:gv:{stream}:{group_id}", *self._counter_keys()]

    def _counter_keys(self) -> list[str]:
        return [f"{self._prefix}:version", f"{self._prefix}:history"]

    def _head(self, stream: str, group_id: str, item_id: str) -> bytes:
        # The announcement's JSON up to the parts only the script knows.
        return orjson.dumps({"s": stream, "g": group_id, "i": item_id, "x": True})[:-1]

    async def get(self, stream: str, group_id: str, item_id: str) -> StoredItem | None:
        value = await self._redis.hget(self._keys(stream, group_id)[0], item_id)
        return None if value is None else _parse(group_id, item_id, value)[0]

    async def set(self, stream: str, group_id: str, item_id: str, data: JsonObject) -> Change:
        version, kind = await self._set(
            keys=self._keys(stream, group_id),
            args=[item_id, orjson.dumps(data), changes_channel(self._prefix),
                  self._head(stream, group_id, item_id)])
        change_kind: ChangeKind = "create" if kind == b"create" else "update"
        return Change(stream, group_id, item_id, change_kind, int(version), data)

    async def delete(self, stream: str, group_id: str, item_id: str) -> Change | None:
        deleted = await self._delete(
            keys=self._keys(stream, group_id),
            args=[item_id, b"", changes_channel(self._prefix),
                  self._head(stream, group_id, item_id)])
        if deleted is None:
            return None
        version, old = deleted
        return Change(stream, group_id, item_id, "delete", int(version), None,
                      _parse(group_id, item_id, old)[0].data)

    async def get_group(self, stream: str, group_id: str) -> GroupSnapshot:
        items_key, version_key, *_ = self._keys(stream, group_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(items_key)
            pipe.get(version_key)
            values, version = await pipe.execute()
        parsed = sorted((created, k, item) for k, v in values.items()
                        for item, created in [_parse(group_id, k.decode(), v)]
                        if not item.deleted)
        return GroupSnapshot([item for _, _, item in parsed], int(version or 0))

    async def history_start(self) -> int:
        """The first version of this Redis's life; none is known if it holds no counter."""
        counter, history = self._counter_keys()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(counter)
            pipe.get(history)
            has_counter, first = await pipe.execute()
        if first is not None:
            return int(first)
        # A counter without the mark predates it (and counted from 1); no counter at all:
        # nothing written since Redis started empty, so no client's mark is current.
        return 0 if has_counter else NO_HISTORY

    async def close(self) -> None:
        """The connection belongs to the runtime, which closes it."""
