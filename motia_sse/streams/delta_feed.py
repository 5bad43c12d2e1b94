"""A feed whose client asked for deltas (`delta=1`): it remembers what the client holds."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

import attrs

from motia_sse.streams.feed import Feed
from motia_sse.streams.frames import Frame, TextFrame
from motia_sse.streams.shared_batch import SharedBatch


@attrs.define(eq=False)
class DeltaFeed(Feed):
    """Writes a change's delta instead of its snapshot when the client holds its base.

    The choice is made when the bytes go to the socket (or to the loop turn's batch of
    writes, which keeps their order), in the order they go: the
    version remembered per item is then exactly the text the client will have, whatever
    conflation dropped while the feed lagged (a delta whose base was dropped goes out as
    its snapshot). Frames that are not a `TextFrame` (the initial state, `sync`,
    custom events) leave the memory alone, so the first change after them is whole."""

    deltas: ClassVar[bool] = True
    # By the hub's key (kind, stream, group, item): the version of the text the
    # client holds, as far as this connection sent it.
    _holds: dict[Hashable, int] = attrs.field(factory=dict)

    def join_shared(self, batch: SharedBatch[Any], key: Hashable, base: int | None) -> int | None:
        if base is not None and self._holds.get(key) != base:
            return None  # the batch's first delta does not apply to what this client holds
        return super().join_shared(batch, key, base)

    def write_shared(self, frame: Frame, frames: int, key: Hashable, holds: int | None,
                     deltas: int) -> None:
        if frames:  # none: nothing is written, and the client holds what it held
            if holds is None:
                self._holds.pop(key, None)
            else:
                self._holds[key] = holds
        super().write_shared(frame, frames, key, holds, deltas)

    def _write(self, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            frame = self._choose(frame)
        super()._write(frame)

    def _choose(self, frame: TextFrame) -> Frame:
        held = self._holds.pop(frame.key, None)
        if frame.kind == "delete":
            return frame
        self._holds[frame.key] = frame.version
        if frame.delta is None or held != frame.base:
            return frame
        # The hub counted the snapshot's bytes as offered; count the delta's instead.
        self.bytes_offset += len(frame.delta.raw) - len(frame.raw)
        self.deltas_written += 1
        return frame.delta
