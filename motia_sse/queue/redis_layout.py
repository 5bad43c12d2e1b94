"""What the Redis queue writes: its keys, a stream entry's fields, a line's entries, and
the Lua scripts over them (each a step that must not be seen half done)."""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from motia_sse.queue.base import Delivery

# The consumer group, on every step's stream, that all server processes read in.
GROUP = "workers"


@attrs.frozen
class RedisKeys:
    """The queue's keys, under one prefix."""

    prefix: str

    def stream(self, step: str) -> str:
        """A step's stream: its deliveries, and a token per line of its grouped events."""
        return f"{self.prefix}:queue:{step}"

    def line(self, step: str, group: str) -> str:
        """A (step, group)'s line: its grouped events in emit order."""
        # The step's length keeps ("a:b", "c") and ("a", "b:c") apart.
        return f"{self.prefix}:queue-line:{len(step)}:{step}:{group}"

    @property
    def retry(self) -> str:
        """The sorted set of failed deliveries waiting out their back-off."""
        return f"{self.prefix}:queue-retry"

    @property
    def dead(self) -> str:
        """The dead-letter stream."""
        return f"{self.prefix}:queue-dead"

# Move due retries back to their streams, atomically, so two processes cannot both.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
    local stream, fields = string.match(member, '^([^\\n]*)\\n(.*)$')
    redis.call('XADD', stream, '*', 'd', fields)
    redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Queue a grouped event; the first of an empty line also gets the line's token.
PUT_GROUPED = """
if redis.call('RPUSH', KEYS[1], ARGV[1]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
end
"""

# The line's head (ARGV[1] its id) is settled: pop it, and give the next head a token.
ADVANCE = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or string.sub(head, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\\n' then
    return 0
end
redis.call('LPOP', KEYS[1])
local next = redis.call('LINDEX', KEYS[1], 0)
if next then
    local id = string.match(next, '^([^\\n]*)\\n')
    redis.call('XADD', KEYS[2], '*', 'd', cjson.encode({s = ARGV[2], g = ARGV[3], i = id,
                                                        a = 1}))
end
return 1
"""

# The consumer ARGV[2] still holds entry ARGV[3]: claim it again, which restarts its idle
# time. Checked in the script, so a renewal never takes back an entry another process
# has taken over meanwhile.
EXTEND = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #held == 0 then
    return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


def encode(delivery: Delivery, nonce: str | None = None) -> bytes:
    """A stream entry's fields: the delivery, or for a grouped one its line's token."""
    fields: dict[str, Any]
    if delivery.group is None:
        fields = {"s": delivery.step, "t": delivery.topic, "d": delivery.data,
                  "r": delivery.trace_id, "a": delivery.attempt}
    else:
        fields = {"s": delivery.step, "g": delivery.group, "i": delivery.event_id,
                  "a": delivery.attempt}
    if nonce is not None:
        fields["n"] = nonce  # keeps equal retries apart in the sorted set
    return orjson.dumps(fields)


def decode(stream: bytes, entry_id: bytes, fields: dict[bytes, bytes]) -> Delivery:
    """The delivery, or a token: a grouped delivery whose event is still on its line."""
    m = orjson.loads(fields[b"d"])
    if "g" in m:
        return Delivery(m["s"], "", None, "", m["a"], receipt=(stream, entry_id),
                        group=m["g"], event_id=m["i"])
    return Delivery(m["s"], m["t"], m["d"], m["r"], m["a"], receipt=(stream, entry_id))


def line_entry(delivery: Delivery) -> bytes:
    """A grouped event as its line holds it: its id, a newline, its fields."""
    assert delivery.event_id is not None
    fields = {"t": delivery.topic, "d": delivery.data, "r": delivery.trace_id}
    return delivery.event_id.encode() + b"\n" + orjson.dumps(fields)
