"""One loop turn's frames for one subscription, joined once for all the feeds that keep up.

A streamed answer sets its item once per chunk, and one socket read of the model's stream
brings dozens of chunks: the hub publishes them within one loop turn. The turn's first
change is written to every feed at once; the later ones, for the feeds of a subscription
that keep up, go into one `SharedBatch`, joined once when the turn ends and written once
to each of those feeds. The work per change no longer grows with the watchers: 1,000
feeds of one answer cost one join and 1,000 writes per turn, not 1,000 offers per chunk.

A feed shares only while its bytes are exactly the batch's: it is in no other batch,
nothing waits for it, its socket is not paused, it batches nothing of its own, and (delta
feeds) it holds the text the first delta applies to. The others take
`Feed.offer_batched`, as every feed did before. A multiplexed feed watching several
things joins one batch at most; a frame of another of its subscriptions makes it leave
(what the batch held for it is written first) and take the rest one by one, so its
events keep their order, and a resume from its last event id misses nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from motia_sse.streams.frames import Frame, TextFrame


class Member(Protocol):
    """What a batch needs of a feed (streams/feed.py)."""

    def join_shared(self, batch: SharedBatch[Any], key: Hashable,
                    base: int | None) -> int | None:
        """Join `batch` if the feed can: the bytes it may take before pausing, or None."""
        ...

    def write_shared(self, frame: Frame, frames: int, key: Hashable, holds: int | None,
                     deltas: int) -> None:
        """Write the batch's `frames` frames (`deltas` of them deltas), joined in `frame`."""
        ...


M = TypeVar("M", bound=Member)


class SharedBatch(Generic[M]):
    """Frames of one subscription within one loop turn, for the feeds it shares them with.

    `key` is the hub's (kind, stream, group, item) of the first frame; a delta frame of
    another item (on a group subscription) needs a new batch, as members may hold another
    text of it. Joined, the frames stay below every member's room under its high-water
    mark, as a `WriteBatch` does: past it the batch is written at once and closed, so a
    lagging client pauses, and conflates, as early as it would alone."""

    __slots__ = ("_deltas", "_frames", "_holds", "_parts", "_room", "_size", "generation", "key",
                 "members", "open", "others")

    def __init__(self, key: Hashable, generation: int) -> None:
        self.key = key
        # The hub's count of subscriptions made and ended when the batch began: a feed
        # that came or went since is in neither list, and the hub starts another batch.
        self.generation = generation
        self.members: list[M] = []
        self.others: list[M] = []
        self.open = True
        self._parts: list[bytes] = []
        self._size = 0
        self._frames = 0
        self._deltas = 0
        self._room = 0
        # The version of the text the members hold after `_parts` (delta subscriptions),
        # None for none (a delete, or no delta frame yet).
        self._holds: int | None = None

    @classmethod
    def start(cls, feeds: Iterable[M], key: Hashable, frame: Frame,
              generation: int) -> SharedBatch[M]:
        """A batch beginning with `frame`, shared by those of `feeds` that can."""
        batch: SharedBatch[M] = cls(key, generation)
        base = frame.base if isinstance(frame, TextFrame) and frame.delta is not None else None
        rooms = []
        for feed in feeds:
            room = feed.join_shared(batch, key, base)
            if room is None:
                batch.others.append(feed)
            else:
                batch.members.append(feed)
                rooms.append(room)
        batch._room = min(rooms, default=0)
        batch._holds = base
        return batch

    def takes(self, frame: Frame, key: Hashable, generation: int) -> bool:
        """Whether `frame` (of `key`) can join this batch."""
        return self.open and generation == self.generation and (
            key == self.key or not isinstance(frame, TextFrame))

    def add(self, frame: Frame) -> None:
        """Add what the members get for `frame`: its delta when they hold its base."""
        if not self.members:
            return  # kept open all the same: the others keep their place without a new pass
        data = frame.raw
        if isinstance(frame, TextFrame):
            if frame.kind == "delete":
                self._holds = None
            else:
                if frame.delta is not None and self._holds == frame.base:
                    data = frame.delta.raw
                    self._deltas += 1
                self._holds = frame.version
        self._parts.append(data)
        self._size += len(data)
        self._frames += 1
        if self._size >= self._room:
            self.flush()

    def flush(self) -> None:
        """Write the joined frames to every member, once each; the batch is closed."""
        self.open = False
        members, self.members = self.members, []
        if not members:
            return
        joined = self._joined()
        for feed in members:
            feed.write_shared(joined, self._frames, self.key, self._holds, self._deltas)

    def leave(self, feed: M, stay: bool = False) -> None:
        """Write what the batch holds so far to `feed` and drop it from the members: it is
        closing, or (`stay`) takes its later frames one by one among the others."""
        self.members.remove(feed)
        if stay:
            self.others.append(feed)
        feed.write_shared(self._joined(), self._frames, self.key, self._holds, self._deltas)

    def _joined(self) -> Frame:
        """The frames as one (none: nothing to write, and members write nothing)."""
        parts = self._parts
        return Frame.of(parts[0] if len(parts) == 1 else b"".join(parts))
