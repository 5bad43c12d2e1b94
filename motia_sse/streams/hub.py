"""Fan-out: each committed change is encoded once per kind of feed and offered to all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Hashable
from typing import Any, NamedTuple

import attrs

from motia_sse.streams.delta_texts import DeltaTexts
from motia_sse.streams.delta_wire import text_change_frame
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.shared_batch import SharedBatch
from motia_sse.streams.store import Change
from motia_sse.streams.wire import FeedKind, change_frame, custom_frame


class Subscription(NamedTuple):
    """One thing a feed watches: an item (`item` set) or a whole group (`item` None)."""

    kind: FeedKind
    stream: str
    group: str
    item: str | None


GroupKey = tuple[str, str]
# How long a loop turn's later changes wait at most before they are written: a turn that
# parses one large read of a model's stream runs for tens of milliseconds (the openai
# library takes ~120 µs a chunk). At least MIN_BATCH_WAIT, and at least BATCH_WAIT_COST
# times what the last writing of the batches took (a write per feed: 4 ms for 1,000
# feeds), so that writing early never costs more than a tenth of the time.
MIN_BATCH_WAIT = 0.002
BATCH_WAIT_COST = 10
# Within a group: (kind, item id, deltas) for item subscriptions, (kind, None, deltas)
# for the group; `deltas`: the feeds asked for them (delta=1), and get TextFrames.
Target = tuple[FeedKind, str | None, bool]


@attrs.define
class Hub:
    """Who listens to what in this process, indexed by stream and group."""

    _groups: dict[GroupKey, dict[Target, set[Feed]]] = attrs.field(factory=dict)
    # The last texts of what delta feeds watch; empty while none does.
    texts: DeltaTexts = attrs.field(factory=DeltaTexts)
    # Delta subscriptions open: publishing skips all delta work while it is 0.
    _delta_subs: int = 0
    # Frames, and their SSE bytes, offered to feeds since start: counted once per change
    # for all its feeds, not per feed (each feed counts what it did not write; feed.py).
    frames_offered: int = 0
    bytes_offered: int = 0
    # While a loop turn has published a change: the feeds batching this turn's later
    # changes on their own (Feed.offer_batched), written once each when the turn ends.
    # A streamed answer sets its item once per chunk, and a socket read brings several.
    _turn: list[Feed] | None = None
    _turn_started: float = 0.0
    # What the last writing of the batches took (see BATCH_WAIT_COST).
    _write_cost: float = 0.0
    min_batch_wait: float = MIN_BATCH_WAIT
    # This turn's batches shared by the feeds of a subscription that keep up, by
    # (stream, group, target); see shared_batch.py.
    _batches: dict[tuple[str, str, Target], SharedBatch[Feed]] = attrs.field(factory=dict)
    # Subscriptions made and ended: a shared batch holds only the feeds of its start.
    _generation: int = 0

    def subscribe(self, sub: Subscription, feed: Feed) -> None:
        """Offer `feed` every change that `sub` covers, from now on."""
        targets = self._groups.setdefault((sub.stream, sub.group), {})
        feeds = targets.setdefault((sub.kind, sub.item, feed.deltas), set())
        if feed.deltas and feed not in feeds:
            self.texts.watch(sub.stream, sub.group, sub.item)
            self._delta_subs += 1
        feeds.add(feed)
        self._generation += 1

    def unsubscribe(self, sub: Subscription, feed: Feed) -> None:
        """Stop offering; forgets keys that no feed listens to any more."""
        targets = self._groups.get((sub.stream, sub.group))
        target = (sub.kind, sub.item, feed.deltas)
        feeds = targets.get(target) if targets is not None else None
        if targets is None or feeds is None or feed not in feeds:
            return
        feeds.discard(feed)
        self._generation += 1
        if feed.deltas:
            self.texts.unwatch(sub.stream, sub.group, sub.item)
            self._delta_subs -= 1
        if not feeds:
            del targets[target]
            if not targets:
                del self._groups[(sub.stream, sub.group)]

    def publish(self, change: Change, shared: bool = True) -> None:
        """Offer a committed change to its subscribers, encoding once per kind of feed.

        `shared` is False for changes from a custom store (see `wire`)."""
        targets = self._groups.get((change.stream, change.group_id))
        if not targets:
            return
        turn = self._turn
        if turn is not None and time.monotonic() - self._turn_started > max(
                self.min_batch_wait, BATCH_WAIT_COST * self._write_cost):
            turn = self._write_turn([])  # a long turn: written now, batching goes on
        if turn is None:  # the turn's first change: written at once, as always
            self._turn = []
            self._turn_started = time.monotonic()
            asyncio.get_running_loop().call_soon(self._end_turn)
            for kind in FeedKind:
                feeds = targets.get((kind, None if kind.watches_group else change.id, False))
                if feeds:  # inline: the path every change of every plain feed takes
                    frame = change_frame(kind, change, shared)
                    key = (kind, change.stream, change.group_id, change.id)
                    for feed in feeds:
                        feed.offer(key, frame)
                    self.frames_offered += len(feeds)
                    self.bytes_offered += len(feeds) * len(frame.raw)
        else:
            for kind in FeedKind:
                feeds = targets.get((kind, None if kind.watches_group else change.id, False))
                if feeds:
                    self._offer(feeds, kind, change, change_frame(kind, change, shared),
                                turn, False)
        if self._delta_subs:
            self._publish_deltas(change, shared, targets, turn)

    def _end_turn(self) -> None:
        self._write_turn(None)

    def _write_turn(self, then: list[Feed] | None) -> list[Feed] | None:
        """Write what the turn batched; `then`: the batching that goes on (None at the
        turn's end). Times the writing, which sets how long later batches may wait."""
        started = time.monotonic()
        turn, self._turn = self._turn, then
        self._flush_batches()
        for feed in turn or ():
            feed.flush()
        self._turn_started = ended = time.monotonic()
        self._write_cost = ended - started
        return then

    def _flush_batches(self) -> None:
        """Write this turn's shared batches."""
        batches, self._batches = self._batches, {}
        for batch in batches.values():
            batch.flush()

    def _publish_deltas(self, change: Change, shared: bool,
                        targets: dict[Target, set[Feed]], turn: list[Feed] | None) -> None:
        """Offer delta feeds the change's text and its delta, computed once for all."""
        revision = self.texts.advance(change)
        if revision is None:
            return
        for kind in FeedKind:
            feeds = targets.get((kind, None if kind.watches_group else change.id, True))
            if feeds:
                self._offer(feeds, kind, change,
                            text_change_frame(kind, change, revision, shared), turn, True)

    def _offer(self, feeds: set[Feed], kind: FeedKind, change: Change, frame: Frame,
               turn: list[Feed] | None, deltas: bool) -> None:
        """Offer `frame` to `feeds`: at once, or, when `turn` (see `_turn`) is given,
        batched: shared by the feeds that can, on their own for the others."""
        key = (kind, change.stream, change.group_id, change.id)
        offered: Collection[Feed] = feeds
        if turn is None:
            for feed in feeds:
                feed.offer(key, frame)
        else:
            offered = self._share(feeds, kind, change, key, frame, deltas)
            for feed in offered:
                feed.offer_batched(key, frame, turn)
        self.frames_offered += len(offered)
        self.bytes_offered += len(offered) * len(frame.raw)

    def _share(self, feeds: set[Feed], kind: FeedKind, change: Change, key: Hashable,
               frame: Frame, deltas: bool) -> list[Feed]:
        """Add `frame` to the turn's shared batch of its subscription (begun if need be);
        the feeds that do not share it."""
        at = (change.stream, change.group_id,
              (kind, None if kind.watches_group else change.id, deltas))
        batch = self._batches.get(at)
        if batch is None or not batch.takes(frame, key, self._generation):
            if batch is not None:
                batch.flush()
            batch = self._batches[at] = SharedBatch.start(feeds, key, frame, self._generation)
        batch.add(frame)
        return batch.others

    def send(self, stream: str, group_id: str, item_id: str | None, event_type: str,
             data: Any) -> None:
        """Offer a custom event to the feeds watching its group and (if it names one) its
        item, as Motia's `send` does; a feed watching both gets it once.

        An event for the whole group skips subscriptions to single items of it: a page
        following fifty items of a group would otherwise hand it to fifty listeners."""
        targets = self._groups.get((stream, group_id))
        if not targets:
            return
        self._flush_batches()  # what the turn batched goes first
        reached: set[Feed] = set()
        frames: dict[FeedKind, Frame] = {}
        for (kind, target, _), feeds in targets.items():
            if target is not None and target != item_id:
                continue
            fresh = feeds - reached
            if not fresh:
                continue
            if kind not in frames:
                frames[kind] = custom_frame(kind, stream, group_id, item_id, event_type, data)
            for feed in fresh:
                feed.offer_custom(frames[kind])
            self.frames_offered += len(fresh)
            self.bytes_offered += len(fresh) * len(frames[kind].raw)
            reached |= fresh

    def feeds_on(self, streams: set[str]) -> set[Feed]:
        """The feeds watching anything in `streams`."""
        return {feed for (stream, _), targets in self._groups.items() if stream in streams
                for feeds in targets.values() for feed in feeds}

    @property
    def subscriber_count(self) -> int:
        """Subscriptions held in this process."""
        return sum(len(feeds) for targets in self._groups.values() for feeds in targets.values())
