"""The feeds one server holds open: admitted under its limits, kept alive by one heartbeat."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence

import attrs

from motia_sse.exceptions import Refused
from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame
from motia_sse.streams.hub import Hub, Subscription
from motia_sse.tasks import cancel_and_wait

# Why a feed was refused, by the status it got: the metrics' `reason` label.
REFUSALS = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
            429: "max_feeds_per_client", 503: "max_feeds"}
FEED_KINDS = ("item", "group", "multiplexed", "logs")


@attrs.frozen
class FeedStats:
    """What `/metrics` reports of the feeds, read at scrape time."""

    # Open now, by kind (FEED_KINDS); "logs" are the workbench's log feeds.
    open: dict[str, int]
    # Open now and behind: frames wait for the client, or its socket buffer is full.
    lagging: int
    subscriptions: int
    # Since start, feeds open and ended alike: frames and SSE bytes written, frames
    # conflated, delta frames written (delta=1), feeds refused by reason.
    frames: int
    bytes_written: int
    conflated: int
    deltas: int
    refused: dict[str, int]


@attrs.define(eq=False)
class FeedRoom:
    """Who may open a feed, what every open feed watches, and ending them.

    Every feed open now counts against `max_feeds` and `max_per_client`, stream and log
    feeds alike; the room keeps the stream feeds (`len()` and iteration give those) to
    subscribe them to the hub, send them the heartbeat and close them. A log feed is
    only counted (`hold` / `release`)."""

    _hub: Hub
    _max_feeds: int
    _max_per_client: int
    _heartbeat_interval: float
    _feeds: set[Feed] = attrs.field(factory=set)
    # Stream feeds open now by kind of URL: "item", "group", "multiplexed".
    _kinds: Counter[str] = attrs.field(factory=Counter)
    _by_client: Counter[str] = attrs.field(factory=Counter)
    _open: int = 0
    _heartbeat: asyncio.Task[None] | None = None
    # What the feeds that have ended counted (Feed.frames_offset, .bytes_offset,
    # .conflated, .deltas_written).
    _ended: list[int] = attrs.field(factory=lambda: [0, 0, 0, 0])
    _refused: Counter[str] = attrs.field(factory=Counter)

    def admit(self, client: str) -> None:
        """Raise Refused if one more feed, from `client`, would pass a limit."""
        if self._open >= self._max_feeds:
            self.refused(503)
            raise Refused(503, "too many open feeds", [
                f"the server holds {self._open} feeds, its limit (max_feeds)"])
        held = self._by_client[client]
        if held >= self._max_per_client:
            self.refused(429)
            raise Refused(429, "too many feeds from this address", [
                f"{client} holds {held} feeds, the limit is {self._max_per_client} "
                "(max_feeds_per_client)"])

    def refused(self, status: int) -> None:
        """Count a feed refused with `status` (the limits count their own)."""
        self._refused[REFUSALS.get(status, str(status))] += 1

    def add(self, feed: Feed, client: str, subs: Sequence[Subscription]) -> None:
        """Keep a stream feed open from `client`, offered every change `subs` cover."""
        for sub in subs:
            self._hub.subscribe(sub, feed)
        self._feeds.add(feed)
        self._kinds[_kind(subs)] += 1
        self.hold(client)

    def remove(self, feed: Feed, client: str, subs: Sequence[Subscription]) -> None:
        """Forget a stream feed that has ended, and what it watched."""
        for sub in subs:
            self._hub.unsubscribe(sub, feed)
        self._feeds.discard(feed)
        self._kinds[_kind(subs)] -= 1
        self.release(client)
        self._ended[0] += feed.frames_offset
        self._ended[1] += feed.bytes_offset
        self._ended[2] += feed.conflated
        self._ended[3] += feed.deltas_written

    def hold(self, client: str) -> None:
        """Count one more open feed from `client` (a log feed counts only this way)."""
        self._open += 1
        self._by_client[client] += 1

    def release(self, client: str) -> None:
        """Count a feed from `client` that has ended."""
        self._open -= 1
        self._by_client[client] -= 1
        if not self._by_client[client]:
            del self._by_client[client]

    @property
    def open_count(self) -> int:
        """Feeds open now, stream and log feeds: what `max_feeds` counts."""
        return self._open

    def held_by(self, client: str) -> int:
        """Feeds `client` holds open now: what `max_per_client` counts."""
        return self._by_client[client]

    def stats(self) -> FeedStats:
        """The counts `/metrics` reports: one pass over the open feeds."""
        frames, bytes_written, conflated, deltas = self._ended
        lagging = 0
        for feed in self._feeds:
            frames += feed.frames_offset
            bytes_written += feed.bytes_offset
            conflated += feed.conflated
            deltas += feed.deltas_written
            lagging += feed.lagging
        kinds = {kind: self._kinds[kind] for kind in FEED_KINDS}
        kinds["logs"] = self._open - len(self._feeds)
        return FeedStats(kinds, lagging, self._hub.subscriber_count,
                         self._hub.frames_offered + frames,
                         self._hub.bytes_offered + bytes_written, conflated, deltas,
                         dict(self._refused))

    def __len__(self) -> int:
        return len(self._feeds)

    def __iter__(self) -> Iterator[Feed]:
        return iter(self._feeds)

    def start(self) -> None:
        """Start the heartbeat."""
        self._heartbeat = asyncio.create_task(self._beat(), name="motia-sse-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat."""
        await cancel_and_wait(self._heartbeat)

    async def _beat(self) -> None:
        """One timer for every feed, not a task each (see Feed.heartbeat)."""
        frame = Frame.heartbeat()
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            for feed in list(self._feeds):
                feed.heartbeat(frame)

    def close_all(self) -> None:
        """End every stream feed now; their clients reconnect (or, on shutdown, go)."""
        _close(self._feeds)

    def close_on(self, streams: set[str]) -> None:
        """End the feeds watching anything in `streams`."""
        _close(self._hub.feeds_on(streams))


def _close(feeds: set[Feed]) -> None:
    for feed in list(feeds):
        feed.close()


def _kind(subs: Sequence[Subscription]) -> str:
    """What kind of feed URL watches `subs`: "item", "group" or "multiplexed"."""
    kind = subs[0].kind if subs else None
    if kind is None or kind.multiplexed:
        return "multiplexed"
    return str(kind.value)
