"""One subscriber's connection: shared bytes written at once, conflated when it lags."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any, ClassVar

import attrs
from aiohttp.abc import AbstractStreamWriter
from aiohttp.base_protocol import BaseProtocol

from motia_sse.streams.frames import Frame
from motia_sse.streams.shared_batch import SharedBatch
from motia_sse.streams.write_batch import Sink, WriteBatch

# Custom events are not snapshots and cannot be conflated; a lagging feed keeps
# at most this many of them and drops the oldest.
MAX_PENDING_CUSTOM = 64

_custom_ids = itertools.count()


@attrs.define(eq=False)
class Feed:
    """The write side of one SSE connection.

    The hub calls `offer` synchronously for every change, with a key naming what the
    frame describes: (kind, stream, group, item). While the socket keeps up, the
    shared frame goes straight to the transport: one write, no task switch, no copy.
    Once the kernel buffer fills (the protocol pauses writing), frames wait in
    `_pending` by key, so a newer snapshot replaces an older one: a slow reader costs
    at most two frames per key (a pending `create` is kept so that a group's new row
    is never lost), never a backlog. `pump`, run by the feed's request handler, drains.

    What a feed writes is counted (for `/metrics`) without a cost on the fast path: the
    hub counts every frame it offers, for all feeds at once, and a feed keeps only the
    difference, on its other paths: minus each frame it holds back (queued, or dropped
    as closed), plus each it writes from elsewhere (the queue, the initial state,
    heartbeats).

    Frames the hub offers after the first change of a loop turn are batched: shared
    with the other feeds of the subscription that keep up (`join_shared`, see
    shared_batch.py), or, for a feed that cannot share, its own (`offer_batched`);
    joined into one write when the turn ends, as the syscall, not the bytes, is what a
    write costs.
    """

    # Whether the client asked for deltas (DeltaFeed): the hub offers it TextFrames.
    deltas: ClassVar[bool] = False
    _protocol: BaseProtocol
    _writer: AbstractStreamWriter
    _chunked: bool
    _pending: dict[Hashable, Frame] = attrs.field(factory=dict)
    # Made when first needed: most feeds never lag, and a deque is ~600 bytes.
    _custom: deque[Hashable] | None = None
    # What `pump` waits on; a bare future, as an asyncio.Event would cost a deque more.
    _waiter: asyncio.Future[None] | None = None
    # Held while the initial state is read, so that nothing overtakes it.
    _held: bool = True
    _closed: bool = False
    # Frames (and SSE bytes) written, minus those the hub offered; see above.
    frames_offset: int = 0
    bytes_offset: int = 0
    # Frames a newer one replaced (or, for custom events, dropped) before the client
    # read them; counted on the lagging path only.
    conflated: int = 0
    # Delta frames written in place of an item's whole text (DeltaFeed only).
    deltas_written: int = 0
    # Where `_write` puts bytes: the transport, or this loop turn's batch in front of it
    # (kept here, not looked up on the protocol, so the fast path checks nothing more).
    _sink: Sink | None = attrs.field(init=False)
    _batch: WriteBatch | None = None
    # The loop turn's batch shared with other feeds, while this feed is one of its members.
    _shared: SharedBatch[Any] | None = None

    @_sink.default
    def _transport(self) -> Sink | None:
        return self._protocol.transport

    def offer(self, key: Hashable, frame: Frame) -> None:
        """Write or queue one event; never blocks, never raises on a dead client."""
        if self._closed:
            self._held_back(frame)
            return
        if not self._held and not self._pending and not self._protocol.writing_paused:
            self._write(frame)
            return
        self._held_back(frame)
        queued = self._pending.get(key)
        if queued is not None and queued.kind == "create" and frame.kind != "create":
            key = (key, "then")  # keep the create; conflate what follows it
        if self._pending.pop(key, None) is not None:
            self.conflated += 1
        self._pending[key] = frame
        if not self._held:
            self._wake()

    def offer_batched(self, key: Hashable, frame: Frame, turn: list[Feed]) -> None:
        """`offer`, but a frame that would be written now waits for `flush`, joined with
        the others of this loop turn; the feed adds itself to `turn` when it starts a batch.
        What goes to the socket, and in which order, is what `offer` would have written."""
        if self._batch is None and self._writable():
            transport = self._protocol.transport
            if transport is not None and not transport.is_closing():
                self._batch = self._sink = WriteBatch(transport)
                turn.append(self)
        if self._shared is not None:
            # A multiplexed feed sharing another subscription's batch: what that batch
            # holds for it goes first, and its later frames come one by one, in order.
            self._shared.leave(self, stay=True)
        self.offer(key, frame)

    def join_shared(self, batch: SharedBatch[Any], key: Hashable, base: int | None) -> int | None:
        """Join `batch` if this feed writes exactly its bytes from now on (`base`: the
        version of `key`'s text its first delta applies to): the room left below the
        socket's high-water mark, or None (offer this feed its frames one by one)."""
        if self._shared is not None or self._batch is not None or not self._writable():
            return None
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            return None
        self._shared = batch
        _, high_water = transport.get_write_buffer_limits()
        return int(high_water - transport.get_write_buffer_size())

    def write_shared(self, frame: Frame, frames: int, key: Hashable, holds: int | None,
                     deltas: int) -> None:
        """Write a shared batch's `frames` frames, joined in `frame`, unless the feed has
        closed (`holds`: the version of `key`'s text they leave the client with; `deltas`:
        how many of the frames are deltas)."""
        self._shared = None
        sink = self._sink
        if self._closed or not frames:  # an empty chunk would end the response
            return
        if sink is None or sink.is_closing():
            self.close()  # the client went: `pump` returns
            return
        self.frames_offset += frames
        self.bytes_offset += len(frame.raw)
        self.deltas_written += deltas
        sink.write(frame.chunk if self._chunked else frame.raw)

    def flush(self) -> None:
        """Write what was batched, in one write; later writes go straight out again."""
        batch = self._batch
        if batch is not None:
            self._batch, self._sink = None, batch.transport
            batch.flush()

    def offer_custom(self, frame: Frame) -> None:
        """Write or queue an event that no later event replaces."""
        key = ("custom", next(_custom_ids))
        self.offer(key, frame)
        if key in self._pending:
            if self._custom is None:
                self._custom = deque()
            self._custom.append(key)
            while len(self._custom) > MAX_PENDING_CUSTOM:
                if self._pending.pop(self._custom.popleft(), None) is not None:
                    self.conflated += 1

    def heartbeat(self, frame: Frame) -> None:
        """Write a heartbeat if the connection is idle; a feed with frames queued or in the
        kernel's buffer has something in flight already, and gets none."""
        if self._writable():
            self._write_unoffered(frame)

    def _writable(self) -> bool:
        """Whether a frame offered now would go straight to the socket."""
        return not (self._closed or self._held or self._pending
                    or self._protocol.writing_paused)

    def release(self, initial: Iterable[tuple[Hashable, Frame]]) -> None:
        """Write the initial state, and what arrived meanwhile that it does not cover.

        `initial` pairs each frame with the scope it covers: (kind, stream, group, item)
        for an item, item None for a whole group. Everything goes out in version order,
        so a client's last event id is never ahead of an event it has not got.
        """
        covered = {scope: frame.version for scope, frame in initial}
        late = [(key, frame) for key, frame in self._pending.items()
                if frame.version > covered.get(_scope(key), -1)]
        self._pending.clear()
        self._custom = None
        ordered = sorted([*((f.version, n, f) for n, (_, f) in enumerate(initial)),
                          *((f.version, len(covered) + n, f) for n, (_, f) in enumerate(late))])
        transport = self._protocol.transport
        batch = None
        if transport is not None and not transport.is_closing():  # one write for them all
            batch = self._sink = WriteBatch(transport)
        for _, _, frame in ordered:
            self._write_unoffered(frame)
        if batch is not None:
            self._sink = transport
            batch.flush()
        self._held = False

    def close(self) -> None:
        """Stop the feed; `pump` returns."""
        # What this turn batched goes before the response's end, which follows once
        # `pump` returns.
        if self._shared is not None:
            self._shared.leave(self)
        self.flush()
        self._closed = True
        self._wake()

    @property
    def closed(self) -> bool:
        """Whether the feed has been stopped or its client has gone."""
        transport = self._protocol.transport
        return self._closed or transport is None or transport.is_closing()

    @property
    def pending(self) -> int:
        """Frames waiting for the client to read (bounded by what it watches)."""
        return len(self._pending)

    @property
    def lagging(self) -> bool:
        """Whether the client is behind: frames wait for it, or the socket's buffer is full."""
        return not self._held and (bool(self._pending) or self._protocol.writing_paused)

    @property
    def buffered(self) -> int:
        """Bytes written to the socket that the client has not taken yet."""
        transport = self._protocol.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    async def pump(self) -> None:
        """Write queued frames as the client drains them, until the feed is closed."""
        while not self.closed:
            if not self._pending:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                continue
            try:
                await self._writer.drain()
            except ConnectionError:  # the client went while the socket was full
                self.close()
                return
            batch = list(self._pending.values())
            self._pending.clear()
            self._custom = None
            for frame in batch:
                self._write_unoffered(frame)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _write(self, frame: Frame) -> None:
        sink = self._sink
        if sink is None or sink.is_closing():
            self.close()
            self._held_back(frame)
            return
        sink.write(frame.chunk if self._chunked else frame.raw)

    def _held_back(self, frame: Frame) -> None:
        """Count a frame not written now, which the hub's count of offers includes."""
        self.frames_offset -= 1
        self.bytes_offset -= len(frame.raw)

    def _write_unoffered(self, frame: Frame) -> None:
        """Write a frame the hub's count of offers does not include (or no longer does)."""
        self.frames_offset += 1
        self.bytes_offset += len(frame.raw)
        self._write(frame)


def _scope(key: Hashable) -> Hashable:
    """The subscription a pending key belongs to: the item, or for groups the group."""
    if isinstance(key, tuple) and len(key) == 2 and key[1] == "then":
        key = key[0]
    if isinstance(key, tuple) and len(key) == 4:
        kind, stream, group, item = key
        return (kind, stream, group, None if kind.watches_group else item)
    return key

